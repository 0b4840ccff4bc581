-- What an operator looks at and does: views over the queue, and the guide's retry and
-- requeue as functions, plus similarity search and its index.

create function embed_queue.coverage_counts()
returns table (table_name text, embedding_column text, total bigint, with_embeddings bigint, missing bigint)
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_target embed_queue.targets;
begin
  for v_target in select t.* from embed_queue.targets t order by t.created_at, t.id loop
    table_name := v_target.queue_table;
    embedding_column := v_target.embedding_column;
    execute pg_catalog.format(
      'select pg_catalog.count(*), pg_catalog.count(s.%1$I) from %2$I.%3$I s where not %4$s',
      v_target.embedding_column, v_target.schema_name, v_target.table_name, embed_queue.deleted_sql(v_target, 's'))
    into total, with_embeddings;
    missing := total - with_embeddings;
    return next;
  end loop;
end
$$;
comment on function embed_queue.coverage_counts() is
  'Rows (not soft-deleted) of every target, with and without their embedding; behind the view embed_queue.coverage.';

create view embed_queue.queue_status with (security_invoker = true) as
  select q.table_name, q.status, pg_catalog.count(*) as count
  from public.embedding_queue q
  group by q.table_name, q.status
  order by q.table_name, q.status;
comment on view embed_queue.queue_status is 'Jobs per table and status (the guide''s status query).';

create view embed_queue.coverage with (security_invoker = true) as
  select c.table_name, c.embedding_column, c.total, c.with_embeddings, c.missing
  from embed_queue.coverage_counts() c;
comment on view embed_queue.coverage is 'Per target: live rows, rows with an embedding, rows missing one (the guide''s embedding status query).';

create view embed_queue.lag with (security_invoker = true) as
  select q.table_name,
         q.embedding_column,
         pg_catalog.count(*) filter (where q.status = 'pending') as pending,
         pg_catalog.count(*) filter (where q.status = 'processing') as processing,
         pg_catalog.min(q.run_at) filter (where q.status = 'pending') as oldest_pending_at,
         coalesce(greatest(0, extract(epoch from pg_catalog.now()
           - pg_catalog.min(q.run_at) filter (where q.status = 'pending' and q.run_at <= pg_catalog.now()))), 0)::numeric(12, 3)
           as lag_seconds
  from public.embedding_queue q
  where q.status in ('pending', 'processing')
  group by q.table_name, q.embedding_column
  order by q.table_name, q.embedding_column;
comment on view embed_queue.lag is
  'Work still to do per target. oldest_pending_at: earliest run_at of a pending job; lag_seconds: how long the oldest runnable job has been waiting.';

create view embed_queue.failures with (security_invoker = true) as
  select q.table_name,
         q.error_message,
         pg_catalog.count(*) as count,
         (pg_catalog.array_agg(q.record_id order by q.id))[1:5] as record_ids
  from public.embedding_queue q
  where q.status = 'failed'
  group by q.table_name, q.error_message
  order by count desc, q.table_name;
comment on view embed_queue.failures is 'Failed jobs grouped by table and error, with up to 5 record ids each.';

create view embed_queue.usage with (security_invoker = true) as
  select q.table_name,
         q.embedding_column,
         q.model,
         pg_catalog.count(*) as completed,
         coalesce(pg_catalog.sum(q.tokens), 0) as tokens,
         coalesce(pg_catalog.sum(q.tokens), 0) * m.usd_per_million_tokens / 1000000 as cost_usd
  from public.embedding_queue q
  left join embed_queue.models m on m.model = q.model
  where q.status = 'completed'
  group by q.table_name, q.embedding_column, q.model, m.usd_per_million_tokens
  order by q.table_name, q.embedding_column, q.model;
comment on view embed_queue.usage is 'Completed embeddings per target and model, their tokens and cost in USD (price from embed_queue.models, not rounded).';

create view embed_queue.legacy_vectors with (security_invoker = true) as
  select q.table_name, q.embedding_column, pg_catalog.count(*) as unknown_origin
  from public.embedding_queue q
  where q.status = 'completed' and q.model is null
  group by q.table_name, q.embedding_column
  order by q.table_name, q.embedding_column;
comment on view embed_queue.legacy_vectors is
  'Per target: vectors of unknown origin (completed jobs with no model recorded, e.g. the guide''s script''s). '
  'Kept or embedded again as settings.legacy_vectors says.';

