-- Not on an adopted install: written for the project's own tables, not the guide's (tests/adopt).
-- The webhook under concurrency: while another transaction holds the webhook state (it is
-- calling the function itself), a statement neither waits for it nor calls a second time.
begin;
set local search_path = public, extensions;
select plan(3);

\ir helpers/rows.sql
select pg_temp.reset();
select pg_temp.alice();

create extension if not exists dblink with schema extensions;
-- Over TCP with the local stack's password: dblink refuses a non-superuser a connection
-- that asks for none.
select dblink_connect('other', format('dbname=%s user=%s password=postgres host=127.0.0.1 port=%s',
  current_database(), current_user, current_setting('port')));
-- The committed state must allow a call (last call long ago), or the interval alone would
-- explain the silence: the other session commits that first (harmless: it only permits a
-- call), then holds the row.
select dblink_exec('other', 'update embed_queue.webhook_state set last_poke_at = null');
select dblink_exec('other', 'begin');
select dblink_exec('other', 'update embed_queue.webhook_state set last_poke_at = null');

delete from net.http_request_queue;
-- Were the webhook to wait for the other transaction, this fails after 5 s instead of hanging.
set local lock_timeout = '5s';
select lives_ok(
  $$insert into public.sessions (user_id, title) values ('a11ce000-0000-4000-8000-000000000001', 'While another one calls')$$,
  'an insert does not wait for the transaction holding the webhook state');
select is((select count(*)::integer from net.http_request_queue), 0, 'and makes no call of its own');

select dblink_exec('other', 'rollback');
select dblink_disconnect('other');

-- Once the other transaction is gone, a new transaction's next runnable statement calls.
set local embed_queue.poke_skip_until = '';
update embed_queue.webhook_state set last_poke_at = null;
insert into public.sessions (user_id, title) values ('a11ce000-0000-4000-8000-000000000001', 'After the other one');
select is((select count(*)::integer from net.http_request_queue), 1, 'the next statement calls');

select * from finish();
rollback;
