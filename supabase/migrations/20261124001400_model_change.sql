-- A model change with no gap, and no request for a text whose vector is already stored.
--
-- Identical text (docs/design.md, "Identical text"). A job remembers the vector it last wrote:
-- embedding_queue.embedded_hash and embedded_model (set whenever the job completes; a content
-- change or a requeue turns the job back to pending but leaves them). When a claimed job's
-- content hash and model equal them, embed_queue.complete_unchanged() completes it without any
-- provider request: the vector in the row is still that text's (a requeue), or the vector the
-- content change cleared is put back (a text changed and changed back). That cleared vector is
-- kept in embedding_queue.replaced_vector by a trigger on the target's table (`..._keep`) until
-- the job completes. A vector of unknown origin (model null: settings.legacy_vectors) never
-- counts as identical.
--
-- Model change (README, "Changing the model"). Each target records the model its column holds
-- (embed_queue.targets.model; null: not pinned yet, the function's EMBEDDING_MODEL decides, as
-- before). embed_queue.reembed() adds a shadow column <column>_next of the new model's size,
-- registers it as a target of its own (generation 'next': same content, same triggers, its own
-- jobs), and queues every live row for it as bulk work. Search keeps reading the column, whose
-- vectors are all of the active model. Once the new model covers every live row, tick() (or
-- embed_queue.switch_model()) swaps the two in one transaction: the column takes the new
-- model's vectors under its own name, the old ones stay as <column>_prev (generation
-- 'previous', still kept up to date) until embed_queue.drop_old_vectors(); until then
-- embed_queue.rollback_model() swaps back. complete() writes a vector only into a column of the
-- model it was made with (the fence on model) and waits for a swap in progress; the search
-- functions read the model after a swap in progress has committed, so no ranking ever
-- compares vectors of two models.

-- ---------------------------------------------------------------------------------------------
-- The vector a job last wrote.

alter table public.embedding_queue
  add column if not exists embedded_hash text,
  add column if not exists embedded_model text,
  add column if not exists replaced_vector extensions.vector;
comment on column public.embedding_queue.embedded_hash is
  'Hex sha256 of the text whose vector the job last wrote (content_hash at its last completion). Kept when the job goes back to pending.';
comment on column public.embedding_queue.embedded_model is
  'Model of the vector the job last wrote; null for a vector of unknown origin, which is never taken as identical.';
comment on column public.embedding_queue.replaced_vector is
  'The vector a content change cleared from the row (embedded_hash''s text), kept until the job completes: a text changed back gets it again without a request.';

update public.embedding_queue q set embedded_hash = q.content_hash, embedded_model = q.model
where q.status = 'completed' and q.model is not null and q.embedded_hash is null;

create function embed_queue.embedding_queue_embedded()
returns trigger
language plpgsql volatile security invoker set search_path = ''
as $$
begin
  new.embedded_hash := new.content_hash;
  new.embedded_model := new.model;
  new.replaced_vector := null;
  return new;
end
$$;
comment on function embed_queue.embedding_queue_embedded() is
  'Trigger: a job that becomes completed records what its vector embeds (embedded_hash, embedded_model) and forgets a kept replaced vector.';

create or replace trigger embedding_queue_embedded before insert or update of status on public.embedding_queue
  for each row when (new.status = 'completed') execute function embed_queue.embedding_queue_embedded();

-- ---------------------------------------------------------------------------------------------
-- Generations of a target.

alter table embed_queue.targets
  add column if not exists model text,
  add column if not exists generation text not null default 'active' check (generation in ('active', 'next', 'previous')),
  add column if not exists base_column text,
  add column if not exists switch_when_covered boolean not null default false;
alter table embed_queue.targets add constraint targets_generation_base_check
  check ((generation = 'active') = (base_column is null));
comment on column embed_queue.targets.model is
  'The model whose vectors the column holds, which the function embeds its jobs with; null: not pinned, the function''s EMBEDDING_MODEL decides. Set by reembed().';
comment on column embed_queue.targets.generation is
  'active: the column the app reads; next: a shadow column filling with a new model (reembed); previous: the old model''s vectors after a switch, kept for rollback_model() until drop_old_vectors().';
comment on column embed_queue.targets.base_column is 'For a next or previous generation: the active column it belongs to.';
comment on column embed_queue.targets.switch_when_covered is
  'A next generation that tick() switches to by itself once it covers every live row (false after a rollback: switch by hand).';

