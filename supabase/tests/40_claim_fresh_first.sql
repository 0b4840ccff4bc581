-- Fresh first: a row a user just wrote is claimed before bulk work (backfill, retries), bulk work
-- keeps settings.bulk_min_share of every claim and takes all of it while no fresh job waits.
-- Builds its own rows.
begin;
set local search_path = public, extensions;
select plan(9);

delete from public.embedding_queue;
set local embed_queue.poke_skip_until = 'infinity';
update embed_queue.settings set bulk_min_share = 0.1;
insert into auth.users (id, email) values
  ('f4e50000-0000-4000-8000-00000000000a', 'bulk-owner@example.com'),
  ('f4e50000-0000-4000-8000-00000000000b', 'fresh-writer@example.com');

-- 40 rows queued by a backfill (bulk), an hour old.
insert into public.sessions (user_id, title)
select 'f4e50000-0000-4000-8000-00000000000a', 'backfilled ' || g from generate_series(1, 40) g;
delete from public.embedding_queue;
select embed_queue.backfill_page('sessions', null, 1000);
update public.embedding_queue set run_at = now() - interval '1 hour', created_at = now() - interval '1 hour';
delete from public.embedding_queue where user_id is distinct from 'f4e50000-0000-4000-8000-00000000000a';
select is((select count(*)::integer from embedding_queue where lane = 'bulk' and status = 'pending'), 40,
  'a backfill queues bulk jobs');

-- A user writes three rows through the Data API.
set local role authenticated;
set local request.jwt.claims = '{"sub": "f4e50000-0000-4000-8000-00000000000b", "role": "authenticated"}';
insert into public.sessions (user_id, title)
select 'f4e50000-0000-4000-8000-00000000000b', 'just written ' || g from generate_series(1, 3) g;
reset role;
select is((select count(*)::integer from embedding_queue where lane = 'fresh' and status = 'pending'), 3,
  'a row written by a user is a fresh job');

create temp table c1 as select * from embed_queue.claim('fresh-1', 5);
select is(
  (select count(*)::integer from c1 join public.sessions s on s.id::text = c1.record_id
   where s.user_id = 'f4e50000-0000-4000-8000-00000000000b'), 3,
  'the fresh rows are claimed before the older bulk work');
select is((select count(*)::integer from c1), 5, 'bulk work fills the rest of the claim');

-- Fresh work waiting beyond one claim: bulk still gets floor(limit * bulk_min_share).
set local role authenticated;
insert into public.sessions (user_id, title)
select 'f4e50000-0000-4000-8000-00000000000b', 'more ' || g from generate_series(1, 30) g;
reset role;
create temp table c2 as select q.lane from embed_queue.claim('fresh-2', 10) c join embedding_queue q on q.id = c.id;
select results_eq($$select lane, count(*)::integer from c2 group by lane order by lane$$,
  $$values ('bulk'::text, 1), ('fresh'::text, 9)$$,
  'with fresh work waiting, bulk work keeps its share of the claim and is not starved');

-- No bulk work: fresh work takes the whole claim.
update embedding_queue set run_at = now() + interval '1 day' where lane = 'bulk' and status = 'pending';
select is((select count(*)::integer from embed_queue.claim('fresh-3', 10)), 10,
  'with no bulk work runnable, fresh work takes the whole claim');

-- No fresh work: bulk work takes the whole claim.
update embedding_queue set run_at = now() - interval '1 hour' where lane = 'bulk' and status = 'pending';
update embedding_queue set run_at = now() + interval '1 day' where lane = 'fresh' and status = 'pending';
select results_eq($$select q.lane, count(*)::integer from embed_queue.claim('fresh-4', 10) c
                    join embedding_queue q on q.id = c.id group by q.lane$$,
  $$values ('bulk'::text, 10)$$, 'while fresh work is idle, bulk work gets the whole claim');

-- An old retry is bulk work: a fresh job whose attempt failed, and an operator's retry.
create temp table failed as select * from embed_queue.fail('fresh-3',
  (select jsonb_agg(jsonb_build_object('id', id, 'kind', 'retryable', 'error', 'boom'))
   from embedding_queue where locked_by = 'fresh-3'));
select is((select count(*)::integer from embedding_queue where lane = 'fresh' and status = 'pending' and attempts > 0), 0,
  'a job whose attempt failed goes back as bulk work');
create temp table one as select min(id) as id from embedding_queue where lane = 'fresh' and status = 'pending';
update embedding_queue set status = 'failed' where id = (select id from one);
create temp table retried as select embed_queue.retry();
select is((select lane from embedding_queue where id = (select id from one)), 'bulk', 'a job the operator retries is bulk work');

select * from finish();
rollback;
