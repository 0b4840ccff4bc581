-- Identical text: a job whose text and model are those of the vector it last wrote completes
-- without a request (complete_unchanged): a requeue, and a text changed and changed back. Another
-- model, another text, another worker's job or a vector of unknown origin never qualify.
begin;
set local search_path = public, extensions;
select plan(16);

create function pg_temp.vec(x float8) returns text language sql as $$
  select '[' || array_to_string(array_fill(x, array[1536]), ',') || ']'
$$;
-- Claims the runnable jobs of the test's rows (nothing else is runnable) for p_worker.
create function pg_temp.claim(p_worker text) returns table (id bigint, content_hash text) language sql as $$
  select c.id, c.content_hash from embed_queue.claim(p_worker, 100, null, array['sessions']) c
$$;
-- Claims and writes one vector per job, made by p_model.
create function pg_temp.embed(p_model text, p_x float8) returns integer language plpgsql as $$
declare v_ids bigint[]; v_hashes text[];
begin
  select array_agg(c.id), array_agg(c.content_hash) into v_ids, v_hashes from pg_temp.claim('embedder') c;
  perform embed_queue.complete('embedder', v_ids, v_hashes, array_fill(pg_temp.vec(p_x), array[cardinality(v_ids)]),
    null, null, p_model, 1536);
  return cardinality(v_ids);
end
$$;
create function pg_temp.unchanged(p_worker text, p_model text) returns setof bigint language sql as $$
  select u.id from (select array_agg(c.id) ids, array_agg(c.content_hash) hashes from pg_temp.claim(p_worker) c) j,
    embed_queue.complete_unchanged(p_worker, j.ids, j.hashes, p_model, 1536) u
$$;

-- Only the test's own rows are runnable.
update public.embedding_queue set run_at = now() + interval '1 day' where status = 'pending';
insert into auth.users (id, email) values ('48000000-0000-4000-8000-00000000000a', 'identical@example.test');
insert into public.sessions (id, user_id, title) values
  ('48000000-0000-4000-8000-000000000001', '48000000-0000-4000-8000-00000000000a', 'Identical text one'),
  ('48000000-0000-4000-8000-000000000002', '48000000-0000-4000-8000-00000000000a', 'Identical text two');
select is(pg_temp.embed('text-embedding-3-small', 0.1), 2, 'both rows embedded');
select results_eq(
  $$select embedded_hash = content_hash, embedded_model from embedding_queue
    where record_id = '48000000-0000-4000-8000-000000000001'$$,
  $$values (true, 'text-embedding-3-small'::text)$$,
  'a completed job records the text and model of its vector');

-- A requeue of an embedded row with the same text: completed without a request.
select embed_queue.requeue('sessions', '48000000-0000-4000-8000-000000000001');
select is((select status from embedding_queue where record_id = '48000000-0000-4000-8000-000000000001'), 'pending',
  'requeued: pending');
select results_eq($$select * from pg_temp.unchanged('w1', 'text-embedding-3-small')$$,
  $$select id from embedding_queue where record_id = '48000000-0000-4000-8000-000000000001'$$,
  'same text, same model: completed without a request');
select results_eq(
  $$select q.status, q.locked_by, s.title_embedding::text = pg_temp.vec(0.1)::vector::text
    from embedding_queue q join sessions s on s.id::text = q.record_id
    where q.record_id = '48000000-0000-4000-8000-000000000001' and q.table_name = 'sessions'$$,
  $$values ('completed'::text, null::text, true)$$,
  'the job is completed and the row keeps its vector');

-- The same requeue with another model: sent.
select embed_queue.requeue('sessions', '48000000-0000-4000-8000-000000000001');
select is_empty($$select * from pg_temp.unchanged('w2', 'text-embedding-3-large')$$, 'another model: nothing completed');
select is((select status || '/' || locked_by from embedding_queue where record_id = '48000000-0000-4000-8000-000000000001'),
  'processing/w2', 'the job stays with its worker, to be sent');