-- The lock that orders a swap of generations against the writes of vectors: complete() and
-- complete_unchanged() take it shared (they never wait for each other), a swap exclusive, so
-- a vector is written either wholly before a swap or after it, into the column its model owns.
create function embed_queue.generation_lock_key()
returns bigint
language sql immutable security invoker set search_path = ''
as $$
  select 7243650119731002417::bigint
$$;
comment on function embed_queue.generation_lock_key() is
  'Advisory lock key: held shared by complete() and complete_unchanged(), exclusive by a swap of generations.';

-- A job of an unchanged text: completed with no request.
create function embed_queue.complete_unchanged(
  p_worker text,
  p_ids bigint[],
  p_hashes text[],
  p_model text,
  p_dimensions integer
)
returns table (id bigint)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_target embed_queue.targets;
  v_ids bigint[];
  v_records text[];
  v_hashes text[];
  v_vectors extensions.vector[];
  v_batch bigint[];
  v_done bigint[] := array[]::bigint[];
begin
  if pg_catalog.cardinality(p_ids) is distinct from pg_catalog.cardinality(p_hashes) then
    raise exception 'embed_queue.complete_unchanged: ids and hashes must have the same length' using errcode = '22023';
  end if;
  if p_model is null or pg_catalog.cardinality(p_ids) = 0 then
    return;
  end if;
  perform pg_catalog.pg_advisory_xact_lock_shared(embed_queue.generation_lock_key());
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  for v_target in
    select t.* from embed_queue.targets t
    where (t.model is null or t.model = p_model)
      and (t.dimensions is null or t.dimensions = p_dimensions)
      and exists (
        select 1 from public.embedding_queue q
        where q.id = any (p_ids) and q.table_name = t.queue_table and q.embedding_column = t.embedding_column
          and q.status = 'processing' and q.locked_by = p_worker)
  loop
    -- Jobs held by this worker whose text is the one their last vector embeds, with this model.
    select coalesce(pg_catalog.array_agg(q.id), '{}'), coalesce(pg_catalog.array_agg(q.record_id), '{}'),
           coalesce(pg_catalog.array_agg(q.content_hash), '{}'), coalesce(pg_catalog.array_agg(q.replaced_vector), '{}')
      into v_ids, v_records, v_hashes, v_vectors
    from public.embedding_queue q
    where q.id = any (p_ids) and q.table_name = v_target.queue_table and q.embedding_column = v_target.embedding_column
      and q.status = 'processing' and q.locked_by = p_worker
      and q.content_hash = p_hashes[pg_catalog.array_position(p_ids, q.id)]
      and q.embedded_hash = q.content_hash
      and q.embedded_model = p_model
      and q.dimensions is not distinct from p_dimensions;
    continue when pg_catalog.cardinality(v_ids) = 0;

    -- The row must still hold that text; its vector is there (a requeue) or is put back from
    -- the one its content change cleared (changed and changed back). Otherwise the job is sent.
    execute pg_catalog.format($f$
      with restored as (
        update %1$I.%2$I as s set %3$I = h.vector
        from unnest($1::text[], $2::text[], $3::extensions.vector[]) as h (record_id, hash, vector)
        where s.%4$I = (h.record_id)::%5$s
          and s.%3$I is null and h.vector is not null
          and not %6$s
          and pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(%7$s, 'UTF8')), 'hex') = h.hash
        returning (s.%4$I)::text as record_id
      ),
      present as (
        select (s.%4$I)::text as record_id
        from %1$I.%2$I as s
        join unnest($1::text[], $2::text[]) as h (record_id, hash) on s.%4$I = (h.record_id)::%5$s
        where s.%3$I is not null
          and not %6$s
          and pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(%7$s, 'UTF8')), 'hex') = h.hash
      )
      select coalesce(pg_catalog.array_agg(j.id), '{}')
      from unnest($1::text[], $4::bigint[]) as j (record_id, id)
      where j.record_id in (select r.record_id from restored r union all select p.record_id from present p)
    $f$,
      v_target.schema_name, v_target.table_name, v_target.embedding_column, v_target.pk_column,
      v_target.pk_type, embed_queue.deleted_sql(v_target, 's'), embed_queue.content_sql(v_target, 's'))
    into v_batch
    using v_records, v_hashes, v_vectors, v_ids;
    v_done := v_done || v_batch;
  end loop;

  return query
    update public.embedding_queue q set
      status = 'completed',
      completed_at = pg_catalog.now(),
      error_message = null,
      locked_by = null,
      locked_until = null
    where q.id = any (v_done) and q.status = 'processing' and q.locked_by = p_worker
    returning q.id;

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
end
$$;
comment on function embed_queue.complete_unchanged(text, bigint[], text[], text, integer) is
  'Completes, without any provider request, the jobs held by p_worker whose text and model (p_model, p_dimensions) are those of '
  'the vector the job last wrote (embedded_hash, embedded_model), when the row still holds that vector or gets back the one its '
  'content change cleared. A vector of unknown origin (no model) never qualifies. Returns the ids completed; the rest are to be sent.';

