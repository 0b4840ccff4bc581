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
      and p.proname not in ('default_max_attempts', 'queue_secret', 'invoke', 'poke', 'sync_job', 'queue_inserted', 'keep_replaced_vector')$$,
  'security definer only where a lower role must write or read what it cannot: the listed ones and the sync, insert and keep triggers');

-- Registering a target creates no function: its triggers call the generic ones, which pin
-- search_path like every other.
create table public.sp_check (id int primary key, body text, emb extensions.vector(3));
create temp table functions_before as select p.oid from pg_proc p where p.pronamespace = 'embed_queue'::regnamespace;
select embed_queue.register_target('sp_check', 'body', 'emb', p_user_column => null, p_deleted_column => null);
select results_eq(
  $$select (select count(*) from pg_proc p where p.pronamespace = 'embed_queue'::regnamespace
             and p.oid not in (select oid from functions_before))::int,
           (select array_agg(distinct t.tgfoid::regproc::text order by t.tgfoid::regproc::text) from pg_trigger t
             where t.tgrelid = 'public.sp_check'::regclass)$$,
  $$values (0, array['embed_queue.guard_vector', 'embed_queue.keep_replaced_vector', 'embed_queue.queue_inserted', 'embed_queue.sync_job'])$$,
  'a target''s triggers call the generic trigger functions; registering creates none');

select * from finish();
rollback;
