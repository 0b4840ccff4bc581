-- Two claims at the same time, from two sessions (the second through dblink): the first
-- skips what the other holds and does not wait for it.
-- Both sessions must see the jobs, so a third connection commits 55 of them first (rows of a
-- user of this test's own) and takes them away again after the test's rollback.
create extension if not exists dblink with schema extensions;
-- Over TCP with the local stack's password: dblink refuses a non-superuser a connection
-- that asks for none.
select dblink_connect('setup', format('dbname=%s user=%s password=postgres host=127.0.0.1 port=%s',
  current_database(), current_user, current_setting('port')));
-- (No webhook call for them: the test claims them itself.)
select dblink_exec('setup', $$
  begin;
  set local embed_queue.poke_skip_until = 'infinity';
  delete from public.sessions where user_id = 'c0c0a000-0000-4000-8000-000000000005';
  delete from auth.users where id = 'c0c0a000-0000-4000-8000-000000000005';
  insert into auth.users (id, email) values ('c0c0a000-0000-4000-8000-000000000005', 'concurrent@example.com');
  insert into public.sessions (user_id, title)
    select 'c0c0a000-0000-4000-8000-000000000005', 'Concurrent claim ' || g from generate_series(1, 55) g;
  commit$$);

begin;
set local search_path = public, extensions;
select plan(3);

-- Whatever else is runnable (the seed's jobs, say) is there for both sessions too.
create temp table runnable as
  select count(*)::integer as n from embedding_queue where status = 'pending' and run_at <= now();

select dblink_connect('other', format('dbname=%s user=%s password=postgres host=127.0.0.1 port=%s',
  current_database(), current_user, current_setting('port')));
select dblink_exec('other', 'begin');
create temp table other_claim as
  select * from dblink('other', $$select id from embed_queue.claim('other-session', 10)$$) as t (id bigint);

-- Were it to wait on the other session's row locks, this fails after 5 s instead of hanging.
set local lock_timeout = '5s';
create temp table this_claim as select * from embed_queue.claim('this-session', 1000);

select is((select count(*)::integer from other_claim), 10, 'the other session holds 10 jobs (not committed)');
select is((select count(*)::integer from this_claim), (select n - 10 from runnable),
  'this session takes all the others at the same time, without waiting');
select is_empty($$select id from other_claim intersect select id from this_claim$$,
  'no job is handed to both');

select dblink_exec('other', 'rollback');
select dblink_disconnect('other');

select * from finish();
rollback;

select dblink_exec('setup', $$
  delete from public.sessions where user_id = 'c0c0a000-0000-4000-8000-000000000005';
  delete from auth.users where id = 'c0c0a000-0000-4000-8000-000000000005'$$);
select dblink_disconnect('setup');
