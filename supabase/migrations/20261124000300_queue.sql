-- The queue and its configuration.
--   public.embedding_queue  one job per (table, row, embedding column); public because the
--                           user's guide queries it by its bare name
--   embed_queue.settings    every timing constant, in one row
--   embed_queue.models      price per model, for the usage view
--   embed_queue.runs        one row per run of the Edge Function

create schema if not exists embed_queue;
comment on schema embed_queue is
  'Machinery that keeps vector embeddings in step with table rows (not exposed through the Data API).';

revoke all on schema embed_queue from public;
grant usage on schema embed_queue to service_role;

-- Functions get EXECUTE for PUBLIC by default; every function in this schema is revoked
-- explicitly where it is created, and grants go to service_role only.

create table embed_queue.settings (
  id boolean primary key default true check (id),
  max_attempts integer not null default 5 check (max_attempts > 0),
  backoff_base_seconds numeric not null default 10 check (backoff_base_seconds > 0),
  backoff_max_seconds numeric not null default 3600 check (backoff_max_seconds > 0),
  lease_seconds integer not null default 120 check (lease_seconds > 0),
  webhook_min_interval_ms integer not null default 2000 check (webhook_min_interval_ms >= 0),
  rate_limited_default_seconds numeric not null default 10 check (rate_limited_default_seconds >= 0),
  tick_seconds integer not null default 10 check (tick_seconds between 1 and 59),
  invoke_timeout_ms integer not null default 5000 check (invoke_timeout_ms > 0),
  error_message_max_chars integer not null default 500 check (error_message_max_chars > 0),
  claim_max_chars integer not null default 131072 check (claim_max_chars between 1024 and 10485760),
  claim_max_bytes bigint not null default 16777216 check (claim_max_bytes between 65536 and 134217728),
  legacy_vectors text not null default 'trust' check (legacy_vectors in ('trust', 'reembed')),
  runs_retention interval not null default '7 days' check (runs_retention >= interval '1 hour'),
  cron_history_retention interval not null default '1 day' check (cron_history_retention >= interval '10 minutes'),
  bulk_min_share numeric not null default 0.1 check (bulk_min_share between 0 and 1),
  user_daily_tokens bigint default 2000000 check (user_daily_tokens > 0),
  global_daily_tokens bigint check (global_daily_tokens > 0)
);
insert into embed_queue.settings default values;

comment on table embed_queue.settings is
  'Every timing constant of the queue, in one row. Change with update embed_queue.settings set ...';
comment on column embed_queue.settings.max_attempts is 'Attempts a new job gets before it is failed (attempts are counted at claim).';
comment on column embed_queue.settings.backoff_base_seconds is 'Retry delay after the first failed attempt; doubles with each attempt (equal jitter).';
comment on column embed_queue.settings.backoff_max_seconds is 'Upper bound of the retry delay.';
comment on column embed_queue.settings.lease_seconds is 'How long a claimed job stays with its worker before rescue() takes it back.';
comment on column embed_queue.settings.webhook_min_interval_ms is 'The webhook calls the function at most once per this interval.';
comment on column embed_queue.settings.rate_limited_default_seconds is 'Delay for a rate-limited job when the provider gave no retry-after.';
comment on column embed_queue.settings.tick_seconds is 'pg_cron period where pg_cron has second schedules (1.5+); older pg_cron runs every minute.';
comment on column embed_queue.settings.invoke_timeout_ms is 'HTTP timeout of the call to the function (nothing waits for its answer).';
comment on column embed_queue.settings.error_message_max_chars is 'Error messages are cut to this length.';
comment on column embed_queue.settings.runs_retention is
  'tick() deletes finished run records older than this (with a 10 s tick, a few thousand runs a day).';
comment on column embed_queue.settings.cron_history_retention is
  'tick() deletes pg_cron''s cron.job_run_details rows of job embed-queue-tick older than this (8,640 a day at 10 s). pg_net drops its own responses (pg_net.ttl, 6 h).';
