-- The shared pace learns from each response how much really remains, up as well as down.
--
-- Until now pace_observe only ever lowered the levels to x-ratelimit-remaining-*: the requests in
-- flight were not in the provider's count yet, so raising to it would have counted them twice.
-- Against a provider whose window is sliding (capacity comes back when old requests leave the
-- last minute, not at a steady rate), that left the pace at the steady rate while the provider
-- had more to give, and sent too early where it had less (measured: BENCHMARKS.md 1.10).
--
-- Each reservation now moves a counter (tokens_taken, requests_taken) and pace_take hands the
-- caller the counter after its own reservation, its mark. With a response, the run passes that
-- mark back: what the provider says remains, less what was reserved after this request (by any
-- run), is the level now, whichever way that moves it. Without a mark the old rule holds.
--
--   embed_queue.pace.tokens_taken / requests_taken   the counters
--   embed_queue.pace_take(key, tokens, max_wait)     also returns tokens_mark, requests_mark
--   embed_queue.pace_observe(..., tokens_mark, requests_mark)

alter table embed_queue.pace
  add column tokens_taken bigint not null default 0,
  add column requests_taken bigint not null default 0;
comment on column embed_queue.pace.tokens_taken is
  'Tokens reserved by pace_take since the row was made (never lowered): a response''s mark is this after its own reservation.';
comment on column embed_queue.pace.requests_taken is 'Requests reserved by pace_take since the row was made, as tokens_taken.';

drop function embed_queue.pace_take(text, integer, integer);
create function embed_queue.pace_take(p_key text, p_tokens integer, p_max_wait_ms integer default null)
returns table (
  granted boolean, wait_ms integer, limit_requests integer, limit_tokens bigint, tokens_mark bigint,
  requests_mark bigint
)
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
  v_tokens_mark bigint;
  v_requests_mark bigint;
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
        least(extract(epoch from v.probe_until - v_now) * 1000, c_probe_poll_ms)))::integer, null::integer, null::bigint,
        null::bigint, null::bigint;
      return;
    else
      if p_max_wait_ms is null or v_wait <= p_max_wait_ms then
        update embed_queue.pace p set probe_until = v_now + pg_catalog.make_interval(secs => v_wait / 1000) + c_probe
        where p.key = p_key;
      end if;
    end if;
    return query select p_max_wait_ms is null or v_wait <= p_max_wait_ms, pg_catalog.ceil(v_wait)::integer,
      null::integer, null::bigint, null::bigint, null::bigint;
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
    return query select false, pg_catalog.ceil(v_wait)::integer, v.limit_requests, v.limit_tokens, null::bigint,
      null::bigint;
    return;
  end if;

  update embed_queue.pace p set
    requests_level = v_req - 1,
    tokens_level = v_tok - v_need,
    level_at = v_now,
    tokens_taken = p.tokens_taken + pg_catalog.ceil(v_need)::bigint,
    requests_taken = p.requests_taken + 1
  where p.key = p_key
  returning p.tokens_taken, p.requests_taken into v_tokens_mark, v_requests_mark;
  return query select true, pg_catalog.ceil(v_wait)::integer, v.limit_requests, v.limit_tokens, v_tokens_mark,
    v_requests_mark;
end
$$;
comment on function embed_queue.pace_take(text, integer, integer) is
  'Reserves one request of p_tokens against the shared pace of p_key and says how long to wait before sending it (granted). '
  'Not granted (nothing reserved): the wait would pass p_max_wait_ms, or the limits are not known yet and another request is '
  'out to learn them; ask again after wait_ms. Returns the limits known, for sizing requests, and (granted, limits known) the '
  'marks to pass to pace_observe with the response.';

drop function embed_queue.pace_observe(text, integer, bigint, integer, bigint, boolean);
create function embed_queue.pace_observe(
  p_key text,
  p_limit_requests integer,
  p_limit_tokens bigint,
  p_remaining_requests integer,
  p_remaining_tokens bigint,
  p_headers boolean default true,
  p_tokens_mark bigint default null,
  p_requests_mark bigint default null
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
  -- With the request's mark: what remains, less what every run reserved after it (not in the
  -- provider's count yet), up or down. Without one, the count is only ever lowered to what the
  -- provider says remains (it cannot tell what is in flight).
  v_req := case
    when p_remaining_requests is null then v_req
    when p_requests_mark is not null then p_remaining_requests - greatest(v.requests_taken - p_requests_mark, 0)
    else least(v_req, p_remaining_requests) end;
  v_tok := case
    when p_remaining_tokens is null then v_tok
    when p_tokens_mark is not null then p_remaining_tokens - greatest(v.tokens_taken - p_tokens_mark, 0)
    else least(v_tok, p_remaining_tokens) end;
  update embed_queue.pace p set
    limit_requests = coalesce(p_limit_requests, p.limit_requests),
    limit_tokens = coalesce(p_limit_tokens, p.limit_tokens),
    requests_level = coalesce(v_req, 0),
    tokens_level = coalesce(v_tok, 0),
    level_at = v_now,
    probe_until = null,
    observed_at = v_now
  where p.key = p_key;
end
$$;
comment on function embed_queue.pace_observe(text, integer, bigint, integer, bigint, boolean, bigint, bigint) is
  'Takes in a response''s x-ratelimit-limit-* and -remaining-* (null where absent): sets the limits and ends the probe. With '
  'the request''s marks (pace_take) a level becomes what remains less what was reserved after the request, up or down; '
  'without them it is only lowered to what remains. p_headers false: an answer whose headers were not read (an error), which '
  'only ends the probe.';

revoke all on function
  embed_queue.pace_take(text, integer, integer),
  embed_queue.pace_observe(text, integer, bigint, integer, bigint, boolean, bigint, bigint)
from public, anon, authenticated;
grant execute on function
  embed_queue.pace_take(text, integer, integer),
  embed_queue.pace_observe(text, integer, bigint, integer, bigint, boolean, bigint, bigint)
to service_role;
