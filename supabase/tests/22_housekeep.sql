-- Housekeeping (embed_queue.housekeep(), called by tick()): old run records and pg_cron's history
-- of the project's job go, a page at a time; recent ones, unfinished runs and other jobs' history stay.
begin;
select plan(7);

delete from embed_queue.runs;
insert into embed_queue.runs (worker, trigger, started_at, finished_at) values
  ('old-1', 'cron', now() - interval '9 days', now() - interval '9 days'),
  ('old-2', 'cron', now() - interval '8 days', now() - interval '8 days'),
  ('recent', 'cron', now() - interval '1 day', now() - interval '1 day'),
  ('unfinished', 'manual', now() - interval '30 days', null);

insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
select j.jobid, 900000 + row_number() over (), 1, 'postgres', 'postgres', j.command, 'succeeded', '1 row', t, t
from cron.job j, (values (now() - interval '2 days'), (now() - interval '3 days'), (now() - interval '1 minute')) v (t)
where j.jobname = 'embed-queue-tick';
insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
values (987654, 900100, 1, 'postgres', 'postgres', 'select 1', 'succeeded', '1 row',
        now() - interval '5 days', now() - interval '5 days');

select is(embed_queue.housekeep(1), 2, 'one page of each: a run record and a cron history row');
select is(embed_queue.housekeep(), 2, 'then the rest');
select is(embed_queue.housekeep(), 0, 'nothing left to delete');
select results_eq($$select worker from embed_queue.runs order by worker$$, $$values ('recent'), ('unfinished')$$,
  'recent and unfinished run records stay');
-- Only the rows made here: on a live stack pg_cron may record real runs of the tick meanwhile.
select is((select count(*)::integer from cron.job_run_details d join cron.job j using (jobid)
           where j.jobname = 'embed-queue-tick' and d.runid between 900001 and 900099),
  1, 'the job''s history of the last day stays');
select is((select count(*)::integer from cron.job_run_details where jobid = 987654), 1, 'other jobs'' history is not ours to delete');
select matches(pg_get_functiondef('embed_queue.tick()'::regprocedure), 'embed_queue\.housekeep\(\)', 'tick() calls it');

select * from finish();
rollback;