comment on column embed_queue.settings.claim_max_chars is
  'A claimed text leaves the database cut to this many characters (the content hash is still over the whole text). '
  'The provider takes at most 8191 tokens of an input, which fit in far fewer characters; a row of tens of MB never reaches the function whole.';
comment on column embed_queue.settings.claim_max_bytes is
  'One claim hands out at most this many bytes of text (always at least one job); the rest stays pending for the next claim. '
  'Bounds the memory a batch takes in the function whatever the mix of row sizes.';
comment on column embed_queue.settings.bulk_min_share is
  'Share of each claim kept for bulk work (backfills, requeues, retries, re-embeds) while fresh work fills the rest: '
  'floor(limit * share) jobs. Fresh work goes first; bulk takes everything fresh work leaves, so it is never starved.';
comment on column embed_queue.settings.user_daily_tokens is
  'Tokens one user (embedding_queue.fair_key) may have sent per UTC day; null: no limit. Per-user exceptions in '
  'embed_queue.user_caps. Counted at claim, before sending (estimate: UTF-8 bytes / 4, at most 8191 per input); a user '
  'over it has jobs waiting, pending with the reason in error_message, until the next UTC day (or embed_queue.lift_cap).';
comment on column embed_queue.settings.global_daily_tokens is
  'Tokens all users together may have sent per UTC day; null: no limit. Over it, claim() hands out nothing: every job '
  'waits, untouched, until the next UTC day or until this is raised.';
comment on column embed_queue.settings.legacy_vectors is
  'Vectors of unknown origin (written before embed_queue, e.g. by the guide''s script: no model recorded): '
  'trust keeps them; reembed has tick() queue them again, a page at a time, only while no other job is runnable.';

create table embed_queue.models (
  model text primary key,
  usd_per_million_tokens numeric not null check (usd_per_million_tokens >= 0)
);
insert into embed_queue.models (model, usd_per_million_tokens) values
  ('text-embedding-3-small', 0.02),
  ('text-embedding-3-large', 0.13),
  ('text-embedding-ada-002', 0.10),
  ('local', 0),
  ('local-hash-v1', 0);

comment on table embed_queue.models is 'Embedding models and their price, for embed_queue.usage and run costs.';

create table embed_queue.runs (
  id bigint generated always as identity primary key,
  worker text not null,
  trigger text not null check (trigger in ('cron', 'webhook', 'manual')),
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  claimed integer not null default 0,
  completed integer not null default 0,
  failed integer not null default 0,
  skipped integer not null default 0,
  unchanged integer not null default 0,
  stale integer not null default 0,
  requests integer not null default 0,
  rate_limited integer not null default 0,
  tokens bigint not null default 0,
  cost_usd numeric not null default 0,
  error text
);
create index runs_started_at_idx on embed_queue.runs (started_at);

comment on table embed_queue.runs is 'One row per run of the Edge Function (start_run/finish_run).';
comment on column embed_queue.runs.worker is 'The id the run claimed jobs under (embedding_queue.locked_by).';
comment on column embed_queue.runs.trigger is 'What started the run: cron (embed_queue.tick), webhook (queue insert/update) or manual.';
comment on column embed_queue.runs.unchanged is
  'Jobs completed without a provider request: the row''s stored vector already embeds that text with that model (embed_queue.complete_unchanged).';
comment on column embed_queue.runs.stale is 'Jobs whose content changed while the run embedded them (nothing written).';
comment on column embed_queue.runs.requests is 'Calls made to the embeddings provider.';
comment on column embed_queue.runs.rate_limited is 'Jobs given back because the provider rate-limited the run.';
comment on column embed_queue.runs.error is 'Why the run stopped early, if it did.';