create view embed_queue.spend_caps with (security_invoker = true) as
  select 'global'::text as scope, null::text as fair_key, t.tokens, s.global_daily_tokens as daily_tokens,
         t.tokens >= s.global_daily_tokens as reached,
         (select pg_catalog.count(*) from public.embedding_queue q where q.status = 'pending') as waiting,
         (((pg_catalog.now() at time zone 'UTC')::date + 1)::timestamp at time zone 'UTC') as resumes_at
  from embed_queue.settings s
  cross join lateral (
    select coalesce(pg_catalog.sum(sp.tokens), 0)::bigint as tokens from embed_queue.spend sp
    where sp.day = (pg_catalog.now() at time zone 'UTC')::date
  ) t
  where s.global_daily_tokens is not null
  union all
  select 'user', c.fair_key, c.tokens, c.daily_tokens, true,
         (select pg_catalog.count(*) from public.embedding_queue q where q.status = 'pending' and q.fair_key = c.fair_key),
         c.resumes_at
  from embed_queue.capped_users() c;
comment on view embed_queue.spend_caps is
  'Daily token caps today (UTC): the global one when set (reached or not) and every user who reached theirs, with their '
  'tokens, the cap, the jobs waiting and when sending resumes. Lift a user''s with embed_queue.lift_cap().';

create function embed_queue.lift_cap(p_fair_key text, p_daily_tokens bigint default null)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_count integer;
begin
  if p_fair_key is null or p_fair_key = '' then
    raise exception 'embed_queue.lift_cap: give the user (embedding_queue.fair_key, e.g. the user id)' using errcode = '22004';
  end if;
  insert into embed_queue.user_caps as uc (fair_key, daily_tokens, note)
  values (p_fair_key, p_daily_tokens, 'set by lift_cap')
  on conflict (fair_key) do update set daily_tokens = excluded.daily_tokens, note = excluded.note, updated_at = pg_catalog.now();

  -- The user's waiting jobs may go at once (a job in backoff too: the operator asked for it).
  update public.embedding_queue q set run_at = pg_catalog.now(), error_message = null
  where q.status = 'pending' and q.fair_key = p_fair_key and q.run_at > pg_catalog.now();
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function embed_queue.lift_cap(text, bigint) is
  'Sets a user''s daily token cap (null: no limit) in embed_queue.user_caps and lets their waiting jobs go now. Returns how many.';

create function embed_queue.retry(p_table text default null, p_record_id text default null)
returns integer
language sql volatile security invoker set search_path = ''
as $$
  -- The guide's retry statement, scoped. The manual-reset trigger gives each job a fresh start.
  with retried as (
    update public.embedding_queue q set status = 'pending', error_message = null
    where q.status = 'failed'
      and (p_table is null or q.table_name = p_table)
      and (p_record_id is null or q.record_id = p_record_id)
    returning 1
  )
  select pg_catalog.count(*)::integer from retried
$$;
comment on function embed_queue.retry(text, text) is
  'Puts failed jobs back to pending with a fresh start (all, one table''s, or one row''s). Returns how many.';

create function embed_queue.requeue(p_table text, p_record_id text)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_target embed_queue.targets;
  v_count integer;
  v_total integer := 0;
  v_found boolean;
  v_deleted boolean;
begin
  perform embed_queue.require_target('embed_queue.requeue', p_table);
  for v_target in select * from embed_queue.find_targets(p_table) loop

    execute pg_catalog.format(
      'select true, %1$s from %2$I.%3$I s where s.%4$I = (embed_queue.valid_key($1, %5$L))::%6$s',
      embed_queue.deleted_sql(v_target, 's'), v_target.schema_name, v_target.table_name,
      v_target.pk_column, v_target.pk_type, v_target.pk_type)
    into v_found, v_deleted
    using p_record_id;

    if v_found is null then
      raise exception 'embed_queue.requeue: %.% has no row with % = %', v_target.schema_name, v_target.table_name,
        v_target.pk_column, pg_catalog.quote_literal(p_record_id)
        using errcode = 'P0002';
    end if;
    if v_deleted then
      raise exception 'embed_queue.requeue: row % of %.% is soft-deleted', pg_catalog.quote_literal(p_record_id),
        v_target.schema_name, v_target.table_name
        using errcode = '55000', hint = 'Undelete it first; that queues it.';
    end if;

    -- The guide's manual requeue, for this target.
    execute pg_catalog.format($f$
      insert into public.embedding_queue as q (table_name, record_id, content, embedding_column, user_id)
      select $1, (s.%1$I)::text, pg_catalog.left(%2$s, (select st.claim_max_chars from embed_queue.settings st)), $2, %3$s
      from %4$I.%5$I s
      where s.%1$I = (embed_queue.valid_key($3, %6$L))::%7$s
      on conflict (table_name, record_id, embedding_column) do update set status = 'pending', content = excluded.content
    $f$,
      v_target.pk_column, embed_queue.content_sql(v_target, 's'),
      embed_queue.user_sql(v_target, 's'),
      v_target.schema_name, v_target.table_name, v_target.pk_type, v_target.pk_type)
    using v_target.queue_table, v_target.embedding_column, p_record_id;
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
  end loop;
  return v_total;
