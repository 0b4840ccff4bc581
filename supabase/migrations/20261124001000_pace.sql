-- One pace for every run, and a bound on how many background runs work at once.
--   embed_queue.pace          the provider's rate-limit state per model and key, shared by
--                             every invocation (hosted pg_cron ticks every 10 s, the webhook
--                             and the hand-overs overlap: each run alone would learn the limits
--                             by itself and together they would overrun them)
--   embed_queue.pace_take     reserve one request and its tokens before sending
--   embed_queue.pace_observe  take in a response's x-ratelimit-* headers
--   embed_queue.pace_pause    everyone waits after a 429
--   embed_queue.begin_run     start_run that says "busy" when max_concurrent_runs are working
--
-- Each call is one short statement under one row lock (no session state, no advisory session
-- lock), so it works behind Supabase's transaction pooler too.

alter table embed_queue.settings
  add column max_concurrent_runs integer not null default 2 check (max_concurrent_runs between 1 and 50),
  add column run_grace_seconds integer not null default 30 check (run_grace_seconds between 1 and 600);
comment on column embed_queue.settings.max_concurrent_runs is
  'Cron and webhook runs working at once at most; one that finds this many ends at once (stopped "busy") without claiming. '
  'Manual runs are not refused but count. All runs share one pace (embed_queue.pace), so more runs add no throughput.';
comment on column embed_queue.settings.run_grace_seconds is
  'A run counts as working for max_concurrent_runs while it holds a leased job, or for this long after it started (before its first claim).';

create table embed_queue.pace (
  key text primary key,
  limit_requests integer check (limit_requests > 0),
  limit_tokens bigint check (limit_tokens > 0),
  requests_level double precision not null default 0,
  tokens_level double precision not null default 0,
  level_at timestamptz not null default pg_catalog.clock_timestamp(),
  paused_until timestamptz,
  probe_until timestamptz,
  observed_at timestamptz
);

comment on table embed_queue.pace is
  'The provider''s rate limits as every run sees them, one row per model and key (a hash: never the key). A token bucket per '
  'dimension: refills at limit per minute up to the limit, takes one request and its tokens per call, corrected down by what '
  'the provider says remains. Reservations may run ahead (the level goes negative): each caller is told how long to wait.';
comment on column embed_queue.pace.key is 'Model and a short hash of the endpoint and key, from the function (provider key never stored).';
comment on column embed_queue.pace.limit_requests is 'x-ratelimit-limit-requests last seen (per minute); null: not known yet.';
comment on column embed_queue.pace.limit_tokens is 'x-ratelimit-limit-tokens last seen (per minute); null: not known yet.';
comment on column embed_queue.pace.requests_level is 'Requests available at level_at; below 0 when reserved ahead.';
comment on column embed_queue.pace.tokens_level is 'Tokens available at level_at; below 0 when reserved ahead.';
comment on column embed_queue.pace.level_at is 'When the levels were last brought up to date.';
comment on column embed_queue.pace.paused_until is 'After a 429: nobody sends before this.';
comment on column embed_queue.pace.probe_until is 'Limits not known yet: one request is out to learn them; the others wait until it answers or this passes.';
comment on column embed_queue.pace.observed_at is 'Last response taken in; with no limits known, the provider sends no x-ratelimit headers and nothing is paced.';

-- The levels refilled to p_now, as (requests, tokens); an unknown limit refills nothing.
create function embed_queue.pace_levels(p embed_queue.pace, p_now timestamptz)
returns table (requests double precision, tokens double precision)
language sql immutable security invoker set search_path = ''
as $$
  select
    case when p.limit_requests is null then p.requests_level
         else least(p.limit_requests::double precision,
                    p.requests_level + p.limit_requests * greatest(extract(epoch from p_now - p.level_at), 0) / 60) end,
    case when p.limit_tokens is null then p.tokens_level
         else least(p.limit_tokens::double precision,
                    p.tokens_level + p.limit_tokens * greatest(extract(epoch from p_now - p.level_at), 0) / 60) end
$$;
comment on function embed_queue.pace_levels(embed_queue.pace, timestamptz) is
  'A pace row''s request and token levels refilled up to p_now (limit per minute, capped at the limit).';

create function embed_queue.pace_take(p_key text, p_tokens integer, p_max_wait_ms integer default null)
returns table (granted boolean, wait_ms integer, limit_requests integer, limit_tokens bigint)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  -- A request out to learn the limits counts as answered after this long.
  c_probe interval := interval '5 seconds';
  -- With a probe out, ask again after at most this long.
  c_probe_poll_ms double precision := 200;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v embed_queue.pace;
  v_req double precision;
  v_tok double precision;
  v_need double precision;
  v_wait double precision;