-- ---------------------------------------------------------------------------------------------
-- Changing a target's model.

-- The shadow column's name: <column>_next or <column>_prev (63 bytes at most).
create function embed_queue.generation_column(p_column text, p_generation text)
returns text
language sql immutable security invoker set search_path = ''
as $$
  select case when pg_catalog.length(p_column) > 55
              then pg_catalog.left(p_column, 48) || '_' || pg_catalog.left(pg_catalog.md5(p_column), 6)
              else p_column end
         || case p_generation when 'next' then '_next' else '_prev' end
$$;
comment on function embed_queue.generation_column(text, text) is
  'Name of a target column''s shadow: <column>_next for a next generation, <column>_prev for a previous one.';

-- The model a target's column holds: pinned, or what its most recent completed job says.
create function embed_queue.target_model(p_target embed_queue.targets)
returns text
language sql stable security invoker set search_path = ''
as $$
  select coalesce(p_target.model, (
    select q.model from public.embedding_queue q
    where q.table_name = p_target.queue_table and q.embedding_column = p_target.embedding_column
      and q.status = 'completed' and q.model is not null
    order by q.completed_at desc nulls last
    limit 1))
$$;
comment on function embed_queue.target_model(embed_queue.targets) is
  'The model a target column holds: targets.model, else the model of its most recently completed job.';

-- Whether a next or previous generation covers every live row with text (and has no job open).
create function embed_queue.generation_ready(p_target embed_queue.targets)
returns boolean
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_missing boolean;
begin
  if exists (
    select 1 from public.embedding_queue q
    where q.table_name = p_target.queue_table and q.embedding_column = p_target.embedding_column
      and q.status in ('pending', 'processing')
  ) then
    return false;
  end if;
  execute pg_catalog.format(
    'select exists (select 1 from %1$I.%2$I s where s.%3$I is null and not %4$s and not embed_queue.is_blank(%5$s))',
    p_target.schema_name, p_target.table_name, p_target.embedding_column,
    embed_queue.deleted_sql(p_target, 's'), embed_queue.content_sql(p_target, 's'))
  into v_missing;
  return not v_missing;
end
$$;
comment on function embed_queue.generation_ready(embed_queue.targets) is
  'True when no job of the target is open and every live row with text has a vector in its column.';

create function embed_queue.queue_generation(p_target embed_queue.targets)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_count integer;
begin
  -- Bulk work (no lane given): behind every fresh job, in the bulk lane's turn.
  execute pg_catalog.format($f$
    insert into public.embedding_queue as q
      (table_name, record_id, embedding_column, content, user_id, status, error_message)
    select $1, (s.%1$I)::text, $2, pg_catalog.left(c.content, (select st.claim_max_chars from embed_queue.settings st)), %2$s,
           case when embed_queue.is_blank(c.content) then 'skipped' else 'pending' end,
           case when embed_queue.is_blank(c.content) then 'content is empty: nothing to embed' end
    from %3$I.%4$I s
    cross join lateral (select %5$s as content) c
    where not %6$s and s.%7$I is null
    on conflict (table_name, record_id, embedding_column) do nothing
  $f$,
    p_target.pk_column,
    case when p_target.user_column is null then 'null::uuid' else pg_catalog.format('s.%I', p_target.user_column) end,
    p_target.schema_name, p_target.table_name, embed_queue.content_sql(p_target, 's'),
    embed_queue.deleted_sql(p_target, 's'), p_target.embedding_column)
  using p_target.queue_table, p_target.embedding_column;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function embed_queue.queue_generation(embed_queue.targets) is
  'Queues, as bulk work, every live row of a target that has no vector in its column and no job. Returns how many.';

-- The targets a call names: the active ones of a table, or one of its columns.
create function embed_queue.active_targets(p_table text, p_column text default null)
returns setof embed_queue.targets
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_found boolean := false;
  v_target embed_queue.targets;
