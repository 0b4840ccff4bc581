-- Targets: which (table, content, embedding column) pairs are kept embedded, and the
-- triggers that keep the queue in step with them.

create table embed_queue.targets (
  id bigint generated always as identity primary key,
  schema_name text not null,
  table_name text not null,
  queue_table text generated always as (
    case when schema_name = 'public' then table_name else schema_name || '.' || table_name end
  ) stored,
  embedding_column text not null,
  content_column text,
  content_expression text,
  pk_column text not null,
  pk_type text not null,
  user_column text,
  deleted_column text,
  dimensions integer,
  created_at timestamptz not null default now(),
  constraint targets_table_column_key unique (schema_name, table_name, embedding_column),
  constraint targets_content_check check (content_column is not null or content_expression is not null)
);

comment on table embed_queue.targets is
  'Registered targets (embed_queue.register_target): one row per (table, embedding column).';
comment on column embed_queue.targets.queue_table is 'The table''s name in embedding_queue.table_name: bare for schema public, schema.table otherwise.';
comment on column embed_queue.targets.content_column is 'Column whose text is embedded (unless content_expression is set).';
comment on column embed_queue.targets.content_expression is 'SQL expression over the row''s columns (alias r) giving the text to embed; overrides content_column.';
comment on column embed_queue.targets.pk_column is 'The single-column primary key; embedding_queue.record_id holds it as text.';
comment on column embed_queue.targets.pk_type is 'Type of the primary key (format_type), used to cast record_id back.';
comment on column embed_queue.targets.user_column is 'uuid column copied into embedding_queue.user_id (null: none).';
comment on column embed_queue.targets.deleted_column is 'Soft-delete column: a row with it set is not embedded (null: no soft delete).';
comment on column embed_queue.targets.dimensions is 'Dimensions of the vector column (its typmod), null when unconstrained.';

grant select on embed_queue.targets to service_role;

create function embed_queue.is_blank(p_content text)
returns boolean
language sql immutable security invoker set search_path = ''
as $$
  select p_content is null or p_content !~ '[^[:space:]]'
$$;
comment on function embed_queue.is_blank(text) is
  'True when there is nothing to embed: null, empty or only white space.';

create function embed_queue.valid_key(p_value text, p_type regtype)
returns text
language plpgsql stable security invoker set search_path = ''
as $$
begin
  execute pg_catalog.format('select %L::%s', p_value, p_type);
  return p_value;
exception
  when data_exception then
    return null;
end
$$;
comment on function embed_queue.valid_key(text, regtype) is
  'p_value when it is a valid value of p_type, else null: a malformed record_id names no row instead of breaking a claim.';

-- SQL text for a target's content and soft-delete test, over a row called p_row (an alias, or
-- old/new in a trigger). Identifiers are quoted with %I; the content expression is trusted SQL
-- from the owner (validated at registration).
create function embed_queue.content_sql(p_target embed_queue.targets, p_row text)
returns text
language sql immutable security invoker set search_path = ''
as $$
  select case
    when p_target.content_expression is null
      then pg_catalog.format('(%s.%I)::text', p_row, p_target.content_column)
    else pg_catalog.format('(select (%s)::text from (select %s.*) as r)', p_target.content_expression, p_row)
  end
$$;
comment on function embed_queue.content_sql(embed_queue.targets, text) is
  'SQL expression giving the target''s content from row p_row (used to generate triggers and dynamic statements).';

create function embed_queue.deleted_sql(p_target embed_queue.targets, p_row text)
returns text
language sql immutable security invoker set search_path = ''
as $$
  select case
    when p_target.deleted_column is null then 'false'
    else pg_catalog.format('(%s.%I is not null)', p_row, p_target.deleted_column)
  end
$$;
comment on function embed_queue.deleted_sql(embed_queue.targets, text) is
  'SQL expression that is true when row p_row is soft-deleted (false for targets without soft delete).';

create function embed_queue.user_sql(p_target embed_queue.targets, p_row text)
returns text
language sql immutable security invoker set search_path = ''
as $$
  select case
    when p_target.user_column is null then 'null::uuid'
    else pg_catalog.format('%s.%I', p_row, p_target.user_column)
  end
$$;
comment on function embed_queue.user_sql(embed_queue.targets, text) is
  'SQL expression giving the owner (uuid) of row p_row, null::uuid for targets without a user column.';

