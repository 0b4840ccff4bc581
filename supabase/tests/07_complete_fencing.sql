-- complete: a vector is written only for the content it was made from, by the worker holding the job.
begin;
set local search_path = public, extensions;
select plan(17);

\ir helpers/rows.sql
select pg_temp.reset();
select count(*) from pg_temp.new_sessions(8, 'Fencing session');
select count(*) from pg_temp.new_summaries(4, 'Fencing summary');

create function pg_temp.vec(x float8) returns text language sql as $$
  select '[' || array_to_string(array_fill(x, array[1536]), ',') || ']'
$$;

-- The normal case: written, job completed with model, dimensions, tokens.
create temp table j1 as select * from embed_queue.claim('w1', 1, null, array['sessions']);
select results_eq(
  $$select c.id, c.outcome from j1, embed_queue.complete('w1', array[j1.id], array[j1.content_hash], array[pg_temp.vec(0.1)],
      array[17], array[true], 'text-embedding-3-small', 1536) c$$,
  $$select id, 'completed'::text from j1$$,
  'held job with matching content: completed');
select ok((select s.title_embedding is not null from public.sessions s, j1 where s.id::text = j1.record_id), 'the vector is written');
select results_eq(
  $$select status, model, dimensions, tokens, truncated, locked_by, completed_at = now(), error_message
    from embedding_queue where id = (select id from j1)$$,
  $$values ('completed'::text, 'text-embedding-3-small'::text, 1536, 17, true, null::text, true, null::text)$$,
  'job completed: model, dimensions, tokens, truncated recorded, lease cleared');

-- Content changed while the run was embedding: the job was reset by the trigger; the late
-- completion writes nothing ('lost').
create temp table j2 as select * from embed_queue.claim('w1', 1, null, array['sessions']);
update public.sessions s set title = 'Renamed while embedding' from j2 where s.id::text = j2.record_id;
select results_eq(
  $$select c.outcome from j2, embed_queue.complete('w1', array[j2.id], array[j2.content_hash], array[pg_temp.vec(0.2)],
      array[5], array[false], 'text-embedding-3-small', 1536) c$$,
  $$values ('lost'::text)$$,
  'completion after a content change: lost');
select ok((select s.title_embedding is null from public.sessions s, j2 where s.id::text = j2.record_id), 'no stale vector written');
select results_eq(
  $$select status, content, attempts from embedding_queue where id = (select id from j2)$$,
  $$values ('pending'::text, 'Renamed while embedding'::text, 0)$$,
  'the job waits to embed the new content');

-- Content changed without the triggers (e.g. a bulk load with triggers off): the job is still
-- held, but the row no longer hashes to what was embedded ('stale').
create temp table j3 as select * from embed_queue.claim('w1', 1, null, array['sessions']);
set local session_replication_role = replica;
update public.sessions s set title = 'Changed behind the triggers' from j3 where s.id::text = j3.record_id;
set local session_replication_role = origin;
select results_eq(
  $$select c.outcome from j3, embed_queue.complete('w1', array[j3.id], array[j3.content_hash], array[pg_temp.vec(0.3)],
      array[5], array[false], 'text-embedding-3-small', 1536) c$$,
  $$values ('stale'::text)$$,
  'held job whose row changed: stale');
select ok((select s.title_embedding is null from public.sessions s, j3 where s.id::text = j3.record_id), 'stale: nothing written');
select results_eq(
  $$select status, attempts, locked_by, run_at <= now() from embedding_queue where id = (select id from j3)$$,
  $$values ('pending'::text, 0, null::text, true)$$,
  'stale: pending again at once, attempt refunded');

-- Another worker's job: lost, nothing written.
create temp table j4 as select * from embed_queue.claim('w2', 1, null, array['sessions']);
select results_eq(
  $$select c.outcome from j4, embed_queue.complete('w1', array[j4.id], array[j4.content_hash], array[pg_temp.vec(0.4)],
      array[5], array[false], 'text-embedding-3-small', 1536) c$$,
  $$values ('lost'::text)$$,
  'a job held by another worker: lost');
select results_eq(
  $$select q.status, q.locked_by, s.title_embedding is null from embedding_queue q join public.sessions s on s.id::text = q.record_id
    where q.id = (select id from j4)$$,
  $$values ('processing'::text, 'w2'::text, true)$$,
  'and the other worker''s job is untouched');

-- A mixed batch over two tables: outcomes in input order; a wrong hash is stale.
create temp table j5 as select * from embed_queue.claim('w3', 4, null, array['summaries']);
select results_eq(
  $$select c.outcome from embed_queue.complete('w3',
      (select array_agg(id order by id) from j5) || array[999999::bigint],
      (select array_agg(case when id = (select max(id) from j5) then 'wrong' else content_hash end order by id) from j5) || array['x'],
      array_fill(pg_temp.vec(0.5), array[5]), null, null, 'text-embedding-3-small', 1536) c$$,
  $$values ('completed'::text), ('completed'), ('completed'), ('stale'), ('lost')$$,
  'batch: completed, a wrong hash is stale, an unknown id is lost, in input order');
select is(
  (select count(*)::integer from public.summaries s join j5 on s.id::text = j5.record_id where s.content_embedding is not null),
  3, 'batch: three vectors written');

-- Soft-deleted while embedding: the job was withdrawn; nothing written.
create temp table j6 as select * from embed_queue.claim('w4', 1, null, array['sessions']);
update public.sessions s set deleted_at = now() from j6 where s.id::text = j6.record_id;
select results_eq(
  $$select c.outcome from j6, embed_queue.complete('w4', array[j6.id], array[j6.content_hash], array[pg_temp.vec(0.6)],
      array[5], array[false], 'text-embedding-3-small', 1536) c$$,
  $$values ('lost'::text)$$,
  'soft-deleted while embedding: lost');

-- Dimensions that do not fit the column are refused before anything is written.
create temp table j7 as select * from embed_queue.claim('w5', 1, null, array['sessions']);
select throws_ok(
  $$select * from j7, embed_queue.complete('w5', array[j7.id], array[j7.content_hash], array['[1,2,3]'],
      array[1], array[false], 'text-embedding-3-small', 3) c$$,
  '22023', null, 'embeddings of the wrong dimensions are refused');
select throws_ok(
  $$select * from embed_queue.complete('w5', array[1::bigint, 2], array['a'], array['[1]'], null, null, 'm', 1536)$$,
  '22023', null, 'arrays of different lengths are refused');

-- A content expression target completes too (the hash is checked on the expression).
create table public.docs (
  id int primary key, heading text, body text, emb extensions.vector(3)
);
select embed_queue.register_target('docs', null, 'emb', 'r.heading || '': '' || r.body', null, null);
insert into public.docs values (1, 'A', 'first'), (2, 'B', 'second');
create temp table j8 as select * from embed_queue.claim('w6', 10, null, array['docs']);
select results_eq(
  $$select c.outcome from embed_queue.complete('w6', (select array_agg(id order by id) from j8),
      (select array_agg(content_hash order by id) from j8), array['[1,0,0]', '[0,1,0]'], array[2, 2], null, 'local', 3) c$$,
  $$values ('completed'::text), ('completed')$$,
  'expression target: completed, vectors written where the expression still hashes the same');

select * from finish();
rollback;
