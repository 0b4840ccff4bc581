-- Backfill: queue the rows that existed before their table was registered.

create function embed_queue.backfill_page(p_table text, p_after text default null, p_limit integer default 1000)
returns table (queued integer, last_key text)
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_first embed_queue.targets;
  v_target embed_queue.targets;
  v_rows integer;
  v_last text;
  v_count integer;
  v_queued integer := 0;
begin
  v_first := embed_queue.require_target('embed_queue.backfill_page', p_table);
  if p_limit is null or p_limit < 1 then
    raise exception 'embed_queue.backfill_page: limit must be at least 1, got %', p_limit using errcode = '22023';
  end if;

  -- The page: the next p_limit primary keys after p_after, in key order.
  execute pg_catalog.format(
    'select pg_catalog.count(*)::integer, ((pg_catalog.array_agg(k order by k desc))[1])::text from ('
    '  select s.%1$I as k from %2$I.%3$I s where $1::text is null or s.%1$I > ($1::text)::%4$s order by s.%1$I limit $2'
    ') page',
    v_first.pk_column, v_first.schema_name, v_first.table_name, v_first.pk_type)
  into v_rows, v_last
  using p_after, p_limit;

  if v_rows = 0 then
    queued := 0;
    last_key := null;
    return next;
    return;
  end if;

  -- Every target of the table, over the same key range: live rows without an embedding.
  for v_target in select * from embed_queue.find_targets(p_table) loop
    execute pg_catalog.format($f$
      insert into public.embedding_queue as q
        (table_name, record_id, embedding_column, content, user_id, status, error_message)
      select $1, (s.%1$I)::text, $2, pg_catalog.left(c.content, (select st.claim_max_chars from embed_queue.settings st)), %2$s,
             case when embed_queue.is_blank(c.content) then 'skipped' else 'pending' end,
             case when embed_queue.is_blank(c.content) then 'content is empty: nothing to embed' end
      from %3$I.%4$I s
      cross join lateral (select %5$s as content) c
      where ($3::text is null or s.%1$I > ($3::text)::%6$s)
        and s.%1$I <= ($4::text)::%6$s
        and not %7$s
        and s.%8$I is null
      on conflict (table_name, record_id, embedding_column) do nothing
    $f$,
      v_target.pk_column,
      embed_queue.user_sql(v_target, 's'),
      v_target.schema_name, v_target.table_name, embed_queue.content_sql(v_target, 's'), v_target.pk_type,
      embed_queue.deleted_sql(v_target, 's'), v_target.embedding_column)
    using v_target.queue_table, v_target.embedding_column, p_after, v_last;
    get diagnostics v_count = row_count;
    v_queued := v_queued + v_count;
  end loop;

  queued := v_queued;
  last_key := case when v_rows < p_limit then null else v_last end;
  return next;
end
$$;
comment on function embed_queue.backfill_page(text, text, integer) is
  'Queues one page of a table''s rows (keys after p_after, p_limit of them) that are live and have no embedding, for every target '
  'of the table; existing jobs are left alone. Returns the jobs queued and the key to continue after (null when done).';

-- No procedure that loops the pages with a commit between them: PostgreSQL refuses COMMIT in a
-- procedure with a SET clause, so it could not pin its search_path. Callers loop
-- backfill_page() instead, one page per transaction (the CLI's `backfill` does).

revoke all on function embed_queue.backfill_page(text, text, integer) from public, anon, authenticated;

-- Rows that existed before the targets were registered (idempotent: existing jobs stay).
do $$
declare
  v_table text;
  v_after text;
  v_page record;
begin
  for v_table in select distinct t.queue_table from embed_queue.targets t loop
    v_after := null;
    loop
      select b.queued, b.last_key into v_page from embed_queue.backfill_page(v_table, v_after, 1000) b;
      exit when v_page.last_key is null;
      v_after := v_page.last_key;
    end loop;
  end loop;
end
$$;

-- Rows that already have a vector and no job (embedded before embed_queue, by whatever means)
-- get a completed job with no model: status counts them as of unknown origin, and
-- settings.legacy_vectors decides whether they are trusted or embedded again.
do $$
declare
  v_target embed_queue.targets;
begin
  for v_target in select t.* from embed_queue.targets t order by t.id loop
    execute pg_catalog.format($f$
      insert into public.embedding_queue as q
        (table_name, record_id, embedding_column, content, user_id, status, completed_at)
      select $1, (s.%1$I)::text, $2, pg_catalog.left(%2$s, (select st.claim_max_chars from embed_queue.settings st)), %3$s, 'completed', pg_catalog.now()
      from %4$I.%5$I s
      where s.%6$I is not null and not %7$s
      on conflict (table_name, record_id, embedding_column) do nothing
    $f$,
      v_target.pk_column, embed_queue.content_sql(v_target, 's'),
      embed_queue.user_sql(v_target, 's'),
      v_target.schema_name, v_target.table_name, v_target.embedding_column, embed_queue.deleted_sql(v_target, 's'))
    using v_target.queue_table, v_target.embedding_column;
  end loop;
end
$$;

-- A backlog found in place (the guide's pending jobs) starts now rather than at the next tick.
-- On a new database nothing is pending and nothing is called.
select embed_queue.invoke('webhook')
where exists (select 1 from public.embedding_queue q where q.status = 'pending' and q.run_at <= now());