-- The one definition of a content's hash. The TypeScript side never hashes contents for the
-- queue: it carries claim()'s hash back to complete(). (Test code that counts texts by hash,
-- sha256Hex in tests/fakes/openai_server.ts, computes the same: hex sha256 of the UTF-8 bytes.)
create function embed_queue.content_hash(p_content text)
returns text
language sql immutable strict security invoker set search_path = ''
as $$
  select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(p_content, 'UTF8')), 'hex')
$$;
comment on function embed_queue.content_hash(text) is
  'Hex sha256 of the content''s UTF-8 bytes: what claim() hands out and complete() checks the source row against.';

create function embed_queue.find_targets(p_table text)
returns setof embed_queue.targets
language sql stable security invoker set search_path = ''
as $$
  select t.* from embed_queue.targets t
  where t.queue_table = p_table or t.schema_name || '.' || t.table_name = p_table
  order by t.created_at, t.id
$$;
comment on function embed_queue.find_targets(text) is
  'Targets of a table given as it appears in embedding_queue.table_name, or as schema.table; first registered first.';

-- The one "no target is registered" error, for the functions that take a table's name.
create function embed_queue.require_target(p_caller text, p_table text)
returns embed_queue.targets
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_target embed_queue.targets;
begin
  select * into v_target from embed_queue.find_targets(p_table) limit 1;
  if not found then
    raise exception '%: no target is registered for table %', p_caller, pg_catalog.quote_literal(p_table)
      using errcode = 'P0002',
            hint = 'See embed_queue.targets; tables are registered with embed_queue.register_target().';
  end if;
  return v_target;
end
$$;
comment on function embed_queue.require_target(text, text) is
  'The first registered target of table p_table (as find_targets), or P0002 "<caller>: no target is registered for table ...".';

-- Upsert of jobs, as the source triggers need it: new content means a fresh pending job
-- (attempts 0, lease and content_hash cleared, which fences an in-flight run), in the fresh lane
-- (the transaction-local setting embed_queue.lane, read by the queue's lane trigger). The queue
-- keeps only the first settings.claim_max_chars characters: claim() reads the source row again
-- and hashes the whole text there, so a huge row is never copied whole into the queue.
create function embed_queue.enqueue_many(
  p_table_name text,
  p_embedding_column text,
  p_record_ids text[],
  p_contents text[],
  p_user_ids uuid[]
)
returns void
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_lane text := coalesce(pg_catalog.current_setting('embed_queue.lane', true), '');
  v_keys text[];
  v_bases bigint[];
begin
  -- Where each user's rows start, read before the insert (a lookup inside it would walk the
  -- index entries the insert itself adds).
  select pg_catalog.array_agg(k.fair_key), pg_catalog.array_agg(greatest(
           coalesce((select c.vtime from embed_queue.fair_clock c where c.lane = 'fresh'), 0),
           coalesce((select j.vtime from public.embedding_queue j
                     where j.status = 'pending' and j.lane = 'fresh' and j.fair_key = k.fair_key
                     order by j.vtime desc limit 1), 0)))
    into v_keys, v_bases
  from (select distinct coalesce(x.user_id::text, p_table_name) as fair_key from unnest(p_user_ids) as x (user_id)) k;

  -- 'fresh, given': the virtual times are computed here for the whole statement (per user: after
  -- the lane's clock and the user's last pending fresh job, one apart), so the lane trigger
  -- does not look them up row by row.
  perform pg_catalog.set_config('embed_queue.lane', 'fresh, given', true);

  insert into public.embedding_queue as q
    (table_name, record_id, embedding_column, content, user_id, status, error_message, vtime)
  select p_table_name, r.record_id, p_embedding_column, pg_catalog.left(r.content, s.claim_max_chars), r.user_id,
         case when embed_queue.is_blank(r.content) then 'skipped' else 'pending' end,
         case when embed_queue.is_blank(r.content) then 'content is empty: nothing to embed' end,
         b.base + pg_catalog.row_number() over (partition by r.fair_key order by r.ord)
  from (
    select u.*, coalesce(u.user_id::text, p_table_name) as fair_key
    from unnest(p_record_ids, p_contents, p_user_ids) with ordinality as u (record_id, content, user_id, ord)
  ) r
  join unnest(v_keys, v_bases) as b (fair_key, base) on b.fair_key = r.fair_key
  cross join embed_queue.settings s
  on conflict (table_name, record_id, embedding_column) do update set
    vtime = excluded.vtime,
    content = excluded.content,
    user_id = excluded.user_id,
    status = excluded.status,
    error_message = excluded.error_message,
    attempts = 0,
    run_at = pg_catalog.now(),
    locked_by = null,
    locked_until = null,
    content_hash = null;

  perform pg_catalog.set_config('embed_queue.lane', v_lane, true);
