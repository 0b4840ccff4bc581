-- Not on an adopted install: written for the project's own tables, not the guide's (tests/adopt).
-- The webhook: a statement leaving runnable jobs calls the function once, not again in the
-- same transaction nor within settings.webhook_min_interval_ms, and never for the worker
-- API's own updates. A transaction remembers that it called (embed_queue.poke_skip_until);
-- the test clears that where it plays a new transaction.
begin;
set local search_path = public, extensions;
select plan(11);

\ir helpers/rows.sql
select pg_temp.reset();
select pg_temp.new_session('Webhook session 1', p_id => '7e570000-0000-4000-8000-000000000001');
select pg_temp.new_session('Webhook session 2', p_id => '7e570000-0000-4000-8000-000000000002');
select pg_temp.new_session('Webhook session 3', p_id => '7e570000-0000-4000-8000-000000000003');
-- (Those inserts called: the test plays a new transaction from here.)
set local embed_queue.poke_skip_until = '';

update embed_queue.webhook_state set last_poke_at = null;
delete from net.http_request_queue;

-- A bulk insert of 50 sessions: one call.
insert into public.sessions (user_id, title)
select 'a11ce000-0000-4000-8000-000000000001', 'Bulk imported session ' || g from generate_series(1, 50) g;
select is((select count(*)::integer from net.http_request_queue), 1, 'a bulk insert makes one call');
select results_eq(
  $$select method::text, url, convert_from(body, 'UTF8')::jsonb from net.http_request_queue$$,
  $$select 'POST'::text, (select decrypted_secret collate "default" from vault.decrypted_secrets where name = 'embed_queue_url'), '{"trigger": "webhook"}'::jsonb$$,
  'the call posts {"trigger": "webhook"} to the Vault URL');

-- More work in the same transaction: no second call (all its calls would leave at commit).
insert into public.summaries (user_id, content) values ('a11ce000-0000-4000-8000-000000000001', 'One more summary');
update embedding_queue set status = 'pending' where record_id = '7e570000-0000-4000-8000-000000000001';
select is((select count(*)::integer from net.http_request_queue), 1, 'no second call in the same transaction');

-- A new transaction within the interval: no call.
set local embed_queue.poke_skip_until = '';
insert into public.summaries (user_id, content) values ('a11ce000-0000-4000-8000-000000000001', 'Within the interval');
select is((select count(*)::integer from net.http_request_queue), 1, 'no second call within the interval');

-- After the interval the next runnable statement calls again.
set local embed_queue.poke_skip_until = '';
update embed_queue.webhook_state set last_poke_at = clock_timestamp() - interval '3 seconds';
insert into public.summaries (user_id, content) values ('a11ce000-0000-4000-8000-000000000001', 'After the interval');
select is((select count(*)::integer from net.http_request_queue), 2, 'after the interval: a second call');

-- Statements that leave nothing runnable do not call.
set local embed_queue.poke_skip_until = '';
update embed_queue.webhook_state set last_poke_at = null;
insert into public.summaries (user_id, content) values ('a11ce000-0000-4000-8000-000000000001', '');
insert into public.sessions (user_id, title, deleted_at) values ('a11ce000-0000-4000-8000-000000000001', 'Deleted', now());
update embedding_queue set run_at = now() + interval '1 hour' where record_id = '7e570000-0000-4000-8000-000000000002';
select is((select count(*)::integer from net.http_request_queue), 2, 'skipped, soft-deleted or scheduled-later work makes no call');

-- The worker API's own updates never call, even those leaving jobs pending.
create temp table held as select * from embed_queue.claim('w', 3);
select embed_queue.release('w');
select is((select count(*)::integer from net.http_request_queue), 2, 'claim and release make no call');
select ok((select count(*) = 3 from embedding_queue where status = 'pending' and run_at <= now() and updated_at = now()
           and record_id in (select record_id from held)), 'although release left runnable jobs');

-- The guide's retry of failed jobs calls too (it is a person's update).
set local embed_queue.poke_skip_until = '';
update embed_queue.webhook_state set last_poke_at = null;
update embedding_queue set status = 'failed' where record_id = '7e570000-0000-4000-8000-000000000003';
UPDATE embedding_queue 
SET status = 'pending', error_message = NULL 
WHERE status = 'failed';
select is((select count(*)::integer from net.http_request_queue), 3, 'the guide''s retry makes a call');

-- A call that fails does not fail the writer's statement.
set local embed_queue.poke_skip_until = '';
update embed_queue.webhook_state set last_poke_at = null;
-- (invoke() is the project's own, so `postgres` may replace it for this rolled-back test;
-- net.http_post belongs to supabase_admin, as on hosted, and cannot be.)
create or replace function embed_queue.invoke(p_trigger text)
returns bigint language plpgsql security definer set search_path = ''
as $f$ begin raise exception 'simulated pg_net failure'; end $f$;
set local client_min_messages = error;
select lives_ok(
  $$insert into public.sessions (user_id, title) values ('a11ce000-0000-4000-8000-000000000001', 'Written while the call fails')$$,
  'a failing call does not fail the insert');
select is((select status from embedding_queue where content = 'Written while the call fails'), 'pending',
  'and the job is queued for pg_cron to pick up');

select * from finish();
rollback;
