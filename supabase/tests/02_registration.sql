-- register_target: clear errors, names taken literally (never spliced), idempotent.
begin;
set local search_path = public, extensions;
select plan(20);

create table public.notes (
  id bigint generated always as identity primary key,
  body text,
  body_embedding extensions.vector(3),
  not_a_vector real[],
  owner uuid,
  deleted_at timestamptz
);
create table public.no_pk (body text, emb extensions.vector(3));
create table public.two_pk (a int, b int, body text, emb extensions.vector(3), primary key (a, b));

select throws_ok(
  $$select embed_queue.register_target('missing_table', 'body', 'body_embedding')$$,
  '42P01', 'embed_queue.register_target: table public.missing_table does not exist',
  'unknown table: 42P01 with its name');
select throws_ok(
  $$select embed_queue.register_target('x; drop table public.sessions', 'title', 'title_embedding')$$,
  '42P01', null,
  'a name carrying SQL is refused as no such table');
select has_table('public', 'sessions', 'and nothing was dropped');
select throws_ok(
  $$select embed_queue.register_target('sessions', 'title; drop table public.summaries', 'title_embedding')$$,
  '42703', null,
  'a column name carrying SQL is refused as no such column');
select has_table('public', 'summaries', 'and nothing was dropped');
select throws_ok(
  $$select embed_queue.register_target('notes', 'nope', 'body_embedding', p_user_column => 'owner')$$,
  '42703', 'embed_queue.register_target: column nope of table public.notes does not exist',
  'unknown content column: 42703');
select throws_ok(
  $$select embed_queue.register_target('notes', 'body', 'nope', p_user_column => 'owner')$$,
  '42703', null, 'unknown embedding column: 42703');
select throws_ok(
  $$select embed_queue.register_target('notes', 'body', 'not_a_vector', p_user_column => 'owner')$$,
  '42804', 'embed_queue.register_target: column public.notes.not_a_vector is of type real[], not vector',
  'embedding column of another type: 42804');
select throws_ok(
  $$select embed_queue.register_target('notes', 'body', 'body_embedding')$$,
  '42703', 'embed_queue.register_target: column user_id of table public.notes does not exist',
  'default user column missing: 42703 (hint says to pass null)');
select throws_ok(
  $$select embed_queue.register_target('no_pk', 'body', 'emb', p_user_column => null, p_deleted_column => null)$$,
  '42P16', null, 'table without a primary key: 42P16');
select throws_ok(
  $$select embed_queue.register_target('two_pk', 'body', 'emb', p_user_column => null, p_deleted_column => null)$$,
  '42P16', null, 'composite primary key: 42P16');
select throws_ok(
  $$select embed_queue.register_target('notes', null, 'body_embedding', 'body; select 1', 'owner')$$,
  '42601', null, 'content expression with a ";" is refused');
select throws_ok(
  $$select embed_queue.register_target('notes', null, 'body_embedding', 'no_such_column || ''x''', 'owner')$$,
  '42601', null, 'content expression that does not compile is refused');

-- A valid registration, twice: one target, one set of triggers.
select lives_ok(
  $$select embed_queue.register_target('notes', 'body', 'body_embedding', p_user_column => 'owner')$$,
  'notes.body -> body_embedding registers');
select lives_ok(
  $$select embed_queue.register_target('notes', 'body', 'body_embedding', p_user_column => 'owner')$$,
  'registering again is fine');
select results_eq(
  $$select count(*), min(pk_column), min(pk_type), min(dimensions) from embed_queue.targets where table_name = 'notes'$$,
  $$values (1::bigint, 'id'::text, 'bigint'::text, 3)$$,
  'one target row, with key column, key type and dimensions read from the catalog');
select is(
  (select count(*)::integer from pg_trigger where tgrelid = 'public.notes'::regclass and not tgisinternal),
  6, 'six triggers on the table (clear, guard, insert, update, delete, keep)');

insert into public.notes (body) values ('first note');
select results_eq(
  $$select table_name, embedding_column, status, content from public.embedding_queue where table_name = 'notes'$$,
  $$values ('notes'::text, 'body_embedding'::text, 'pending'::text, 'first note'::text)$$,
  'an insert into the new target is queued (bigint key as record_id)');

-- Awkward but legal names work, in another schema, with a content expression.
create schema "Odd Schema";
create table "Odd Schema"."Notes; drop table x" (
  "Key" uuid primary key default gen_random_uuid(),
  "Title" text,
  "Body" text,
  "Vec tor" extensions.vector(3)
);
select lives_ok(
  $$select embed_queue.register_target('Odd Schema.Notes; drop table x', null, 'Vec tor',
      p_content_expression => 'concat_ws('' - '', r."Title", r."Body")', p_user_column => null, p_deleted_column => null)$$,
  'quoted identifiers and a content expression register');
insert into "Odd Schema"."Notes; drop table x" ("Title", "Body") values ('Hello', 'world');
select results_eq(
  $$select table_name, content from public.embedding_queue where embedding_column = 'Vec tor'$$,
  $$values ('Odd Schema.Notes; drop table x'::text, 'Hello - world'::text)$$,
  'the expression gives the content; table_name is schema.table outside public');

select * from finish();
rollback;
