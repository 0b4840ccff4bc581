-- A model change: reembed() fills a shadow column with the new model while search stays on the
-- old one; the switch (tick, once covered) swaps them in one transaction; complete() never writes
-- a vector into a column of another model, before or after the switch; rollback, drop, cancel.
begin;
set local search_path = public, extensions;
select plan(31);

create function pg_temp.vec(x float8) returns text language sql as $$
  select '[' || x || repeat(',0', 1535) || ']'
$$;
-- Claims every runnable job of sessions for p_worker and writes vec(p_x) made by p_model into each.
create function pg_temp.embed(p_worker text, p_model text, p_x float8) returns setof text language plpgsql as $$
declare v_ids bigint[]; v_hashes text[];
begin
  select array_agg(c.id), array_agg(c.content_hash) into v_ids, v_hashes
  from embed_queue.claim(p_worker, 1000, null, array['sessions']) c;
  return query select c.outcome from embed_queue.complete(p_worker, v_ids, v_hashes,
    array_fill(pg_temp.vec(p_x), array[cardinality(v_ids)]), null, null, p_model, 1536) c;
end
$$;
-- The first component of a row's vector in a column, as real (what the vector stores).
create function pg_temp.x(p_id uuid, p_column text) returns real language plpgsql as $$
declare v real;
begin
  execute format('select (%I::real[])[1] from public.sessions where id = $1', p_column) into v using p_id;
  return v;
end
$$;

-- Only the test's rows exist for sessions (the seed's are deleted in this transaction).
delete from public.sessions;
update public.embedding_queue set run_at = now() + interval '1 day' where status = 'pending';
insert into auth.users (id, email) values ('49000000-0000-4000-8000-00000000000a', 'model-change@example.test');
insert into public.sessions (id, user_id, title) values
  ('49000000-0000-4000-8000-000000000001', '49000000-0000-4000-8000-00000000000a', 'Model change one'),
  ('49000000-0000-4000-8000-000000000002', '49000000-0000-4000-8000-00000000000a', 'Model change two'),
  ('49000000-0000-4000-8000-000000000003', '49000000-0000-4000-8000-00000000000a', 'Model change three');
select set_eq($$select * from pg_temp.embed('w0', 'text-embedding-3-small', 0.1)$$, array['completed'], 'embedded with the old model');

-- Start.
select results_eq(
  $$select table_name, embedding_column, next_column, from_model, to_model, queued
    from embed_queue.reembed('sessions', 'text-embedding-3-large', 1536)$$,
  $$values ('sessions'::text, 'title_embedding'::text, 'title_embedding_next'::text, 'text-embedding-3-small'::text,
            'text-embedding-3-large'::text, 3)$$,
  'reembed: a shadow column, every live row queued');
select col_type_is('public', 'sessions', 'title_embedding_next', 'extensions', 'vector(1536)', 'the shadow column has the new size');
select results_eq(
  $$select embedding_column, generation, model, base_column from embed_queue.targets where queue_table = 'sessions' order by id$$,
  $$values ('title_embedding'::text, 'active'::text, 'text-embedding-3-small'::text, null::text),
           ('title_embedding_next', 'next', 'text-embedding-3-large', 'title_embedding')$$,
  'the active target is pinned to the old model, the next one to the new');
select results_eq(
  $$select count(*)::int, bool_and(lane = 'bulk') from embedding_queue
    where table_name = 'sessions' and embedding_column = 'title_embedding_next' and status = 'pending'$$,
  $$values (3, true)$$, 'the re-embeds are bulk work');
select throws_ok($$select * from embed_queue.reembed('sessions', 'text-embedding-3-large', 1536)$$, '55000', null,
  'a second change of the same column is refused');
select throws_ok($$select * from embed_queue.switch_model('sessions')$$, '55000', null,
  'no switch before the new model covers every row');
select is(embed_queue.advance_model_changes(), 0, 'tick: not covered, no switch');

-- A user's new row during the change: work for both generations, fresh first.
insert into public.sessions (id, user_id, title) values
  ('49000000-0000-4000-8000-000000000004', '49000000-0000-4000-8000-00000000000a', 'Model change four');
select results_eq(
  $$select embedding_column, lane from embedding_queue where record_id = '49000000-0000-4000-8000-000000000004' order by 1$$,
  $$values ('title_embedding'::text, 'fresh'::text), ('title_embedding_next', 'fresh')$$,
  'a new row is queued for both generations');

-- The fence on model: a vector of the old model is not written into the new model's column.
select set_eq($$select * from pg_temp.embed('w1', 'text-embedding-3-small', 0.1)$$, array['completed', 'stale'],
  'a run of the old model completes the active column''s job, not the new column''s');
