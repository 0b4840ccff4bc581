-- One table per claim, at the same cost as a claim from all of them.
--
-- The function's lanes take turns preferring each queue table (worker.ts, "one table per claim").
-- A claim for one table walked the fair index (lane, vtime, id) past every job of the other
-- tables queued before it, reading each from the heap: with 400,000 sessions queued before the
-- summaries, a claim of 100 summaries took 104-132 ms against 11-14 ms from all tables
-- (BENCHMARKS.md 1.11). Now a claim for one table walks an index of that table's pending jobs in
-- the same fair order, and picks are planned with the table's name in hand (EXECUTE): a name
-- inside "= any (array)" leaves the planner no ordered path through that index.
--
-- claim() is otherwise as in 20261124000500_worker_api.sql; its three picks go through pick().

create index if not exists embedding_queue_table_fair_idx
  on public.embedding_queue (table_name, lane, vtime, id) where status = 'pending';

create function embed_queue.pick(
  p_lane text,
  p_limit integer,
  p_tables text[],
  p_capped text[],
  p_taken bigint[]
)
returns bigint[]
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_ids bigint[];
begin
  if p_limit is null or p_limit < 1 then
    return '{}'::bigint[];
  end if;
  -- Jobs another worker is taking right now are skipped; the row locks hold the rest for the
  -- calling transaction.
  execute pg_catalog.format($f$
    select coalesce(pg_catalog.array_agg(picked.id), '{}')
    from (
      select q.id from public.embedding_queue q
      where q.status = 'pending' and q.lane = $1 and q.run_at <= pg_catalog.now()
        %s
        and not (q.fair_key = any ($2))
        and not (q.id = any ($3))
      order by q.lane, q.vtime, q.id
      limit $4
      for update skip locked
    ) as picked
  $f$,
    case
      when p_tables is null then ''
      when pg_catalog.cardinality(p_tables) = 1 then pg_catalog.format('and q.table_name = %L', p_tables[1])
      else 'and q.table_name = any ($5)'
    end)
  into v_ids
  using p_lane, p_capped, coalesce(p_taken, '{}'), p_limit, p_tables;
  return v_ids;
end
$$;
comment on function embed_queue.pick(text, integer, text[], text[], bigint[]) is
  'claim()''s pick: up to p_limit runnable jobs of lane p_lane in virtual-time order, locked for update (skip locked), '
  'within p_tables when given, leaving out the users p_capped and the jobs p_taken. One table is walked through '
  'embedding_queue_table_fair_idx, all of them through embedding_queue_fair_idx.';
revoke all on function embed_queue.pick(text, integer, text[], text[], bigint[]) from public, anon, authenticated;
grant execute on function embed_queue.pick(text, integer, text[], text[], bigint[]) to service_role;

create or replace function embed_queue.claim(
  p_worker text,
  p_limit integer,
  p_lease_seconds integer default null,
  p_tables text[] default null
)
returns table (
  id bigint,
  table_name text,
  record_id text,
  embedding_column text,
  content text,
  content_hash text,
  attempts integer,
  max_attempts integer,
  dimensions integer,
  clipped boolean
)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_lease integer;
  v_max_chars integer;
  v_max_bytes bigint;
  v_used bigint := 0;
  v_added bigint;
  v_ids bigint[];
  v_reserve integer;
  v_target embed_queue.targets;
  v_group record;
  v_day date := (pg_catalog.now() at time zone 'UTC')::date;
  v_global bigint;
  v_global_spent bigint := 0;
  v_capped text[];
