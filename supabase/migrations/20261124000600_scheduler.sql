-- How the function gets called: pg_cron every tick (the safety net) and a database webhook
-- when rows become runnable (the fast path). Both go through embed_queue.invoke(), which
-- posts to the function with pg_net, using the URL and Bearer secret kept in Vault.

-- What keeps invoke() from calling the function, or null. An empty or short secret is treated
-- like a missing one: the function refuses a queue secret under 32 characters
-- (supabase/functions/embed-queue/auth.ts, MIN_QUEUE_SECRET_CHARS), so sending it would only
-- turn every cron and webhook call into a silent 401.
create function embed_queue.invoke_problem()
returns text
language sql stable security invoker set search_path = ''
as $$
  select case
    when u.v is null or u.v = '' then
      'the Vault secret embed_queue_url is missing or empty: the function is never called'
    when k.v is null then
      'the Vault secret embed_queue_secret is missing: the function is never called'
    when k.v = '' then
      'the Vault secret embed_queue_secret is empty: the function is never called (it would refuse the call)'
    when pg_catalog.length(k.v) < 32 then
      'the Vault secret embed_queue_secret is shorter than 32 characters: the function would refuse it, so it is never called'
  end
  from (select (select ds.decrypted_secret from vault.decrypted_secrets ds where ds.name = 'embed_queue_url' limit 1) as v) u,
       (select (select ds.decrypted_secret from vault.decrypted_secrets ds where ds.name = 'embed_queue_secret' limit 1) as v) k
$$;
comment on function embed_queue.invoke_problem() is
  'Why embed_queue.invoke() would not call the function (Vault URL or secret missing, empty, or a secret under 32 characters), or null. '
  'Shown by status and doctor.';

create function embed_queue.invoke(p_trigger text)
returns bigint
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_url text;
  v_secret text;
  v_timeout integer;
  v_problem text := embed_queue.invoke_problem();
begin
  if v_problem is not null then
    raise warning 'embed_queue.invoke: %', v_problem
      using hint = 'select vault.create_secret(''https://<project>.supabase.co/functions/v1/embed-queue'', ''embed_queue_url''); '
                   'select vault.create_secret(''<a random secret of 32 characters or more>'', ''embed_queue_secret''); '
                   '(vault.update_secret for one that exists)';
    -- In the run record too (at most once an hour), where status shows the last runs.
    insert into embed_queue.runs (worker, trigger, finished_at, error)
    select 'invoke', case when p_trigger in ('cron', 'webhook', 'manual') then p_trigger else 'cron' end,
           pg_catalog.clock_timestamp(), 'not called: ' || v_problem
    where not exists (
      select 1 from embed_queue.runs r
      where r.worker = 'invoke' and r.error = 'not called: ' || v_problem and r.started_at > pg_catalog.now() - interval '1 hour'
    );
    return null;
  end if;

  select ds.decrypted_secret into v_url from vault.decrypted_secrets ds where ds.name = 'embed_queue_url' limit 1;
  select ds.decrypted_secret into v_secret from vault.decrypted_secrets ds where ds.name = 'embed_queue_secret' limit 1;
  select s.invoke_timeout_ms into v_timeout from embed_queue.settings s;

  return net.http_post(
    url := v_url,
    body := pg_catalog.jsonb_build_object('trigger', p_trigger),
    headers := pg_catalog.jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || v_secret
    ),
    timeout_milliseconds := v_timeout
  );
end
$$;
comment on function embed_queue.invoke(text) is
  'Calls the embed-queue function (pg_net, sent after commit) with the Vault URL and Bearer secret; body {"trigger": p_trigger}. '
  'Returns the pg_net request id, or null with a warning (and a run record, at most hourly) when embed_queue.invoke_problem() '
  'says why not: secrets missing, empty, or a secret under 32 characters. Nothing waits for the answer.';