-- The function that gives new jobs their max_attempts, so the constant lives only in settings.
create function embed_queue.default_max_attempts()
returns integer
language sql stable security definer set search_path = ''
as $$
  select s.max_attempts from embed_queue.settings s
$$;
comment on function embed_queue.default_max_attempts() is
  'Default of embedding_queue.max_attempts: settings.max_attempts (definer: the inserting role need not read settings).';

create table if not exists public.embedding_queue (
  id bigint generated always as identity primary key,
  table_name text not null,
  record_id text not null,
  embedding_column text not null,
  content text,
  user_id uuid,
  status text not null default 'pending'
    check (status in ('pending', 'processing', 'completed', 'failed', 'skipped')),
  error_message text,
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default embed_queue.default_max_attempts() check (max_attempts > 0),
  run_at timestamptz not null default now(),
  locked_by text,
  locked_until timestamptz,
  content_hash text,
  model text,
  dimensions integer,
  tokens integer,
  truncated boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  lane text not null default 'bulk' check (lane in ('fresh', 'bulk')),
  vtime bigint not null default 0,
  fair_key text generated always as (coalesce(user_id::text, table_name)) stored,
  constraint embedding_queue_target_record_key unique (table_name, record_id, embedding_column)
);

-- Adopting the queue of the user's guide. A database where the guide's old system runs already
-- has public.embedding_queue (table_name, record_id, content, embedding_column, user_id,
-- status, error_message, the unique key (table_name, record_id, embedding_column), and often an
-- id and timestamps of its own). `create table if not exists` above left it as it was; here it
-- is upgraded in place to the table above, keeping every job with its status, content and
-- error message. On the project's own table (it has locked_by) nothing happens.
--   id          a bigint identity (the worker API passes job ids as bigint[]); a uuid id of
--               the guide's is kept as legacy_id
--   record_id   text (the guide's may be uuid)
--   content     nullable (empty content is a skipped job, not an error)
--   status      the five states of docs/design.md; jobs the old script left 'processing' are
--               pending again (stop the script first: README, "Coming from the guide's script")
--   new columns attempts, max_attempts, run_at (adopted pending jobs keep their created_at
--               order), lease, content_hash, model, dimensions, tokens, truncated, timestamps
-- Completed jobs keep model and content_hash null: that marks their vectors as of unknown
-- origin (embed_queue.legacy_vectors, settings.legacy_vectors). Columns of the guide's this
-- table does not know (processed_at, ...) stay as they are.
do $$
declare
  v_rel oid := 'public.embedding_queue'::regclass;
  v_type text;
  v_con record;
  v_bad text;
  v_jobs bigint;
begin
  if exists (
    select 1 from pg_catalog.pg_attribute a
    where a.attrelid = v_rel and a.attname = 'locked_by' and not a.attisdropped
  ) then
    return;
  end if;
  select pg_catalog.count(*) into v_jobs from public.embedding_queue;

  -- Every column the guide's key and statements use must be there.
  select pg_catalog.string_agg(c.col, ', ') into v_bad
  from unnest(array['table_name', 'record_id', 'embedding_column', 'content', 'user_id', 'status', 'error_message']) as c (col)
  where not exists (
    select 1 from pg_catalog.pg_attribute a where a.attrelid = v_rel and a.attname = c.col and not a.attisdropped
  );
  if v_bad is not null then
    raise exception 'public.embedding_queue exists but lacks the guide''s column(s) %: it is not the guide''s queue', v_bad
      using errcode = '42P07',
            hint = 'Rename that table before pushing these migrations, or add the columns.';
  end if;

  select pg_catalog.string_agg(distinct q.status, ', ') into v_bad
  from public.embedding_queue q
  where q.status is not null and q.status not in ('pending', 'processing', 'completed', 'failed', 'skipped');
  if v_bad is not null then
    raise exception 'public.embedding_queue holds jobs in state(s) % that embed_queue does not know', v_bad
      using errcode = '23514',
            hint = 'Set them to pending, completed or failed first; the states are in docs/design.md.';
  end if;

  -- id: bigint identity.
  select pg_catalog.format_type(a.atttypid, a.atttypmod) into v_type
  from pg_catalog.pg_attribute a where a.attrelid = v_rel and a.attname = 'id' and not a.attisdropped;
  if v_type is distinct from 'bigint' and v_type is distinct from 'integer' then
    if v_type is not null then
      alter table public.embedding_queue rename column id to legacy_id;
      comment on column public.embedding_queue.legacy_id is 'The id the guide''s queue gave the job (kept; embed_queue uses id).';
    end if;
    for v_con in select c.conname from pg_catalog.pg_constraint c where c.conrelid = v_rel and c.contype = 'p' loop
      execute pg_catalog.format('alter table public.embedding_queue drop constraint %I', v_con.conname);
    end loop;
    alter table public.embedding_queue add column id bigint generated always as identity;
    alter table public.embedding_queue add constraint embedding_queue_pkey primary key (id);
  elsif v_type = 'integer' then
    alter table public.embedding_queue alter column id type bigint;
  end if;

  -- record_id as text; content may be empty.
  if (select a.atttypid from pg_catalog.pg_attribute a
      where a.attrelid = v_rel and a.attname = 'record_id' and not a.attisdropped) <> 'pg_catalog.text'::pg_catalog.regtype then
    alter table public.embedding_queue alter column record_id type text using record_id::text;
  end if;
  alter table public.embedding_queue alter column content drop not null;
  alter table public.embedding_queue alter column table_name set not null;
  alter table public.embedding_queue alter column record_id set not null;
  alter table public.embedding_queue alter column embedding_column set not null;

  -- status: the five states. Nobody holds a job the old script had taken.
  for v_con in
    select c.conname from pg_catalog.pg_constraint c
    where c.conrelid = v_rel and c.contype = 'c'
      and exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = v_rel and a.attnum = any (c.conkey) and a.attname = 'status')
  loop
    execute pg_catalog.format('alter table public.embedding_queue drop constraint %I', v_con.conname);
  end loop;
  update public.embedding_queue q set status = 'pending' where q.status is null or q.status = 'processing';
  alter table public.embedding_queue alter column status set default 'pending';
  alter table public.embedding_queue alter column status set not null;
  alter table public.embedding_queue add constraint embedding_queue_status_check
    check (status in ('pending', 'processing', 'completed', 'failed', 'skipped'));

  -- The project's columns, with the defaults of the table above.
  alter table public.embedding_queue
    add column if not exists attempts integer not null default 0 check (attempts >= 0),
    add column if not exists max_attempts integer not null default embed_queue.default_max_attempts() check (max_attempts > 0),
    add column if not exists run_at timestamptz not null default now(),
    add column if not exists locked_by text,
    add column if not exists locked_until timestamptz,
    add column if not exists content_hash text,
    add column if not exists model text,
    add column if not exists dimensions integer,
    add column if not exists tokens integer,
    add column if not exists truncated boolean not null default false,
    add column if not exists created_at timestamptz not null default now(),
    add column if not exists updated_at timestamptz not null default now(),
    add column if not exists completed_at timestamptz;
  update public.embedding_queue q set created_at = pg_catalog.now() where q.created_at is null;
  update public.embedding_queue q set updated_at = q.created_at where q.updated_at is null;
  alter table public.embedding_queue alter column created_at set default now();
  alter table public.embedding_queue alter column created_at set not null;
  alter table public.embedding_queue alter column updated_at set default now();
  alter table public.embedding_queue alter column updated_at set not null;

  -- Adopted pending jobs run oldest first, as the old script would have taken them.
  update public.embedding_queue q set run_at = q.created_at where q.status = 'pending' and q.created_at < q.run_at;
  -- Completed jobs: when, from the guide's processed_at if it kept one.
  if exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = v_rel and a.attname = 'processed_at' and not a.attisdropped) then
    execute 'update public.embedding_queue q set completed_at = coalesce(q.processed_at::timestamptz, q.updated_at) where q.status = ''completed''';
  else
    update public.embedding_queue q set completed_at = q.updated_at where q.status = 'completed';
  end if;

  -- The unique key under the project's name (on conflict names its columns, not the name).
  select c.conname into v_bad
  from pg_catalog.pg_constraint c
  where c.conrelid = v_rel and c.contype = 'u'
    and (select pg_catalog.array_agg(a.attname::text order by a.attname)
         from pg_catalog.pg_attribute a where a.attrelid = v_rel and a.attnum = any (c.conkey))
        = array['embedding_column', 'record_id', 'table_name']
  limit 1;
  if v_bad is null then
    alter table public.embedding_queue add constraint embedding_queue_target_record_key
      unique (table_name, record_id, embedding_column);
  elsif v_bad <> 'embedding_queue_target_record_key' then
    execute pg_catalog.format('alter table public.embedding_queue rename constraint %I to embedding_queue_target_record_key', v_bad);
  end if;

  raise notice 'embed_queue: adopted the existing public.embedding_queue in place (% jobs kept)', v_jobs;
