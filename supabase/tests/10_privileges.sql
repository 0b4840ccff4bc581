-- anon and authenticated can do nothing with the queue or the machinery; service_role can.
begin;
set local search_path = public, extensions;
select plan(21);

set local role anon;
select throws_ok($$select * from public.embedding_queue$$, '42501', null, 'anon cannot read the queue');
select throws_ok($$insert into public.embedding_queue (table_name, record_id, embedding_column) values ('sessions', 'x', 'title_embedding')$$,
  '42501', null, 'anon cannot write the queue');
select throws_ok($$select * from embed_queue.claim('x', 1)$$, '42501', null, 'anon cannot claim');
select throws_ok($$select embed_queue.invoke('manual')$$, '42501', null, 'anon cannot invoke');
select throws_ok($$select embed_queue.queue_secret()$$, '42501', null, 'anon cannot read the queue secret');
select throws_ok($$select * from embed_queue.queue_status$$, '42501', null, 'anon cannot read the views');
reset role;

set local role authenticated;
set local request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
select throws_ok($$select * from public.embedding_queue$$, '42501', null, 'authenticated cannot read the queue');
select throws_ok($$update public.embedding_queue set status = 'pending'$$, '42501', null, 'authenticated cannot update the queue');
select throws_ok($$select * from embed_queue.complete('x', '{}', '{}', '{}', '{}', '{}', 'm', 1536)$$, '42501', null,
  'authenticated cannot complete');
select throws_ok($$select * from embed_queue.fail('x', '[]')$$, '42501', null, 'authenticated cannot fail jobs');
select throws_ok($$select embed_queue.register_target('sessions', 'title', 'title_embedding')$$, '42501', null,
  'authenticated cannot register targets');
select throws_ok($$select * from embed_queue.settings$$, '42501', null, 'authenticated cannot read settings');
reset role;

-- Function privileges, whatever the schema's usage: no EXECUTE for anon or authenticated on
-- any function of the schema (security definer ones above all).
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'embed_queue'::regnamespace
      and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute'))$$,
  'no function in embed_queue is executable by anon or authenticated');
select is_empty(
  $$select c.oid::regclass::text from pg_class c
    where c.relnamespace = 'embed_queue'::regnamespace and c.relkind in ('r', 'v')
      and (has_table_privilege('anon', c.oid, 'select') or has_table_privilege('authenticated', c.oid, 'select'))$$,
  'no table or view in embed_queue is readable by anon or authenticated');
select ok(not has_sequence_privilege('anon', 'public.embedding_queue_id_seq', 'usage')
          and not has_sequence_privilege('authenticated', 'public.embedding_queue_id_seq', 'usage'),
  'anon and authenticated cannot use the queue''s id sequence');
select ok(not has_schema_privilege('anon', 'embed_queue', 'usage') and not has_schema_privilege('authenticated', 'embed_queue', 'usage'),
  'anon and authenticated have no usage on schema embed_queue');

-- service_role does the worker's and the operator's work.
set local role service_role;
select lives_ok($$select * from embed_queue.claim('svc', 1)$$, 'service_role can claim');
select lives_ok($$select * from embed_queue.release('svc')$$, 'service_role can release');
select lives_ok($$select * from embed_queue.queue_status$$, 'service_role can read the views');
select lives_ok($$select count(*) from public.embedding_queue$$, 'service_role can read the queue');
select ok(embed_queue.queue_secret() is not null, 'service_role can read the queue secret');
reset role;

select * from finish();
rollback;
