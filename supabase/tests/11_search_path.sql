-- Every function of the machinery pins search_path = '' and says whether it is definer or invoker.
begin;
set local search_path = public, extensions;
select plan(4);

select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'embed_queue'::regnamespace and p.prokind = 'f'
      and not coalesce(p.proconfig, '{}') @> array['search_path=""']$$,
  'every function in embed_queue has search_path pinned to empty');

-- No procedure: one that commits between pages could not carry a SET clause.
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'embed_queue'::regnamespace and p.prokind = 'p'$$,
  'no procedure with a mutable search_path');

select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'embed_queue'::regnamespace and p.prosecdef
      and p.proname not in ('default_max_attempts', 'queue_secret', 'invoke', 'poke', 'keep_replaced_vector')
      and p.proname not like '%\_\_sync' and p.proname not like '%\_\_insert'$$,
  'security definer only where a lower role must write or read what it cannot: the listed ones and the generated sync and insert triggers');

-- Generated trigger functions follow the same rule.
create table public.sp_check (id int primary key, body text, emb extensions.vector(3));
select embed_queue.register_target('sp_check', 'body', 'emb', p_user_column => null, p_deleted_column => null);
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'embed_queue'::regnamespace and p.proname like 'sp_check%'
      and not coalesce(p.proconfig, '{}') @> array['search_path=""']$$,
  'generated trigger functions pin search_path too');

select * from finish();
rollback;