end
$$;

-- Fairness columns (docs/design.md, "Fresh first, a fair share"), on a new table and an adopted one.
alter table public.embedding_queue
  add column if not exists lane text not null default 'bulk' check (lane in ('fresh', 'bulk')),
  add column if not exists vtime bigint not null default 0,
  add column if not exists fair_key text generated always as (coalesce(user_id::text, table_name)) stored;
-- Adopted pending jobs: each user's in turn (their n-th job at virtual time n), oldest first.
update public.embedding_queue q set vtime = r.n
from (
  select j.id, pg_catalog.row_number() over (partition by j.fair_key order by j.run_at, j.id) as n
  from public.embedding_queue j where j.status = 'pending'
) r
where q.id = r.id and q.vtime <> r.n;

comment on table public.embedding_queue is
  'Embedding jobs: one per (table, row, embedding column). States and fencing: docs/design.md. '
  'Only service_role and the owner may touch it; the worker API lives in schema embed_queue.';
comment on column public.embedding_queue.table_name is 'Source table: bare name for schema public, schema.table otherwise.';
comment on column public.embedding_queue.record_id is 'Primary key of the source row, as text (any key type).';
comment on column public.embedding_queue.embedding_column is 'Column of the source table the vector is written to.';
comment on column public.embedding_queue.content is 'Text to embed: refreshed from the source row at every claim.';
comment on column public.embedding_queue.status is 'pending, processing (claimed), completed, failed (attempts spent or permanent error), skipped (empty content).';
comment on column public.embedding_queue.error_message is 'Last error, or why the job was skipped.';
comment on column public.embedding_queue.attempts is 'Attempts spent, counted at claim; refunded when rate limited or released.';
comment on column public.embedding_queue.run_at is 'Earliest time of the next attempt (backoff).';
comment on column public.embedding_queue.locked_by is 'Worker holding the job while processing.';
comment on column public.embedding_queue.locked_until is 'End of the lease; after it rescue() takes the job back.';
comment on column public.embedding_queue.content_hash is 'Hex sha256 of the content handed out at claim: complete() writes only if the row still hashes to it.';
comment on column public.embedding_queue.model is 'Model of the last completed embedding.';
comment on column public.embedding_queue.dimensions is 'Dimensions of the last completed embedding.';
comment on column public.embedding_queue.tokens is 'Tokens the provider counted for the last completed embedding.';
comment on column public.embedding_queue.truncated is 'The content was cut to the model''s input limit before embedding.';
comment on column public.embedding_queue.completed_at is 'When the last embedding was written.';
comment on column public.embedding_queue.lane is
  'fresh: a row a user just wrote (the source triggers); bulk: everything else (backfill, requeue, retry, re-embed, '
  'a job whose attempt failed). claim() takes fresh jobs first and keeps settings.bulk_min_share of each claim for bulk.';