begin
  if p_tokens is null or p_tokens < 0 then
    raise exception 'embed_queue.pace_take: tokens must be 0 or more' using errcode = '22023';
  end if;
  insert into embed_queue.pace as p (key) values (p_key) on conflict (key) do nothing;
  select * into v from embed_queue.pace p where p.key = p_key for update;

  v_wait := greatest(coalesce(extract(epoch from v.paused_until - v_now) * 1000, 0), 0);

  if v.limit_tokens is null and v.limit_requests is null then
    if v.observed_at is not null then
      -- Answers came without limits: nothing to pace but a pause.
      null;
    elsif v.probe_until > v_now then
      return query select false, pg_catalog.ceil(greatest(v_wait,
        least(extract(epoch from v.probe_until - v_now) * 1000, c_probe_poll_ms)))::integer, null::integer, null::bigint;
      return;
    else
      if p_max_wait_ms is null or v_wait <= p_max_wait_ms then
        update embed_queue.pace p set probe_until = v_now + pg_catalog.make_interval(secs => v_wait / 1000) + c_probe
        where p.key = p_key;
      end if;
    end if;
    return query select p_max_wait_ms is null or v_wait <= p_max_wait_ms, pg_catalog.ceil(v_wait)::integer,
      null::integer, null::bigint;
    return;
  end if;

  select l.requests, l.tokens into v_req, v_tok from embed_queue.pace_levels(v, v_now) l;
  -- A request larger than the whole window can only go with the window full.
  v_need := least(p_tokens::double precision, coalesce(v.limit_tokens, p_tokens)::double precision);
  if v.limit_tokens is not null and v_tok < v_need then
    v_wait := greatest(v_wait, (v_need - v_tok) * 60000 / v.limit_tokens);
  end if;
  if v.limit_requests is not null and v_req < 1 then
    v_wait := greatest(v_wait, (1 - v_req) * 60000 / v.limit_requests);
  end if;

  if p_max_wait_ms is not null and v_wait > p_max_wait_ms then
    -- Too long for the caller: nothing reserved.
    return query select false, pg_catalog.ceil(v_wait)::integer, v.limit_requests, v.limit_tokens;
    return;
  end if;

  update embed_queue.pace p set
    requests_level = v_req - 1,
    tokens_level = v_tok - v_need,
    level_at = v_now
  where p.key = p_key;
  return query select true, pg_catalog.ceil(v_wait)::integer, v.limit_requests, v.limit_tokens;
end
$$;
comment on function embed_queue.pace_take(text, integer, integer) is
  'Reserves one request of p_tokens against the shared pace of p_key and says how long to wait before sending it (granted). '
  'Not granted (nothing reserved): the wait would pass p_max_wait_ms, or the limits are not known yet and another request is '
  'out to learn them; ask again after wait_ms. Returns the limits known, for sizing requests.';

create function embed_queue.pace_observe(
  p_key text,
  p_limit_requests integer,
  p_limit_tokens bigint,
  p_remaining_requests integer,
  p_remaining_tokens bigint,
  p_headers boolean default true
)
returns void
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v embed_queue.pace;
  v_req double precision;
  v_tok double precision;
begin
  if not p_headers then
    -- An answer whose headers were not read (an error): it only ends a probe.
    update embed_queue.pace p set probe_until = null where p.key = p_key and p.probe_until is not null;
    return;
  end if;
  insert into embed_queue.pace as p (key) values (p_key) on conflict (key) do nothing;
  select * into v from embed_queue.pace p where p.key = p_key for update;
  select l.requests, l.tokens into v_req, v_tok from embed_queue.pace_levels(v, v_now) l;
  -- First sight of a limit: start from what the provider says remains (else all of it).
  if v.limit_requests is null then v_req := coalesce(p_remaining_requests, p_limit_requests); end if;
  if v.limit_tokens is null then v_tok := coalesce(p_remaining_tokens, p_limit_tokens); end if;
  update embed_queue.pace p set
    limit_requests = coalesce(p_limit_requests, p.limit_requests),
    limit_tokens = coalesce(p_limit_tokens, p.limit_tokens),
    -- Our own count is kept unless the provider says less remains (another client, or a
    -- window fuller than the bucket thinks); it never raises it: in-flight reservations are
    -- not in the provider's count yet.
    requests_level = coalesce(least(v_req, p_remaining_requests), v_req, 0),
    tokens_level = coalesce(least(v_tok, p_remaining_tokens), v_tok, 0),
    level_at = v_now,
    probe_until = null,
    observed_at = v_now
  where p.key = p_key;
end
$$;
comment on function embed_queue.pace_observe(text, integer, bigint, integer, bigint, boolean) is
  'Takes in a response''s x-ratelimit-limit-* and -remaining-* (null where absent): sets the limits, lowers the levels to what '
  'remains, ends the probe. p_headers false: an answer whose headers were not read (an error), which only ends the probe.';