begin
  for v_target in
    select t.* from embed_queue.find_targets(p_table) t
    where t.generation = 'active' and (p_column is null or t.embedding_column = p_column)
  loop
    v_found := true;
    return next v_target;
  end loop;
  if not v_found then
    raise exception 'embed_queue: no target is registered for %', pg_catalog.quote_literal(coalesce(p_table || '.' || p_column, p_table))
      using errcode = 'P0002',
            hint = 'See embed_queue.targets (generation active); tables are registered with embed_queue.register_target().';
  end if;
end
$$;
comment on function embed_queue.active_targets(text, text) is
  'The active targets of a table (or its one column p_column); raises when there is none.';

create function embed_queue.other_generation(p_active embed_queue.targets)
returns embed_queue.targets
language sql stable security invoker set search_path = ''
as $$
  select t.* from embed_queue.targets t
  where t.schema_name = p_active.schema_name and t.table_name = p_active.table_name
    and t.base_column = p_active.embedding_column
  limit 1
$$;
comment on function embed_queue.other_generation(embed_queue.targets) is
  'The next or previous generation of an active target, if it has one (at most one at a time).';

create function embed_queue.reembed(
  p_table text,
  p_model text,
  p_dimensions integer,
  p_column text default null,
  p_queue boolean default true
)
returns table (table_name text, embedding_column text, next_column text, from_model text, to_model text, queued integer)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_active embed_queue.targets;
  v_other embed_queue.targets;
  v_next embed_queue.targets;
  v_from text;
  v_column text;
begin
  if p_model is null or pg_catalog.btrim(p_model) = '' then
    raise exception 'embed_queue.reembed: give the new model' using errcode = '22004';
  end if;
  if p_dimensions is null or p_dimensions < 1 or p_dimensions > 16000 then
    raise exception 'embed_queue.reembed: dimensions must be from 1 to 16000, got %', p_dimensions using errcode = '22023';
  end if;

  for v_active in select * from embed_queue.active_targets(p_table, p_column) loop
    v_other := embed_queue.other_generation(v_active);
    if v_other.id is not null then
      raise exception 'embed_queue.reembed: %.% already has a % generation (%, model %)',
        v_active.queue_table, v_active.embedding_column, v_other.generation, v_other.embedding_column, v_other.model
        using errcode = '55000',
              hint = case v_other.generation
                when 'next' then 'Let it finish (or embed_queue.switch_model), or drop it with embed_queue.cancel_reembed().'
                else 'Drop the old vectors first with embed_queue.drop_old_vectors() (or go back with embed_queue.rollback_model()).' end;
    end if;
    v_from := embed_queue.target_model(v_active);
    if v_from = p_model and v_active.dimensions is not distinct from p_dimensions then
      raise exception 'embed_queue.reembed: %.% already holds % vectors of %',
        v_active.queue_table, v_active.embedding_column, p_dimensions, p_model
        using errcode = '55000';
    end if;

    -- From now on the target decides which model its jobs use, not the function's environment.
    update embed_queue.targets t set model = v_from where t.id = v_active.id and t.model is null;

    v_column := embed_queue.generation_column(v_active.embedding_column, 'next');
    execute pg_catalog.format('alter table %I.%I add column %I extensions.vector(%s)',
      v_active.schema_name, v_active.table_name, v_column, p_dimensions);
    execute pg_catalog.format('comment on column %I.%I.%I is %L', v_active.schema_name, v_active.table_name, v_column,
      pg_catalog.format('Embeddings of %s by %s while embed_queue changes model (becomes %s at the switch). Written only by embed_queue.',
        v_active.embedding_column, p_model, v_active.embedding_column));
    perform embed_queue.register_target(
      v_active.schema_name || '.' || v_active.table_name, v_active.content_column, v_column,
      v_active.content_expression, v_active.user_column, v_active.deleted_column);
    update embed_queue.targets t set
      model = p_model, generation = 'next', base_column = v_active.embedding_column, switch_when_covered = true
    where t.schema_name = v_active.schema_name and t.table_name = v_active.table_name and t.embedding_column = v_column
    returning t.* into v_next;

    table_name := v_active.queue_table;
    embedding_column := v_active.embedding_column;
    next_column := v_column;
    from_model := v_from;
    to_model := p_model;
    queued := case when p_queue then embed_queue.queue_generation(v_next) else 0 end;
    return next;
  end loop;
