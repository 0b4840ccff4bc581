-- Chunking for long texts, opt-in: a summary longer than one input (8,191 tokens) is cut into
-- overlapping chunks, each embedded on its own, so a passage after the cut can still be found
-- and a long text's parts are not blurred into one vector.
--
-- How it fits the queue without changing it: the chunks live in a table of their own,
-- public.summary_chunks, which is registered as one more embed_queue target (content →
-- embedding). Jobs, fencing by content hash, retries, deletes, the Batch path and `status` cover
-- chunks exactly as any other target's rows. What is new is only how chunk rows follow their
-- summary: a trigger on public.summaries rewrites a summary's chunks when its content changes
-- (a chunk whose text is the same keeps its vector), marks them soft-deleted with it, and the
-- foreign key removes them with it. The summary's own single vector (content_embedding) is
-- kept as before.
--
-- Opt in with `select embed_search.enable_chunking('summaries', 512, 64);` as postgres (chunk
-- size and overlap in tokens; it registers summary_chunks as a target); again with other sizes to re-chunk; `embed_search.disable_chunking('summaries')`
-- to stop (the chunks and their jobs go). Tokens are estimated per word as ceil(UTF-8 bytes / 4),
-- OpenAI's own estimate for its request limits; the function still cuts any input at 8,191 real
-- tokens.
--
-- Search: public.match_summaries_chunked returns summaries ranked by their best chunk, with
-- that chunk.

create table embed_search.chunking (
  table_name text primary key check (table_name = 'summaries'),
  chunk_tokens integer not null check (chunk_tokens between 2 and 8191),
  overlap_tokens integer not null check (overlap_tokens >= 0),
  check (overlap_tokens < chunk_tokens / 2)
);
comment on table embed_search.chunking is
  'Targets whose texts are chunked (only summaries so far), with chunk size and overlap in estimated tokens. Set with embed_search.enable_chunking().';

create table if not exists public.summary_chunks (
  id bigint generated always as identity primary key,
  summary_id uuid not null references public.summaries (id) on delete cascade,
  user_id uuid,
  chunk_index integer not null check (chunk_index >= 0),
  content text not null,
  embedding extensions.vector(1536),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint summary_chunks_summary_chunk_key unique (summary_id, chunk_index)
);
comment on table public.summary_chunks is
  'Overlapping chunks of long summaries (when chunking is enabled), each embedded by embed_queue as a target of its own. Written only by the summaries trigger.';
comment on column public.summary_chunks.embedding is 'Embedding of content, kept in step by embed_queue.';
comment on column public.summary_chunks.deleted_at is 'Set while its summary is soft-deleted.';

create index if not exists summary_chunks_user_id_idx on public.summary_chunks (user_id);
create or replace trigger summary_chunks_updated_at before update on public.summary_chunks
  for each row execute function extensions.moddatetime(updated_at);

alter table public.summary_chunks enable row level security;
revoke all on public.summary_chunks from public, anon, authenticated;
grant select on public.summary_chunks to authenticated;
grant select, insert, update, delete on public.summary_chunks to service_role;
do $$
declare
  v_seq text := pg_catalog.pg_get_serial_sequence('public.summary_chunks', 'id');
begin
  execute pg_catalog.format('revoke all on sequence %s from public, anon, authenticated', v_seq);
end
$$;
create policy summary_chunks_select_own on public.summary_chunks
  for select to authenticated using ((select auth.uid()) = user_id);

-- The HNSW index now, so no first search pays; the target is registered by enable_chunking, so
-- `status` shows chunks only once chunking is on.
create index if not exists summary_chunks_embedding_hnsw_idx
  on public.summary_chunks using hnsw (embedding extensions.vector_cosine_ops);

create function embed_search.split_text(p_text text, p_chunk_tokens integer, p_overlap_tokens integer)
returns table (chunk_index integer, content text)
language plpgsql immutable security invoker set search_path = ''
as $$
declare
  v_words text[] := pg_catalog.regexp_split_to_array(pg_catalog.btrim(coalesce(p_text, '')), '\s+');
  v_cost integer[];
  v_n integer;
  v_i integer := 1;
  v_start integer;
  v_tokens integer;
  v_j integer;
  v_back integer;