-- Vectors of unknown origin (completed jobs with no model: written before embed_queue, e.g. by
-- the guide's script) are trusted by default. With settings.legacy_vectors = 'reembed' they are
-- bulk work at the lowest priority: tick() queues a page of them only when no job is pending or
-- processing, so fresh work never waits behind them.
create function embed_queue.queue_legacy(p_limit integer default 100)
returns integer
language sql volatile security invoker set search_path = ''
as $$
  -- status = 'pending' by a caller: the manual-reset trigger gives each job a fresh start.
  with queued as (
    update public.embedding_queue q set status = 'pending', error_message = null
    where q.id in (
      select l.id from public.embedding_queue l
      where l.status = 'completed' and l.model is null
      order by l.id
      limit greatest(coalesce(p_limit, 100), 1)
    )
    returning 1
  )
  select pg_catalog.count(*)::integer from queued
$$;
comment on function embed_queue.queue_legacy(integer) is
  'Queues up to p_limit completed jobs whose vector is of unknown origin (no model recorded) to be embedded again. Returns how many.';

create function embed_queue.housekeep(p_limit integer default 1000)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_runs integer;
  v_cron integer;
begin
  -- A page at a time, so one tick never holds long locks whatever the backlog.
  with old as (
    select r.id from embed_queue.runs r, embed_queue.settings s
    where r.finished_at < pg_catalog.now() - s.runs_retention
    order by r.id limit p_limit
  ), gone as (
    delete from embed_queue.runs r using old where r.id = old.id returning 1
  )
  select pg_catalog.count(*)::integer into v_runs from gone;

  with old as (
    select d.runid from cron.job_run_details d, embed_queue.settings s
    where d.jobid = (select j.jobid from cron.job j where j.jobname = 'embed-queue-tick')
      and d.end_time < pg_catalog.now() - s.cron_history_retention
    order by d.runid limit p_limit
  ), gone as (
    delete from cron.job_run_details d using old where d.runid = old.runid returning 1
  )
  select pg_catalog.count(*)::integer into v_cron from gone;
  return v_runs + v_cron;
end
$$;
comment on function embed_queue.housekeep(integer) is
  'Called by tick(): deletes up to p_limit run records older than settings.runs_retention and up to p_limit of pg_cron''s '
  'history rows of job embed-queue-tick older than settings.cron_history_retention. Returns how many rows went.';

-- The spend ledger: each claim adds a row per user; tick() sums each day's rows per user into
-- one (rows of claims not yet committed are not seen, so not touched) and drops days older
-- than 35 days.
create function embed_queue.compact_spend()
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_count integer;
begin
  delete from embed_queue.spend sp where sp.day < (pg_catalog.now() at time zone 'UTC')::date - 35;
  with gone as (
    delete from embed_queue.spend sp
    where sp.day >= (pg_catalog.now() at time zone 'UTC')::date - 1
      and (sp.day, sp.fair_key) in (
        select l.day, l.fair_key from embed_queue.spend l
        where l.day >= (pg_catalog.now() at time zone 'UTC')::date - 1
        group by l.day, l.fair_key having pg_catalog.count(*) > 1)
    returning sp.day, sp.fair_key, sp.tokens
  )
  insert into embed_queue.spend (day, fair_key, tokens)
  select g.day, g.fair_key, pg_catalog.sum(g.tokens) from gone g group by g.day, g.fair_key;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function embed_queue.compact_spend() is
  'Sums the spend ledger''s rows of today and yesterday into one per user and day; drops days older than 35. Run by tick().';

create function embed_queue.tick()
returns bigint
language plpgsql volatile security invoker set search_path = ''
as $$
begin
  perform embed_queue.rescue();
  perform embed_queue.housekeep();
  perform embed_queue.compact_spend();
  -- A run whose process died never finishes its record: close it once no run can still be
  -- alive (Supabase ends a request after 400 s at most).
  update embed_queue.runs r set finished_at = pg_catalog.now(),
    error = coalesce(r.error, 'abandoned: the function process ended before the run finished (see function logs)')
  where r.finished_at is null and r.started_at < pg_catalog.now() - interval '15 minutes';
  -- A model change whose new model covers every live row switches (20261124001400_model_change.sql).
  perform embed_queue.advance_model_changes();
  if (select s.legacy_vectors from embed_queue.settings s) = 'reembed'
     and not exists (select 1 from public.embedding_queue q where q.status in ('pending', 'processing')) then
    perform embed_queue.queue_legacy(100);
  end if;
  -- Runnable work, or an open Batch API batch with a step due (embed_queue.batch_due, in the
  -- batches migration: each run polls open batches first).
  if exists (
    select 1 from public.embedding_queue q
    where q.status = 'pending' and q.run_at <= pg_catalog.now()
  ) or embed_queue.batch_due() then
    return embed_queue.invoke('cron');
  end if;
  return null;
end
$$;
comment on function embed_queue.tick() is
  'Run by pg_cron (job embed-queue-tick): takes back expired leases, deletes old run records and cron history (housekeep), closes the records of runs whose process died, '
  'switches a model change whose new model covers every live row, queues a page of vectors of unknown origin when settings.legacy_vectors = reembed and nothing else is to do, '
  'then calls the function if runnable work exists or an open batch has a step due. Returns the pg_net request id or null.';

create function embed_queue.tick_schedule()
returns text
language sql stable security invoker set search_path = ''
as $$
  -- pg_cron 1.5 and later take second schedules; 1.4 (Debian bookworm) only cron syntax.
  select case
    when pg_catalog.string_to_array(pg_catalog.regexp_replace(e.extversion, '[^0-9.].*$', ''), '.')::integer[]
         >= array[1, 5]
      then s.tick_seconds || ' seconds'
    else '* * * * *'
  end
  from pg_catalog.pg_extension e, embed_queue.settings s
  where e.extname = 'pg_cron'
$$;
comment on function embed_queue.tick_schedule() is
  'The schedule of job embed-queue-tick: every settings.tick_seconds seconds where pg_cron has second schedules (1.5+), else every minute.';

select cron.schedule('embed-queue-tick', embed_queue.tick_schedule(), 'select embed_queue.tick()');

-- The webhook: a statement that leaves runnable pending jobs calls the function, at most once
-- per transaction (all of a transaction's calls leave together at commit, so one is enough;
-- remembered in the transaction-local setting embed_queue.poke_skip_until) and at most once per
-- settings.webhook_min_interval_ms across all sessions. A failing call is only a warning: a
-- user's write never fails because the function could not be called; pg_cron picks the work up.
create table embed_queue.webhook_state (
  id boolean primary key default true check (id),
  last_poke_at timestamptz,
  pokes bigint not null default 0
);
insert into embed_queue.webhook_state default values;

comment on table embed_queue.webhook_state is
  'One row: when the webhook last called the function. Updated under a row lock so concurrent statements call once.';
comment on column embed_queue.webhook_state.pokes is 'Calls made by the webhook so far.';

create function embed_queue.take_poke_slot()
returns boolean
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_interval interval;
begin
  select s.webhook_min_interval_ms * interval '1 millisecond' into v_interval from embed_queue.settings s;

  -- Another transaction holding the row is calling the function itself: nothing to do, and
  -- never wait for it (it may be a long transaction).
  perform 1 from embed_queue.webhook_state w where w.id for update skip locked;
  if not found then
    return false;
  end if;

  update embed_queue.webhook_state w set
    last_poke_at = pg_catalog.clock_timestamp(),
    pokes = w.pokes + 1
  where w.id
    and (w.last_poke_at is null or w.last_poke_at <= pg_catalog.clock_timestamp() - v_interval);
  return found;
exception
  when serialization_failure or lock_not_available then
    -- repeatable read or serializable caller racing another poke: that one calls
    return false;
end
$$;
comment on function embed_queue.take_poke_slot() is
  'True when this transaction may call the function now: the last call was longer ago than webhook_min_interval_ms and no other transaction is calling.';

create function embed_queue.poke()
returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_skip_until text := pg_catalog.current_setting('embed_queue.poke_skip_until', true);
  v_interval interval;
  v_last timestamptz;
begin
  if v_skip_until is not null and v_skip_until <> ''
     and v_skip_until::timestamptz > pg_catalog.clock_timestamp() then
    return null;
  end if;
  if coalesce(pg_catalog.current_setting('embed_queue.internal', true), '') = 'on' then
    return null;
  end if;
  if not exists (select 1 from new_rows r where r.status = 'pending' and r.run_at <= pg_catalog.now()) then
    return null;
  end if;

  select s.webhook_min_interval_ms * interval '1 millisecond' into v_interval from embed_queue.settings s;
  select w.last_poke_at into v_last from embed_queue.webhook_state w where w.id;
  if v_last is not null and v_last > pg_catalog.clock_timestamp() - v_interval then
    return null;
  end if;

  if embed_queue.take_poke_slot() then
    begin
      perform embed_queue.invoke('webhook');
    exception
      when others then
        raise warning 'embed_queue webhook: the function could not be called (%); pg_cron will pick the work up', sqlerrm;
    end;
    perform pg_catalog.set_config('embed_queue.poke_skip_until', 'infinity', true);
  else
    perform pg_catalog.set_config('embed_queue.poke_skip_until', (pg_catalog.clock_timestamp() + v_interval)::text, true);
  end if;
  return null;
end
$$;
comment on function embed_queue.poke() is
  'Statement trigger (webhook) on embedding_queue: calls the function when the statement left runnable pending jobs, '
  'at most once per transaction and once per webhook_min_interval_ms overall; the worker API''s own updates never call; '
  'a failing call is a warning, never the writer''s error.';

-- Transition tables need one trigger per event.
create trigger embedding_queue_poke_insert after insert on public.embedding_queue
  referencing new table as new_rows
  for each statement execute function embed_queue.poke();
create trigger embedding_queue_poke_update after update on public.embedding_queue
  referencing new table as new_rows
  for each statement execute function embed_queue.poke();

revoke all on all functions in schema embed_queue from public, anon, authenticated;
grant execute on function embed_queue.invoke(text), embed_queue.invoke_problem(), embed_queue.tick(), embed_queue.tick_schedule(),
  embed_queue.compact_spend(),
  embed_queue.queue_legacy(integer) to service_role;
