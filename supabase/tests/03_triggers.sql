-- Not on an adopted install: written for the project's own tables, not the guide's (tests/adopt).
-- Triggers on a registered table keep its jobs in step with its rows.
begin;
set local search_path = public, extensions;
select plan(26);

\ir helpers/rows.sql
select pg_temp.reset();
select pg_temp.bob();
select pg_temp.new_session('Weekly 1:1 with Priya', p_id => '7e570000-0000-4000-8000-000000000003');
select pg_temp.new_session('Q3 roadmap review', p_id => '7e570000-0000-4000-8000-000000000004');
select pg_temp.new_session('Postgres slow query', p_id => '7e570000-0000-4000-8000-000000000005');
select pg_temp.new_summary('A summary to delete', p_id => '7e570000-0000-4000-8000-000000000022');
select pg_temp.new_summary('A summary to empty', p_id => '7e570000-0000-4000-8000-000000000010');
-- As if queued before this transaction: the jobs' updated_at lies in the past.
set local session_replication_role = replica;
update embedding_queue set updated_at = now() - interval '1 hour';
set local session_replication_role = origin;

create function pg_temp.vec(x float8) returns extensions.vector language sql as $$
  select ('[' || array_to_string(array_fill(x, array[1536]), ',') || ']')::extensions.vector
$$;

-- Insert: queued as pending.
insert into public.sessions (id, user_id, title)
values ('00000000-0000-4000-8000-00000000a001', 'a11ce000-0000-4000-8000-000000000001', 'Trigger test session');
select results_eq(
  $$select status, content, user_id, attempts from embedding_queue where record_id = '00000000-0000-4000-8000-00000000a001'$$,
  $$values ('pending'::text, 'Trigger test session'::text, 'a11ce000-0000-4000-8000-000000000001'::uuid, 0)$$,
  'insert queues a pending job with content and user');