end
$$;
comment on function embed_queue.reembed(text, text, integer, text, boolean) is
  'Starts a model change for every active target of p_table (or its column p_column): adds the shadow column <column>_next '
  'vector(p_dimensions), registers it as the next generation (p_model) and, with p_queue, queues every live row for it as bulk '
  'work in this transaction, which holds the table''s lock from the added column on (the CLI queues page by page instead). '
  'Search keeps the active column until the switch (tick() once every live row is '
  'covered, or embed_queue.switch_model()). Build the shadow''s HNSW index with embed_queue.search_index_statements().';

-- Renames the canonical HNSW index of a column (search_index_statements' name) with it.
create function embed_queue.rename_search_index(p_schema text, p_table text, p_from text, p_to text)
returns void
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_from text := pg_catalog.left(p_table || '_' || p_from, 50) || '_hnsw_idx';
  v_to text := pg_catalog.left(p_table || '_' || p_to, 50) || '_hnsw_idx';
begin
  if v_from <> v_to and pg_catalog.to_regclass(pg_catalog.format('%I.%I', p_schema, v_from)) is not null then
    execute pg_catalog.format('alter index %I.%I rename to %I', p_schema, v_from, v_to);
  end if;
end
$$;
comment on function embed_queue.rename_search_index(text, text, text, text) is
  'Renames the HNSW index named after a column (as search_index_statements names it) to the name for another column.';

-- The swap: the active column takes the other generation's vectors (and model), the old ones
-- become the other generation. One transaction: every search sees one side of it.
create function embed_queue.swap_generations(p_active embed_queue.targets, p_other embed_queue.targets)
returns embed_queue.targets
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_old_role text := case p_other.generation when 'next' then 'previous' else 'next' end;
  v_old_column text := embed_queue.generation_column(p_active.embedding_column, v_old_role);
  v_tmp text := 'embed_queue_swap_' || p_active.id;
  v_target embed_queue.targets;
begin
  -- Every complete() in flight finishes first, and none starts until this commits.
  perform pg_catalog.pg_advisory_xact_lock(embed_queue.generation_lock_key());
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);
  -- Writers of the table wait from here (SHARE: searches go on): a user's write whose trigger
  -- queues a job being moved below would otherwise hold the table against the renames (deadlock).
  execute pg_catalog.format('lock table %I.%I in share mode', p_active.schema_name, p_active.table_name);

  -- Jobs follow their vectors: the active generation's go with its column to v_old_column,
  -- the other's to the active column.
  update public.embedding_queue q set embedding_column = v_old_column
  where q.table_name = p_active.queue_table and q.embedding_column = p_active.embedding_column;
  update public.embedding_queue q set embedding_column = p_active.embedding_column
  where q.table_name = p_active.queue_table and q.embedding_column = p_other.embedding_column;

  -- The active target keeps its name, id and place; it takes the other's model.
  update embed_queue.targets t set model = p_other.model, dimensions = p_other.dimensions where t.id = p_active.id;
  update embed_queue.targets t set
    embedding_column = v_old_column, model = p_active.model, dimensions = p_active.dimensions,
    generation = v_old_role, switch_when_covered = false
  where t.id = p_other.id;

  -- The columns (ACCESS EXCLUSIVE on the table from here to commit, searches wait: renames
  -- only, no rewrite) and their HNSW indexes.
  execute pg_catalog.format('alter table %I.%I rename column %I to %I',
    p_active.schema_name, p_active.table_name, p_active.embedding_column, v_old_column);
  execute pg_catalog.format('alter table %I.%I rename column %I to %I',
    p_active.schema_name, p_active.table_name, p_other.embedding_column, p_active.embedding_column);
  perform embed_queue.rename_search_index(p_active.schema_name, p_active.table_name, p_active.embedding_column, v_tmp);
  perform embed_queue.rename_search_index(p_active.schema_name, p_active.table_name, p_other.embedding_column, p_active.embedding_column);
  perform embed_queue.rename_search_index(p_active.schema_name, p_active.table_name, v_tmp, v_old_column);

  -- Triggers: a trigger's condition follows the column it was made for, its body the name, so
  -- both columns get theirs anew and the other's old ones go.
  perform embed_queue.drop_triggers(p_active.schema_name, p_active.table_name, p_other.embedding_column);
  perform embed_queue.register_target(
    p_active.schema_name || '.' || p_active.table_name, p_active.content_column, p_active.embedding_column,
    p_active.content_expression, p_active.user_column, p_active.deleted_column);
  perform embed_queue.register_target(
    p_active.schema_name || '.' || p_active.table_name, p_active.content_column, v_old_column,
    p_active.content_expression, p_active.user_column, p_active.deleted_column);
  execute pg_catalog.format('comment on column %I.%I.%I is %L', p_active.schema_name, p_active.table_name, v_old_column,
    pg_catalog.format('Embeddings of %s by %s, kept by embed_queue for a switch back (rollback_model) until dropped.',
      p_active.embedding_column, coalesce(p_active.model, 'an unrecorded model')));

  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
  select t.* into v_target from embed_queue.targets t where t.id = p_active.id;
  return v_target;
