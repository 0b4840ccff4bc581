-- The migrations create the HNSW cosine indexes (so no first search builds them), the operator's
-- ensure_search_index finds them, and the match functions' scans are served by them.
begin;
select plan(8);
\ir helpers/search.psql

select ok(exists (select 1 from pg_indexes where schemaname = 'public' and tablename = 'sessions'
  and indexdef ~ 'USING hnsw \(title_embedding (extensions\.)?vector_cosine_ops\)'), 'sessions has its HNSW cosine index');
select ok(exists (select 1 from pg_indexes where schemaname = 'public' and tablename = 'summaries'
  and indexdef ~ 'USING hnsw \(content_embedding (extensions\.)?vector_cosine_ops\)'), 'summaries has its HNSW cosine index');
select is(embed_queue.ensure_search_index(), 0, 'ensure_search_index finds them and creates none');

insert into public.sessions (id, user_id, title)
select ('c0ffee00-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'c0ffee00-0000-4000-8000-00000000000a', 'row ' || g
from generate_series(1, 200) g;
select pg_temp.embed('sessions', ('c0ffee00-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, pg_temp.v(1, g, g % 7))
from generate_series(1, 200) g;
insert into public.summaries (id, user_id, content)
select ('c0ffee00-0000-4000-8000-' || lpad((1000 + g)::text, 12, '0'))::uuid, 'c0ffee00-0000-4000-8000-00000000000a', 'row ' || g
from generate_series(1, 200) g;
select pg_temp.embed('summaries', ('c0ffee00-0000-4000-8000-' || lpad((1000 + g)::text, 12, '0'))::uuid, pg_temp.v(1, g, g % 7))
from generate_series(1, 200) g;
analyze public.sessions;
analyze public.summaries;

-- The plan the function's scan gets, asked of the same query shape: an HNSW index scan ordered
-- by distance (plans of statements inside a function do not show in explain).
create function pg_temp.plan_of(q text) returns text language plpgsql as $$
declare r record; v text := '';
begin
  for r in execute 'explain (costs off) ' || q loop v := v || r."QUERY PLAN" || E'\n'; end loop;
  return v;
end $$;
set local enable_seqscan = off;
select matches(pg_temp.plan_of($$select s.id from public.sessions s where s.title_embedding is not null and s.deleted_at is null
    order by s.title_embedding operator(extensions.<=>) pg_temp.v(1, 3) limit 5$$),
  'Index Scan using sessions_title_embedding_hnsw_idx', 'the scan is an HNSW index scan');

-- And the functions' own scans go through the indexes: this transaction's index scan counts.
create temp table before as
  select c.relname, pg_stat_get_xact_numscans(c.oid) as n from pg_class c
  where c.relname in ('sessions_title_embedding_hnsw_idx', 'summaries_content_embedding_hnsw_idx');
set local enable_bitmapscan = off;
set local enable_sort = off;
set local role authenticated;
set local request.jwt.claims = '{"sub": "c0ffee00-0000-4000-8000-00000000000a", "role": "authenticated"}';
select is((select count(*)::int from public.match_sessions(pg_temp.v(1, 3), 5, query_model => 'm-test')), 5, 'match_sessions: 5 of 200');
select is((select count(*)::int from public.match_summaries(pg_temp.v(1, 3), 5, query_model => 'm-test')), 5, 'match_summaries: 5 of 200');
reset role;
select cmp_ok(pg_stat_get_xact_numscans('public.sessions_title_embedding_hnsw_idx'::regclass),
  '>', (select n from before where relname = 'sessions_title_embedding_hnsw_idx'), 'match_sessions scanned the HNSW index');
select cmp_ok(pg_stat_get_xact_numscans('public.summaries_content_embedding_hnsw_idx'::regclass),
  '>', (select n from before where relname = 'summaries_content_embedding_hnsw_idx'), 'match_summaries scanned the HNSW index');

select * from finish();
rollback;