comment on column public.embedding_queue.vtime is
  'Virtual time of a pending job within its lane: claim() takes jobs in vtime order. A user''s new job gets one more '
  'than the later of the lane''s clock (embed_queue.fair_clock) and that user''s last pending job, so the jobs of the '
  'users with waiting work alternate, and a user with no backlog goes next whatever another user queued.';
comment on column public.embedding_queue.fair_key is
  'Whose turn the job is: the row''s owner (user_id), or the table''s name for a target without an owner column.';

-- Whether any job is runnable (tick, lag) reads pending jobs by run_at; claiming reads them per
-- lane in virtual-time order; a new job reads its user's last pending one; rescue reads expired leases.
create index if not exists embedding_queue_claim_idx on public.embedding_queue (run_at, id) where status = 'pending';
create index if not exists embedding_queue_fair_idx on public.embedding_queue (lane, vtime, id) where status = 'pending';
create index if not exists embedding_queue_fair_key_idx on public.embedding_queue (lane, fair_key, vtime) where status = 'pending';
create index if not exists embedding_queue_rescue_idx on public.embedding_queue (locked_until) where status = 'processing';

create or replace trigger embedding_queue_updated_at before update on public.embedding_queue
  for each row execute function extensions.moddatetime(updated_at);

-- Nobody but service_role (and the owner) may do anything with the queue.
alter table public.embedding_queue enable row level security;
revoke all on public.embedding_queue from public, anon, authenticated;
grant select, insert, update, delete on public.embedding_queue to service_role;