end
$$;
comment on function embed_queue.swap_generations(embed_queue.targets, embed_queue.targets) is
  'Swaps an active target column with its other generation in one transaction: renames the columns and their HNSW indexes, '
  'moves the jobs and models with their vectors, installs the triggers anew. Waits for every complete() in flight.';

create function embed_queue.switch_model(p_table text, p_column text default null, p_force boolean default false)
returns table (table_name text, embedding_column text, model text, previous_model text)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_active embed_queue.targets;
  v_other embed_queue.targets;
  v_swapped embed_queue.targets;
begin
  for v_active in select * from embed_queue.active_targets(p_table, p_column) loop
    v_other := embed_queue.other_generation(v_active);
    if v_other.id is null or v_other.generation <> 'next' then
      raise exception 'embed_queue.switch_model: %.% has no model change under way', v_active.queue_table, v_active.embedding_column
        using errcode = '55000', hint = 'Start one with embed_queue.reembed().';
    end if;
    if not p_force and not embed_queue.generation_ready(v_other) then
      raise exception 'embed_queue.switch_model: the new model (%) does not cover every live row of %.% yet',
        v_other.model, v_active.queue_table, v_active.embedding_column
        using errcode = '55000',
              hint = 'See embed_queue.model_changes (missing, open and failed jobs); p_force => true switches anyway (rows without a new vector drop out of search until embedded).';
    end if;
    v_swapped := embed_queue.swap_generations(v_active, v_other);
    table_name := v_swapped.queue_table;
    embedding_column := v_swapped.embedding_column;
    model := v_swapped.model;
    previous_model := v_active.model;
    return next;
  end loop;
end
$$;
comment on function embed_queue.switch_model(text, text, boolean) is
  'Switches the active column(s) of p_table to the next generation''s model (refused while it does not cover every live row, '
  'unless p_force). The old vectors stay as <column>_prev until embed_queue.drop_old_vectors().';

create function embed_queue.rollback_model(p_table text, p_column text default null)
returns table (table_name text, embedding_column text, model text, previous_model text)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_active embed_queue.targets;
  v_other embed_queue.targets;
  v_swapped embed_queue.targets;
begin
  for v_active in select * from embed_queue.active_targets(p_table, p_column) loop
    v_other := embed_queue.other_generation(v_active);
    if v_other.id is null or v_other.generation <> 'previous' then
      raise exception 'embed_queue.rollback_model: %.% keeps no previous model''s vectors', v_active.queue_table, v_active.embedding_column
        using errcode = '55000', hint = 'Only a switch whose old vectors were not dropped can be rolled back.';
    end if;
    v_swapped := embed_queue.swap_generations(v_active, v_other);
    table_name := v_swapped.queue_table;
    embedding_column := v_swapped.embedding_column;
    model := v_swapped.model;
    previous_model := v_active.model;
    return next;
  end loop;
end
$$;
comment on function embed_queue.rollback_model(text, text) is
  'Switches the active column(s) of p_table back to the previous model''s vectors; the newer ones become the next generation '
  'again (kept up to date, not switched to by itself: switch_model or cancel_reembed).';

create function embed_queue.drop_generation(p_active embed_queue.targets, p_which text)
returns text
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_other embed_queue.targets := embed_queue.other_generation(p_active);
begin
  if v_other.id is null or v_other.generation <> p_which then
    return null;
  end if;
  perform pg_catalog.pg_advisory_xact_lock(embed_queue.generation_lock_key());
  -- Writers wait from here (as in swap_generations): the column is dropped after the jobs go.
  execute pg_catalog.format('lock table %I.%I in share mode', v_other.schema_name, v_other.table_name);
  perform embed_queue.drop_triggers(v_other.schema_name, v_other.table_name, v_other.embedding_column);
  delete from public.embedding_queue q
  where q.table_name = v_other.queue_table and q.embedding_column = v_other.embedding_column;
  delete from embed_queue.targets t where t.id = v_other.id;
  execute pg_catalog.format('alter table %I.%I drop column %I', v_other.schema_name, v_other.table_name, v_other.embedding_column);
  return v_other.embedding_column;
