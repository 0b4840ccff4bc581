-- match_threshold drops rows below the similarity; filters narrow to a session's summaries and a
-- time range; match_count bounds the rows; results come nearest first with their similarity.
begin;
select plan(7);
\ir helpers/search.psql

insert into public.sessions (id, user_id, title, created_at) values
  ('c0ffee00-0000-4000-8000-0000000005a1', 'c0ffee00-0000-4000-8000-00000000000a', 'same', now() - interval '10 days'),
  ('c0ffee00-0000-4000-8000-0000000005a2', 'c0ffee00-0000-4000-8000-00000000000a', 'diagonal', now() - interval '5 days'),
  ('c0ffee00-0000-4000-8000-0000000005a3', 'c0ffee00-0000-4000-8000-00000000000a', 'orthogonal', now() - interval '1 day');
insert into public.summaries (id, user_id, session_id, content) values
  ('c0ffee00-0000-4000-8000-0000000050a1', 'c0ffee00-0000-4000-8000-00000000000a', 'c0ffee00-0000-4000-8000-0000000005a1', 'first'),
  ('c0ffee00-0000-4000-8000-0000000050a2', 'c0ffee00-0000-4000-8000-00000000000a', 'c0ffee00-0000-4000-8000-0000000005a2', 'second');
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a1', pg_temp.v(1));       -- similarity 1
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a2', pg_temp.v(1, 1));    -- similarity 0.7071
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a3', pg_temp.v(0, 1));    -- similarity 0
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050a1', pg_temp.v(1));
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050a2', pg_temp.v(1));

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select title, round(similarity::numeric, 4) from public.match_sessions(pg_temp.v(1), 10, -1, query_model => 'm-test')$$,
  $$values ('same'::text, 1.0000::numeric), ('diagonal', 0.7071), ('orthogonal', 0.0000)$$,
  'nearest first, with cosine similarity');
select results_eq($$select title from public.match_sessions(pg_temp.v(1), 10, 0.5, query_model => 'm-test')$$,
  $$values ('same'::text), ('diagonal')$$, 'match_threshold 0.5 drops the orthogonal row');
select results_eq($$select title from public.match_sessions(pg_temp.v(1), 10, 0.99, query_model => 'm-test')$$,
  $$values ('same'::text)$$, 'match_threshold 0.99 keeps the identical row only');
select results_eq($$select title from public.match_sessions(pg_temp.v(1), 1, -1, query_model => 'm-test')$$,
  $$values ('same'::text)$$, 'match_count 1: one row');
select results_eq(
  $$select title from public.match_sessions(pg_temp.v(1), 10, -1, created_after => now() - interval '7 days',
      created_before => now() - interval '2 days', query_model => 'm-test')$$,
  $$values ('diagonal'::text)$$, 'created_after and created_before: the time range, start included');
select results_eq(
  $$select content from public.match_summaries(pg_temp.v(1), 10, filter_session_id => 'c0ffee00-0000-4000-8000-0000000005a2', query_model => 'm-test')$$,
  $$values ('second'::text)$$, 'filter_session_id: that session''s summaries only');
select results_eq(
  $$select content from public.hybrid_search_summaries('first | second', pg_temp.v(1), 10,
      filter_session_id => 'c0ffee00-0000-4000-8000-0000000005a1', query_model => 'm-test')$$,
  $$values ('first'::text)$$, 'hybrid_search_summaries honours filter_session_id too');
reset role;

select * from finish();
rollback;
