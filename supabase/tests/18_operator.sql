-- Not on an adopted install: written for the project's own tables, not the guide's (tests/adopt).
-- Operator views and functions: status, lag, failures, usage; scoped retry; requeue; search.
begin;
set local search_path = public, extensions;
select plan(22);

\ir helpers/rows.sql
select pg_temp.reset();
select pg_temp.new_session('Operator session 1', p_id => '7e570000-0000-4000-8000-000000000001');
select pg_temp.new_session('Operator session 2', p_id => '7e570000-0000-4000-8000-000000000002');
select count(*) from pg_temp.new_sessions(3, 'Operator session');
select count(*) from pg_temp.new_summaries(4, 'Operator summary');

create function pg_temp.onehot(k int) returns text language sql as $$
  select '[' || string_agg(case when g = k then '1' else '0' end, ',' order by g) || ']' from generate_series(1, 1536) g
$$;

select results_eq($$select table_name, status, count from embed_queue.queue_status$$,
  $$values ('sessions'::text, 'pending'::text, 6::bigint), ('summaries', 'pending', 4)$$,
  'queue_status: the guide''s status query');
select results_eq($$select table_name, embedding_column, total, with_embeddings, missing from embed_queue.coverage$$,
  $$values ('sessions'::text, 'title_embedding'::text, 6::bigint, 0::bigint, 6::bigint),
           ('summaries', 'content_embedding', 4, 0, 4)$$,
  'coverage: every target''s live rows, 6 and 4');

update embedding_queue set run_at = now() - interval '90 seconds' where table_name = 'sessions';
select results_eq($$select table_name, pending, processing, oldest_pending_at, lag_seconds from embed_queue.lag where table_name = 'sessions'$$,
  $$values ('sessions'::text, 6::bigint, 0::bigint, now() - interval '90 seconds', 90.000::numeric(12, 3))$$,
  'lag: pending, processing, oldest run_at and how long it has waited');

-- Complete two sessions with the two distinctive titles: one-hot vectors 1 and 2.
create temp table held as select * from embed_queue.claim('op', 100, null, array['sessions'])
  where record_id in ('7e570000-0000-4000-8000-000000000001', '7e570000-0000-4000-8000-000000000002');
select results_eq(
  $$select c.outcome from embed_queue.complete('op',
      (select array_agg(id order by record_id) from held), (select array_agg(content_hash order by record_id) from held),
      array[pg_temp.onehot(1), pg_temp.onehot(2)], array[12, 14], array[false, false], 'text-embedding-3-small', 1536) c$$,
  $$values ('completed'::text), ('completed')$$,
  'two sessions embedded');
select results_eq($$select table_name, embedding_column, model, completed, tokens, cost_usd from embed_queue.usage$$,
  $$values ('sessions'::text, 'title_embedding'::text, 'text-embedding-3-small'::text, 2::bigint, 26::bigint, 0.00000052::numeric)$$,
  'usage: completed jobs, tokens and cost at the model''s price');

-- Search finds the exact title.
select results_eq(
  $$select record_id, content, similarity from embed_queue.search('sessions', pg_temp.onehot(2)::extensions.vector, 1)$$,
  $$values ('7e570000-0000-4000-8000-000000000002'::text,
            'Operator session 2'::text, 1::double precision)$$,
  'search: the nearest session is the one with that title, similarity 1');
select results_eq(
  $$select record_id from embed_queue.search('sessions', pg_temp.onehot(1)::extensions.vector)$$,
  $$values ('7e570000-0000-4000-8000-000000000001'::text), ('7e570000-0000-4000-8000-000000000002')$$,
  'search: ordered by similarity, only rows with an embedding');
update public.sessions set deleted_at = now() where id = '7e570000-0000-4000-8000-000000000001';
select is((select count(*)::integer from embed_queue.search('sessions', pg_temp.onehot(1)::extensions.vector)), 1,
  'search: soft-deleted rows are left out');
select throws_ok($$select * from embed_queue.search('nope', '[1]')$$, 'P0002', null, 'search: unknown table is P0002');

-- The migrations created both indexes (file 36); without them, ensure_search_index makes them.
drop index public.sessions_title_embedding_hnsw_idx, public.summaries_content_embedding_hnsw_idx;
select results_eq($$select count(*)::integer, bool_and(create_statement like 'create index concurrently if not exists %')
                    from embed_queue.search_index_statements()$$,
  $$values (2, true)$$, 'search_index_statements: one concurrent build per target without an index');
select is(embed_queue.ensure_search_index(), 2, 'ensure_search_index creates one HNSW index per target');
select is(embed_queue.ensure_search_index(), 0, 'and none the second time');
select ok(
  (select indexdef ~ 'USING hnsw \(title_embedding (extensions\.)?vector_cosine_ops\)' from pg_indexes
   where tablename = 'sessions' and indexname = 'sessions_title_embedding_hnsw_idx'),
  'the index uses cosine distance');

-- Failures, scoped retry.
create temp table f as select * from embed_queue.claim('op', 3, null, array['summaries']);
select embed_queue.fail('op', (select jsonb_agg(jsonb_build_object('id', id, 'kind', 'permanent', 'error', 'input too long')) from f));
select results_eq($$select table_name, error_message, count, cardinality(record_ids) from embed_queue.failures$$,
  $$values ('summaries'::text, 'input too long'::text, 3::bigint, 3)$$,
  'failures: grouped by table and error, with record ids');
select is(embed_queue.retry('sessions'), 0, 'retry of another table retries nothing');
select is(embed_queue.retry('summaries', (select min(record_id) from f)), 1, 'retry of one row');
select is(embed_queue.retry(), 2, 'retry of the rest');

-- Requeue.
select throws_ok($$select embed_queue.requeue('nope', '1')$$, 'P0002',
  'embed_queue.requeue: no target is registered for table ''nope''', 'requeue: unknown table is P0002 with a clear message');

select throws_ok($$select embed_queue.requeue('sessions', '00000000-0000-4000-8000-00000000dead')$$, 'P0002',
  'embed_queue.requeue: public.sessions has no row with id = ''00000000-0000-4000-8000-00000000dead''',
  'requeue: unknown id is P0002 with a clear message');
select throws_ok($$select embed_queue.requeue('sessions', 'not-a-uuid')$$, 'P0002', null,
  'requeue: a malformed id names no row (P0002), not a cast error');
select throws_ok($$select embed_queue.requeue('sessions', '7e570000-0000-4000-8000-000000000001')$$, '55000', null,
  'requeue: a soft-deleted row is refused (55000)');
select is(embed_queue.requeue('sessions', '7e570000-0000-4000-8000-000000000002'), 1,
  'requeue: the completed session is queued again');

select * from finish();
rollback;