-- A person setting status = 'pending' (the guide's retry UPDATE and its requeue upsert) gives
-- the job a fresh start. The worker API marks its own updates with the transaction-local
-- setting embed_queue.internal = 'on' and keeps attempts as they are.
create function embed_queue.embedding_queue_manual_reset()
returns trigger
language plpgsql volatile security invoker set search_path = ''
as $$
begin
  if coalesce(pg_catalog.current_setting('embed_queue.internal', true), '') = 'on' then
    return new;
  end if;
  new.attempts := 0;
  new.run_at := pg_catalog.now();
  new.locked_by := null;
  new.locked_until := null;
  new.content_hash := null;
  return new;
end
$$;
comment on function embed_queue.embedding_queue_manual_reset() is
  'Trigger: status set to pending by a person resets attempts, run_at and the lease; the worker API''s own updates (embed_queue.internal = on) are left alone.';

create or replace trigger embedding_queue_manual_reset before update of status on public.embedding_queue
  for each row when (new.status = 'pending') execute function embed_queue.embedding_queue_manual_reset();

-- Spend caps: tokens handed out per UTC day and user, and per-user exceptions to the default.
create table embed_queue.spend (
  id bigint generated always as identity primary key,
  day date not null,
  fair_key text not null,
  tokens bigint not null default 0 check (tokens >= 0)
);
create index spend_day_key_idx on embed_queue.spend (day, fair_key);
comment on table embed_queue.spend is
  'Tokens claim() handed out per UTC day and user (embedding_queue.fair_key), estimated before sending '
  '(UTF-8 bytes / 4, at most 8191 per input): one row per claim and user, summed into one per day and user by '
  'embed_queue.tick() (a ledger, so concurrent claims never wait on each other''s counter). '
  'What settings.user_daily_tokens and global_daily_tokens are checked against.';

create table embed_queue.user_caps (
  fair_key text primary key,
  daily_tokens bigint check (daily_tokens > 0),
  note text,
  updated_at timestamptz not null default now()
);
comment on table embed_queue.user_caps is
  'Per-user exceptions to settings.user_daily_tokens (fair_key: the user id as text). daily_tokens null: no limit for this user. '
  'Set with embed_queue.lift_cap().';

-- The virtual clock of each lane: the highest vtime claim() has taken. A user with no pending
-- job in the lane starts just after it, i.e. next in line.
create table embed_queue.fair_clock (
  lane text primary key check (lane in ('fresh', 'bulk')),
  vtime bigint not null default 0
);
insert into embed_queue.fair_clock (lane) values ('fresh'), ('bulk');
comment on table embed_queue.fair_clock is
  'Per lane, the highest embedding_queue.vtime claim() has taken: where a user without pending jobs joins the line.';

-- Lane and virtual time of a job that becomes pending. The source triggers queue through
-- embed_queue.enqueue_many, which says 'fresh' in the transaction-local setting
-- embed_queue.lane; every other insert or status = 'pending' (backfill, requeue, retry, the
-- guide's statements, re-embeds) is bulk. The worker API (embed_queue.internal = on) sets lane
-- and vtime itself. A job still pending or processing in the fresh lane stays there, in its place.
create function embed_queue.embedding_queue_lane()
returns trigger
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_lane text := coalesce(nullif(pg_catalog.current_setting('embed_queue.lane', true), ''), 'bulk');
  v_given boolean := v_lane = 'fresh, given';
  v_key text := coalesce(new.user_id::text, new.table_name);
begin
  if coalesce(pg_catalog.current_setting('embed_queue.internal', true), '') = 'on' then
    return new;
  end if;
  if v_given then
    v_lane := 'fresh';
  end if;
  if tg_op = 'UPDATE' and old.status in ('pending', 'processing')
     and (old.lane = v_lane or old.lane = 'fresh')
     and old.fair_key is not distinct from v_key then
    new.lane := old.lane;
    new.vtime := old.vtime;
    return new;
  end if;
  new.lane := v_lane;
  if v_given then
    -- enqueue_many computed the statement's virtual times itself.
    return new;
  end if;
  -- Rows inserted earlier by the same statement are visible here, so a user's rows of one
  -- statement get consecutive virtual times.
  new.vtime := 1 + greatest(
    coalesce((select c.vtime from embed_queue.fair_clock c where c.lane = v_lane), 0),
    coalesce((select q.vtime from public.embedding_queue q
              where q.status = 'pending' and q.lane = v_lane and q.fair_key = v_key
              order by q.vtime desc limit 1), 0));
  return new;
end
$$;
comment on function embed_queue.embedding_queue_lane() is
  'Trigger: gives a job that becomes pending its lane (fresh when queued by the source triggers, else bulk) and its '
  'virtual time (after the lane''s clock and after its user''s last pending job). The worker API''s own updates are left alone.';

create or replace trigger embedding_queue_lane before insert or update of status on public.embedding_queue
  for each row when (new.status = 'pending') execute function embed_queue.embedding_queue_lane();

revoke all on all functions in schema embed_queue from public, anon, authenticated;
grant execute on function embed_queue.default_max_attempts() to service_role;
grant select, update on embed_queue.fair_clock to service_role;
grant select, insert, update, delete on embed_queue.spend to service_role;
grant select, insert, update, delete on embed_queue.user_caps to service_role;
grant select on embed_queue.settings, embed_queue.models to service_role;
grant select, insert, update on embed_queue.runs to service_role;

-- The queue's identity sequence got the default grants of schema public (usage for anon and
-- authenticated): they could burn job ids with nextval(). Nobody but service_role needs it.
-- (Found by name through the catalog: an adopted queue's identity sequence may be named otherwise.)
do $$
declare
  v_seq text := pg_catalog.pg_get_serial_sequence('public.embedding_queue', 'id');
begin
  execute pg_catalog.format('revoke all on sequence %s from public, anon, authenticated', v_seq);
  execute pg_catalog.format('grant usage, select on sequence %s to service_role', v_seq);
end
$$;