end
$$;
comment on function embed_queue.drop_generation(embed_queue.targets, text) is
  'Drops an active target''s next or previous generation: its column (and index), triggers, jobs and target row. Returns the column dropped, or null.';

create function embed_queue.drop_old_vectors(p_table text, p_column text default null)
returns table (table_name text, dropped_column text)
language sql volatile security invoker set search_path = ''
as $$
  select a.queue_table, embed_queue.drop_generation(a, 'previous')
  from embed_queue.active_targets(p_table, p_column) a
$$;
comment on function embed_queue.drop_old_vectors(text, text) is
  'After a switch: drops the previous model''s vectors (<column>_prev) of p_table''s active columns; no roll-back after this.';

create function embed_queue.cancel_reembed(p_table text, p_column text default null)
returns table (table_name text, dropped_column text)
language sql volatile security invoker set search_path = ''
as $$
  select a.queue_table, embed_queue.drop_generation(a, 'next')
  from embed_queue.active_targets(p_table, p_column) a
$$;
comment on function embed_queue.cancel_reembed(text, text) is
  'Before a switch (or after a roll-back): drops the next model''s shadow column (<column>_next), its jobs and triggers.';

-- Called by tick(): a next generation that covers every live row becomes the active one.
create function embed_queue.advance_model_changes()
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_pair record;
  v_switched integer := 0;
  v_timeout text := pg_catalog.current_setting('lock_timeout');
begin
  for v_pair in
    select a as active, o as other from embed_queue.targets o
    join embed_queue.targets a on a.schema_name = o.schema_name and a.table_name = o.table_name
      and a.embedding_column = o.base_column and a.generation = 'active'
    where o.generation = 'next' and o.switch_when_covered
  loop
    continue when not embed_queue.generation_ready(v_pair.other);
    begin
      -- Never wait long for the table behind an app's long transaction: the next tick tries again.
      perform pg_catalog.set_config('lock_timeout', '2s', true);
      perform embed_queue.swap_generations(v_pair.active, v_pair.other);
      perform pg_catalog.set_config('lock_timeout', v_timeout, true);
      v_switched := v_switched + 1;
      raise notice 'embed_queue: %.% now holds model %', (v_pair.active).queue_table, (v_pair.active).embedding_column, (v_pair.other).model;
    exception
      when others then
        perform pg_catalog.set_config('lock_timeout', v_timeout, true);
        raise warning 'embed_queue: the switch of %.% to % did not happen (%); the next tick tries again',
          (v_pair.active).queue_table, (v_pair.active).embedding_column, (v_pair.other).model, sqlstate;
    end;
  end loop;
  return v_switched;
end
$$;
comment on function embed_queue.advance_model_changes() is
  'Run by tick(): switches each model change whose new model covers every live row (switch_when_covered). Returns how many switched.';

create view embed_queue.model_changes with (security_invoker = true) as
  select a.queue_table as table_name,
         a.embedding_column,
         embed_queue.target_model(a) as active_model,
         a.dimensions as active_dimensions,
         o.generation,
         o.embedding_column as other_column,
         o.model as other_model,
         o.dimensions as other_dimensions,
         o.switch_when_covered,
         c.total as live_rows,
         c.with_embeddings as covered,
         (select pg_catalog.count(*) from public.embedding_queue q
          where q.table_name = o.queue_table and q.embedding_column = o.embedding_column
            and q.status in ('pending', 'processing')) as open_jobs,
         (select pg_catalog.count(*) from public.embedding_queue q
          where q.table_name = o.queue_table and q.embedding_column = o.embedding_column and q.status = 'failed') as failed_jobs
  from embed_queue.targets o
  join embed_queue.targets a on a.schema_name = o.schema_name and a.table_name = o.table_name
    and a.embedding_column = o.base_column and a.generation = 'active'
  left join embed_queue.coverage_counts() c on c.table_name = o.queue_table and c.embedding_column = o.embedding_column
  order by a.queue_table, a.embedding_column;
comment on view embed_queue.model_changes is
  'Per target with a next or previous generation: the active model, the other column and model, live rows and how many it covers, '
  'its open and failed jobs. A next generation with switch_when_covered becomes active at the tick after it covers every live row.';

-- ---------------------------------------------------------------------------------------------
-- Search: the model of a pinned target is its column's, read after a swap in progress.