end
$$;
comment on function embed_queue.enqueue_many(text, text, text[], text[], uuid[]) is
  'Queues (or re-queues) rows'' embeddings in the fresh lane, one job per record id: pending with a fresh start, or skipped '
  'when the content is empty. The queue keeps the first settings.claim_max_chars characters of the text.';

create function embed_queue.enqueue(
  p_table_name text,
  p_record_id text,
  p_embedding_column text,
  p_content text,
  p_user_id uuid
)
returns void
language sql volatile security invoker set search_path = ''
as $$
  select embed_queue.enqueue_many(p_table_name, p_embedding_column, array[p_record_id], array[p_content], array[p_user_id])
$$;
comment on function embed_queue.enqueue(text, text, text, text, uuid) is
  'Queues (or re-queues) one row''s embedding: enqueue_many for one row.';

-- Triggers of the user's own (such as the guide's, which "are already in place") on a target's
-- table whose function writes into embedding_queue. They are reported, never dropped unasked:
-- embed_queue.drop_old_triggers() is the one way to drop them.
create view embed_queue.old_triggers with (security_invoker = true) as
  select distinct
         n.nspname::text collate "default" as schema_name,
         c.relname::text collate "default" as table_name,
         tg.tgname::text collate "default" as trigger_name,
         pg_catalog.format('%I.%I', pn.nspname, p.proname) collate "default" as function_name,
         p.oid::regprocedure::text as function_signature,
         tg.tgenabled <> 'D' as enabled
  from embed_queue.targets t
  join pg_catalog.pg_namespace n on n.nspname = t.schema_name
  join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = t.table_name
  join pg_catalog.pg_trigger tg on tg.tgrelid = c.oid and not tg.tgisinternal
  join pg_catalog.pg_proc p on p.oid = tg.tgfoid
  join pg_catalog.pg_namespace pn on pn.oid = p.pronamespace
  where pn.nspname <> 'embed_queue'
    and p.prolang <> (select l.oid from pg_catalog.pg_language l where l.lanname = 'c')
    and pg_catalog.pg_get_functiondef(p.oid) ~* 'embedding_queue';
comment on view embed_queue.old_triggers is
  'Triggers on a registered target''s table whose function (not embed_queue''s own) writes into embedding_queue, '
  'e.g. the guide''s. Drop them with embed_queue.drop_old_triggers().';

create function embed_queue.drop_old_triggers(p_table text default null, p_drop_functions boolean default false)
returns table (table_name text, trigger_name text, function_name text, function_dropped boolean)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_old record;
  v_functions text[] := array[]::text[];
begin
  for v_old in
    select o.* from embed_queue.old_triggers o
    where p_table is null or o.table_name = p_table or o.schema_name || '.' || o.table_name = p_table
    order by o.schema_name, o.table_name, o.trigger_name
  loop
    execute pg_catalog.format('drop trigger %I on %I.%I', v_old.trigger_name, v_old.schema_name, v_old.table_name);
    raise notice 'embed_queue: dropped trigger % on %.%', v_old.trigger_name, v_old.schema_name, v_old.table_name;
    if not (v_old.function_signature = any (v_functions)) then
      v_functions := v_functions || v_old.function_signature;
    end if;
    table_name := pg_catalog.format('%I.%I', v_old.schema_name, v_old.table_name);
    trigger_name := v_old.trigger_name;
    function_name := v_old.function_name;
    function_dropped := false;
    return next;
  end loop;

  -- The functions only when asked, and only those no trigger uses any more (never cascade).
  if p_drop_functions then
    for v_old in
      select f.sig from unnest(v_functions) as f (sig)
      where not exists (select 1 from pg_catalog.pg_trigger tg where tg.tgfoid = f.sig::regprocedure)
    loop
      execute pg_catalog.format('drop function %s', v_old.sig);
      raise notice 'embed_queue: dropped function %', v_old.sig;
      table_name := null;
      trigger_name := null;
      function_name := v_old.sig;
      function_dropped := true;
      return next;
    end loop;
  end if;
end
$$;
comment on function embed_queue.drop_old_triggers(text, boolean) is
  'Drops the triggers listed in embed_queue.old_triggers (all, or one table''s); their functions only with '
  'p_drop_functions => true and only when no trigger uses them any more. Returns what it dropped.';

