-- The worker API: what the Edge Function calls (as postgres over SUPABASE_DB_URL).
-- Every state change is conditional on the lock owner (locked_by = p_worker); whole batches
-- are handled in one statement per target. The functions mark their own queue updates with
-- the transaction-local setting embed_queue.internal = 'on', so neither the manual-reset
-- trigger nor the webhook reacts to them, and put the previous value back at their end.
-- set_config() at run time, not a SET clause: PostgreSQL refuses a custom parameter in a
-- function's SET clause to a role that is not a superuser ("permission denied to set
-- parameter"), and on Supabase `postgres`, which runs the migrations, is not one. An error
-- needs no restore: it aborts the transaction or the subtransaction, and the setting with it.

create function embed_queue.backoff_delay(attempts integer)
returns interval
language sql volatile security invoker set search_path = ''
as $$
  -- Exponential from the base, capped, with equal jitter: half the cap plus up to half at random.
  select pg_catalog.make_interval(secs => (c.cap / 2) + pg_catalog.random() * (c.cap / 2))
  from (
    select least(
      s.backoff_max_seconds::double precision,
      s.backoff_base_seconds::double precision
        * pg_catalog.power(2::double precision, least(greatest(coalesce(attempts, 1) - 1, 0), 40))
    ) as cap
    from embed_queue.settings s
  ) c
$$;
comment on function embed_queue.backoff_delay(integer) is
  'Delay before the next attempt after attempts failed ones: base * 2^(attempts-1), capped at backoff_max_seconds, equal jitter (between half and all of it).';

create function embed_queue.rescue()
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_count integer;
begin
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  with rescued as (
    update public.embedding_queue q set
      status = case when q.attempts >= q.max_attempts then 'failed' else 'pending' end,
      error_message = case
        when q.attempts >= q.max_attempts then pg_catalog.format(
          'lease expired %s times: the function may be crashing on this input; see function logs', q.attempts)
        else pg_catalog.format('lease expired (attempt %s of %s)', q.attempts, q.max_attempts)
      end,
      run_at = case when q.attempts >= q.max_attempts then q.run_at
                    else pg_catalog.now() + embed_queue.backoff_delay(q.attempts) end,
      -- An old retry is bulk work, first in the bulk lane's line once its backoff is over.
      lane = 'bulk',
      vtime = (select c.vtime + 1 from embed_queue.fair_clock c where c.lane = 'bulk'),
      locked_by = null,
      locked_until = null
    where q.status = 'processing' and q.locked_until < pg_catalog.now()
    returning 1
  )
  select pg_catalog.count(*)::integer into v_count from rescued;

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
  return v_count;
end
$$;
comment on function embed_queue.rescue() is
  'Takes back jobs whose lease expired (worker died or timed out): pending after a backoff, or failed when their attempts are spent. Returns how many.';

create function embed_queue.capped_users(p_day date default null)
returns table (fair_key text, tokens bigint, daily_tokens bigint, resumes_at timestamptz)
language sql stable security invoker set search_path = ''
as $$
  -- Users whose tokens of the day reached their cap: their user_caps row if they have one
  -- (null there: no limit), else settings.user_daily_tokens.
  select sp.fair_key, sp.tokens, c.cap,
         ((coalesce(p_day, (pg_catalog.now() at time zone 'UTC')::date) + 1)::timestamp at time zone 'UTC')
  from (
    select l.fair_key, pg_catalog.sum(l.tokens)::bigint as tokens
    from embed_queue.spend l
    where l.day = coalesce(p_day, (pg_catalog.now() at time zone 'UTC')::date)
    group by l.fair_key
  ) sp
  cross join embed_queue.settings s
  left join embed_queue.user_caps uc on uc.fair_key = sp.fair_key
  cross join lateral (select case when uc.fair_key is not null then uc.daily_tokens else s.user_daily_tokens end as cap) c
  where c.cap is not null and sp.tokens >= c.cap
$$;
comment on function embed_queue.capped_users(date) is
  'Users (embedding_queue.fair_key) over their daily token cap on p_day (default: today, UTC), their tokens, their cap and when they resume.';

