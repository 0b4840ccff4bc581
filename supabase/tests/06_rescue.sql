-- rescue: a job whose lease expired (its worker died) comes back; after its last attempt it fails.
begin;
set local search_path = public, extensions;
select plan(10);

\ir helpers/rows.sql
select pg_temp.reset();
select count(*) from pg_temp.new_sessions(4, 'Rescue session');
select count(*) from pg_temp.new_summaries(2, 'Rescue summary');

create temp table held as select * from embed_queue.claim('dead-worker', 3, null, array['sessions']);

select is(embed_queue.rescue(), 0, 'nothing to rescue while leases run');

-- Backdate: the worker died two minutes after its lease ended.
update embedding_queue set locked_until = now() - interval '2 minutes' where locked_by = 'dead-worker';
-- One of them was on its last attempt.
update embedding_queue set attempts = max_attempts
where id = (select min(id) from held);

select is(embed_queue.rescue(), 3, 'rescue takes back the three expired leases');
select results_eq(
  $$select status, locked_by, locked_until, attempts, error_message from embedding_queue
    where id in (select id from held) and id <> (select min(id) from held) group by 1, 2, 3, 4, 5$$,
  $$values ('pending'::text, null::text, null::timestamptz, 1, 'lease expired (attempt 1 of 5)'::text)$$,
  'expired jobs are pending again, lease cleared, attempt kept');
select ok(
  (select bool_and(run_at > now() and run_at <= now() + interval '10 seconds') from embedding_queue
   where id in (select id from held) and id <> (select min(id) from held)),
  'with a backoff: first retry within settings.backoff_base_seconds');
select results_eq(
  $$select status, error_message from embedding_queue where id = (select min(id) from held)$$,
  $$values ('failed'::text, 'lease expired 5 times: the function may be crashing on this input; see function logs'::text)$$,
  'a job whose attempts are spent fails, saying why');

-- The claim rescues first (the rescued jobs then wait for their backoff).
create temp table held2 as select * from embed_queue.claim('dying-worker', 2, null, array['summaries']);
update embedding_queue set locked_until = now() - interval '1 second' where locked_by = 'dying-worker';
select is(
  (select count(*)::integer from embed_queue.claim('new-worker', 100, null, array['summaries']) c where c.id in (select id from held2)),
  0, 'claim rescues expired leases first; rescued jobs wait for their backoff');
update embedding_queue set run_at = now() - interval '1 second' where id in (select id from held2);
select ok(
  (select count(*) = 2 from embed_queue.claim('newer-worker', 100, null, array['summaries']) c
   where c.id in (select id from held2) and c.attempts = 2),
  'after the backoff another worker gets them, second attempt');

-- tick() rescues too.
update embedding_queue set locked_until = now() - interval '1 second' where locked_by in ('new-worker', 'newer-worker');
select lives_ok($$select embed_queue.tick()$$, 'tick runs');
select is((select count(*)::integer from embedding_queue where locked_by in ('new-worker', 'newer-worker')), 0, 'tick rescued the expired leases');

-- A held job with a running lease is not touched.
create temp table held3 as select * from embed_queue.claim('live-worker', 1, null, array['sessions']);
select is(embed_queue.rescue(), 0, 'live leases are left alone');

select * from finish();
rollback;