-- Touching another column writes nothing to the queue (the job keeps its old updated_at).
update public.sessions set created_at = created_at - interval '1 day' where id = '7e570000-0000-4000-8000-000000000003';
select ok(
  (select updated_at < now() from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000003'),
  'updating an unrelated column does not touch the job');

-- Writing the embedding column is not a content change: the vector stays, the job is untouched.
update public.sessions set title_embedding = pg_temp.vec(0.5) where id = '7e570000-0000-4000-8000-000000000003';
select ok(
  (select title_embedding is not null from public.sessions where id = '7e570000-0000-4000-8000-000000000003'),
  'writing the embedding keeps it');
select ok(
  (select updated_at < now() from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000003'),
  'writing the embedding does not touch the job');

-- Content change: the vector is cleared at once and the job is pending again, fresh.
select is((select count(*)::integer from embed_queue.claim('trigger-worker', 100, null, array['sessions'])
           where record_id = '7e570000-0000-4000-8000-000000000003'), 1, 'the job is claimed by a worker');
update public.sessions set title = 'Weekly 1:1 with Priya (moved to Thursdays)' where id = '7e570000-0000-4000-8000-000000000003';
select ok(
  (select title_embedding is null from public.sessions where id = '7e570000-0000-4000-8000-000000000003'),
  'content change clears the embedding');
select results_eq(
  $$select status, content, attempts, locked_by, locked_until, content_hash
    from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000003'$$,
  $$values ('pending'::text, 'Weekly 1:1 with Priya (moved to Thursdays)'::text, 0, null::text, null::timestamptz, null::text)$$,
  'content change re-pends the job with the new content, attempts 0, lease and hash cleared');

-- Setting the same content again is no change.
update public.sessions set title_embedding = pg_temp.vec(0.25) where id = '7e570000-0000-4000-8000-000000000004';
update public.sessions set title = title where id = '7e570000-0000-4000-8000-000000000004';
select ok(
  (select title_embedding is not null from public.sessions where id = '7e570000-0000-4000-8000-000000000004'),
  'an update that leaves the content as it was keeps the embedding');

-- Soft delete withdraws the job; undelete queues it again.
update public.sessions set deleted_at = now() where id = '7e570000-0000-4000-8000-000000000005';
select is((select count(*)::integer from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000005'), 0,
  'soft delete withdraws the job');
update public.sessions set deleted_at = null where id = '7e570000-0000-4000-8000-000000000005';
select is((select status from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000005'), 'pending',
  'undelete of a row without embedding queues it again');

-- Undelete of a row whose embedding is intact queues nothing.
update public.sessions set deleted_at = now() where id = '7e570000-0000-4000-8000-000000000004';
update public.sessions set deleted_at = null where id = '7e570000-0000-4000-8000-000000000004';
select is((select count(*)::integer from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000004'), 0,
  'undelete of a row that kept its embedding queues nothing');

-- Inserting a soft-deleted row queues nothing.
insert into public.sessions (id, user_id, title, deleted_at)
values ('00000000-0000-4000-8000-00000000a002', 'a11ce000-0000-4000-8000-000000000001', 'Born deleted', now());
select is((select count(*)::integer from embedding_queue where record_id = '00000000-0000-4000-8000-00000000a002'), 0,
  'a row inserted soft-deleted is not queued');

-- Hard delete removes the job.
delete from public.summaries where id = '7e570000-0000-4000-8000-000000000022';
select is((select count(*)::integer from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000022'), 0,
  'hard delete removes the job');

-- Empty or null content: skipped, with the reason, and no vector.
insert into public.summaries (id, user_id, content) values
  ('00000000-0000-4000-8000-00000000b001', 'b0b00000-0000-4000-8000-000000000002', ''),
  ('00000000-0000-4000-8000-00000000b002', 'b0b00000-0000-4000-8000-000000000002', null),
  ('00000000-0000-4000-8000-00000000b003', 'b0b00000-0000-4000-8000-000000000002', '   ');
select results_eq(
  $$select status, error_message from embedding_queue
    where record_id in ('00000000-0000-4000-8000-00000000b001', '00000000-0000-4000-8000-00000000b002', '00000000-0000-4000-8000-00000000b003')
    order by record_id$$,
  $$values ('skipped'::text, 'content is empty: nothing to embed'::text),
           ('skipped', 'content is empty: nothing to embed'),
           ('skipped', 'content is empty: nothing to embed')$$,
  'empty, null and blank content are skipped with the reason');

update public.summaries set content_embedding = pg_temp.vec(0.1) where id = '7e570000-0000-4000-8000-000000000010';
update public.summaries set content = '' where id = '7e570000-0000-4000-8000-000000000010';
select ok((select content_embedding is null from public.summaries where id = '7e570000-0000-4000-8000-000000000010'),
  'content emptied: the embedding is cleared');
select is((select status from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000010'), 'skipped',
  'content emptied: the job is skipped');
update public.summaries set content = 'Back with words' where id = '7e570000-0000-4000-8000-000000000010';
select results_eq(
  $$select status, error_message, content from embedding_queue where record_id = '7e570000-0000-4000-8000-000000000010'$$,
  $$values ('pending'::text, null::text, 'Back with words'::text)$$,
  'content filled again: pending');

-- A primary key change moves the job to the new key.
update public.sessions set id = '00000000-0000-4000-8000-00000000a003' where id = '00000000-0000-4000-8000-00000000a001';
select is((select count(*)::integer from embedding_queue where record_id = '00000000-0000-4000-8000-00000000a001'), 0,
  'key change: no job left under the old key');
select is((select status from embedding_queue where record_id = '00000000-0000-4000-8000-00000000a003'), 'pending',
  'key change: job under the new key');

-- A user's own write goes through the definer trigger although the user cannot touch the queue.
set local role authenticated;
set local request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
insert into public.sessions (id, user_id, title)
values ('00000000-0000-4000-8000-00000000a004', 'b0b00000-0000-4000-8000-000000000002', 'Written by Bob through the API');
reset role;
select is((select status from embedding_queue where record_id = '00000000-0000-4000-8000-00000000a004'), 'pending',
  'an authenticated user''s insert is queued');

-- Deleting a user cascades to the rows and their jobs.
delete from auth.users where id = 'b0b00000-0000-4000-8000-000000000002';
select is((select count(*)::integer from embedding_queue where user_id = 'b0b00000-0000-4000-8000-000000000002'), 0,
  'deleting a user removes the jobs of their rows');

-- One statement inserting many rows: queued by one statement-level trigger, row by row as the
-- single insert: live rows pending, empty content skipped, soft-deleted rows not queued.
insert into public.sessions (id, user_id, title, deleted_at)
select ('00000000-0000-4000-8000-0000000b' || lpad(g::text, 4, '0'))::uuid,
       'a11ce000-0000-4000-8000-000000000001',
       case when g = 2 then '   ' else 'Bulk row ' || g end,
       case when g = 3 then now() end
from generate_series(1, 500) g;
select is((select count(*)::integer from embedding_queue where record_id like '00000000-0000-4000-8000-0000000b%'), 499,
  'a 500-row insert queues 499 jobs (the soft-deleted row none)');
select results_eq(
  $$select status, count(*)::integer from embedding_queue where record_id like '00000000-0000-4000-8000-0000000b%'
    group by status order by status$$,
  $$values ('pending'::text, 498), ('skipped'::text, 1)$$,
  'bulk insert: blank content skipped, the rest pending');
select results_eq(
  $$select content, user_id from embedding_queue where record_id = '00000000-0000-4000-8000-0000000b0007'$$,
  $$values ('Bulk row 7'::text, 'a11ce000-0000-4000-8000-000000000001'::uuid)$$,
  'bulk insert: each job holds its own row''s content and user');

-- A job left under a key (failed, attempts spent) starts afresh when a row is inserted with it.
insert into public.embedding_queue (table_name, record_id, embedding_column, content, status, attempts, error_message)
values ('sessions', '00000000-0000-4000-8000-00000000a009', 'title_embedding', 'old text', 'failed', 5, 'earlier failure');
insert into public.sessions (id, user_id, title)
values ('00000000-0000-4000-8000-00000000a009', 'a11ce000-0000-4000-8000-000000000001', 'New row, old key');
select results_eq(
  $$select status, content, attempts, error_message from embedding_queue where record_id = '00000000-0000-4000-8000-00000000a009'$$,
  $$values ('pending'::text, 'New row, old key'::text, 0, null::text)$$,
  'insert over an old job: pending again with the new content and fresh attempts');

select ok(
  (select (tgtype & 1) = 0 and tgnewtable = 'new_rows' from pg_trigger
   where tgrelid = 'public.sessions'::regclass and tgname = 'embed_queue_title_embedding_insert'),
  'the insert trigger runs once per statement, over its transition table');

select * from finish();
rollback;
