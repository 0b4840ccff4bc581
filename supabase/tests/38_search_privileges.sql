-- The search functions: invoker, search_path pinned, executable by authenticated and not anon;
-- their private helpers' schema is not exposed and grants users nothing else.
begin;
select plan(6);

create temp table search_fns as
  select p.oid from pg_proc p
  where p.pronamespace = 'public'::regnamespace
    and p.proname in ('match_sessions', 'match_summaries', 'hybrid_search_sessions', 'hybrid_search_summaries',
                      'related_sessions', 'related_summaries');
select is((select count(*)::int from search_fns), 6, 'six search functions in public');
select is_empty($$select oid::regprocedure::text from search_fns f join pg_proc p using (oid) where p.prosecdef$$,
  'every search function is security invoker (RLS decides)');
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where (p.pronamespace = 'embed_search'::regnamespace or p.oid in (select oid from search_fns)
           or p.oid = 'public.take_search_token()'::regprocedure)
      and not coalesce(p.proconfig, '{}') @> array['search_path=""']$$,
  'search_path pinned to empty on each, and on every embed_search function');
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where (p.oid in (select oid from search_fns) or p.oid = 'public.take_search_token()'::regprocedure
           or p.pronamespace = 'embed_search'::regnamespace)
      and has_function_privilege('anon', p.oid, 'execute')$$,
  'anon may execute none of them');
select ok((select bool_and(has_function_privilege('authenticated', oid, 'execute')) from search_fns),
  'authenticated may execute them');
select is_empty(
  $$select c.oid::regclass::text from pg_class c
    where c.relnamespace = 'embed_search'::regnamespace and c.relkind in ('r', 'v')
      and (has_table_privilege('anon', c.oid, 'select') or has_table_privilege('authenticated', c.oid, 'select')
           or has_table_privilege('authenticated', c.oid, 'update'))$$,
  'no table of embed_search is readable or writable by anon or authenticated');

select * from finish();
rollback;