-- A trigger of the user's may react to the vector complete() writes (an "after update" on the
-- table, whatever changed) by queuing the row again: every embedding would queue the next. The
-- worker API marks its own work with embed_queue.internal = on; a queue write made from a
-- trigger (depth above 1) while it is on is such an echo, and is not made.
create function embed_queue.embedding_queue_echo_guard()
returns trigger
language plpgsql volatile security invoker set search_path = ''
as $$
begin
  if coalesce(pg_catalog.current_setting('embed_queue.internal', true), '') = 'on'
     and pg_catalog.pg_trigger_depth() > 1 then
    return null;
  end if;
  return new;
end
$$;
comment on function embed_queue.embedding_queue_echo_guard() is
  'Trigger: a queue insert or update made by a source table''s trigger while the worker API writes a vector (embed_queue.internal = on) '
  'is not made, so another trigger on the table cannot re-queue what was just embedded.';

create or replace trigger embedding_queue_echo_guard before insert or update on public.embedding_queue
  for each row execute function embed_queue.embedding_queue_echo_guard();

-- One "column exists" check: the column's type, or an error that names the caller, the column
-- and the table (42703) with the caller's hint.
create function embed_queue.require_column(
  p_caller text,
  p_schema text,
  p_table text,
  p_column text,
  p_hint text,
  out type_id oid,
  out typmod integer
)
language plpgsql stable security invoker set search_path = ''
as $$
begin
  select a.atttypid, a.atttypmod into type_id, typmod
  from pg_catalog.pg_attribute a
  join pg_catalog.pg_class c on c.oid = a.attrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where n.nspname = p_schema and c.relname = p_table
    and a.attname = p_column and a.attnum > 0 and not a.attisdropped;
  if not found then
    raise exception '%: column % of table %.% does not exist', p_caller,
      pg_catalog.quote_ident(p_column), pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_table)
      using errcode = '42703', hint = p_hint;
  end if;
end
$$;
comment on function embed_queue.require_column(text, text, text, text, text) is
  'The type and typmod of column p_column of p_schema.p_table; raises 42703 "<caller>: column ... does not exist" with p_hint when there is none.';

-- Validation of register_target's arguments: the target row it would record (id and created_at
-- unset), or an error that says what is wrong. Writes nothing.
create function embed_queue.validate_target(
  p_table text,
  p_content_column text,
  p_embedding_column text,
  p_content_expression text default null,
  p_user_column text default 'user_id',
  p_deleted_column text default 'deleted_at'
)
returns embed_queue.targets
language plpgsql stable security invoker set search_path = ''
as $$
declare
  c_caller constant text := 'embed_queue.register_target';
  v_target embed_queue.targets;
  v_schema text;
  v_table text;
  v_rel oid;
  v_pk_count integer;
  v_emb record;
  v_vector oid;
