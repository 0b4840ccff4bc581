-- fail: rate_limited refunds the attempt, retryable backs off (capped, jittered) until the
-- last attempt fails the job, permanent fails it at once.
begin;
set local search_path = public, extensions;
select plan(16);

\ir helpers/rows.sql
select pg_temp.reset();
select count(*) from pg_temp.new_sessions(6, 'Failing session');

create temp table held as select * from embed_queue.claim('w', 4, null, array['sessions']);
create temp table ids as select row_number() over (order by id) as n, id from held;

select results_eq(
  $$select id, status from embed_queue.fail('w', jsonb_build_array(
      jsonb_build_object('id', (select id from ids where n = 1), 'kind', 'rate_limited', 'error', '429 Too Many Requests', 'retry_after_ms', 1500),
      jsonb_build_object('id', (select id from ids where n = 2), 'kind', 'rate_limited', 'error', '429 Too Many Requests'),
      jsonb_build_object('id', (select id from ids where n = 3), 'kind', 'retryable', 'error', '503 Service Unavailable'),
      jsonb_build_object('id', (select id from ids where n = 4), 'kind', 'permanent', 'error', repeat('x', 600))))$$,
  $$select id, case when n = 4 then 'failed' else 'pending' end from ids order by id$$,
  'one statement records the batch; returns each job''s new status');

select results_eq(
  $$select attempts, run_at = now() + interval '1500 milliseconds', error_message, locked_by from embedding_queue
    where id = (select id from ids where n = 1)$$,
  $$values (0, true, '429 Too Many Requests'::text, null::text)$$,
  'rate_limited: attempt refunded, run_at after retry_after_ms');
select ok(
  (select run_at = now() + interval '10 seconds' from embedding_queue where id = (select id from ids where n = 2)),
  'rate_limited without retry_after: settings.rate_limited_default_seconds');
select ok(
  (select attempts = 1 and run_at >= now() + interval '5 seconds' and run_at <= now() + interval '10 seconds'
   from embedding_queue where id = (select id from ids where n = 3)),
  'retryable: attempt kept, backoff between half and all of the base delay');
select results_eq(
  $$select status, length(error_message) from embedding_queue where id = (select id from ids where n = 4)$$,
  $$values ('failed'::text, 500)$$,
  'permanent: failed at once; the error is cut to 500 characters');

-- The backoff grows, is capped and jittered.
select ok((select bool_and(embed_queue.backoff_delay(1) between interval '5 seconds' and interval '10 seconds') from generate_series(1, 50)),
  'backoff_delay(1) in [5 s, 10 s]');
select ok((select bool_and(embed_queue.backoff_delay(4) between interval '40 seconds' and interval '80 seconds') from generate_series(1, 50)),
  'backoff_delay(4) in [40 s, 80 s]');
select ok((select bool_and(embed_queue.backoff_delay(30) between interval '1800 seconds' and interval '3600 seconds') from generate_series(1, 50)),
  'backoff_delay(30) is capped at settings.backoff_max_seconds');
select ok((select count(distinct embed_queue.backoff_delay(3)) > 1 from generate_series(1, 20)), 'backoff is jittered');
select ok((select embed_queue.backoff_delay(100000) <= interval '3600 seconds'), 'huge attempt counts do not overflow');

-- The last attempt: retryable becomes failed.
update embedding_queue set run_at = now() - interval '1 second' where id = (select id from ids where n = 3);
update embedding_queue set attempts = max_attempts - 1 where id = (select id from ids where n = 3);
select is((select attempts from embed_queue.claim('w', 100, null, array['sessions']) c where c.id = (select id from ids where n = 3)),
  5, 'the fifth attempt is claimed');
select results_eq(
  $$select status from embed_queue.fail('w', jsonb_build_array(
      jsonb_build_object('id', (select id from ids where n = 3), 'kind', 'retryable', 'error', '503 Service Unavailable')))$$,
  $$values ('failed'::text)$$,
  'retryable on the last attempt: failed');
select ok(
  (select run_at <= now() from embedding_queue where id = (select id from ids where n = 3)),
  'a failed job is not scheduled again');

-- Only jobs held by the worker are touched.
select is_empty(
  $$select * from embed_queue.fail('someone-else', jsonb_build_array(
      jsonb_build_object('id', (select id from ids where n = 1), 'kind', 'permanent', 'error', 'nope')))$$,
  'another worker cannot fail a job it does not hold');
select throws_ok(
  $$select * from embed_queue.fail('w', '[{"id": 1, "kind": "sometimes", "error": "?"}]')$$,
  '22023', null, 'an unknown kind is refused');

-- fail's own updates are the API's: attempts are not reset by the manual-reset trigger.
select is((select attempts from embedding_queue where id = (select id from ids where n = 3)), 5,
  'attempts survive the API putting a job to pending or failed');

select * from finish();
rollback;