begin
  if p_worker is null or p_worker = '' then
    raise exception 'embed_queue.claim: a worker id is required' using errcode = '22004';
  end if;
  if p_limit is null or p_limit < 1 then
    raise exception 'embed_queue.claim: limit must be at least 1, got %', p_limit using errcode = '22023';
  end if;

  perform embed_queue.rescue();
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  select coalesce(p_lease_seconds, s.lease_seconds), s.claim_max_chars, s.claim_max_bytes,
         pg_catalog.floor(p_limit * s.bulk_min_share)::integer, s.global_daily_tokens
  into v_lease, v_max_chars, v_max_bytes, v_reserve, v_global
  from embed_queue.settings s;

  -- Spend caps (settings.global_daily_tokens, user_daily_tokens, embed_queue.user_caps). Over
  -- the global cap nothing is handed out and no job is touched: all wait for the next UTC day.
  if v_global is not null then
    select coalesce(pg_catalog.sum(sp.tokens), 0) into v_global_spent from embed_queue.spend sp where sp.day = v_day;
    if v_global_spent >= v_global then
      perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
      return;
    end if;
  end if;

  -- A user over their cap: up to 1,000 of their runnable jobs per claim wait, pending, until the
  -- next UTC day, with the reason in error_message, and move to the end of their lane's line
  -- (vtime + 2^40) so claims do not walk past them; none is picked below. No attempt is spent.
  select coalesce(pg_catalog.array_agg(c.fair_key), '{}') into v_capped from embed_queue.capped_users(v_day) c;
  if pg_catalog.cardinality(v_capped) > 0 then
    update public.embedding_queue q set
      run_at = c.resumes_at,
      vtime = q.vtime + 1099511627776,
      error_message = pg_catalog.format(
        'waiting: this user''s daily token cap (%s) is reached; resumes at %s UTC, or sooner with embed_queue.lift_cap()',
        c.daily_tokens, pg_catalog.to_char(c.resumes_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI'))
    from embed_queue.capped_users(v_day) c
    where q.fair_key = c.fair_key
      and q.id in (
        select j.id from public.embedding_queue j
        where j.status = 'pending' and j.lane in ('fresh', 'bulk') and j.fair_key = any (v_capped)
          and j.run_at <= pg_catalog.now()
        limit 1000
        for update skip locked
      );
  end if;

  -- Take runnable jobs in turn (docs/design.md, "Fresh first, a fair share"): fresh jobs first,
  -- leaving floor(p_limit * bulk_min_share) places to bulk jobs; bulk jobs fill what fresh ones
  -- leave; fresh ones then fill what bulk ones leave. Within a lane, virtual-time order
  -- (embedding_queue.vtime) alternates between the users with waiting jobs. Each pick is one
  -- walk of the index embedding_queue_fair_idx that stops after its limit, whatever the number
  -- of users or jobs. Jobs another worker is taking right now are skipped; the row locks hold
  -- the rest for this transaction, and each job row is then written once, below.
  v_ids := embed_queue.pick('fresh', p_limit - v_reserve, p_tables, v_capped, '{}');
  v_ids := v_ids || embed_queue.pick('bulk', p_limit - pg_catalog.cardinality(v_ids), p_tables, v_capped, '{}');
  if pg_catalog.cardinality(v_ids) < p_limit and v_reserve > 0 then
    v_ids := v_ids || embed_queue.pick('fresh', p_limit - pg_catalog.cardinality(v_ids), p_tables, v_capped, v_ids);
  end if;

  -- Each lane's clock moves to the latest virtual time taken, so a user with nothing pending
  -- joins right behind the jobs being worked on. Skipped while another claim moves it.
  update embed_queue.fair_clock c set vtime = m.vtime
  from (
    select q.lane, pg_catalog.max(q.vtime) as vtime
    from public.embedding_queue q where q.id = any (v_ids) group by q.lane
  ) m
  where c.lane = m.lane and c.vtime < m.vtime
    and c.lane in (select l.lane from embed_queue.fair_clock l where l.lane = m.lane for update skip locked);

  -- Per target, one statement reads each source row's current content and leases the job with
  -- it and its hash: rows gone or soft-deleted lose their job; empty content is skipped (no
  -- attempt counted); the rest become processing for p_worker with the attempt counted. The
  -- hash is over the whole text (complete() hashes the source row again), but only its first
  -- claim_max_chars characters are kept and handed out, and only while the claim's text stays
  -- within claim_max_bytes (one job always goes): the others stay pending, untouched.
  -- The picked jobs are split by target first and each statement then finds its jobs by primary
  -- key alone (q.id = any ($1)): with a target's name in the same filter, the planner could walk
  -- every job of the target through an index that leads with table_name (embedding_queue_model_idx,
  -- e.g. before autovacuum's first analyze of a big backfill), a cost that grew with the backlog
  -- (BENCHMARKS.md, "A million rows").
  for v_group in
    select t.id as target_id, g.ids
    from (
      select q.table_name, q.embedding_column, pg_catalog.array_agg(q.id) as ids
      from public.embedding_queue q where q.id = any (v_ids)
      group by q.table_name, q.embedding_column
    ) g
    join embed_queue.targets t on t.queue_table = g.table_name and t.embedding_column = g.embedding_column
    order by t.id
  loop
    select t.* into v_target from embed_queue.targets t where t.id = v_group.target_id;
    execute pg_catalog.format($f$
      with raw as (
        -- One lookup by the source's key per job (offset 0 keeps the subquery apart): with the
        -- queue side estimated right, a plain join hashed the whole source table instead.
        select q.id, q.lane, q.vtime, coalesce(l.found, false) as found, coalesce(l.deleted, false) as deleted,
               l.full_content
        from public.embedding_queue q
        left join lateral (
          select true as found, %2$s as deleted, %3$s as full_content
          from %4$I.%5$I s
          where s.%1$I = (embed_queue.valid_key(q.record_id, %6$L))::%7$s
          offset 0
        ) l on true
        where q.id = any ($1)
      ),
      cut as (
        select r.*, pg_catalog.left(r.full_content, $7) as content,
               pg_catalog.length(r.full_content) > $7 as clipped
        from raw r
      ),
      src as (
        select c.*,
               coalesce(pg_catalog.sum(pg_catalog.octet_length(c.content))
                 over (order by c.lane = 'bulk', c.vtime, c.id rows between unbounded preceding and current row), 0) as upto,
               pg_catalog.row_number() over (order by c.lane = 'bulk', c.vtime, c.id) as n
        from cut c
        where c.found and not c.deleted
      ),
      gone as (
        delete from public.embedding_queue q
        using raw
        where q.id = raw.id and (not raw.found or raw.deleted)
        returning q.id
      ),
      leased as (
      update public.embedding_queue q set
        content = src.content,
        content_hash = case when embed_queue.is_blank(src.full_content) then null
                            else embed_queue.content_hash(src.full_content) end,
        status = case when embed_queue.is_blank(src.content) then 'skipped' else 'processing' end,
        error_message = case when embed_queue.is_blank(src.content) then 'content is empty: nothing to embed'
                             else q.error_message end,
        attempts = case when embed_queue.is_blank(src.content) then q.attempts else q.attempts + 1 end,
        locked_by = case when embed_queue.is_blank(src.content) then null else $4 end,
        locked_until = case when embed_queue.is_blank(src.content) then null
                            else pg_catalog.now() + pg_catalog.make_interval(secs => $5) end,
        truncated = src.clipped
      from src
      where q.id = src.id and ($6 + src.upto <= $8 or ($6 = 0 and src.n = 1))
      returning pg_catalog.octet_length(q.content) as bytes
      )
      select coalesce(pg_catalog.sum(bytes), 0) from leased
    $f$,
      v_target.pk_column, embed_queue.deleted_sql(v_target, 's'), embed_queue.content_sql(v_target, 's'),
      v_target.schema_name, v_target.table_name, v_target.pk_type, v_target.pk_type)
    into v_added
    -- ($2 and $3, the target's names, are no longer read: kept so the others keep their numbers.)
    using v_group.ids, v_target.queue_table, v_target.embedding_column, p_worker, v_lease, v_used, v_max_chars, v_max_bytes;
    v_used := v_used + v_added;
  end loop;

  -- Jobs naming no registered target cannot be done: say so instead of retrying forever.
  update public.embedding_queue q set
    status = 'failed',
    attempts = q.attempts + 1,
    error_message = pg_catalog.format('no target is registered for %s.%s: see embed_queue.targets', q.table_name, q.embedding_column),
    locked_by = null,
    locked_until = null
  where q.id = any (v_ids)
    and q.status = 'pending'
    and not exists (
      select 1 from embed_queue.targets t
      where t.queue_table = q.table_name and t.embedding_column = q.embedding_column
    );

  -- Count the tokens before anything is sent (estimate: UTF-8 bytes / 4, at most the 8191 the
  -- provider takes of one input). In pick order, a job is given back (pending, attempt refunded)
  -- once its user, or everyone together, had reached the cap before it: a cap is passed by at
  -- most one input per claim running at the same time (claims never wait for each other: the
  -- spend is a ledger, one row per claim and user).
  if v_global is not null then
    select coalesce(pg_catalog.sum(sp.tokens), 0) into v_global_spent from embed_queue.spend sp where sp.day = v_day;
  end if;

  with est as (
    select q.id, q.fair_key, q.lane, q.vtime,
           least(8191, (pg_catalog.octet_length(q.content) + 3) / 4)::bigint as t
    from public.embedding_queue q
    where q.id = any (v_ids) and q.status = 'processing' and q.locked_by = p_worker
  ),
  upto as (
    select e.*,
           pg_catalog.sum(e.t) over (partition by e.fair_key order by e.lane = 'bulk', e.vtime, e.id) as user_upto,
           pg_catalog.sum(e.t) over (order by e.lane = 'bulk', e.vtime, e.id) as all_upto
    from est e
  ),
  over_cap as (
    select u.id
    from upto u
    cross join embed_queue.settings s
    left join lateral (
      select pg_catalog.sum(l.tokens) as tokens from embed_queue.spend l where l.day = v_day and l.fair_key = u.fair_key
    ) sp on true
    left join embed_queue.user_caps uc on uc.fair_key = u.fair_key
    where coalesce(sp.tokens, 0) + u.user_upto - u.t
            >= coalesce(case when uc.fair_key is not null then uc.daily_tokens else s.user_daily_tokens end, 9223372036854775807)
       or v_global_spent + u.all_upto - u.t >= coalesce(v_global, 9223372036854775807)
  )
  update public.embedding_queue q set
    status = 'pending',
    attempts = greatest(q.attempts - 1, 0),
    locked_by = null,
    locked_until = null
  from over_cap o
  where q.id = o.id;

  insert into embed_queue.spend (day, fair_key, tokens)
  select v_day, q.fair_key, pg_catalog.sum(least(8191, (pg_catalog.octet_length(q.content) + 3) / 4))::bigint
  from public.embedding_queue q
  where q.id = any (v_ids) and q.status = 'processing' and q.locked_by = p_worker
  group by q.fair_key;

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);

  return query
    select q.id, q.table_name, q.record_id, q.embedding_column, q.content, q.content_hash,
           q.attempts, q.max_attempts, t.dimensions, q.truncated
    from public.embedding_queue q
    join embed_queue.targets t on t.queue_table = q.table_name and t.embedding_column = q.embedding_column
    where q.id = any (v_ids) and q.status = 'processing' and q.locked_by = p_worker
    order by q.lane = 'bulk', q.vtime, q.id;
end
$$;
comment on function embed_queue.claim(text, integer, integer, text[]) is
  'Leases up to p_limit runnable jobs to p_worker (for update skip locked; rescues expired leases first; counts the attempt), '
  'fresh jobs first with settings.bulk_min_share kept for bulk ones, each lane in virtual-time order (users in turn), '
  'and returns them with the source row''s current content and its hex sha256. Rows gone or soft-deleted lose their job; empty content is skipped. '
  'Spend caps: nothing over settings.global_daily_tokens; jobs of a user over their daily cap wait (pending, reason in error_message) '
  'until the next UTC day; tokens are counted here, before sending. '
  'Text is cut to settings.claim_max_chars (clipped = true; the hash stays over the whole text) and one claim hands out at most settings.claim_max_bytes of it.';
