-- Hybrid search fuses full-text rank and vector rank by reciprocal rank: a row high on both
-- comes first, and the weights decide between a row found only by words and one found only by
-- its vector.
begin;
select plan(6);
\ir helpers/search.psql

insert into public.sessions (id, user_id, title) values
  ('c0ffee00-0000-4000-8000-0000000005a1', 'c0ffee00-0000-4000-8000-00000000000a', 'sourdough hydration schedule'),
  ('c0ffee00-0000-4000-8000-0000000005a2', 'c0ffee00-0000-4000-8000-00000000000a', 'bread hydration, more hydration'),
  ('c0ffee00-0000-4000-8000-0000000005a3', 'c0ffee00-0000-4000-8000-00000000000a', 'quarterly planning'),
  ('c0ffee00-0000-4000-8000-0000000005a4', 'c0ffee00-0000-4000-8000-00000000000a', 'tax checklist');
-- Vector ranks for the query v(1): a3 first, a1 second, a4 third; a2 has no vector yet.
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a3', pg_temp.v(1));
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a1', pg_temp.v(1, 0.5));
select pg_temp.embed('sessions', 'c0ffee00-0000-4000-8000-0000000005a4', pg_temp.v(1, 2));

set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
-- Text ranks for 'sourdough hydration' (websearch: both words): a1 only.
select results_eq(
  $$select title from public.hybrid_search_sessions('sourdough hydration', pg_temp.v(1), 3, query_model => 'm-test')$$,
  $$values ('sourdough hydration schedule'::text), ('quarterly planning'), ('tax checklist')$$,
  'found by both methods ranks first, then the vector ranks');
select is(
  (select round(score::numeric, 6) from public.hybrid_search_sessions('sourdough hydration', pg_temp.v(1), 3, rrf_k => 50, query_model => 'm-test')
   where title = 'sourdough hydration schedule'),
  round(1.0 / 51 + 1.0 / 52, 6), 'score = 1/(k + text rank) + 1/(k + vector rank)');
select ok(
  (select text_rank > 0 and similarity > 0.89 from public.hybrid_search_sessions('sourdough hydration', pg_temp.v(1), 3, query_model => 'm-test')
   where title = 'sourdough hydration schedule'),
  'each row carries its text rank and cosine similarity');
-- 'hydration': a1 and a2 by words; a2 has no vector, so it comes from the text side only.
select results_eq(
  $$select title from public.hybrid_search_sessions('hydration', pg_temp.v(1), 4, full_text_weight => 1, semantic_weight => 0, query_model => 'm-test')
    where score > 0$$,
  $$values ('bread hydration, more hydration'::text), ('sourdough hydration schedule')$$,
  'semantic_weight 0: words alone decide (the title saying it twice first)');
select results_eq(
  $$select title from public.hybrid_search_sessions('hydration', pg_temp.v(1), 4, full_text_weight => 0, semantic_weight => 1, query_model => 'm-test')
    where score > 0$$,
  $$values ('quarterly planning'::text), ('sourdough hydration schedule'), ('tax checklist')$$,
  'full_text_weight 0: the vector alone decides');
select is(
  (select title from public.hybrid_search_sessions('hydration', pg_temp.v(1), 1, full_text_weight => 5, semantic_weight => 1, query_model => 'm-test')),
  'sourdough hydration schedule', 'a higher full-text weight lifts the row found by both above the vector''s first');
reset role;

select * from finish();
rollback;