begin
  if p_table is null or p_embedding_column is null then
    raise exception '%: table and embedding column are required', c_caller
      using errcode = '22004';
  end if;

  -- The table is looked up by name in the catalog, never spliced into SQL.
  if pg_catalog.strpos(p_table, '.') > 0 then
    v_schema := pg_catalog.split_part(p_table, '.', 1);
    v_table := pg_catalog.substr(p_table, pg_catalog.strpos(p_table, '.') + 1);
  else
    v_schema := 'public';
    v_table := p_table;
  end if;

  select c.oid into v_rel
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where n.nspname = v_schema and c.relname = v_table and c.relkind in ('r', 'p');

  if v_rel is null then
    raise exception '%: table %.% does not exist', c_caller,
      pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_table)
      using errcode = '42P01',
            hint = 'Give the table as name (schema public) or schema.name, spelled as in the catalog, without quotes.';
  end if;

  -- Content: a column, or an expression over the row.
  if p_content_expression is null then
    if p_content_column is null then
      raise exception '%: give a content column or a content expression', c_caller
        using errcode = '22004';
    end if;
    perform embed_queue.require_column(c_caller, v_schema, v_table, p_content_column,
      'The content column holds the text to embed.');
  else
    if pg_catalog.strpos(p_content_expression, ';') > 0 then
      raise exception '%: the content expression must be one SQL expression (no ";")', c_caller
        using errcode = '42601';
    end if;
    begin
      execute pg_catalog.format('select (%s)::text from %I.%I as r limit 0', p_content_expression, v_schema, v_table);
    exception
      when others then
        raise exception '%: content expression is not valid for %.%: %', c_caller,
          pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_table), sqlerrm
          using errcode = '42601',
                hint = 'Write an expression over the table''s columns (alias r), with schema-qualified names: search_path is empty.';
    end;
  end if;

  -- Embedding column: must exist and be pgvector's vector.
  v_emb := embed_queue.require_column(c_caller, v_schema, v_table, p_embedding_column,
    'Add it first, e.g. alter table ... add column ... extensions.vector(1536).');

  select t.oid into v_vector
  from pg_catalog.pg_type t
  join pg_catalog.pg_extension e on e.extnamespace = t.typnamespace and e.extname = 'vector'
  where t.typname = 'vector';

  if v_vector is null or v_emb.type_id <> v_vector then
    raise exception '%: column %.%.% is of type %, not vector', c_caller,
      pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_table), pg_catalog.quote_ident(p_embedding_column),
      pg_catalog.format_type(v_emb.type_id, v_emb.typmod)
      using errcode = '42804',
            hint = 'Embedding columns are pgvector columns: extensions.vector(dimensions).';
  end if;

  -- Primary key: one column.
  select pg_catalog.count(*)::integer, pg_catalog.min(a.attname), pg_catalog.min(pg_catalog.format_type(a.atttypid, a.atttypmod))
  into v_pk_count, v_target.pk_column, v_target.pk_type
  from pg_catalog.pg_index i
  join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
  where i.indrelid = v_rel and i.indisprimary;

  if v_pk_count <> 1 then
    raise exception '%: table %.% needs a single-column primary key', c_caller,
      pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_table)
      using errcode = '42P16',
            hint = 'embedding_queue.record_id holds the primary key of the row as text.';
  end if;

  if p_user_column is not null
     and (embed_queue.require_column(c_caller, v_schema, v_table, p_user_column,
            'Pass p_user_column => null for a table without an owner column.')).type_id
         <> 'pg_catalog.uuid'::pg_catalog.regtype then
    raise exception '%: user column % must be of type uuid', c_caller, pg_catalog.quote_ident(p_user_column)
      using errcode = '42804',
            hint = 'Pass p_user_column => null for a table without a uuid owner column.';
  end if;

  if p_deleted_column is not null then
    perform embed_queue.require_column(c_caller, v_schema, v_table, p_deleted_column,
      'Pass p_deleted_column => null for a table without soft delete.');
  end if;

  v_target.schema_name := v_schema;
  v_target.table_name := v_table;
  v_target.embedding_column := p_embedding_column;
  v_target.content_column := p_content_column;
  v_target.content_expression := p_content_expression;
  v_target.user_column := p_user_column;
  v_target.deleted_column := p_deleted_column;
  v_target.dimensions := case when v_emb.typmod > 0 then v_emb.typmod end;
  return v_target;
end
$$;
comment on function embed_queue.validate_target(text, text, text, text, text, text) is
  'register_target''s checks: the table, its single-column primary key, the content column or expression, the vector '
  'column and the optional user (uuid) and soft-delete columns. Returns the target row it would record; writes nothing.';

-- The triggers' bodies: three generic functions, one set for every target. install_triggers()
-- attaches them to a target's table; each finds what it needs through its trigger arguments.

-- BEFORE INSERT/UPDATE: only the system writes the vector. An end user (the Data API's roles
-- anon and authenticated, whatever RLS lets them write) never does: their value is ignored,
-- the old one kept (null on insert), so an upsert that sends the row back unchanged still
-- works. complete() (as postgres or service_role) and the owner's own SQL write it. Then new
-- content means the old vector no longer belongs to the row.
-- Invoker, so current_user is the writer; it runs as anon too, which may not read schema
-- embed_queue: its arguments carry all it needs (tg_argv[0] the vector column, tg_argv[1] SQL
-- that is true when the content of row $1, the old, differs from that of $2, the new).
create function embed_queue.guard_vector()
returns trigger
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_changed boolean;
begin
  if tg_op = 'INSERT' then
    if current_user in ('anon', 'authenticated') then
      new := pg_catalog.jsonb_populate_record(new, pg_catalog.jsonb_build_object(tg_argv[0], null));
    end if;
    return new;
  end if;
  if current_user in ('anon', 'authenticated') then
    new := pg_catalog.jsonb_populate_record(new, pg_catalog.jsonb_build_object(tg_argv[0], pg_catalog.to_jsonb(old) -> tg_argv[0]));
  end if;
  execute 'select ' || tg_argv[1] using old, new into v_changed;
  if v_changed then
    new := pg_catalog.jsonb_populate_record(new, pg_catalog.jsonb_build_object(tg_argv[0], null));
  end if;
  return new;