begin
  if v_words = array[''] then
    return;
  end if;
  v_n := pg_catalog.array_length(v_words, 1);
  select pg_catalog.array_agg(greatest(1, pg_catalog.ceil(pg_catalog.octet_length(w) / 4.0))::integer order by o)
    into v_cost from unnest(v_words) with ordinality as u(w, o);
  chunk_index := 0;
  loop
    v_start := v_i;
    v_tokens := 0;
    while v_i <= v_n and (v_i = v_start or v_tokens + v_cost[v_i] <= p_chunk_tokens) loop
      v_tokens := v_tokens + v_cost[v_i];
      v_i := v_i + 1;
    end loop;
    content := pg_catalog.array_to_string(v_words[v_start:v_i - 1], ' ');
    return next;
    exit when v_i > v_n;
    -- The next chunk starts up to p_overlap_tokens back, always after this one's start.
    v_j := v_i;
    v_back := 0;
    while v_j - 1 > v_start and v_back + v_cost[v_j - 1] <= p_overlap_tokens loop
      v_j := v_j - 1;
      v_back := v_back + v_cost[v_j];
    end loop;
    v_i := v_j;
    chunk_index := chunk_index + 1;
  end loop;
end
$$;
comment on function embed_search.split_text(text, integer, integer) is
  'Cuts a text on whitespace into chunks of at most p_chunk_tokens estimated tokens (ceil(bytes / 4) per word; a longer word is a chunk of its own), each starting up to p_overlap_tokens before the previous one ended.';

create function embed_search.sync_summary_chunks(p_summary_id uuid)
returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_cfg embed_search.chunking;
  v_summary record;
  v_count integer;
begin
  select * into v_cfg from embed_search.chunking c where c.table_name = 'summaries';
  select s.id, s.user_id, s.content, s.deleted_at into v_summary from public.summaries s where s.id = p_summary_id;
  if v_cfg is null or v_summary.id is null then
    delete from public.summary_chunks c where c.summary_id = p_summary_id;
    return 0;
  end if;
  if v_summary.deleted_at is not null then
    update public.summary_chunks c set deleted_at = v_summary.deleted_at
    where c.summary_id = p_summary_id and c.deleted_at is null;
    return 0;
  end if;

  -- A chunk whose text and owner are unchanged is left alone (its vector stays); a changed one
  -- is rewritten, which embed_queue's triggers clear and queue again; chunks past the new end go.
  with parts as materialized (
    select p.chunk_index, p.content
    from embed_search.split_text(v_summary.content, v_cfg.chunk_tokens, v_cfg.overlap_tokens) p
  ),
  upserted as (
    insert into public.summary_chunks as c (summary_id, user_id, chunk_index, content)
    select p_summary_id, v_summary.user_id, p.chunk_index, p.content from parts p
    on conflict (summary_id, chunk_index) do update
      set content = excluded.content, user_id = excluded.user_id, deleted_at = null
      where c.content is distinct from excluded.content or c.user_id is distinct from excluded.user_id
         or c.deleted_at is not null
    returning 1
  ),
  removed as (
    delete from public.summary_chunks c
    where c.summary_id = p_summary_id and c.chunk_index >= (select pg_catalog.count(*) from parts)
    returning 1
  )
  select pg_catalog.count(*)::integer into v_count from parts;
  return v_count;
end
$$;
comment on function embed_search.sync_summary_chunks(uuid) is
  'Brings one summary''s chunks in line with its content, owner and soft delete (definer: the user writing the summary may not write chunks). Returns how many chunks it has.';

create function embed_search.summaries_chunk_trigger()
returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if exists (select 1 from embed_search.chunking c where c.table_name = 'summaries') then
    perform embed_search.sync_summary_chunks(new.id);
  end if;
  return null;
end
$$;
comment on function embed_search.summaries_chunk_trigger() is
  'Trigger on summaries: re-chunks a summary whose content, owner or soft delete changed, while chunking is enabled.';

create or replace trigger embed_search_chunks_insert after insert on public.summaries
  for each row execute function embed_search.summaries_chunk_trigger();
create or replace trigger embed_search_chunks_update after update on public.summaries
  for each row when (old.content is distinct from new.content or old.user_id is distinct from new.user_id
                     or old.deleted_at is distinct from new.deleted_at)
  execute function embed_search.summaries_chunk_trigger();

create function embed_search.enable_chunking(
  p_table text default 'summaries',
  p_chunk_tokens integer default 512,
  p_overlap_tokens integer default 64
)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_id uuid;
  v_total integer := 0;
