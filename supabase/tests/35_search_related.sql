-- related_sessions / related_summaries: the nearest neighbours of a row the caller can see,
-- the row itself left out.
begin;
select plan(5);
\ir helpers/search.psql

insert into public.sessions (id, user_id, title) values
  ('c0ffee00-0000-4000-8000-0000000005a1', 'c0ffee00-0000-4000-8000-00000000000a', 'source'),
  ('c0ffee00-0000-4000-8000-0000000005a2', 'c0ffee00-0000-4000-8000-00000000000a', 'near'),
  ('c0ffee00-0000-4000-8000-0000000005a3', 'c0ffee00-0000-4000-8000-00000000000a', 'far'),
  ('c0ffee00-0000-4000-8000-0000000005b1', 'c0ffee00-0000-4000-8000-00000000000b', 'B''s twin of the source');
insert into public.summaries (id, user_id, content) values
  ('c0ffee00-0000-4000-8000-0000000050a1', 'c0ffee00-0000-4000-8000-00000000000a', 'source'),
  ('c0ffee00-0000-4000-8000-0000000050a2', 'c0ffee00-0000-4000-8000-00000000000a', 'near');
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a1', pg_temp.v(1));
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a2', pg_temp.v(1, 0.2));
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a3', pg_temp.v(0.2, 1));
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005b1', pg_temp.v(1));
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050a1', pg_temp.v(1));
select pg_temp.embed('summaries', 'c0ffee00-0000-4000-8000-0000000050a2', pg_temp.v(1, 0.2));

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$select title from public.related_sessions('c0ffee00-0000-4000-8000-0000000005a1', query_model => 'm-test')$$,
  $$values ('near'::text), ('far')$$, 'neighbours nearest first, itself and B''s identical row left out');
select results_eq($$select title from public.related_sessions('c0ffee00-0000-4000-8000-0000000005a1', 1, query_model => 'm-test')$$,
  $$values ('near'::text)$$, 'match_count bounds them');
select results_eq($$select title from public.related_sessions('c0ffee00-0000-4000-8000-0000000005a1', 5, 0.5, query_model => 'm-test')$$,
  $$values ('near'::text)$$, 'match_threshold applies');
select results_eq($$select content from public.related_summaries('c0ffee00-0000-4000-8000-0000000050a1', query_model => 'm-test')$$,
  $$values ('near'::text)$$, 'related_summaries: the other summary');
select is_empty($$select * from public.related_sessions('c0ffee00-0000-4000-8000-0000000005b1', query_model => 'm-test')$$,
  'a row the caller cannot see has no neighbours for it');
reset role;

select * from finish();
rollback;