end
$$;
comment on function embed_queue.guard_vector() is
  'Trigger (installed by install_triggers): keeps a target''s vector column (tg_argv[0]) out of end users'' (anon, authenticated) '
  'writes, and clears it when the content changes (tg_argv[1]: SQL comparing the old row $1 with the new $2).';

-- AFTER UPDATE/DELETE, per row: keep the row's job in step (definer: the writing role, e.g.
-- authenticated, cannot touch the queue itself). Inserts have the statement trigger below.
-- tg_argv[0] is the target's id.
create function embed_queue.sync_job()
returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_target embed_queue.targets;
  v_old_key text;
  v_new_key text;
  v_old_content text;
  v_new_content text;
  v_old_deleted boolean;
  v_new_deleted boolean;
  v_has_vector boolean;
  v_user uuid;
begin
  select * into v_target from embed_queue.targets t where t.id = (tg_argv[0])::bigint;
  if not found then
    return null; -- the target's row was removed by hand: nothing is kept in step any more
  end if;

  if tg_op = 'DELETE' then
    execute pg_catalog.format('select ($1.%I)::text', v_target.pk_column) using old into v_old_key;
    delete from public.embedding_queue q
    where q.table_name = v_target.queue_table and q.embedding_column = v_target.embedding_column and q.record_id = v_old_key;
    return null;
  end if;

  execute pg_catalog.format('select ($1.%1$I)::text, ($2.%1$I)::text, %2$s, %3$s, %4$s, %5$s, $2.%6$I is not null, %7$s',
      v_target.pk_column, embed_queue.content_sql(v_target, '$1'), embed_queue.content_sql(v_target, '$2'),
      embed_queue.deleted_sql(v_target, '$1'), embed_queue.deleted_sql(v_target, '$2'),
      v_target.embedding_column, embed_queue.user_sql(v_target, '$2'))
    using old, new
    into v_old_key, v_new_key, v_old_content, v_new_content, v_old_deleted, v_new_deleted, v_has_vector, v_user;

  if v_old_key is distinct from v_new_key then
    delete from public.embedding_queue q
    where q.table_name = v_target.queue_table and q.embedding_column = v_target.embedding_column and q.record_id = v_old_key;
  end if;

  if v_new_deleted then
    -- soft-deleted: withdraw the row's work
    delete from public.embedding_queue q
    where q.table_name = v_target.queue_table and q.embedding_column = v_target.embedding_column and q.record_id = v_new_key;
    return null;
  end if;

  if v_old_key is not distinct from v_new_key
     and v_old_content is not distinct from v_new_content
     and (not v_old_deleted or v_has_vector) then
    -- same content, and either live before or revived with its vector intact
    return null;
  end if;

  perform embed_queue.enqueue(v_target.queue_table, v_new_key, v_target.embedding_column, v_new_content, v_user);
  return null;
end
$$;
comment on function embed_queue.sync_job() is
  'Trigger (installed by install_triggers; tg_argv[0] is the target''s id): keeps a row''s embedding_queue job in step '
  'with its updates and deletes: re-queued on new content or revival, withdrawn on delete or soft delete.';

-- AFTER INSERT, once per statement over its new rows: a bulk insert queues its rows in one
-- INSERT ... SELECT instead of one call per row. Same outcome per row as the row trigger.
-- tg_argv[0] is the target's id.
create function embed_queue.queue_inserted()
returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_target embed_queue.targets;
begin
  select * into v_target from embed_queue.targets t where t.id = (tg_argv[0])::bigint;
  if not found then
    return null; -- the target's row was removed by hand: nothing is kept in step any more
  end if;
  execute pg_catalog.format($f$
    select embed_queue.enqueue_many($1, $2,
      pg_catalog.array_agg((n.%1$I)::text), pg_catalog.array_agg(c.content), pg_catalog.array_agg(%2$s))
    from new_rows as n
    cross join lateral (select %3$s as content) as c
    where not %4$s
  $f$,
    v_target.pk_column, embed_queue.user_sql(v_target, 'n'),
    embed_queue.content_sql(v_target, 'n'), embed_queue.deleted_sql(v_target, 'n'))
  using v_target.queue_table, v_target.embedding_column;
  return null;