-- Replaces the version of 20261124001100_search.sql: a pinned target (targets.model) decides,
-- and the target's table is locked (ACCESS SHARE, what the caller's query takes anyway) before
-- the model is read, so a swap commits either before the read (the caller then sees the new
-- column and its model) or after the caller's transaction. A query_model another than the
-- pinned one is refused (SQLSTATE EQMOD): its distances to this column mean nothing.
-- Volatile, so its reads take a snapshot after the lock.
create or replace function embed_search.model_in_use(p_table text, p_column text, p_model text default null)
returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_target embed_queue.targets;
begin
  select t.* into v_target from embed_queue.targets t
  where t.queue_table = p_table and t.embedding_column = p_column;
  if v_target.id is not null then
    execute pg_catalog.format('lock table %I.%I in access share mode', v_target.schema_name, v_target.table_name);
    select t.* into v_target from embed_queue.targets t where t.id = v_target.id;
  end if;
  if v_target.model is not null then
    if p_model is not null and p_model <> v_target.model then
      raise exception '%.% holds vectors of model %, not of the query''s model %', p_table, p_column, v_target.model, p_model
        using errcode = 'EQMOD',
              hint = 'The model changed (embed_queue.reembed): embed the query with the model public.search_models() names.';
    end if;
    return v_target.model;
  end if;
  return coalesce(p_model, (
    select embed_search.vector_model(q.model)
    from public.embedding_queue q
    where q.table_name = p_table and q.embedding_column = p_column and q.status = 'completed'
    order by q.completed_at desc nulls last
    limit 1));
end
$$;
comment on function embed_search.model_in_use(text, text, text) is
  'The model of a target''s column: the pinned one (targets.model; a different p_model raises SQLSTATE EQMOD), else p_model, '
  'else the model of the target''s most recently completed job. Waits for a swap of generations in progress.';

-- Replaces the version of 20261124001100_search.sql: a pinned target's column holds its model's
-- vectors only (complete() fences on it), so no row needs checking, unless vectors of unknown
-- origin are there and do not count as that model (settings.legacy_vectors).
create or replace function embed_search.other_models_exist(p_table text, p_column text, p_model text)
returns boolean
language sql volatile security definer set search_path = ''
as $$
  select case
    when t.model is not null then
      t.model is distinct from p_model
      or (embed_search.vector_model(null) is distinct from p_model
          and exists (select 1 from public.embedding_queue q
                      where q.table_name = p_table and q.embedding_column = p_column and q.model is null
                        and q.status = 'completed'))
    else
      p_model is null
      or exists (select 1 from public.embedding_queue q
                 where q.table_name = p_table and q.embedding_column = p_column and q.model < p_model)
      or exists (select 1 from public.embedding_queue q
                 where q.table_name = p_table and q.embedding_column = p_column and q.model > p_model)
      or (embed_search.vector_model(null) is distinct from p_model
          and exists (select 1 from public.embedding_queue q
                      where q.table_name = p_table and q.embedding_column = p_column and q.model is null
                        and q.status = 'completed'))
  end
  from (select (select x.model from embed_queue.targets x
                where x.queue_table = p_table and x.embedding_column = p_column) as model) t
$$;
comment on function embed_search.other_models_exist(text, text, text) is
  'Whether any vector of the target may be another model''s than p_model: for a pinned target (targets.model) when p_model '
  'differs or untrusted vectors of unknown origin are there; else when a job records another model, or a vector of unknown '
  'origin does not count as p_model. While none does, the search functions skip the per-row check.';

create function public.search_models()
returns table (table_name text, embedding_column text, model text, dimensions integer)
language sql stable security definer set search_path = ''
as $$
  select t.queue_table, t.embedding_column, t.model, t.dimensions
  from embed_queue.targets t
  where t.generation = 'active' and t.schema_name = 'public'
  order by t.id
$$;
comment on function public.search_models() is
  'The model each searchable column holds (null: not pinned, the queue''s configured model): embed a query with it before '
  'calling match_*, hybrid_search_* or related_*. Changes at a model switch (embed_queue.reembed).';

revoke all on all functions in schema embed_queue from public, anon, authenticated;
revoke all on function public.search_models() from public, anon;
grant execute on function public.search_models() to authenticated, service_role;
grant execute on function
  embed_queue.complete_unchanged(text, bigint[], text[], text, integer),
  embed_queue.generation_lock_key(),
  embed_queue.target_model(embed_queue.targets),
  embed_queue.generation_column(text, text)
to service_role;
grant select on embed_queue.model_changes to service_role;
