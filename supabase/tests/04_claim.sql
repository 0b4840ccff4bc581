-- claim: leases runnable jobs oldest first; two claims at once never get the same job.
begin;
set local search_path = public, extensions;
select plan(12);

\ir helpers/rows.sql
select pg_temp.reset();
select count(*) from pg_temp.new_sessions(12, 'Claim session');
select count(*) from pg_temp.new_summaries(4, 'Claim summary');

-- Two claims, one after the other.
create temp table first_claim as select * from embed_queue.claim('worker-a', 5);
create temp table second_claim as select * from embed_queue.claim('worker-b', 5);

select is((select count(*)::integer from first_claim), 5, 'first claim gets 5 jobs');
select is((select count(*)::integer from second_claim), 5, 'second claim gets 5 jobs');
select is_empty($$select id from first_claim intersect select id from second_claim$$, 'the two claims are disjoint');
select results_eq(
  $$select status, locked_by, attempts, locked_until = now() + interval '120 seconds' from embedding_queue
    where id in (select id from first_claim) group by 1, 2, 3, 4$$,
  $$values ('processing'::text, 'worker-a'::text, 1, true)$$,
  'claimed jobs are processing, held by the worker, attempt counted, leased for settings.lease_seconds');
select ok(
  (select bool_and(c.content_hash = encode(sha256(convert_to(c.content, 'UTF8')), 'hex')
                   and c.content = s.title and c.dimensions = 1536 and c.max_attempts = 5)
   from first_claim c join public.sessions s on s.id::text = c.record_id),
  'claim returns the current content, its hex sha256 and the target''s dimensions');
select ok(
  (select max(q.run_at) <= min(r.run_at) from embedding_queue q, embedding_queue r
   where q.id in (select id from first_claim) and r.status = 'pending'),
  'oldest jobs first');

-- Lease length and table filter.
select ok(
  (select bool_and(c.table_name = 'summaries') and count(*) = 3
   from embed_queue.claim('worker-c', 3, 30, array['summaries']) c),
  'p_tables limits the claim to those tables');
select ok(
  (select bool_and(locked_until = now() + interval '30 seconds') from embedding_queue where locked_by = 'worker-c'),
  'p_lease_seconds sets the lease');

-- Jobs waiting for their run_at are not runnable yet.
update embedding_queue set run_at = now() + interval '1 hour' where status = 'pending';
select is((select count(*)::integer from embed_queue.claim('worker-d', 10)), 0, 'jobs whose run_at is in the future are not claimed');
update embedding_queue set run_at = now() - interval '1 minute' where status = 'pending';

select throws_ok($$select * from embed_queue.claim('worker-e', 0)$$, '22023', null, 'a limit below 1 is refused');

-- A malformed record_id names no row: the job goes away instead of breaking the claim.
insert into embedding_queue (table_name, record_id, embedding_column) values ('sessions', 'not-a-uuid', 'title_embedding');
select lives_ok($$select * from embed_queue.claim('worker-f', 100)$$, 'claim survives a malformed record_id');
select is((select count(*)::integer from embedding_queue where record_id = 'not-a-uuid'), 0, 'and drops that job');

select * from finish();
rollback;
