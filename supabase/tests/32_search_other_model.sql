-- Rows embedded by another model than the one in use are left out; the model in use is the
-- query_model argument, or else the model of the target's most recently completed job; vectors
-- of unknown origin count as text-embedding-3-small while legacy_vectors is 'trust'.
begin;
select plan(7);
\ir helpers/search.psql

insert into public.sessions (id, user_id, title) values
  ('c0ffee00-0000-4000-8000-0000000005a1', 'c0ffee00-0000-4000-8000-00000000000a', 'old model'),
  ('c0ffee00-0000-4000-8000-0000000005a2', 'c0ffee00-0000-4000-8000-00000000000a', 'new model'),
  ('c0ffee00-0000-4000-8000-0000000005a3', 'c0ffee00-0000-4000-8000-00000000000a', 'unknown origin');
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a1', pg_temp.v(1), 'm-old');
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a3', pg_temp.v(1), null);
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a2', pg_temp.v(1, 1), 'm-new');

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select id from public.match_sessions(pg_temp.v(1), 10, query_model => 'm-new')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a2'::uuid)$$, 'query_model m-new: the nearer m-old row is left out');
select results_eq($$select id from public.match_sessions(pg_temp.v(1), 10, query_model => 'm-old')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a1'::uuid)$$, 'query_model m-old: only the m-old row');
select results_eq($$select id from public.match_sessions(pg_temp.v(1), 10)$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a2'::uuid)$$,
  'no query_model: the model of the most recently completed job (m-new)');
select results_eq($$select id from public.hybrid_search_sessions('model', pg_temp.v(1), 10)$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a2'::uuid)$$,
  'hybrid: a row found by its words is still left out when its vector is another model''s');
select results_eq($$select id from public.match_sessions(pg_temp.v(1), 10, query_model => 'text-embedding-3-small')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a3'::uuid)$$,
  'a vector of unknown origin counts as text-embedding-3-small while legacy vectors are trusted');
select is_empty($$select * from public.related_sessions('c0ffee00-0000-4000-8000-0000000005a1', query_model => 'm-new')$$,
  'related_sessions of a row embedded by another model: nothing');
reset role;

update embed_queue.settings set legacy_vectors = 'reembed';
set local role authenticated;
select is_empty($$select * from public.match_sessions(pg_temp.v(1), 10, query_model => 'text-embedding-3-small')$$,
  'with legacy_vectors = reembed it counts as no model');
reset role;

select * from finish();
rollback;
