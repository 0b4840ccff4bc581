-- The local stack is never kinder than Supabase: `postgres`, which pushed the migrations and
-- runs these tests, is not a superuser; supabase_admin owns what the platform owns; and what
-- hosted refuses `postgres` is refused here too.
begin;
select plan(12);

select is((select rolsuper from pg_roles where rolname = current_user), false,
  'the tests run as a role that is not a superuser');
select is(current_user::text, 'postgres', 'and that role is postgres');
select is(
  (select r.rolsuper from pg_class c join pg_roles r on r.oid = c.relowner
   where c.oid = 'supabase_migrations.schema_migrations'::regclass),
  false, 'the role that applied the migrations (owner of schema_migrations) is not a superuser');
select is((select tableowner::text from pg_tables where schemaname = 'public' and tablename = 'embedding_queue'),
  'postgres', 'the queue belongs to postgres');
select ok((select rolcreaterole and rolcreatedb and rolreplication and rolbypassrls and rolcanlogin
           from pg_roles where rolname = 'postgres'), 'postgres has hosted''s attributes');
select is(
  (select array_agg(extname::text order by extname) from pg_extension where extowner <> 'supabase_admin'::regrole),
  null, 'every extension belongs to supabase_admin, as when supautils creates it');
select is((select proowner::regrole::text from pg_proc where oid = 'net.http_post(text, jsonb, jsonb, jsonb, integer)'::regprocedure),
  'supabase_admin', 'net.http_post belongs to supabase_admin');

select throws_ok($$update cron.job set active = active$$, '42501', null,
  'postgres cannot write cron.job (hosted grants SELECT only)');
select lives_ok($$select cron.alter_job(jobid, active := true) from cron.job where jobname = 'embed-queue-tick'$$,
  'but may change its own job through cron.alter_job');
select throws_ok(
  $$create or replace function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
      headers jsonb default '{}', timeout_milliseconds integer default 5000)
    returns bigint language sql as 'select 1::bigint'$$,
  '42501', null, 'postgres cannot replace pg_net''s functions');
select throws_ok(
  $$create function public.eq_probe() returns void language sql set embed_queue.internal = 'on' as ''$$,
  '42501', null, 'postgres cannot put a custom parameter in a function''s SET clause');
select lives_ok($$set local session_replication_role = replica$$,
  'postgres may set session_replication_role, as supautils allows');

select * from finish();
rollback;
