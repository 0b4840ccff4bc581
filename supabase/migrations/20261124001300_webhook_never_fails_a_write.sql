-- The webhook runs inside the writer's transaction (e.g. a user inserting a session). If the
-- call itself raised (pg_net refusing a misconfigured URL, say), that write failed with it.
-- Now a failed call is a warning: the write goes through and pg_cron picks the work up.

create or replace function embed_queue.poke()
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
