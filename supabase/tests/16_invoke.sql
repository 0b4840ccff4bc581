-- invoke: posts to the Vault URL with the Vault secret as Bearer credential; without the
-- secrets it warns and returns null.
begin;
set local search_path = public, extensions;
select plan(7);

\ir helpers/rows.sql
select pg_temp.reset();
select pg_temp.new_job('pending', 'Runnable work for tick');

delete from net.http_request_queue;
select ok(embed_queue.invoke('manual') is not null, 'invoke returns the pg_net request id');
select results_eq(
  $$select method::text, url, headers ->> 'Authorization', headers ->> 'Content-Type', convert_from(body, 'UTF8')::jsonb, timeout_milliseconds
    from net.http_request_queue$$,
  $$select 'POST'::text,
           (select decrypted_secret collate "default" from vault.decrypted_secrets where name = 'embed_queue_url'),
           'Bearer ' || (select decrypted_secret collate "default" from vault.decrypted_secrets where name = 'embed_queue_secret'),
           'application/json'::text, '{"trigger": "manual"}'::jsonb, 5000$$,
  'POST to the Vault URL, Bearer secret from Vault, JSON body with the trigger, 5 s timeout');

-- tick with runnable work calls with trigger cron.
delete from net.http_request_queue;
select ok(embed_queue.tick() is not null, 'tick with runnable work calls the function');
select is((select convert_from(body, 'UTF8')::jsonb ->> 'trigger' from net.http_request_queue), 'cron', 'with trigger cron');

-- A changed secret is used at once.
select vault.update_secret(id, 'rotated-secret-0123456789abcdef0123456789') from vault.secrets where name = 'embed_queue_secret';
delete from net.http_request_queue;
select embed_queue.invoke('manual');
select is((select headers ->> 'Authorization' from net.http_request_queue), 'Bearer rotated-secret-0123456789abcdef0123456789', 'a rotated secret is used at once');

-- Without the secrets: a warning, null, and no request.
delete from vault.secrets where name in ('embed_queue_url', 'embed_queue_secret');
delete from net.http_request_queue;
set local client_min_messages = error;
select is(embed_queue.invoke('manual'), null::bigint, 'missing secrets: null');
select is((select count(*)::integer from net.http_request_queue), 0, 'missing secrets: nothing sent');

select * from finish();
rollback;
