-- A soft-deleted row is never returned by the search functions, even with its vector still there.
begin;
select plan(6);
\ir helpers/search.psql

insert into public.sessions (id, user_id, title) values
  ('c0ffee00-0000-4000-8000-0000000005a1', 'c0ffee00-0000-4000-8000-00000000000a', 'kept planning'),
  ('c0ffee00-0000-4000-8000-0000000005a2', 'c0ffee00-0000-4000-8000-00000000000a', 'deleted planning');
insert into public.summaries (id, user_id, content) values
  ('c0ffee00-0000-4000-8000-0000000050a1', 'c0ffee00-0000-4000-8000-00000000000a', 'kept planning notes'),
  ('c0ffee00-0000-4000-8000-0000000050a2', 'c0ffee00-0000-4000-8000-00000000000a', 'deleted planning notes');
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a1', pg_temp.v(1, 1));
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a2', pg_temp.v(1));
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050a1', pg_temp.v(1, 1));
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050a2', pg_temp.v(1));
-- Soft delete with the vector and the completed job left in place (as a row deleted by
-- another path than the triggers would be): only deleted_at can keep it out.
alter table public.sessions disable trigger user;
alter table public.summaries disable trigger user;
update public.sessions set deleted_at = now() where id = 'c0ffee00-0000-4000-8000-0000000005a2';
update public.summaries set deleted_at = now() where id = 'c0ffee00-0000-4000-8000-0000000050a2';
alter table public.sessions enable trigger user;
alter table public.summaries enable trigger user;

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select id from public.match_sessions(pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a1'::uuid)$$, 'match_sessions leaves the nearer, soft-deleted session out');
select results_eq($$select id from public.match_summaries(pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000050a1'::uuid)$$, 'match_summaries leaves it out');
select results_eq($$select id from public.hybrid_search_sessions('deleted planning', pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000005a1'::uuid)$$, 'hybrid_search_sessions: not even by its words');
select results_eq($$select id from public.hybrid_search_summaries('deleted planning', pg_temp.v(1), 10, query_model => 'm-test')$$,
  $$values ('c0ffee00-0000-4000-8000-0000000050a1'::uuid)$$, 'hybrid_search_summaries: not even by its words');
select is_empty($$select * from public.related_sessions('c0ffee00-0000-4000-8000-0000000005a2', query_model => 'm-test')$$,
  'related_sessions of a soft-deleted session: nothing');
select is_empty($$select * from public.related_summaries('c0ffee00-0000-4000-8000-0000000050a1', query_model => 'm-test')$$,
  'related_summaries: the only neighbour is soft-deleted, so nothing');
reset role;

select * from finish();
rollback;
