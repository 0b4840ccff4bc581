-- Search the app's users can call through the Data API: semantic (match_*), hybrid (full-text
-- and vector, fused by reciprocal rank) and related rows, for the guide's two tables.
--
-- Every public function here is `security invoker`: the caller's row-level security decides
-- which rows exist for it (a user sees only their own sessions and summaries; anon nothing).
-- On top of that every function leaves out soft-deleted rows and rows whose vector was made
-- by another model than the one in use (their distances to the query mean nothing).
--
-- The model in use. The queue records, per job, the model of the vector it wrote
-- (public.embedding_queue.model). A match function takes `query_model`, the model that made
-- `query_embedding`; the search Edge Function always passes its own. Left null, it is the
-- model of the target's most recently completed job: what the queue embeds with now. A vector
-- of unknown origin (a completed job with no model: the guide's script wrote it) counts as
-- text-embedding-3-small, the guide's model, while embed_queue.settings.legacy_vectors is
-- 'trust' (README, "Vectors of unknown origin"), and as no model otherwise.
--
-- The queue is not readable by anon or authenticated, so the two look-ups are `security
-- definer` functions in the private schema embed_search (not in the Data API's schemas):
-- a signed-in user reaches them only through the public functions below.
--
-- Indexes: the HNSW cosine index of each embedding column (the same embed_queue's
-- ensure_search_index makes, which then finds them and makes none; it accepts any HNSW cosine
-- index of the column whatever its name), and a generated English tsvector column per text with
-- its GIN index. On an adopted table what exists already is kept (`if not exists`).
--
-- Hybrid search follows Supabase's guide (supabase.com/docs/guides/ai/hybrid-search): each
-- method ranks its own candidates, and a row scores the sum over methods of
-- weight / (rrf_k + rank).

create schema if not exists embed_search;
comment on schema embed_search is
  'Private helpers of the public search functions (not exposed through the Data API): what the queue knows about each vector''s model, and the per-user rate limit of the search function.';
revoke all on schema embed_search from public;
grant usage on schema embed_search to authenticated, service_role;

-- The default "model in use" is read from the most recent completed job of a target.
create index if not exists embedding_queue_completed_idx
  on public.embedding_queue (table_name, embedding_column, completed_at desc)
  where status = 'completed';
-- Whether any vector of a target was written by another model: a few index probes.
create index if not exists embedding_queue_model_idx
  on public.embedding_queue (table_name, embedding_column, model);

-- Indexes the functions below use.
select embed_queue.ensure_search_index('sessions');
select embed_queue.ensure_search_index('summaries');
-- Full text: a stored tsvector column per text, as Supabase's hybrid search guide has it. Under
-- RLS a GIN index cannot serve a signed-in user's match (`@@` is not leakproof, so PostgreSQL
-- applies it only after the policy's filter): the match runs on the user's own rows, and a
-- stored tsvector makes that cheap where an expression would parse every text again (measured:
-- 570 ms for 4,000 summaries of one user, BENCHMARKS.md). On an adopted table, adding the
-- column rewrites the table once; a column of that name that exists is kept.
alter table public.sessions add column if not exists title_fts tsvector
  generated always as (pg_catalog.to_tsvector('pg_catalog.english'::pg_catalog.regconfig, coalesce(title, ''))) stored;
alter table public.summaries add column if not exists content_fts tsvector
  generated always as (pg_catalog.to_tsvector('pg_catalog.english'::pg_catalog.regconfig, coalesce(content, ''))) stored;
comment on column public.sessions.title_fts is 'English tsvector of title (generated), for hybrid_search_sessions.';
comment on column public.summaries.content_fts is 'English tsvector of content (generated), for hybrid_search_summaries.';
create index if not exists sessions_title_fts_idx on public.sessions using gin (title_fts);
create index if not exists summaries_content_fts_idx on public.summaries using gin (content_fts);

create function embed_search.vector_model(p_model text)
returns text
language sql stable security definer set search_path = ''
as $$
  select coalesce(p_model,
    (select 'text-embedding-3-small' from embed_queue.settings s where s.legacy_vectors = 'trust'))
$$;
comment on function embed_search.vector_model(text) is
  'The model a completed job''s vector counts as: its recorded model; with none recorded (vector of unknown origin), text-embedding-3-small while settings.legacy_vectors is trust, else null.';

create function embed_search.model_in_use(p_table text, p_column text, p_model text default null)
returns text
language sql stable security definer set search_path = ''
as $$
  select coalesce(p_model, (
    select embed_search.vector_model(q.model)
    from public.embedding_queue q
    where q.table_name = p_table and q.embedding_column = p_column and q.status = 'completed'
    order by q.completed_at desc nulls last
    limit 1))
$$;
comment on function embed_search.model_in_use(text, text, text) is
  'p_model if given, else the model of the target''s most recently completed job (what the queue embeds with now).';

create function embed_search.embedded_with(p_table text, p_column text, p_record_id text, p_model text)
returns boolean
language sql stable security definer set search_path = ''
as $$
  select coalesce((
    select embed_search.vector_model(q.model) = p_model
    from public.embedding_queue q
    where q.table_name = p_table and q.record_id = p_record_id and q.embedding_column = p_column
      and q.status = 'completed'), false)
$$;
comment on function embed_search.embedded_with(text, text, text, text) is
  'True when the row''s vector in p_column was written by p_model (its completed job says so). '
  'Called by the public search functions for rows the caller can already see.';

create function embed_search.other_models_exist(p_table text, p_column text, p_model text)
returns boolean
language sql stable security definer set search_path = ''
as $$
  select p_model is null
    or exists (select 1 from public.embedding_queue q
               where q.table_name = p_table and q.embedding_column = p_column and q.model < p_model)
    or exists (select 1 from public.embedding_queue q
               where q.table_name = p_table and q.embedding_column = p_column and q.model > p_model)
    or (embed_search.vector_model(null) is distinct from p_model
        and exists (select 1 from public.embedding_queue q
                    where q.table_name = p_table and q.embedding_column = p_column and q.model is null
                      and q.status = 'completed'))
$$;
comment on function embed_search.other_models_exist(text, text, text) is
  'Whether any vector of the target may be another model''s than p_model (a job records another model, or a vector of '
  'unknown origin does not count as p_model). While none does, the search functions skip the per-row check.';

-- HNSW scans in pgvector 0.8 may stop short of match_count rows when a filter (RLS, model,
-- soft delete) drops candidates; iterative scans go on until enough rows passed. Relaxed
-- order is put right by each function's outer order by. Set for the caller's transaction
-- (a Data API call is one transaction); pgvector 0.8.0, README "Iterative Index Scans".
create function embed_search.prepare_scan()
returns void
language sql volatile security invoker set search_path = ''
as $$
  select pg_catalog.set_config('hnsw.iterative_scan', 'relaxed_order', true);
$$;
comment on function embed_search.prepare_scan() is
  'Turns on pgvector''s iterative HNSW scans (relaxed order) for the rest of the transaction.';

-- ---------------------------------------------------------------------------------------------
-- Semantic search.

create function public.match_sessions(
  query_embedding extensions.vector,
  match_count integer default 10,
  match_threshold double precision default 0,
  created_after timestamptz default null,
  created_before timestamptz default null,
  query_model text default null
)
returns table (id uuid, user_id uuid, title text, created_at timestamptz, similarity double precision)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_model text := embed_search.model_in_use('sessions', 'title_embedding', query_model);
  v_check boolean := embed_search.other_models_exist('sessions', 'title_embedding', v_model);
begin
  perform embed_search.prepare_scan();
  return query
    with candidates as materialized (
      select s.id, s.user_id, s.title, s.created_at,
             s.title_embedding operator(extensions.<=>) query_embedding as distance
      from public.sessions s
      where s.title_embedding is not null
        and s.deleted_at is null
        and (created_after is null or s.created_at >= created_after)
        and (created_before is null or s.created_at < created_before)
        and (not v_check or embed_search.embedded_with('sessions', 'title_embedding', s.id::text, v_model))
      order by s.title_embedding operator(extensions.<=>) query_embedding
      limit greatest(coalesce(match_count, 10), 0)
    )
    select c.id, c.user_id, c.title, c.created_at, (1 - c.distance)::double precision
    from candidates c
    where 1 - c.distance >= coalesce(match_threshold, -1)
    order by c.distance, c.id;
end
$$;
comment on function public.match_sessions(extensions.vector, integer, double precision, timestamptz, timestamptz, text) is
  'The caller''s sessions nearest to query_embedding by cosine similarity (1 - cosine distance), at least match_threshold, '
  'created in [created_after, created_before); soft-deleted rows and rows embedded by another model than query_model '
  '(default: the model in use) left out. RLS decides whose rows.';

create function public.match_summaries(
  query_embedding extensions.vector,
  match_count integer default 10,
  match_threshold double precision default 0,
  filter_session_id uuid default null,
  created_after timestamptz default null,
  created_before timestamptz default null,
  query_model text default null
)
returns table (id uuid, user_id uuid, session_id uuid, content text, created_at timestamptz, similarity double precision)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_model text := embed_search.model_in_use('summaries', 'content_embedding', query_model);
  v_check boolean := embed_search.other_models_exist('summaries', 'content_embedding', v_model);
begin
  perform embed_search.prepare_scan();
  return query
    with candidates as materialized (
      select s.id, s.user_id, s.session_id, s.content, s.created_at,
             s.content_embedding operator(extensions.<=>) query_embedding as distance
      from public.summaries s
      where s.content_embedding is not null
        and s.deleted_at is null
        and (filter_session_id is null or s.session_id = filter_session_id)
        and (created_after is null or s.created_at >= created_after)
        and (created_before is null or s.created_at < created_before)
        and (not v_check or embed_search.embedded_with('summaries', 'content_embedding', s.id::text, v_model))
      order by s.content_embedding operator(extensions.<=>) query_embedding
      limit greatest(coalesce(match_count, 10), 0)
    )
    select c.id, c.user_id, c.session_id, c.content, c.created_at, (1 - c.distance)::double precision
    from candidates c
    where 1 - c.distance >= coalesce(match_threshold, -1)
    order by c.distance, c.id;
end
$$;
comment on function public.match_summaries(extensions.vector, integer, double precision, uuid, timestamptz, timestamptz, text) is
  'The caller''s summaries nearest to query_embedding by cosine similarity, at least match_threshold, optionally of one '
  'session (filter_session_id) and created in [created_after, created_before); soft-deleted rows and other models'' '
  'vectors left out. RLS decides whose rows.';

-- ---------------------------------------------------------------------------------------------
-- Hybrid search: full-text rank and vector distance fused by reciprocal rank.

create function public.hybrid_search_sessions(
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 10,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  created_after timestamptz default null,
  created_before timestamptz default null,
  query_model text default null
)
returns table (id uuid, user_id uuid, title text, created_at timestamptz, score double precision,
               similarity double precision, text_rank real)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_model text := embed_search.model_in_use('sessions', 'title_embedding', query_model);
  v_check boolean := embed_search.other_models_exist('sessions', 'title_embedding', v_model);
  v_query pg_catalog.tsquery := pg_catalog.websearch_to_tsquery('pg_catalog.english'::pg_catalog.regconfig, coalesce(query_text, ''));
  v_count integer := greatest(coalesce(match_count, 10), 0);
begin
  perform embed_search.prepare_scan();
  return query
    with full_text as materialized (
      select s.id,
             pg_catalog.ts_rank_cd(s.title_fts, v_query) as text_rank
      from public.sessions s
      where s.title_fts operator(pg_catalog.@@) v_query
        and s.deleted_at is null
        and (created_after is null or s.created_at >= created_after)
        and (created_before is null or s.created_at < created_before)
        and (s.title_embedding is null or (not v_check or embed_search.embedded_with('sessions', 'title_embedding', s.id::text, v_model)))
      order by 2 desc, 1
      limit v_count * 2
    ),
    full_text_ranked as (
      select f.id, f.text_rank, pg_catalog.row_number() over (order by f.text_rank desc, f.id) as rank_ix
      from full_text f
    ),
    semantic as materialized (
      select s.id, s.title_embedding operator(extensions.<=>) query_embedding as distance
      from public.sessions s
      where s.title_embedding is not null
        and s.deleted_at is null
        and (created_after is null or s.created_at >= created_after)
        and (created_before is null or s.created_at < created_before)
        and (not v_check or embed_search.embedded_with('sessions', 'title_embedding', s.id::text, v_model))
      order by s.title_embedding operator(extensions.<=>) query_embedding
      limit v_count * 2
    ),
    semantic_ranked as (
      select m.id, m.distance, pg_catalog.row_number() over (order by m.distance, m.id) as rank_ix
      from semantic m
    ),
    fused as (
      select coalesce(f.id, m.id) as id,
             coalesce(1.0 / (rrf_k + f.rank_ix), 0.0) * full_text_weight
               + coalesce(1.0 / (rrf_k + m.rank_ix), 0.0) * semantic_weight as score,
             1 - m.distance as similarity,
             f.text_rank
      from full_text_ranked f
      full outer join semantic_ranked m on m.id = f.id
    )
    select s.id, s.user_id, s.title, s.created_at, u.score::double precision,
           coalesce(u.similarity, 1 - (s.title_embedding operator(extensions.<=>) query_embedding))::double precision,
           coalesce(u.text_rank, 0)::real
    from fused u
    join public.sessions s on s.id = u.id
    order by u.score desc, s.id
    limit v_count;
end
$$;
comment on function public.hybrid_search_sessions(text, extensions.vector, integer, double precision, double precision, integer, timestamptz, timestamptz, text) is
  'The caller''s sessions ranked by reciprocal rank fusion of full-text rank (English, websearch syntax) and cosine '
  'distance: score = full_text_weight / (rrf_k + text rank) + semantic_weight / (rrf_k + vector rank). Each method '
  'ranks up to 2 * match_count candidates. Returns the fused score, the cosine similarity and the text rank.';

create function public.hybrid_search_summaries(
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 10,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  filter_session_id uuid default null,
  created_after timestamptz default null,
  created_before timestamptz default null,
  query_model text default null
)
returns table (id uuid, user_id uuid, session_id uuid, content text, created_at timestamptz, score double precision,
               similarity double precision, text_rank real)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_model text := embed_search.model_in_use('summaries', 'content_embedding', query_model);
  v_check boolean := embed_search.other_models_exist('summaries', 'content_embedding', v_model);
  v_query pg_catalog.tsquery := pg_catalog.websearch_to_tsquery('pg_catalog.english'::pg_catalog.regconfig, coalesce(query_text, ''));
  v_count integer := greatest(coalesce(match_count, 10), 0);
begin
  perform embed_search.prepare_scan();
  return query
    with full_text as materialized (
      select s.id,
             pg_catalog.ts_rank_cd(s.content_fts, v_query) as text_rank
      from public.summaries s
      where s.content_fts operator(pg_catalog.@@) v_query
        and s.deleted_at is null
        and (filter_session_id is null or s.session_id = filter_session_id)
        and (created_after is null or s.created_at >= created_after)
        and (created_before is null or s.created_at < created_before)
        and (s.content_embedding is null or (not v_check or embed_search.embedded_with('summaries', 'content_embedding', s.id::text, v_model)))
      order by 2 desc, 1
      limit v_count * 2
    ),
    full_text_ranked as (
      select f.id, f.text_rank, pg_catalog.row_number() over (order by f.text_rank desc, f.id) as rank_ix
      from full_text f
    ),
    semantic as materialized (
      select s.id, s.content_embedding operator(extensions.<=>) query_embedding as distance
      from public.summaries s
      where s.content_embedding is not null
        and s.deleted_at is null
        and (filter_session_id is null or s.session_id = filter_session_id)
        and (created_after is null or s.created_at >= created_after)
        and (created_before is null or s.created_at < created_before)
        and (not v_check or embed_search.embedded_with('summaries', 'content_embedding', s.id::text, v_model))
      order by s.content_embedding operator(extensions.<=>) query_embedding
      limit v_count * 2
    ),
    semantic_ranked as (
      select m.id, m.distance, pg_catalog.row_number() over (order by m.distance, m.id) as rank_ix
      from semantic m
    ),
    fused as (
      select coalesce(f.id, m.id) as id,
             coalesce(1.0 / (rrf_k + f.rank_ix), 0.0) * full_text_weight
               + coalesce(1.0 / (rrf_k + m.rank_ix), 0.0) * semantic_weight as score,
             1 - m.distance as similarity,
             f.text_rank
      from full_text_ranked f
      full outer join semantic_ranked m on m.id = f.id
    )
    select s.id, s.user_id, s.session_id, s.content, s.created_at, u.score::double precision,
           coalesce(u.similarity, 1 - (s.content_embedding operator(extensions.<=>) query_embedding))::double precision,
           coalesce(u.text_rank, 0)::real
    from fused u
    join public.summaries s on s.id = u.id
    order by u.score desc, s.id
    limit v_count;
end
$$;
comment on function public.hybrid_search_summaries(text, extensions.vector, integer, double precision, double precision, integer, uuid, timestamptz, timestamptz, text) is
  'The caller''s summaries ranked by reciprocal rank fusion of full-text rank (English) and cosine distance, as '
  'hybrid_search_sessions; optionally of one session (filter_session_id) and a time range.';

-- ---------------------------------------------------------------------------------------------
-- Related rows: the nearest neighbours of a row the caller can see.

create function public.related_sessions(
  session_id uuid,
  match_count integer default 5,
  match_threshold double precision default 0,
  query_model text default null
)
returns table (id uuid, user_id uuid, title text, created_at timestamptz, similarity double precision)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_model text := embed_search.model_in_use('sessions', 'title_embedding', query_model);
  v_check boolean := embed_search.other_models_exist('sessions', 'title_embedding', v_model);
  v_embedding extensions.vector;
begin
  -- The source row as the caller sees it: another user's, a deleted one or one embedded by
  -- another model gives nothing.
  select s.title_embedding into v_embedding
  from public.sessions s
  where s.id = related_sessions.session_id and s.deleted_at is null and s.title_embedding is not null
    and (not v_check or embed_search.embedded_with('sessions', 'title_embedding', s.id::text, v_model));
  if v_embedding is null then
    return;
  end if;
  return query
    select m.id, m.user_id, m.title, m.created_at, m.similarity
    from public.match_sessions(v_embedding, greatest(coalesce(match_count, 5), 0) + 1, match_threshold,
                               query_model => v_model) m
    where m.id <> related_sessions.session_id
    order by m.similarity desc, m.id
    limit greatest(coalesce(match_count, 5), 0);
end
$$;
comment on function public.related_sessions(uuid, integer, double precision, text) is
  'The caller''s sessions nearest to one of its own sessions (itself left out); nothing when that session is not '
  'visible to the caller, soft-deleted, or not embedded with the model in use.';

create function public.related_summaries(
  summary_id uuid,
  match_count integer default 5,
  match_threshold double precision default 0,
  query_model text default null
)
returns table (id uuid, user_id uuid, session_id uuid, content text, created_at timestamptz, similarity double precision)
language plpgsql stable security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_model text := embed_search.model_in_use('summaries', 'content_embedding', query_model);
  v_check boolean := embed_search.other_models_exist('summaries', 'content_embedding', v_model);
  v_embedding extensions.vector;
begin
  select s.content_embedding into v_embedding
  from public.summaries s
  where s.id = related_summaries.summary_id and s.deleted_at is null and s.content_embedding is not null
    and (not v_check or embed_search.embedded_with('summaries', 'content_embedding', s.id::text, v_model));
  if v_embedding is null then
    return;
  end if;
  return query
    select m.id, m.user_id, m.session_id, m.content, m.created_at, m.similarity
    from public.match_summaries(v_embedding, greatest(coalesce(match_count, 5), 0) + 1, match_threshold,
                                query_model => v_model) m
    where m.id <> related_summaries.summary_id
    order by m.similarity desc, m.id
    limit greatest(coalesce(match_count, 5), 0);
end
$$;
comment on function public.related_summaries(uuid, integer, double precision, text) is
  'The caller''s summaries nearest to one of its own summaries (itself left out); nothing when that summary is not '
  'visible to the caller, soft-deleted, or not embedded with the model in use.';

-- ---------------------------------------------------------------------------------------------
-- The search Edge Function's per-user rate limit: a token bucket per user, kept in the
-- database so it holds across the function's workers.

create table embed_search.settings (
  id boolean primary key default true check (id),
  rate_per_minute numeric not null default 30 check (rate_per_minute > 0),
  burst integer not null default 10 check (burst > 0)
);
insert into embed_search.settings default values;
comment on table embed_search.settings is
  'The search function''s per-user rate limit: a bucket of burst tokens, refilled at rate_per_minute. Change with update embed_search.settings set ...';

create table embed_search.rate_limits (
  user_id uuid primary key,
  tokens double precision not null,
  updated_at timestamptz not null
);
comment on table embed_search.rate_limits is 'One token bucket per user who called the search function.';

create function public.take_search_token()
returns table (allowed boolean, retry_after_ms integer)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_user uuid := auth.uid();
  v_settings embed_search.settings;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_tokens double precision;
begin
  if v_user is null then
    raise exception 'take_search_token: a signed-in user is needed' using errcode = '42501';
  end if;
  select * into v_settings from embed_search.settings;
  insert into embed_search.rate_limits as r (user_id, tokens, updated_at)
  values (v_user, v_settings.burst, v_now)
  on conflict (user_id) do update
    set tokens = least(v_settings.burst::double precision,
                       r.tokens + extract(epoch from v_now - r.updated_at) * v_settings.rate_per_minute / 60),
        updated_at = v_now
  returning r.tokens into v_tokens;
  if v_tokens >= 1 then
    update embed_search.rate_limits r set tokens = r.tokens - 1 where r.user_id = v_user;
    return query select true, 0;
  else
    return query select false,
      pg_catalog.ceil((1 - v_tokens) * 60000 / v_settings.rate_per_minute)::integer;
  end if;
end
$$;
comment on function public.take_search_token() is
  'Takes one token from the calling user''s bucket (embed_search.settings: burst, rate_per_minute). allowed false '
  'says how long until the next token (retry_after_ms). Definer: the bucket table is not the user''s to write.';

-- ---------------------------------------------------------------------------------------------
-- Privileges. Functions in public get EXECUTE for anon by Supabase's default privileges; anon
-- sees no rows anyway, and gets no EXECUTE at all here.

revoke all on all functions in schema embed_search from public, anon, authenticated;
revoke all on all tables in schema embed_search from public, anon, authenticated;
grant execute on function embed_search.vector_model(text), embed_search.model_in_use(text, text, text),
  embed_search.other_models_exist(text, text, text),
  embed_search.embedded_with(text, text, text, text), embed_search.prepare_scan()
  to authenticated, service_role;
grant select, update on embed_search.settings to service_role;
grant select on embed_search.rate_limits to service_role;

revoke all on function
  public.match_sessions(extensions.vector, integer, double precision, timestamptz, timestamptz, text),
  public.match_summaries(extensions.vector, integer, double precision, uuid, timestamptz, timestamptz, text),
  public.hybrid_search_sessions(text, extensions.vector, integer, double precision, double precision, integer, timestamptz, timestamptz, text),
  public.hybrid_search_summaries(text, extensions.vector, integer, double precision, double precision, integer, uuid, timestamptz, timestamptz, text),
  public.related_sessions(uuid, integer, double precision, text),
  public.related_summaries(uuid, integer, double precision, text),
  public.take_search_token()
from public, anon;
grant execute on function
  public.match_sessions(extensions.vector, integer, double precision, timestamptz, timestamptz, text),
  public.match_summaries(extensions.vector, integer, double precision, uuid, timestamptz, timestamptz, text),
  public.hybrid_search_sessions(text, extensions.vector, integer, double precision, double precision, integer, timestamptz, timestamptz, text),
  public.hybrid_search_summaries(text, extensions.vector, integer, double precision, double precision, integer, uuid, timestamptz, timestamptz, text),
  public.related_sessions(uuid, integer, double precision, text),
  public.related_summaries(uuid, integer, double precision, text),
  public.take_search_token()
to authenticated, service_role;
