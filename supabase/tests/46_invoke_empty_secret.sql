-- An empty or short Vault queue secret is treated like a missing one: invoke() sends nothing,
-- warns, and leaves a run record (at most hourly) saying why; invoke_problem() says it for
-- status and doctor.
begin;
set local search_path = public, extensions;
select plan(7);

select is(embed_queue.invoke_problem(), null, 'with both secrets set there is no problem');

select vault.update_secret(id, '') from vault.secrets where name = 'embed_queue_secret';
delete from net.http_request_queue;
delete from embed_queue.runs where worker = 'invoke';
set local client_min_messages = error;
select is(embed_queue.invoke('cron'), null::bigint, 'an empty secret: nothing is called');
select is((select count(*)::integer from net.http_request_queue), 0, 'and nothing is sent');
select alike(embed_queue.invoke_problem(), '%embed_queue_secret is empty%', 'invoke_problem says the secret is empty');
select embed_queue.invoke('webhook');
select results_eq($$select count(*)::integer, min(error) from embed_queue.runs where worker = 'invoke'$$,
  $$values (1, 'not called: ' || embed_queue.invoke_problem())$$, 'one run record says why, not one per call');

select vault.update_secret(id, 'too-short-secret') from vault.secrets where name = 'embed_queue_secret';
select is(embed_queue.invoke('cron'), null::bigint, 'a secret under 32 characters is not sent either');
select alike(embed_queue.invoke_problem(), '%shorter than 32 characters%', 'and invoke_problem says so');

select * from finish();
rollback;