select embed_queue.release('w2');

-- A text changed and changed back: the vector the change cleared is kept, then put back.
update public.sessions set title = 'Identical text two, edited' where id = '48000000-0000-4000-8000-000000000002';
select results_eq(
  $$select s.title_embedding is null, q.replaced_vector::text = pg_temp.vec(0.1)::vector::text
    from sessions s join embedding_queue q on q.record_id = s.id::text and q.table_name = 'sessions'
    where s.id = '48000000-0000-4000-8000-000000000002'$$,
  $$values (true, true)$$,
  'a content change clears the row''s vector and keeps it in the job');
update public.sessions set title = 'Identical text two' where id = '48000000-0000-4000-8000-000000000002';
-- (row one, released by w2 above, is runnable again too: also unchanged)
select set_eq($$select * from pg_temp.unchanged('w3', 'text-embedding-3-small')$$,
  $$select q.id from embedding_queue q where q.record_id like '48000000-0000-4000-8000-00000000000_' and q.table_name = 'sessions'$$,
  'changed back: completed without a request');
select results_eq(
  $$select s.title_embedding::text = pg_temp.vec(0.1)::vector::text, q.replaced_vector is null, q.status
    from sessions s join embedding_queue q on q.record_id = s.id::text and q.table_name = 'sessions'
    where s.id = '48000000-0000-4000-8000-000000000002'$$,
  $$values (true, true, 'completed'::text)$$,
  'the kept vector is back in the row, and no longer kept');

-- A text changed (not back): sent.
update public.sessions set title = 'Identical text two, really changed' where id = '48000000-0000-4000-8000-000000000002';
select is_empty($$select * from pg_temp.unchanged('w4', 'text-embedding-3-small')$$, 'another text: nothing completed');
select embed_queue.release('w4');

-- Changed behind the triggers after the claim: the row no longer holds the text; sent.
update public.sessions set title = 'Identical text two' where id = '48000000-0000-4000-8000-000000000002';
create temp table held as select * from pg_temp.claim('w5');
set local session_replication_role = replica;
update public.sessions set title = 'Behind the triggers' where id = '48000000-0000-4000-8000-000000000002';
set local session_replication_role = origin;
select is_empty(
  $$select * from embed_queue.complete_unchanged('w5', (select array_agg(id) from held), (select array_agg(content_hash) from held),
      'text-embedding-3-small', 1536)$$,
  'the row changed after the claim: nothing completed');
select embed_queue.release('w5');
update public.sessions set title = 'Identical text two' where id = '48000000-0000-4000-8000-000000000002';

-- Another worker's job: nothing.
create temp table held6 as select * from pg_temp.claim('w6');
select is_empty(
  $$select * from embed_queue.complete_unchanged('someone-else', (select array_agg(id) from held6),
      (select array_agg(content_hash) from held6), 'text-embedding-3-small', 1536)$$,
  'a job held by another worker: nothing completed');
select embed_queue.release('w6');

-- A vector of unknown origin (no model recorded) is never identical.
update public.embedding_queue set status = 'completed', model = null, content_hash = null
where record_id = '48000000-0000-4000-8000-000000000002' and table_name = 'sessions';
update public.sessions set title_embedding = pg_temp.vec(0.3)::vector where id = '48000000-0000-4000-8000-000000000002';
select is((select embedded_model from embedding_queue where record_id = '48000000-0000-4000-8000-000000000002'), null,
  'a completed job without a model records no model');
select embed_queue.requeue('sessions', '48000000-0000-4000-8000-000000000002');
select is_empty($$select * from pg_temp.unchanged('w7', 'text-embedding-3-small')$$, 'unknown origin: nothing completed');
select embed_queue.release('w7');

-- A run's record counts them.
select embed_queue.finish_run(embed_queue.start_run('w1', 'manual'), '{"claimed": 2, "unchanged": 2}');
select is((select unchanged from embed_queue.runs order by id desc limit 1), 2, 'runs.unchanged records them');

select * from finish();
rollback;