end
$$;
comment on function embed_queue.queue_inserted() is
  'Trigger (installed by install_triggers; tg_argv[0] is the target''s id): queues the rows one statement inserts '
  '(its transition table new_rows) in one enqueue_many call.';

-- The vector a change clears (old not null, new null: the content changed, or the owner cleared
-- it) goes into the row's job while that job knows which text it embeds (a text changed back
-- then needs no request: embed_queue.complete_unchanged, 20261124001400_model_change.sql). Generic over targets:
-- tg_argv = queue table name, embedding column, primary key column.
create function embed_queue.keep_replaced_vector()
returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_vector extensions.vector;
  v_key text;
begin
  execute pg_catalog.format('select ($1).%I, (($1).%I)::text', tg_argv[1], tg_argv[2]) into v_vector, v_key using old;
  update public.embedding_queue q set replaced_vector = v_vector
  where q.table_name = tg_argv[0] and q.record_id = v_key and q.embedding_column = tg_argv[1]
    and q.embedded_model is not null and q.embedded_hash is not null;
  return null;
end
$$;
comment on function embed_queue.keep_replaced_vector() is
  'Trigger (installed by install_triggers): keeps the vector an update cleared in its job''s replaced_vector, '
  'so the same text back again needs no request. Definer: the writing role cannot touch the queue.';

-- The name every trigger of a target column starts with (install_triggers, drop_triggers).
create function embed_queue.trigger_base(p_column text)
returns text
language sql immutable security invoker set search_path = ''
as $$
  select case when pg_catalog.length('embed_queue_' || p_column) > 55
              then pg_catalog.left('embed_queue_' || p_column, 48) || '_' || pg_catalog.left(pg_catalog.md5(p_column), 6)
              else 'embed_queue_' || p_column end
$$;
comment on function embed_queue.trigger_base(text) is
  'The prefix of the trigger names install_triggers gives a target column (embed_queue_<column>, shortened past 55 characters).';

-- Re-runnable: (re)creates the six triggers on the target's table, each calling one of the
-- generic functions above.
create function embed_queue.install_triggers(p_target embed_queue.targets)
returns void
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_name text := embed_queue.trigger_base(p_target.embedding_column);
  v_changed text := pg_catalog.format('%s is distinct from %s',
                      embed_queue.content_sql(p_target, '$1'), embed_queue.content_sql(p_target, '$2'));
  v_when_changed text := '';
  v_when_update text := '';
begin
  -- Trigger conditions: with a plain content column the triggers do not even fire for
  -- updates of other columns (such as complete() writing the vector).
  if p_target.content_expression is null then
    v_when_changed := pg_catalog.format('when (old.%1$I is distinct from new.%1$I or current_user in (''anon'', ''authenticated''))',
      p_target.content_column);
    v_when_update := pg_catalog.format('when (old.%1$I is distinct from new.%1$I or old.%2$I is distinct from new.%2$I%3$s)',
      p_target.content_column, p_target.pk_column,
      case when p_target.deleted_column is null then ''
           else pg_catalog.format(' or old.%1$I is distinct from new.%1$I', p_target.deleted_column) end);
  end if;

  execute pg_catalog.format('create or replace trigger %I before update on %I.%I for each row %s execute function embed_queue.guard_vector(%L, %L)',
    v_name || '_clear', p_target.schema_name, p_target.table_name, v_when_changed, p_target.embedding_column, v_changed);
  execute pg_catalog.format('create or replace trigger %I before insert on %I.%I for each row when (new.%I is not null) execute function embed_queue.guard_vector(%L, %L)',
    v_name || '_guard', p_target.schema_name, p_target.table_name, p_target.embedding_column, p_target.embedding_column, v_changed);
  execute pg_catalog.format('create or replace trigger %I after insert on %I.%I referencing new table as new_rows for each statement execute function embed_queue.queue_inserted(%L)',
    v_name || '_insert', p_target.schema_name, p_target.table_name, p_target.id);
  execute pg_catalog.format('create or replace trigger %I after update on %I.%I for each row %s execute function embed_queue.sync_job(%L)',
    v_name || '_update', p_target.schema_name, p_target.table_name, v_when_update, p_target.id);
  execute pg_catalog.format('create or replace trigger %I after delete on %I.%I for each row execute function embed_queue.sync_job(%L)',
    v_name || '_delete', p_target.schema_name, p_target.table_name, p_target.id);
  execute pg_catalog.format('create or replace trigger %I after update on %I.%I for each row when (old.%I is not null and new.%I is null) '
    'execute function embed_queue.keep_replaced_vector(%L, %L, %L)',
    v_name || '_keep', p_target.schema_name, p_target.table_name, p_target.embedding_column, p_target.embedding_column,
    p_target.queue_table, p_target.embedding_column, p_target.pk_column);
