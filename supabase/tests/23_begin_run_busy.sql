-- begin_run bounds the background runs working at once by settings.max_concurrent_runs: a cron
-- or webhook run over the bound gets no run id; manual runs are not refused but count; a run
-- that died stops counting once it holds no lease and started longer ago than run_grace_seconds.
begin;
set local search_path = public, extensions;
select plan(9);

\ir helpers/rows.sql
select pg_temp.reset();
select pg_temp.new_job('pending', 'A job to hold');

update embed_queue.runs set finished_at = clock_timestamp() where finished_at is null;
update embed_queue.settings set max_concurrent_runs = 2, rate_limited_default_seconds = 10;

select results_eq($$select run_id is not null, rate_limited_default_ms from embed_queue.begin_run('w1', 'cron')$$,
  $$values (true, 10000)$$, 'a run starts and is told the default wait after a 429');
select ok((select run_id is not null from embed_queue.begin_run('w2', 'webhook')), 'a second one');
select ok((select run_id is null from embed_queue.begin_run('w3', 'cron')), 'a third cron run is busy');
select is((select count(*)::int from embed_queue.runs where worker = 'w3'), 0, 'and leaves no record');
select ok((select run_id is not null from embed_queue.begin_run('w4', 'manual')), 'a manual run is not refused');

select embed_queue.finish_run(id, '{}') from embed_queue.runs where worker in ('w2', 'w4');
select ok((select run_id is not null from embed_queue.begin_run('w5', 'webhook')), 'finished runs do not count');

-- w1 and w5 work. w1's process died long ago and holds nothing: it stops counting.
update embed_queue.runs set started_at = now() - interval '1 hour' where worker = 'w1';
select ok((select run_id is not null from embed_queue.begin_run('w6', 'cron')), 'a dead run holding no lease does not count');

-- w5 started long ago too, but still holds a leased job: it counts.
update embed_queue.runs set started_at = now() - interval '1 hour' where worker = 'w5';
select count(*) from embed_queue.claim('w5', 1);
select ok((select run_id is null from embed_queue.begin_run('w7', 'webhook')), 'a long run holding a lease still counts');

-- A run killed with its worker a minute ago, holding nothing, no longer blocks new runs.
update embed_queue.runs set finished_at = clock_timestamp() where finished_at is null;
select embed_queue.begin_run('k1', 'cron');
select embed_queue.begin_run('k2', 'cron');
update embed_queue.runs set started_at = now() - interval '1 minute' where worker in ('k1', 'k2');
select ok((select run_id is not null from embed_queue.begin_run('w8', 'webhook')),
  'runs that died holding nothing stop counting after run_grace_seconds, not after a whole lease');

select * from finish();
rollback;
