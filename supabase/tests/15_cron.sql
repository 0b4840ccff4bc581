-- The pg_cron job: named embed-queue-tick, running embed_queue.tick() on the schedule the
-- installed pg_cron supports (seconds from 1.5, minutes before).
begin;
set local search_path = public, extensions;
select plan(7);

select is((select count(*)::integer from cron.job where jobname = 'embed-queue-tick'), 1, 'one job named embed-queue-tick');
select is((select command from cron.job where jobname = 'embed-queue-tick'), 'select embed_queue.tick()', 'it runs embed_queue.tick()');
select is(
  (select schedule from cron.job where jobname = 'embed-queue-tick'),
  (select case when string_to_array(regexp_replace(extversion, '[^0-9.].*$', ''), '.')::int[] >= array[1, 5]
               then '10 seconds' else '* * * * *' end
   from pg_extension where extname = 'pg_cron'),
  'schedule: 10 seconds on pg_cron 1.5+, every minute on older versions');
select is((select schedule from cron.job where jobname = 'embed-queue-tick'), embed_queue.tick_schedule(),
  'the schedule comes from embed_queue.tick_schedule()');

-- tick calls the function only when there is runnable work.
delete from net.http_request_queue;
update embedding_queue set run_at = now() + interval '1 hour';
select is(embed_queue.tick(), null::bigint, 'no runnable work: tick makes no call');

-- tick closes the records of runs whose process died (backdated, not waited for).
insert into embed_queue.runs (worker, trigger, started_at) values
  ('dead-run', 'webhook', now() - interval '20 minutes'),
  ('live-run', 'webhook', now() - interval '1 minute');
select embed_queue.tick();
select alike((select error from embed_queue.runs where worker = 'dead-run' and finished_at is not null), 'abandoned:%',
  'a run started 20 minutes ago and never finished is closed as abandoned');
select is((select finished_at from embed_queue.runs where worker = 'live-run'), null,
  'a run that may still be going is left alone');

select * from finish();
rollback;
