-- The search functions run as the caller: a user finds only their own rows, anon nothing.
begin;
select plan(9);
\ir helpers/search.psql

insert into public.sessions (id, user_id, title) values
  ('c0ffee00-0000-4000-8000-0000000005a1', 'c0ffee00-0000-4000-8000-00000000000a', 'alpha planning'),
  ('c0ffee00-0000-4000-8000-0000000005b1', 'c0ffee00-0000-4000-8000-00000000000b', 'beta planning');
insert into public.summaries (id, user_id, session_id, content) values
  ('c0ffee00-0000-4000-8000-0000000050a1', 'c0ffee00-0000-4000-8000-00000000000a', 'c0ffee00-0000-4000-8000-0000000005a1', 'alpha planning notes'),
  ('c0ffee00-0000-4000-8000-0000000050b1', 'c0ffee00-0000-4000-8000-00000000000b', 'c0ffee00-0000-4000-8000-0000000005b1', 'beta planning notes');
-- The same vector for both users' rows: only RLS can tell them apart.
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a1', pg_temp.v(1));
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005b1', pg_temp.v(1));
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050a1', pg_temp.v(1));
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050b1', pg_temp.v(1));

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select id from public.match_sessions(pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a1'::uuid)$$, 'match_sessions: A finds only A''s session');
select results_eq($$select id from public.match_summaries(pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000050a1'::uuid)$$, 'match_summaries: A finds only A''s summary');
select results_eq($$select id from public.hybrid_search_sessions('planning', pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a1'::uuid)$$, 'hybrid_search_sessions: only A''s session');
select results_eq($$select id from public.hybrid_search_summaries('planning', pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000050a1'::uuid)$$, 'hybrid_search_summaries: only A''s summary');
select is_empty($$select * from public.related_sessions('c0ffee00-0000-4000-8000-0000000005b1', query_model => 'm-test')$$,
  'related_sessions of B''s session: nothing for A');

set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000b", "role": "authenticated"}';
select results_eq($$select id from public.match_sessions(pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005b1'::uuid)$$, 'match_sessions: B finds only B''s session');
select results_eq($$select id from public.match_summaries(pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000050b1'::uuid)$$, 'match_summaries: B finds only B''s summary');
reset role;

set local role anon;
select throws_ok($$select * from public.match_sessions(pg_temp.v(1))$$, '42501', null, 'anon may not call match_sessions');
select throws_ok($$select * from public.hybrid_search_summaries('planning', pg_temp.v(1))$$, '42501', null,
  'anon may not call hybrid_search_summaries');
reset role;

select * from finish();
rollback;