begin
  if p_table is distinct from 'summaries' then
    raise exception 'embed_search.enable_chunking: only summaries can be chunked so far, not %', pg_catalog.quote_literal(p_table)
      using errcode = '0A000';
  end if;
  perform embed_queue.register_target('summary_chunks', 'content', 'embedding');
  insert into embed_search.chunking as c (table_name, chunk_tokens, overlap_tokens)
  values (p_table, p_chunk_tokens, p_overlap_tokens)
  on conflict (table_name) do update set chunk_tokens = excluded.chunk_tokens, overlap_tokens = excluded.overlap_tokens;
  for v_id in select s.id from public.summaries s order by s.id loop
    v_total := v_total + embed_search.sync_summary_chunks(v_id);
  end loop;
  return v_total;
end
$$;
comment on function embed_search.enable_chunking(text, integer, integer) is
  'Turns chunking on for summaries (or changes its sizes) and chunks every summary now; the new chunks are queued like any rows. Returns the number of live chunks.';

create function embed_search.disable_chunking(p_table text default 'summaries')
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_count integer;
begin
  delete from embed_search.chunking c where c.table_name = p_table;
  delete from public.summary_chunks;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function embed_search.disable_chunking(text) is
  'Turns chunking off for summaries: every chunk and its jobs go. Returns how many chunks were removed.';

create function public.match_summaries_chunked(
  query_embedding extensions.vector,
  match_count integer default 10,
  match_threshold double precision default 0,
  filter_session_id uuid default null,
  created_after timestamptz default null,
  created_before timestamptz default null,
  query_model text default null
)
returns table (id uuid, user_id uuid, session_id uuid, content text, created_at timestamptz, similarity double precision,
               chunk_index integer, chunk_content text)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_model text := embed_search.model_in_use('summary_chunks', 'embedding', query_model);
  v_check boolean := embed_search.other_models_exist('summary_chunks', 'embedding', v_model);
  v_count integer := greatest(coalesce(match_count, 10), 0);
begin
  perform embed_search.prepare_scan();
  return query
    with candidates as materialized (
      select c.summary_id, c.chunk_index, c.content, c.embedding operator(extensions.<=>) query_embedding as distance
      from public.summary_chunks c
      where c.embedding is not null and c.deleted_at is null
        and (not v_check or embed_search.embedded_with('summary_chunks', 'embedding', c.id::text, v_model))
      order by c.embedding operator(extensions.<=>) query_embedding
      limit v_count * 4
    ),
    best as (
      select distinct on (m.summary_id) m.summary_id, m.chunk_index, m.content, m.distance
      from candidates m
      order by m.summary_id, m.distance, m.chunk_index
    )
    select s.id, s.user_id, s.session_id, s.content, s.created_at, (1 - b.distance)::double precision,
           b.chunk_index, b.content
    from best b
    join public.summaries s on s.id = b.summary_id
    where s.deleted_at is null
      and (filter_session_id is null or s.session_id = filter_session_id)
      and (created_after is null or s.created_at >= created_after)
      and (created_before is null or s.created_at < created_before)
      and 1 - b.distance >= coalesce(match_threshold, -1)
    order by b.distance, s.id
    limit v_count;
end
$$;
comment on function public.match_summaries_chunked(extensions.vector, integer, double precision, uuid, timestamptz, timestamptz, text) is
  'The caller''s summaries ranked by their best chunk''s cosine similarity (chunking enabled), with that chunk; '
  '4 * match_count chunks are ranked, so a summary with many near chunks does not crowd the others out. '
  'Soft-deleted rows and other models'' vectors left out; RLS decides whose rows.';

revoke all on table embed_search.chunking from public, anon, authenticated;
grant select on embed_search.chunking to service_role;
revoke all on function embed_search.split_text(text, integer, integer), embed_search.sync_summary_chunks(uuid),
  embed_search.summaries_chunk_trigger(), embed_search.enable_chunking(text, integer, integer),
  embed_search.disable_chunking(text)
from public, anon, authenticated;
-- enable_chunking registers a target (triggers on summary_chunks): run it as the tables' owner
-- (postgres: the SQL editor, psql, a migration).
revoke all on function public.match_summaries_chunked(extensions.vector, integer, double precision, uuid, timestamptz, timestamptz, text)
from public, anon;
grant execute on function public.match_summaries_chunked(extensions.vector, integer, double precision, uuid, timestamptz, timestamptz, text)
to authenticated, service_role;