end
$$;
comment on function embed_queue.requeue(text, text) is
  'The guide''s manual requeue for one row, for every target of its table: pending again with a fresh start. Returns the jobs queued.';

create function embed_queue.search(p_table text, p_query extensions.vector, p_limit integer default 5)
returns table (record_id text, content text, similarity double precision)
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_target embed_queue.targets;
begin
  v_target := embed_queue.require_target('embed_queue.search', p_table);

  for record_id, content, similarity in execute pg_catalog.format($f$
    select (s.%1$I)::text as record_id, %2$s as content, 1 - (s.%3$I operator(extensions.<=>) $1) as similarity
    from %4$I.%5$I s
    where s.%3$I is not null and not %6$s
    order by s.%3$I operator(extensions.<=>) $1
    limit $2
  $f$,
    v_target.pk_column, embed_queue.content_sql(v_target, 's'), v_target.embedding_column,
    v_target.schema_name, v_target.table_name, embed_queue.deleted_sql(v_target, 's'))
  using p_query, coalesce(p_limit, 5)
  loop
    return next;
  end loop;
end
$$;
comment on function embed_queue.search(text, extensions.vector, integer) is
  'Rows of a table nearest to p_query by cosine similarity (1 - cosine distance), soft-deleted rows excluded; uses the table''s first registered embedding column.';

-- The HNSW index search wants, per target: none is built where the column already has a valid
-- HNSW index of any operator class (e.g. one a migration made), so this never duplicates one.
-- `create index concurrently` does not block writes, but cannot run inside a transaction or a
-- function: this returns the statements, and the CLI's `search` runs them one by one, each on
-- its own (a failed concurrent build leaves an invalid index: it is dropped first, concurrently).
create function embed_queue.search_index_statements(p_table text default null)
returns table (table_name text, drop_statement text, create_statement text)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_target embed_queue.targets;
  v_name text;
begin
  for v_target in
    select t.* from embed_queue.targets t
    where p_table is null or t.queue_table = p_table or t.schema_name || '.' || t.table_name = p_table
    order by t.created_at, t.id
  loop
    continue when exists (
      select 1
      from pg_catalog.pg_index i
      join pg_catalog.pg_class ic on ic.oid = i.indexrelid
      join pg_catalog.pg_am am on am.oid = ic.relam
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = pg_catalog.format('%I.%I', v_target.schema_name, v_target.table_name)::regclass
        and i.indisvalid
        and a.attname = v_target.embedding_column
        and am.amname = 'hnsw'
    );
    v_name := pg_catalog.left(v_target.table_name || '_' || v_target.embedding_column, 50) || '_hnsw_idx';
    table_name := v_target.queue_table;
    drop_statement := case when exists (
        select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = v_target.schema_name and c.relname = v_name and c.relkind = 'i')
      then pg_catalog.format('drop index concurrently if exists %I.%I', v_target.schema_name, v_name) end;
    create_statement := pg_catalog.format(
      'create index concurrently if not exists %I on %I.%I using hnsw (%I extensions.vector_cosine_ops)',
      v_name, v_target.schema_name, v_target.table_name, v_target.embedding_column);
    return next;
  end loop;
end
$$;
comment on function embed_queue.search_index_statements(text) is
  'Per target (or one table''s) without a valid HNSW index on its embedding column: the statements that build its cosine '
  'HNSW index concurrently (and drop an invalid one of that name first). Run each on its own, outside a transaction.';

create function embed_queue.ensure_search_index(p_table text default null)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_row record;
  v_created integer := 0;
begin
  -- Inside a function nothing can be concurrent: the same statements without the keyword.
  for v_row in select * from embed_queue.search_index_statements(p_table) loop
    if v_row.drop_statement is not null then
      execute pg_catalog.replace(v_row.drop_statement, ' concurrently', '');
    end if;
    execute pg_catalog.replace(v_row.create_statement, ' concurrently', '');
    v_created := v_created + 1;
  end loop;
  return v_created;
end
$$;
comment on function embed_queue.ensure_search_index(text) is
  'Creates the HNSW cosine index of every target (or of one table) with no valid HNSW index; returns how many. Blocks writes '
  'while it builds (a function cannot build concurrently): prefer the CLI''s search, which runs embed_queue.search_index_statements() '
  'concurrently. Build after the backfill, as pgvector advises.';

revoke all on all functions in schema embed_queue from public, anon, authenticated;
grant execute on function
  embed_queue.coverage_counts(),
  embed_queue.retry(text, text),
  embed_queue.requeue(text, text),
  embed_queue.lift_cap(text, bigint),
  embed_queue.search_index_statements(text),
  embed_queue.search(text, extensions.vector, integer)
to service_role;
grant select on embed_queue.queue_status, embed_queue.coverage, embed_queue.lag,
  embed_queue.failures, embed_queue.usage, embed_queue.legacy_vectors, embed_queue.spend_caps to service_role;
