-- Adopting the guide's install, on any database: triggers of the user's that write into
-- embedding_queue are reported and dropped only on request (functions kept unless asked); one
-- that fires on every update cannot re-queue the vector complete() just wrote; vectors of
-- unknown origin are counted, trusted by default, and queued again as idle-time bulk work with
-- settings.legacy_vectors = 'reembed'. (The guide's own install is built by tests/adopt.)
begin;
set local search_path = public, extensions;
select plan(14);

create table public.adopt_notes (
  id bigint generated always as identity primary key,
  body text,
  body_embedding extensions.vector(3)
);
select embed_queue.register_target('adopt_notes', 'body', 'body_embedding', p_user_column => null, p_deleted_column => null);

-- The worst a user's trigger can do: queue the row on every update, whatever changed.
create function public.adopt_notes_queue() returns trigger language plpgsql as $$
begin
  insert into public.embedding_queue (table_name, record_id, content, embedding_column)
  values ('adopt_notes', new.id, new.body, 'body_embedding')
  on conflict (table_name, record_id, embedding_column) do update set content = excluded.content, status = 'pending';
  return new;
end
$$;
create trigger adopt_notes_queue after insert or update on public.adopt_notes
  for each row execute function public.adopt_notes_queue();

select results_eq(
  $$select table_name, trigger_name, function_name, enabled from embed_queue.old_triggers where table_name = 'adopt_notes'$$,
  $$values ('adopt_notes'::text, 'adopt_notes_queue'::text, 'public.adopt_notes_queue'::text, true)$$,
  'the user''s trigger is reported, embed_queue''s own are not');
select is_empty(
  $$select 1 from embed_queue.old_triggers where function_name like 'embed_queue.%'$$,
  'embed_queue''s own trigger functions are never reported');

insert into public.adopt_notes (body) values ('a note');
select is((select count(*)::integer from embedding_queue where table_name = 'adopt_notes'), 1,
  'one insert, two triggers: one job');

-- Embed it: the vector write fires the user's trigger, whose echo is not queued.
update embedding_queue set run_at = now() + interval '1 hour' where table_name <> 'adopt_notes' and status = 'pending';
create temp table c as select * from embed_queue.claim('adopt-worker', 10, null, array['adopt_notes']);
select is((select count(*)::integer from c), 1, 'the job is claimed');
select results_eq(
  $$select outcome from embed_queue.complete('adopt-worker', (select array_agg(id) from c), (select array_agg(content_hash) from c),
      array['[1,0,0]'], array[3], array[false], 'text-embedding-3-small', 3)$$,
  $$values ('completed'::text)$$,
  'complete() writes the vector');
select results_eq(
  $$select status, model from embedding_queue where table_name = 'adopt_notes'$$,
  $$values ('completed'::text, 'text-embedding-3-small'::text)$$,
  'the user''s trigger did not queue the row again when the vector was written');

-- A change of text is still queued once (both triggers upsert the one job).
update public.adopt_notes set body = 'a changed note';
select results_eq(
  $$select count(*)::integer, min(status), min(content) from embedding_queue where table_name = 'adopt_notes'$$,
  $$values (1, 'pending'::text, 'a changed note'::text)$$,
  'a changed text: one pending job with the new content');

-- Dropping: the trigger goes, the function stays unless asked.
select results_eq(
  $$select table_name, trigger_name, function_dropped from embed_queue.drop_old_triggers('adopt_notes')$$,
  $$values ('public.adopt_notes'::text, 'adopt_notes_queue'::text, false)$$,
  'drop_old_triggers drops the trigger and says so');
select is_empty($$select 1 from embed_queue.old_triggers where table_name = 'adopt_notes'$$, 'nothing left to report');
select has_function('public', 'adopt_notes_queue', 'the user''s function is kept');

create trigger adopt_notes_queue_again after insert on public.adopt_notes
  for each row execute function public.adopt_notes_queue();
select results_eq(
  $$select function_name, function_dropped from embed_queue.drop_old_triggers('public.adopt_notes', p_drop_functions => true) where function_dropped$$,
  $$values ('public.adopt_notes_queue()'::text, true)$$,
  'p_drop_functions => true drops the function once no trigger uses it');

-- Vectors of unknown origin: a completed job with no model.
delete from embedding_queue;
insert into public.adopt_notes (body) values ('embedded by the old script');
update embedding_queue set status = 'completed', model = null where table_name = 'adopt_notes' and content = 'embedded by the old script';
select results_eq(
  $$select unknown_origin::integer from embed_queue.legacy_vectors where table_name = 'adopt_notes'$$,
  $$values (1)$$,
  'legacy_vectors counts it');
select embed_queue.tick();
select is((select status from embedding_queue where content = 'embedded by the old script'), 'completed',
  'legacy_vectors = trust (the default): tick leaves it alone');
update embed_queue.settings set legacy_vectors = 'reembed';
select embed_queue.tick();
select results_eq(
  $$select status, attempts from embedding_queue where content = 'embedded by the old script'$$,
  $$values ('pending'::text, 0)$$,
  'legacy_vectors = reembed and nothing else to do: tick queues it again with a fresh start');

select * from finish();
rollback;