create function embed_queue.pace_pause(p_key text, p_ms integer default null, p_refund_tokens bigint default 0)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_ms integer;
  v embed_queue.pace;
  v_req double precision;
  v_tok double precision;
begin
  -- A 429 that names no retry-after waits settings.rate_limited_default_seconds: the one owner of that number.
  select case when p_ms is null then pg_catalog.ceil(s.rate_limited_default_seconds * 1000)::integer
              else greatest(p_ms, 0) end
    into v_ms from embed_queue.settings s;
  insert into embed_queue.pace as p (key) values (p_key) on conflict (key) do nothing;
  select * into v from embed_queue.pace p where p.key = p_key for update;
  select l.requests, l.tokens into v_req, v_tok from embed_queue.pace_levels(v, v_now) l;
  if coalesce(p_refund_tokens, 0) > 0 and (v.limit_tokens is not null or v.limit_requests is not null) then
    -- The refused request was never admitted: its reservation goes back (it is taken again
    -- when the request is sent again), or each 429 would cost a request's worth of capacity.
    v_req := v_req + 1;
    v_tok := v_tok + least(p_refund_tokens, coalesce(v.limit_tokens, p_refund_tokens));
  end if;
  update embed_queue.pace p set
    paused_until = greatest(p.paused_until, v_now + pg_catalog.make_interval(secs => v_ms / 1000.0)),
    probe_until = null,
    requests_level = v_req,
    tokens_level = v_tok,
    level_at = v_now
  where p.key = p_key;
  return v_ms;
end
$$;
comment on function embed_queue.pace_pause(text, integer, bigint) is
  'After a 429: no run sends for p_ms (null: settings.rate_limited_default_seconds) on p_key, and the refused request''s '
  'reservation (p_refund_tokens and one request) goes back. Returns the pause in ms.';

comment on column embed_queue.runs.rate_limited is 'Answers 429 the run got from the provider (each waited for and sent again, or snoozed past the budget).';

create index runs_unfinished_idx on embed_queue.runs (started_at) where finished_at is null;
comment on index embed_queue.runs_unfinished_idx is 'Runs not finished yet, for begin_run''s count of working runs.';

create function embed_queue.begin_run(p_worker text, p_trigger text)
returns table (run_id bigint, rate_limited_default_ms integer)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_settings embed_queue.settings;
  v_working integer;
begin
  select * into v_settings from embed_queue.settings s;
  if p_trigger in ('cron', 'webhook') then
    -- Transaction-scoped: released at this statement's commit, safe behind a transaction pooler.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('embed_queue.begin_run'));
    -- Working: unfinished, and holding a leased job or started within run_grace_seconds (about to
    -- claim). A run whose process died stops counting once the rescuer takes its jobs back, or
    -- at once if it held none; tick() closes its record. (Counting every run started within a
    -- lease kept runs killed with their worker blocking new ones for two minutes.)
    select pg_catalog.count(*)::integer into v_working
    from embed_queue.runs r
    where r.finished_at is null
      and (r.started_at > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => v_settings.run_grace_seconds)
           or exists (
             select 1 from public.embedding_queue q
             where q.status = 'processing' and q.locked_by = r.worker and q.locked_until > pg_catalog.now()
           ));
    if v_working >= v_settings.max_concurrent_runs then
      return query select null::bigint, pg_catalog.ceil(v_settings.rate_limited_default_seconds * 1000)::integer;
      return;
    end if;
  end if;
  return query
    select embed_queue.start_run(p_worker, p_trigger),
           pg_catalog.ceil(v_settings.rate_limited_default_seconds * 1000)::integer;
end
$$;
comment on function embed_queue.begin_run(text, text) is
  'Starts a run like start_run and hands it the settings it needs (rate_limited_default_ms). A cron or webhook run gets a '
  'null run_id ("busy": end at once, claim nothing) when settings.max_concurrent_runs runs are working.';

revoke all on embed_queue.pace from public, anon, authenticated;
grant select, insert, update on embed_queue.pace to service_role;
revoke all on function
  embed_queue.pace_levels(embed_queue.pace, timestamptz),
  embed_queue.pace_take(text, integer, integer),
  embed_queue.pace_observe(text, integer, bigint, integer, bigint, boolean),
  embed_queue.pace_pause(text, integer, bigint),
  embed_queue.begin_run(text, text)
from public, anon, authenticated;
grant execute on function
  embed_queue.pace_levels(embed_queue.pace, timestamptz),
  embed_queue.pace_take(text, integer, integer),
  embed_queue.pace_observe(text, integer, bigint, integer, bigint, boolean),
  embed_queue.pace_pause(text, integer, bigint),
  embed_queue.begin_run(text, text)
to service_role;