select is(pg_temp.x('49000000-0000-4000-8000-000000000001', 'title_embedding_next'), null, 'nothing written into the new column');
select set_eq($$select * from pg_temp.embed('w2', 'text-embedding-3-large', 0.2)$$, array['completed'],
  'the new model''s run completes the new column''s jobs');
select results_eq(
  $$select count(*)::int from sessions where title_embedding::real[] = pg_temp.vec(0.1)::vector::real[]
      and title_embedding_next::real[] = pg_temp.vec(0.2)::vector::real[]$$,
  $$values (4)$$, 'every row: old model in the column, new model in the shadow');

-- An old-model job in flight when the switch happens.
select embed_queue.requeue('sessions', '49000000-0000-4000-8000-000000000001');
update public.embedding_queue set status = 'completed'
where table_name = 'sessions' and embedding_column = 'title_embedding_next' and status = 'pending';
create temp table inflight as
  select * from embed_queue.claim('w-old', 10, null, array['sessions']) c where c.embedding_column = 'title_embedding';
select is((select count(*)::int from inflight), 1, 'one old-model job in flight');

select is(embed_queue.advance_model_changes(), 1, 'tick: covered, switched');
select results_eq(
  $$select embedding_column, generation, model from embed_queue.targets where queue_table = 'sessions' order by id$$,
  $$values ('title_embedding'::text, 'active'::text, 'text-embedding-3-large'::text),
           ('title_embedding_prev', 'previous', 'text-embedding-3-small')$$,
  'the column now holds the new model; the old one is the previous generation');
select is(pg_temp.x('49000000-0000-4000-8000-000000000002', 'title_embedding'), 0.2::real, 'the column holds the new vectors');
select is(pg_temp.x('49000000-0000-4000-8000-000000000002', 'title_embedding_prev'), 0.1::real, 'the old ones are kept as _prev');
select hasnt_column('public', 'sessions', 'title_embedding_next', 'no shadow column left');

select results_eq(
  $$select c.outcome from inflight i, embed_queue.complete('w-old', array[i.id], array[i.content_hash],
      array[pg_temp.vec(0.3)], null, null, 'text-embedding-3-small', 1536) c$$,
  $$values ('completed'::text)$$, 'the old-model job finishing after the switch completes');
select is(pg_temp.x('49000000-0000-4000-8000-000000000001', 'title_embedding'), 0.2::real,
  'its vector did not reach the column that now holds the new model');
select is(pg_temp.x('49000000-0000-4000-8000-000000000001', 'title_embedding_prev'), 0.3::real,
  'it went to the old model''s column, where it belongs');

-- Search: one model per column; a query of another model is refused.
select results_eq($$select model from public.search_models() where table_name = 'sessions'$$,
  $$values ('text-embedding-3-large'::text)$$, 'search_models names the new model');
select throws_ok(
  $$select * from public.match_sessions(pg_temp.vec(0.1)::vector, 5, query_model => 'text-embedding-3-small')$$,
  'EQMOD', null, 'a query of the old model is refused');
select is((select count(*)::int from public.match_sessions(pg_temp.vec(0.2)::vector, 5, query_model => 'text-embedding-3-large')),
  4, 'a query of the new model ranks every row');

-- Roll back, switch again, drop the old vectors.
select results_eq($$select model, previous_model from embed_queue.rollback_model('sessions')$$,
  $$values ('text-embedding-3-small'::text, 'text-embedding-3-large'::text)$$, 'rollback: the old model again');
select is(pg_temp.x('49000000-0000-4000-8000-000000000002', 'title_embedding'), 0.1::real, 'the column holds the old vectors again');
select is(embed_queue.advance_model_changes(), 0, 'after a rollback the tick does not switch by itself');
select results_eq($$select model from embed_queue.switch_model('sessions')$$,
  $$values ('text-embedding-3-large'::text)$$, 'switched again by hand');
select results_eq($$select dropped_column from embed_queue.drop_old_vectors('sessions')$$,
  $$values ('title_embedding_prev'::text)$$, 'the old vectors dropped');
select is_empty(
  $$select 1 from embed_queue.targets where queue_table = 'sessions' and generation <> 'active'
    union all select 1 from embedding_queue where table_name = 'sessions' and embedding_column <> 'title_embedding'
    union all select 1 from pg_trigger where tgrelid = 'public.sessions'::regclass and tgname like '%_prev_%'$$,
  'no target, job or trigger of the old column is left');

select * from finish();
rollback;
