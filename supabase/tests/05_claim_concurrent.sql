-- Two claims at the same time, from two sessions (the second through dblink): the first
-- skips what the other holds and does not wait for it.
begin;
set local search_path = public, extensions;
select plan(3);

create extension if not exists dblink with schema extensions;
-- Over TCP with the local stack's password: dblink refuses a non-superuser a connection
-- that asks for none.
select dblink_connect('other', format('dbname=%s user=%s password=postgres host=127.0.0.1 port=%s',
  current_database(), current_user, current_setting('port')));
select dblink_exec('other', 'begin');
create temp table other_claim as
  select * from dblink('other', $$select id from embed_queue.claim('other-session', 10)$$) as t (id bigint);

-- Were it to wait on the other session's row locks, this fails after 5 s instead of hanging.
set local lock_timeout = '5s';
create temp table this_claim as select * from embed_queue.claim('this-session', 100);

select is((select count(*)::integer from other_claim), 10, 'the other session holds 10 jobs (not committed)');
select is((select count(*)::integer from this_claim), 45,
  'this session takes the other 45 at the same time, without waiting');
select is_empty($$select id from other_claim intersect select id from this_claim$$,
  'no job is handed to both');

select dblink_exec('other', 'rollback');
select dblink_disconnect('other');

select * from finish();
rollback;