create function embed_queue.claim(
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
  v_more bigint[];
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
  select coalesce(pg_catalog.array_agg(picked.id), '{}') into v_ids
  from (
    select q.id from public.embedding_queue q
    where q.status = 'pending' and q.lane = 'fresh' and q.run_at <= pg_catalog.now()
      and (p_tables is null or q.table_name = any (p_tables))
      and not (q.fair_key = any (v_capped))
    order by q.lane, q.vtime, q.id
    limit p_limit - v_reserve
    for update skip locked
  ) as picked;

  select coalesce(pg_catalog.array_agg(picked.id), '{}') into v_more
  from (
    select q.id from public.embedding_queue q
    where q.status = 'pending' and q.lane = 'bulk' and q.run_at <= pg_catalog.now()
      and (p_tables is null or q.table_name = any (p_tables))
      and not (q.fair_key = any (v_capped))
    order by q.lane, q.vtime, q.id
    limit p_limit - pg_catalog.cardinality(v_ids)
    for update skip locked
  ) as picked;
  v_ids := v_ids || v_more;

  if pg_catalog.cardinality(v_ids) < p_limit and v_reserve > 0 then
    select coalesce(pg_catalog.array_agg(picked.id), '{}') into v_more
    from (
      select q.id from public.embedding_queue q
      where q.status = 'pending' and q.lane = 'fresh' and q.run_at <= pg_catalog.now()
        and (p_tables is null or q.table_name = any (p_tables))
        and not (q.fair_key = any (v_capped))
        and not (q.id = any (v_ids))
      order by q.lane, q.vtime, q.id
      limit p_limit - pg_catalog.cardinality(v_ids)
      for update skip locked
    ) as picked;
    v_ids := v_ids || v_more;
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

create function embed_queue.complete(
  p_worker text,
  p_ids bigint[],
  p_hashes text[],
  p_embeddings text[],
  p_tokens integer[],
  p_truncated boolean[],
  p_model text,
  p_dimensions integer
)
returns table (id bigint, outcome text)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_target embed_queue.targets;
  v_written bigint[] := array[]::bigint[];
  v_batch bigint[];
  v_records text[];
  v_positions integer[];
begin
  if pg_catalog.cardinality(p_ids) is distinct from pg_catalog.cardinality(p_hashes)
     or pg_catalog.cardinality(p_ids) is distinct from pg_catalog.cardinality(p_embeddings)
     or (p_tokens is not null and pg_catalog.cardinality(p_tokens) <> pg_catalog.cardinality(p_ids))
     or (p_truncated is not null and pg_catalog.cardinality(p_truncated) <> pg_catalog.cardinality(p_ids)) then
    raise exception 'embed_queue.complete: ids, hashes, embeddings (and tokens, truncated when given) must have the same length'
      using errcode = '22023';
  end if;

  -- A swap of model generations (20261124001400_model_change.sql) either committed before this
  -- point or waits until this transaction ends: the job-to-column mapping read below holds.
  perform pg_catalog.pg_advisory_xact_lock_shared(embed_queue.generation_lock_key());
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  -- One UPDATE of the source table per target: the vector is written only where the job is
  -- still held by this worker under the same hash and the row's current content hashes to it.
  -- The fence on model: a target pinned to a model (targets.model) takes only that model's
  -- vectors; another model's jobs are not written (stale below: pending again, attempt refunded).
  for v_target in
    select t.* from embed_queue.targets t
    where exists (
      select 1 from public.embedding_queue q
      where q.id = any (p_ids) and q.table_name = t.queue_table and q.embedding_column = t.embedding_column
        and q.status = 'processing' and q.locked_by = p_worker
    )
    and (t.model is null or t.model = p_model)
  loop
    if v_target.dimensions is not null and p_dimensions is distinct from v_target.dimensions then
      raise exception 'embed_queue.complete: %.% holds % dimensions, the embeddings have %',
        v_target.queue_table, v_target.embedding_column, v_target.dimensions, p_dimensions
        using errcode = '22023',
              hint = 'Configure the model''s dimensions to match the vector column.';
    end if;

    -- First the jobs this worker still holds under the same hash, found by primary key alone;
    -- then the write joins only those (by the source's key) to their place in the input. Kept
    -- apart so no plan can walk the queue's other indexes or hash the whole source table.
    select coalesce(pg_catalog.array_agg(q.record_id), '{}'),
           coalesce(pg_catalog.array_agg(pg_catalog.array_position(p_ids, q.id)), '{}')
      into v_records, v_positions
    from public.embedding_queue q
    where q.id = any (p_ids) and q.table_name = v_target.queue_table
      and q.embedding_column = v_target.embedding_column
      and q.status = 'processing' and q.locked_by = p_worker
      and q.content_hash = p_hashes[pg_catalog.array_position(p_ids, q.id)];

    execute pg_catalog.format($f$
      with written as (
        update %1$I.%2$I as s set %3$I = ($3[h.ord])::extensions.vector
        from unnest($1::text[], $2::integer[]) as h (record_id, ord)
        where s.%4$I = (h.record_id)::%5$s
          and s.%4$I = any (($1::text[])::%5$s[])
          and not %6$s
          and embed_queue.content_hash(%7$s) = $4[h.ord]
        returning $5[h.ord] as id
      )
      select coalesce(pg_catalog.array_agg(written.id), '{}') from written
    $f$,
      v_target.schema_name, v_target.table_name, v_target.embedding_column, v_target.pk_column,
      v_target.pk_type, embed_queue.deleted_sql(v_target, 's'), embed_queue.content_sql(v_target, 's'))
    into v_batch
    using v_records, v_positions, p_embeddings, p_hashes, p_ids;

    v_written := v_written || v_batch;
  end loop;

  -- The two queue updates select rows by primary key and read each job's values by its place
  -- in the input arrays: no join, so no plan can loop over every job the worker holds (the
  -- planner takes "held by this worker" for about one row).
  return query
    with done as (
      update public.embedding_queue q set
        status = 'completed',
        completed_at = pg_catalog.now(),
        model = p_model,
        dimensions = p_dimensions,
        tokens = p_tokens[pg_catalog.array_position(p_ids, q.id)],
        truncated = coalesce(p_truncated[pg_catalog.array_position(p_ids, q.id)], false),
        error_message = null,
        locked_by = null,
        locked_until = null
      where q.id = any (v_written)
        and q.status = 'processing' and q.locked_by = p_worker
        and q.content_hash = p_hashes[pg_catalog.array_position(p_ids, q.id)]
      returning q.id
    ),
    stale as (
      -- Held, but the content is no longer what was embedded: again, at once, attempt refunded.
      update public.embedding_queue q set
        status = 'pending',
        attempts = greatest(q.attempts - 1, 0),
        run_at = pg_catalog.now(),
        locked_by = null,
        locked_until = null,
        content_hash = null
      where q.id = any (p_ids) and not (q.id = any (v_written))
        and q.status = 'processing' and q.locked_by = p_worker
      returning q.id
    )
    select i.id,
           case when d.id is not null then 'completed'
                when st.id is not null then 'stale'
                else 'lost' end
    from unnest(p_ids) with ordinality as i (id, ord)
    left join done d on d.id = i.id
    left join stale st on st.id = i.id
    order by i.ord;

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
end
$$;
comment on function embed_queue.complete(text, bigint[], text[], text[], integer[], boolean[], text, integer) is
  'Writes a batch of embeddings (pgvector text literals) and completes their jobs. Per id: completed; stale (held, but the '
  'content changed: nothing written, job pending again, attempt refunded); lost (no longer held by p_worker: nothing written).';

create function embed_queue.fail(p_worker text, p_failures jsonb)
returns table (id bigint, status text)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_bad text;
begin
  if p_failures is null or pg_catalog.jsonb_typeof(p_failures) <> 'array' then
    raise exception 'embed_queue.fail: failures must be a JSON array' using errcode = '22023';
  end if;

  select f.kind into v_bad
  from pg_catalog.jsonb_to_recordset(p_failures) as f (kind text)
  where f.kind is null or f.kind not in ('retryable', 'permanent', 'rate_limited')
  limit 1;
  if found then
    raise exception 'embed_queue.fail: unknown failure kind %', coalesce(pg_catalog.quote_literal(v_bad), 'null')
      using errcode = '22023', hint = 'kind is one of retryable, permanent, rate_limited.';
  end if;

  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  return query
    with f as (
      select * from pg_catalog.jsonb_to_recordset(p_failures)
        as f (id bigint, kind text, error text, retry_after_ms numeric)
    ),
    updated as (
      update public.embedding_queue q set
        status = case
          when f.kind = 'rate_limited' then 'pending'
          when f.kind = 'permanent' then 'failed'
          when q.attempts >= q.max_attempts then 'failed'
          else 'pending'
        end,
        attempts = case when f.kind = 'rate_limited' then greatest(q.attempts - 1, 0) else q.attempts end,
        run_at = case
          when f.kind = 'rate_limited' and f.retry_after_ms is not null
            then pg_catalog.now() + greatest(f.retry_after_ms, 0) * interval '1 millisecond'
          when f.kind = 'rate_limited' then pg_catalog.now() + s.rate_limited_default_seconds * interval '1 second'
          when f.kind = 'retryable' and q.attempts < q.max_attempts then pg_catalog.now() + embed_queue.backoff_delay(q.attempts)
          else q.run_at
        end,
        -- A retry after a failed attempt is bulk work, first in the bulk lane's line once its
        -- backoff is over; a rate-limited job keeps its lane and place (it was never tried).
        lane = case when f.kind = 'retryable' then 'bulk' else q.lane end,
        vtime = case when f.kind = 'retryable' then (select c.vtime + 1 from embed_queue.fair_clock c where c.lane = 'bulk')
                     else q.vtime end,
        error_message = pg_catalog.left(f.error, s.error_message_max_chars),
        locked_by = null,
        locked_until = null
      from f, embed_queue.settings s
      where q.id = f.id and q.status = 'processing' and q.locked_by = p_worker
      returning q.id, q.status
    )
    select updated.id, updated.status from updated order by updated.id;

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
end
$$;
comment on function embed_queue.fail(text, jsonb) is
  'Records failed jobs held by p_worker, from [{id, kind, error, retry_after_ms}]: rate_limited -> pending after retry_after, attempt refunded; '
  'retryable -> pending after backoff_delay(attempts), or failed when attempts are spent; permanent -> failed. Returns the new status per job.';

create function embed_queue.release(p_worker text, p_ids bigint[] default null)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_count integer;
begin
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  update public.embedding_queue q set
    status = 'pending',
    attempts = greatest(q.attempts - 1, 0),
    run_at = pg_catalog.now(),
    locked_by = null,
    locked_until = null
  where q.status = 'processing' and q.locked_by = p_worker
    and (p_ids is null or q.id = any (p_ids));
  get diagnostics v_count = row_count;

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
  return v_count;
end
$$;
comment on function embed_queue.release(text, bigint[]) is
  'Gives jobs held by p_worker back (all of them when p_ids is null): pending at once, attempt refunded. Returns how many.';

create function embed_queue.start_run(p_worker text, p_trigger text)
returns bigint
language sql volatile security invoker set search_path = ''
as $$
  insert into embed_queue.runs (worker, trigger) values (p_worker, p_trigger) returning id
$$;
comment on function embed_queue.start_run(text, text) is
  'Records the start of a run of the function (trigger: cron, webhook or manual); returns the run id for finish_run.';

create function embed_queue.finish_run(p_run_id bigint, p_stats jsonb)
returns void
language sql volatile security invoker set search_path = ''
as $$
  update embed_queue.runs r set
    finished_at = pg_catalog.clock_timestamp(),
    claimed = coalesce((p_stats ->> 'claimed')::integer, 0),
    completed = coalesce((p_stats ->> 'completed')::integer, 0),
    failed = coalesce((p_stats ->> 'failed')::integer, 0),
    skipped = coalesce((p_stats ->> 'skipped')::integer, 0),
    unchanged = coalesce((p_stats ->> 'unchanged')::integer, 0),
    stale = coalesce((p_stats ->> 'stale')::integer, 0),
    requests = coalesce((p_stats ->> 'requests')::integer, 0),
    rate_limited = coalesce((p_stats ->> 'rate_limited')::integer, 0),
    tokens = coalesce((p_stats ->> 'tokens')::bigint, 0),
    cost_usd = coalesce((p_stats ->> 'cost_usd')::numeric, 0),
    error = p_stats ->> 'error'
  where r.id = p_run_id
$$;
comment on function embed_queue.finish_run(bigint, jsonb) is
  'Records the end of a run with its counts: claimed, completed, failed, skipped, unchanged, stale, requests, rate_limited, tokens, cost_usd, error.';

create function embed_queue.pending_count(p_tables text[] default null)
returns bigint
language sql stable security invoker set search_path = ''
as $$
  select pg_catalog.count(*)
  from public.embedding_queue q
  where q.status in ('pending', 'processing')
    and (p_tables is null or q.table_name = any (p_tables))
$$;
comment on function embed_queue.pending_count(text[]) is
  'Jobs still to do (pending or processing), optionally for some tables only.';

create function embed_queue.queue_secret()
returns text
language sql stable security definer set search_path = ''
as $$
  select ds.decrypted_secret from vault.decrypted_secrets ds where ds.name = 'embed_queue_secret' limit 1
$$;
comment on function embed_queue.queue_secret() is
  'The Bearer secret pg_cron and the webhook send to the function (Vault secret embed_queue_secret), so the function can check it.';

revoke all on all functions in schema embed_queue from public, anon, authenticated;
grant execute on function
  embed_queue.capped_users(date),
  embed_queue.backoff_delay(integer),
  embed_queue.rescue(),
  embed_queue.claim(text, integer, integer, text[]),
  embed_queue.complete(text, bigint[], text[], text[], integer[], boolean[], text, integer),
  embed_queue.fail(text, jsonb),
  embed_queue.release(text, bigint[]),
  embed_queue.start_run(text, text),
  embed_queue.finish_run(bigint, jsonb),
  embed_queue.pending_count(text[]),
  embed_queue.queue_secret()
to service_role;