end
$$;
comment on function embed_queue.install_triggers(embed_queue.targets) is
  'Creates or replaces a registered target''s six triggers on its table (vector guard on insert and update, the insert '
  'statement trigger, the update and delete row triggers, the trigger keeping a cleared vector). Re-runnable; register_target calls it.';

create function embed_queue.drop_triggers(p_schema text, p_table text, p_column text)
returns void
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_suffix text;
begin
  foreach v_suffix in array array['_clear', '_guard', '_insert', '_update', '_delete', '_keep'] loop
    execute pg_catalog.format('drop trigger if exists %I on %I.%I', embed_queue.trigger_base(p_column) || v_suffix, p_schema, p_table);
  end loop;
end
$$;
comment on function embed_queue.drop_triggers(text, text, text) is
  'Drops the triggers install_triggers made for a column (after the column was renamed or dropped).';

create function embed_queue.register_target(
  p_table text,
  p_content_column text,
  p_embedding_column text,
  p_content_expression text default null,
  p_user_column text default 'user_id',
  p_deleted_column text default 'deleted_at'
)
returns void
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_checked embed_queue.targets := embed_queue.validate_target(
    p_table, p_content_column, p_embedding_column, p_content_expression, p_user_column, p_deleted_column);
  v_target embed_queue.targets;
begin
  insert into embed_queue.targets as t
    (schema_name, table_name, embedding_column, content_column, content_expression,
     pk_column, pk_type, user_column, deleted_column, dimensions)
  values (
    v_checked.schema_name, v_checked.table_name, v_checked.embedding_column, v_checked.content_column,
    v_checked.content_expression, v_checked.pk_column, v_checked.pk_type, v_checked.user_column,
    v_checked.deleted_column, v_checked.dimensions
  )
  on conflict (schema_name, table_name, embedding_column) do update set
    content_column = excluded.content_column,
    content_expression = excluded.content_expression,
    pk_column = excluded.pk_column,
    pk_type = excluded.pk_type,
    user_column = excluded.user_column,
    deleted_column = excluded.deleted_column,
    dimensions = excluded.dimensions
  returning t.* into v_target;

  perform embed_queue.install_triggers(v_target);

  -- Triggers of the user's that also queue this table's rows: say so, drop nothing.
  if exists (select 1 from embed_queue.old_triggers o
             where o.schema_name = v_target.schema_name and o.table_name = v_target.table_name) then
    raise warning 'embed_queue: %.% also has trigger(s) of its own that write into embedding_queue: %',
      pg_catalog.quote_ident(v_target.schema_name), pg_catalog.quote_ident(v_target.table_name),
      (select pg_catalog.string_agg(pg_catalog.format('%s (function %s)', o.trigger_name, o.function_name), ', ' order by o.trigger_name)
       from embed_queue.old_triggers o where o.schema_name = v_target.schema_name and o.table_name = v_target.table_name)
      using hint = pg_catalog.format('embed_queue''s triggers now queue this table. Drop the old ones with: select * from embed_queue.drop_old_triggers(%L);',
                                     v_target.schema_name || '.' || v_target.table_name);
  end if;
end
$$;

comment on function embed_queue.register_target(text, text, text, text, text, text) is
  'Registers a target: validate_target checks table and columns, the row goes into embed_queue.targets and '
  'install_triggers installs the triggers that queue, re-queue and withdraw its jobs. Idempotent. Existing rows are queued by embed_queue.backfill().';

revoke all on all functions in schema embed_queue from public, anon, authenticated;
grant execute on function embed_queue.is_blank(text), embed_queue.valid_key(text, regtype),
  embed_queue.content_sql(embed_queue.targets, text), embed_queue.deleted_sql(embed_queue.targets, text),
  embed_queue.user_sql(embed_queue.targets, text), embed_queue.content_hash(text),
  embed_queue.find_targets(text), embed_queue.require_target(text, text) to service_role;
grant select on embed_queue.old_triggers to service_role;
