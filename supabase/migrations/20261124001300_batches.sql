-- Bulk work through OpenAI's Batch API (half price, within 24 h): a backlog of bulk-lane jobs
-- (backfills, requeues, re-embeds, retries) of at least settings.batch_min_jobs is claimed by a
-- batch, sent as one JSONL file of /v1/embeddings requests, and written back through
-- embed_queue.complete() when the batch ends. The steps of each batch are recorded in
-- embed_queue.batches, so a function killed between two of them resumes (or rolls back) on
-- its next run:
--
--   claimed ──► uploaded ──► submitted ──► downloading ──► done
--      │            │            │ (provider: validating → in_progress → finalizing →
--      │            │            │  completed | failed | expired | cancelling → cancelled)
--      └────────────┴────────────┴──► done (outcome cancelled or failed: every job released)
--
-- The jobs of a batch stay 'processing', held by the lock owner 'batch:<id>' (embedding_queue
-- .locked_by, and embedding_queue.batch_id), with a lease of settings.batch_hold_hours, longer
-- than the 24 h window: if every run died for good, rescue() still takes them back. Vectors are
-- written with complete('batch:<id>', ...): the same fence as the synchronous path (the job
-- still held by the batch, the content hash unchanged, the source row hashing to it), so a row
-- edited or soft-deleted while the batch ran gets nothing from it. Lines the provider could not
-- do go back to the synchronous path with release() (attempt refunded); an input the provider
-- refuses for good gets fail() 'permanent', as in the synchronous path.
-- The function's side is supabase/functions/embed-queue/batch.ts.

alter table embed_queue.settings
  add column batch_enabled boolean not null default true,
  add column batch_min_jobs integer not null default 10000 check (batch_min_jobs >= 1),
  add column batch_max_jobs integer not null default 10000 check (batch_max_jobs between 1 and 50000),
  add column batch_max_bytes bigint not null default 33554432 check (batch_max_bytes between 65536 and 104857600),
  add column batch_inputs_per_request integer not null default 100 check (batch_inputs_per_request between 1 and 2048),
  add column batch_max_open integer not null default 4 check (batch_max_open >= 1),
  add column batch_poll_seconds integer not null default 60 check (batch_poll_seconds >= 1),
  add column batch_hold_hours integer not null default 26 check (batch_hold_hours >= 25);

comment on column embed_queue.settings.batch_enabled is
  'Bulk work goes through OpenAI''s Batch API (openai provider only; the local provider has none). Off: everything is synchronous; '
  'open batches are still followed to their end.';
comment on column embed_queue.settings.batch_min_jobs is
  'A run opens a batch only when at least this many bulk-lane jobs are runnable. 10,000: below it the synchronous path drains the '
  'backlog in about a minute at tier-1 limits for a saving of cents, where a batch takes minutes to hours (README, "Bulk work at half price").';
comment on column embed_queue.settings.batch_max_jobs is
  'Jobs (embedding inputs) per batch; OpenAI allows at most 50,000 inputs across an embeddings batch. 10,000 keeps a batch''s output '
  '(about 80 MB at 1536 dimensions) to a few runs of write-back within the worker''s CPU limit.';
comment on column embed_queue.settings.batch_max_bytes is
  'Text per batch at most (one job always goes): bounds the function''s memory while it builds the file (OpenAI takes up to 200 MB).';
comment on column embed_queue.settings.batch_inputs_per_request is
  'Inputs per /v1/embeddings request (line) of a batch file; a failed line gives back this many jobs.';
comment on column embed_queue.settings.batch_max_open is 'Batches open at once at most (OpenAI also bounds the tokens enqueued per model).';
comment on column embed_queue.settings.batch_poll_seconds is 'How often an open batch is asked for its status (tick() calls the function for it).';
comment on column embed_queue.settings.batch_hold_hours is
  'Lease of a batch''s jobs: longer than the 24 h completion window, so that only a batch nobody follows any more loses them to rescue().';

alter table embed_queue.models add column usd_per_million_tokens_batch numeric check (usd_per_million_tokens_batch >= 0);
update embed_queue.models m set usd_per_million_tokens_batch = m.usd_per_million_tokens / 2;
comment on column embed_queue.models.usd_per_million_tokens_batch is
  'Price through the Batch API (half of usd_per_million_tokens on OpenAI''s price list); null: half the synchronous price.';

alter table public.embedding_queue add column if not exists batch_id bigint;

-- A third lane, 'batch': bulk jobs set aside for batches. claim() takes only the fresh and bulk
-- lanes, so the synchronous path leaves them alone; batch_open() takes them a batch at a time.
alter table public.embedding_queue drop constraint if exists embedding_queue_lane_check;
alter table public.embedding_queue add constraint embedding_queue_lane_check check (lane in ('fresh', 'bulk', 'batch'));
comment on column public.embedding_queue.lane is
  'fresh: a row a user just wrote (the source triggers); bulk: everything else (backfill, requeue, retry, re-embed, '
  'a job whose attempt failed); batch: bulk work set aside for the Batch API (embed_queue.batch_open), which claim() does not take. '
  'claim() takes fresh jobs first and keeps settings.bulk_min_share of each claim for bulk.';
create index if not exists embedding_queue_batch_tried_idx on public.embedding_queue (id)
  where status = 'pending' and lane = 'batch' and batch_id is not null;
comment on column public.embedding_queue.batch_id is
  'The last batch (embed_queue.batches) that took the job. While it holds the job, locked_by is ''batch:<id>''. '
  'A job a batch gave back goes to the bulk lane and is not taken by another batch for two days: the synchronous path does it.';

alter table embed_queue.runs add column batch jsonb;
comment on column embed_queue.runs.batch is
  'What the run did with batches: {"opened","submitted","written","stale","released","failed","tokens","cost_usd","events":[...]}. '
  'tokens and cost_usd of the run include these (cost at the batch price).';

create table embed_queue.batches (
  id bigint generated always as identity primary key,
  step text not null default 'claimed'
    check (step in ('claimed', 'uploaded', 'submitted', 'downloading', 'done')),
  outcome text check (outcome in ('completed', 'expired', 'failed', 'cancelled')),
  provider_status text,
  model text not null,
  dimensions integer not null,
  inputs_per_request integer not null,
  jobs integer not null default 0,
  requests integer not null default 0,
  input_file_id text,
  provider_batch_id text,
  output_file_id text,
  error_file_id text,
  request_counts jsonb,
  output_bytes_done bigint not null default 0,
  output_lines_done integer not null default 0,
  error_bytes_done bigint not null default 0,
  error_lines_done integer not null default 0,
  written integer not null default 0,
  stale integer not null default 0,
  released integer not null default 0,
  failed integer not null default 0,
  tokens bigint not null default 0,
  cost_usd numeric not null default 0,
  cancel_requested boolean not null default false,
  next_poll_at timestamptz not null default now(),
  locked_by text,
  locked_until timestamptz,
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  submitted_at timestamptz,
  finished_at timestamptz
);
create index batches_open_idx on embed_queue.batches (next_poll_at) where step <> 'done';

comment on table embed_queue.batches is
  'One row per Batch API batch and the step it reached (claimed, uploaded, submitted, downloading, done): a run killed between two '
  'steps leaves the row where it was, and the next run resumes it. Its jobs are held by locked_by = ''batch:<id>''.';
comment on column embed_queue.batches.step is
  'claimed: jobs held, no file; uploaded: input_file_id known, no batch; submitted: provider_batch_id known, polled; '
  'downloading: the batch ended, output and error files being written back (cursors below); done.';
comment on column embed_queue.batches.outcome is 'How the batch ended: completed, expired, failed (validation or provider), cancelled.';
comment on column embed_queue.batches.provider_status is 'The provider''s status at the last poll (validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled).';
comment on column embed_queue.batches.inputs_per_request is 'Inputs per line of its file (settings.batch_inputs_per_request when it was opened).';
comment on column embed_queue.batches.jobs is 'Jobs the batch took (one embedding input each).';
comment on column embed_queue.batches.requests is 'Lines (/v1/embeddings requests) of the input file.';
comment on column embed_queue.batches.output_bytes_done is 'Write-back cursor: bytes of the output file done (always at a line end); a run continues after it.';
comment on column embed_queue.batches.error_bytes_done is 'Write-back cursor of the error file.';
comment on column embed_queue.batches.written is 'Jobs completed with a vector from this batch.';
comment on column embed_queue.batches.stale is 'Jobs whose row changed or went while the batch ran: nothing written (the synchronous path embeds the new text).';
comment on column embed_queue.batches.released is 'Jobs given back to the synchronous path (failed lines, expiry, cancel), attempt refunded.';
comment on column embed_queue.batches.failed is 'Jobs failed for good (an input the provider refuses).';
comment on column embed_queue.batches.tokens is 'Tokens the provider billed for the output lines written back.';
comment on column embed_queue.batches.cost_usd is 'tokens at the model''s batch price (embed_queue.models.usd_per_million_tokens_batch).';
comment on column embed_queue.batches.cancel_requested is 'Set by embed_queue.cancel_batch(): the next run cancels at the provider (or releases the jobs if nothing was submitted).';
comment on column embed_queue.batches.next_poll_at is 'When the batch is next asked for its status (settings.batch_poll_seconds).';
comment on column embed_queue.batches.locked_by is 'The run working on this batch now (a short lease, so two runs never do the same step).';

create table embed_queue.batch_requests (
  batch_id bigint not null references embed_queue.batches (id) on delete cascade,
  line integer not null,
  job_ids bigint[] not null,
  hashes text[] not null,
  truncated boolean[] not null,
  primary key (batch_id, line)
);
comment on table embed_queue.batch_requests is
  'The lines of a batch''s input file: line n has custom_id ''eq-<batch>-<n>'' and embeds job_ids in order, each under its content hash '
  '(the fence complete() checks). Deleted with the batch.';

-- The next runnable bulk-lane jobs in turn, as claim() orders them, that no batch gave back in
-- the last two days. Shared by the backlog check and the claim.
create function embed_queue.batch_candidates(p_limit integer)
returns setof bigint
language sql stable security invoker set search_path = ''
as $$
  select q.id from public.embedding_queue q
  where q.status = 'pending' and q.lane = 'bulk' and q.run_at <= pg_catalog.now()
    and (q.batch_id is null or not exists (
      select 1 from embed_queue.batches b where b.id = q.batch_id and b.created_at > pg_catalog.now() - interval '2 days'))
  order by q.lane, q.vtime, q.id
  limit p_limit
$$;
comment on function embed_queue.batch_candidates(integer) is
  'Up to p_limit runnable bulk-lane jobs in virtual-time order, leaving out those a batch gave back in the last two days.';

create function embed_queue.batch_open(p_worker text, p_model text, p_dimensions integer)
returns table (batch_id bigint, jobs integer)
language plpgsql volatile security invoker set search_path = ''
as $$
#variable_conflict use_column
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_s embed_queue.settings;
  v_batch bigint;
  v_owner text;
  v_ids bigint[];
  v_target embed_queue.targets;
  v_used bigint := 0;
  v_added bigint;
  v_capped text[];
  v_jobs integer;
  v_model text;
  v_dimensions integer;
begin
  select * into v_s from embed_queue.settings s;
  -- One opener at a time (transaction-scoped: fine behind a transaction pooler); a run that finds
  -- another opening goes on to its synchronous work instead of waiting.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('embed_queue.batch_open')) then
    return;
  end if;
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);

  -- Jobs of the batch lane that a batch already had (given back, or re-queued by complete() as
  -- stale) belong to the synchronous path: back to the bulk lane.
  -- (Every move below skips rows a claim is taking: no waiting on, or deadlock with, claim().)
  update public.embedding_queue q set lane = 'bulk'
  where q.id in (
    select j.id from public.embedding_queue j
    where j.status = 'pending' and j.lane = 'batch' and j.batch_id is not null
    for update of j skip locked
  );

  if not v_s.batch_enabled then
    -- Batching turned off: what waited for a batch goes to the synchronous path (a page a run).
    update public.embedding_queue q set lane = 'bulk'
    where q.id in (
      select j.id from public.embedding_queue j where j.status = 'pending' and j.lane = 'batch'
      limit 100000 for update of j skip locked
    );
    perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
    return;
  end if;

  -- A bulk backlog of at least batch_min_jobs is set aside for batches (lane 'batch', 100,000 a
  -- run at most, in its order), so that the synchronous path does not take it meanwhile.
  if (select pg_catalog.count(*) from embed_queue.batch_candidates(v_s.batch_min_jobs)) >= v_s.batch_min_jobs then
    update public.embedding_queue q set lane = 'batch'
    from (
      -- batch_candidates(), locking, for the targets whose column takes the batch's dimensions.
      select j.id from public.embedding_queue j
      where j.status = 'pending' and j.lane = 'bulk' and j.run_at <= pg_catalog.now()
        and (j.batch_id is null or not exists (
          select 1 from embed_queue.batches b where b.id = j.batch_id and b.created_at > pg_catalog.now() - interval '2 days'))
        and exists (select 1 from embed_queue.targets t
                    where t.queue_table = j.table_name and t.embedding_column = j.embedding_column
                      and (t.model is not null or t.dimensions is null or t.dimensions = p_dimensions))
      order by j.lane, j.vtime, j.id
      limit 100000
      for update of j skip locked
    ) m
    where q.id = m.id;
  end if;

  if (select pg_catalog.count(*) from embed_queue.batches b where b.step <> 'done') >= v_s.batch_max_open
     or not exists (select 1 from public.embedding_queue q where q.status = 'pending' and q.lane = 'batch'
                    and q.run_at <= pg_catalog.now()) then
    perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
    return;
  end if;

  -- One model a batch: that of the first job in turn's column (targets.model, set by a model
  -- change), else the function's; the batch takes only jobs of columns of that model.
  select coalesce(t.model, p_model), coalesce(t.dimensions, p_dimensions) into v_model, v_dimensions
  from public.embedding_queue q
  join embed_queue.targets t on t.queue_table = q.table_name and t.embedding_column = q.embedding_column
  where q.status = 'pending' and q.lane = 'batch' and q.run_at <= pg_catalog.now()
  order by q.lane, q.vtime, q.id
  limit 1;

  insert into embed_queue.batches (model, dimensions, inputs_per_request, locked_by, locked_until)
  values (coalesce(v_model, p_model), coalesce(v_dimensions, p_dimensions), v_s.batch_inputs_per_request, p_worker,
          pg_catalog.now() + interval '2 minutes')
  returning id into v_batch;
  v_owner := 'batch:' || v_batch;

  select coalesce(pg_catalog.array_agg(c.fair_key), '{}') into v_capped from embed_queue.capped_users(null) c;

  -- The next jobs of the batch lane in turn, locking them (those another opener is taking are skipped).
  select coalesce(pg_catalog.array_agg(picked.id), '{}') into v_ids
  from (
    select q.id from public.embedding_queue q
    where q.status = 'pending' and q.lane = 'batch' and q.run_at <= pg_catalog.now()
      and not (q.fair_key = any (v_capped))
      and exists (select 1 from embed_queue.targets t
                  where t.queue_table = q.table_name and t.embedding_column = q.embedding_column
                    and coalesce(t.model, p_model) = coalesce(v_model, p_model))
    order by q.lane, q.vtime, q.id
    limit v_s.batch_max_jobs
    for update of q skip locked
  ) as picked;

  -- As claim(), per target: the source row's current content and its hash; gone or
  -- soft-deleted rows lose their job, empty content is skipped; the text kept within
  -- batch_max_bytes (one job always goes); the rest stays pending, untouched.
  for v_target in
    select t.* from embed_queue.targets t
    where exists (
      select 1 from public.embedding_queue q
      where q.id = any (v_ids) and q.table_name = t.queue_table and q.embedding_column = t.embedding_column
    )
  loop
    execute pg_catalog.format($f$
      with raw as (
        select q.id, q.vtime, s.%1$I is not null as found, %2$s as deleted, %3$s as full_content
        from public.embedding_queue q
        left join %4$I.%5$I s on s.%1$I = (embed_queue.valid_key(q.record_id, %6$L))::%7$s
        where q.id = any ($1) and q.table_name = $2 and q.embedding_column = $3
      ),
      cut as (
        select r.*, pg_catalog.left(r.full_content, $7) as content,
               pg_catalog.length(r.full_content) > $7 as clipped
        from raw r
      ),
      src as (
        select c.*,
               coalesce(pg_catalog.sum(pg_catalog.octet_length(c.content))
                 over (order by c.vtime, c.id rows between unbounded preceding and current row), 0) as upto,
               pg_catalog.row_number() over (order by c.vtime, c.id) as n
        from cut c
        where c.found and not c.deleted
      ),
      gone as (
        delete from public.embedding_queue q
        using raw
        where q.id = raw.id and (not raw.found or raw.deleted)
        returning q.id
      ),
      held as (
        update public.embedding_queue q set
          content = src.content,
          content_hash = case when embed_queue.is_blank(src.full_content) then null
                              else pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(src.full_content, 'UTF8')), 'hex') end,
          status = case when embed_queue.is_blank(src.content) then 'skipped' else 'processing' end,
          error_message = case when embed_queue.is_blank(src.content) then 'content is empty: nothing to embed'
                               else q.error_message end,
          attempts = case when embed_queue.is_blank(src.content) then q.attempts else q.attempts + 1 end,
          locked_by = case when embed_queue.is_blank(src.content) then null else $4 end,
          locked_until = case when embed_queue.is_blank(src.content) then null
                              else pg_catalog.now() + pg_catalog.make_interval(hours => $5) end,
          batch_id = case when embed_queue.is_blank(src.content) then q.batch_id else $9 end,
          truncated = src.clipped
        from src
        where q.id = src.id and ($6 + src.upto <= $8 or ($6 = 0 and src.n = 1))
        returning pg_catalog.octet_length(q.content) as bytes
      )
      select coalesce(pg_catalog.sum(bytes), 0) from held
    $f$,
      v_target.pk_column, embed_queue.deleted_sql(v_target, 's'), embed_queue.content_sql(v_target, 's'),
      v_target.schema_name, v_target.table_name, v_target.pk_type, v_target.pk_type)
    into v_added
    using v_ids, v_target.queue_table, v_target.embedding_column, v_owner, v_s.batch_hold_hours, v_used,
          v_s.claim_max_chars, v_s.batch_max_bytes, v_batch;
    v_used := v_used + v_added;
  end loop;

  -- The tokens count against the users' daily caps as a claim's do (estimate: UTF-8 bytes / 4).
  insert into embed_queue.spend (day, fair_key, tokens)
  select (pg_catalog.now() at time zone 'UTC')::date, q.fair_key,
         pg_catalog.sum(least(8191, (pg_catalog.octet_length(q.content) + 3) / 4))::bigint
  from public.embedding_queue q
  where q.id = any (v_ids) and q.status = 'processing' and q.locked_by = v_owner
  group by q.fair_key;

  select pg_catalog.count(*)::integer into v_jobs
  from public.embedding_queue q where q.id = any (v_ids) and q.status = 'processing' and q.locked_by = v_owner;
  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);

  if v_jobs = 0 then
    update embed_queue.batches b set step = 'done', outcome = 'cancelled', error = 'nothing to embed',
      finished_at = pg_catalog.now(), locked_by = null, locked_until = null
    where b.id = v_batch;
    return;
  end if;
  update embed_queue.batches b set jobs = v_jobs where b.id = v_batch;
  return query select v_batch, v_jobs;
end
$$;
comment on function embed_queue.batch_open(text, text, integer) is
  'Opens a batch when settings.batch_enabled, fewer than batch_max_open are open and at least batch_min_jobs bulk-lane jobs are runnable: '
  'holds up to batch_max_jobs of them (batch_max_bytes of text) as ''batch:<id>'' for batch_hold_hours with the attempt counted, '
  'content and hash as claim() reads them. The batch is leased to p_worker. Returns its id and jobs, or no row.';

create function embed_queue.batch_take(p_worker text, p_lease_seconds integer default 120)
returns setof embed_queue.batches
language sql volatile security invoker set search_path = ''
as $$
  -- Open batches with work to do now and no other run on them: every step but 'submitted'
  -- has work at once; a submitted batch when its poll is due or a cancel was asked for.
  update embed_queue.batches b set
    locked_by = p_worker,
    locked_until = pg_catalog.now() + pg_catalog.make_interval(secs => p_lease_seconds),
    updated_at = pg_catalog.now()
  where b.id in (
    select o.id from embed_queue.batches o
    where o.step <> 'done'
      and (o.locked_until is null or o.locked_until < pg_catalog.now() or o.locked_by = p_worker)
      and (o.step <> 'submitted' or o.next_poll_at <= pg_catalog.now() or o.cancel_requested)
    order by o.id
    for update skip locked
  )
  returning b.*
$$;
comment on function embed_queue.batch_take(text, integer) is
  'Leases to p_worker every open batch that has a step to do now and no other run on it (a submitted one when its poll is due or a cancel was asked); '
  'a batch p_worker leases already is taken again, its lease renewed.';

create function embed_queue.batch_jobs(p_batch bigint, p_after bigint, p_limit integer)
returns table (id bigint, content text, content_hash text, clipped boolean)
language sql stable security invoker set search_path = ''
as $$
  select q.id, q.content, q.content_hash, q.truncated
  from public.embedding_queue q
  where q.batch_id = p_batch and q.status = 'processing' and q.locked_by = 'batch:' || p_batch and q.id > p_after
  order by q.id
  limit p_limit
$$;
comment on function embed_queue.batch_jobs(bigint, bigint, integer) is
  'The jobs a batch holds, by id after p_after, p_limit at a time, with the text and hash it sends (to build the input file).';

create index if not exists embedding_queue_batch_idx on public.embedding_queue (batch_id, id) where batch_id is not null;

create function embed_queue.batch_uploaded(p_batch bigint, p_worker text, p_file_id text, p_lines jsonb)
returns boolean
language plpgsql volatile security invoker set search_path = ''
as $$
begin
  update embed_queue.batches b set step = 'uploaded', input_file_id = p_file_id,
    requests = pg_catalog.jsonb_array_length(p_lines), updated_at = pg_catalog.now()
  where b.id = p_batch and b.locked_by = p_worker and b.step = 'claimed';
  if not found then
    return false;
  end if;
  insert into embed_queue.batch_requests (batch_id, line, job_ids, hashes, truncated)
  select p_batch, l.line, l.job_ids, l.hashes, l.truncated
  from pg_catalog.jsonb_to_recordset(p_lines) as l (line integer, job_ids bigint[], hashes text[], truncated boolean[]);
  return true;
end
$$;
comment on function embed_queue.batch_uploaded(bigint, text, text, jsonb) is
  'Step claimed → uploaded: records the input file and its lines [{line, job_ids, hashes, truncated}] (only by the run leasing the batch).';

create function embed_queue.batch_submitted(p_batch bigint, p_worker text, p_provider_batch_id text, p_status text)
returns boolean
language plpgsql volatile security invoker set search_path = ''
as $$
begin
  update embed_queue.batches b set step = 'submitted', provider_batch_id = p_provider_batch_id,
    provider_status = p_status, submitted_at = pg_catalog.now(), updated_at = pg_catalog.now(),
    next_poll_at = pg_catalog.now() + pg_catalog.make_interval(secs => s.batch_poll_seconds)
  from embed_queue.settings s
  where b.id = p_batch and b.locked_by = p_worker and b.step = 'uploaded';
  return found;
end
$$;
comment on function embed_queue.batch_submitted(bigint, text, text, text) is
  'Step uploaded → submitted: records the provider''s batch id (only by the run leasing the batch).';

create function embed_queue.batch_polled(
  p_batch bigint, p_worker text, p_status text, p_counts jsonb, p_output_file_id text, p_error_file_id text, p_error text
)
returns text
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_step text;
begin
  -- The batch ended at the provider: its files are written back (downloading), even when it
  -- failed, expired or was cancelled (partial output is still output).
  update embed_queue.batches b set
    provider_status = p_status,
    request_counts = p_counts,
    output_file_id = p_output_file_id,
    error_file_id = p_error_file_id,
    error = coalesce(p_error, b.error),
    step = case when p_status in ('completed', 'failed', 'expired', 'cancelled') then 'downloading' else b.step end,
    outcome = case p_status when 'completed' then 'completed' when 'failed' then 'failed'
                            when 'expired' then 'expired' when 'cancelled' then 'cancelled' else b.outcome end,
    next_poll_at = pg_catalog.now() + pg_catalog.make_interval(secs => s.batch_poll_seconds),
    updated_at = pg_catalog.now()
  from embed_queue.settings s
  where b.id = p_batch and b.locked_by = p_worker and b.step = 'submitted'
  returning b.step into v_step;
  return v_step;
end
$$;
comment on function embed_queue.batch_polled(bigint, text, text, jsonb, text, text, text) is
  'Records a poll: the provider''s status, request_counts and files; an ended batch (completed, failed, expired, cancelled) moves to downloading.';

create function embed_queue.batch_requests_of(p_batch bigint)
returns table (line integer, job_ids bigint[], hashes text[], truncated boolean[])
language sql stable security invoker set search_path = ''
as $$
  select r.line, r.job_ids, r.hashes, r.truncated from embed_queue.batch_requests r where r.batch_id = p_batch order by r.line
$$;
comment on function embed_queue.batch_requests_of(bigint) is 'The lines of a batch''s input file, for the write-back.';

create function embed_queue.batch_progress(
  p_batch bigint, p_worker text, p_file text, p_bytes_done bigint, p_lines_done integer, p_counts jsonb
)
returns numeric
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_tokens bigint := coalesce((p_counts ->> 'tokens')::bigint, 0);
  v_cost numeric;
begin
  -- Called in the same transaction as the complete()/fail()/release() of those lines, so the
  -- cursor and the writes never disagree.
  update embed_queue.batches b set
    output_bytes_done = case when p_file = 'output' then p_bytes_done else b.output_bytes_done end,
    output_lines_done = case when p_file = 'output' then p_lines_done else b.output_lines_done end,
    error_bytes_done = case when p_file = 'error' then p_bytes_done else b.error_bytes_done end,
    error_lines_done = case when p_file = 'error' then p_lines_done else b.error_lines_done end,
    written = b.written + coalesce((p_counts ->> 'written')::integer, 0),
    stale = b.stale + coalesce((p_counts ->> 'stale')::integer, 0),
    released = b.released + coalesce((p_counts ->> 'released')::integer, 0),
    failed = b.failed + coalesce((p_counts ->> 'failed')::integer, 0),
    tokens = b.tokens + v_tokens,
    cost_usd = b.cost_usd + v_tokens * embed_queue.batch_price(b.model) / 1000000,
    updated_at = pg_catalog.now()
  where b.id = p_batch and b.locked_by = p_worker and b.step = 'downloading'
    and p_file in ('output', 'error')
  returning v_tokens * embed_queue.batch_price(b.model) / 1000000 into v_cost;
  return v_cost;
end
$$;

create function embed_queue.batch_price(p_model text)
returns numeric
language sql stable security invoker set search_path = ''
as $$
  select coalesce(m.usd_per_million_tokens_batch, m.usd_per_million_tokens / 2, 0)
  from (select 1) one left join embed_queue.models m on m.model = p_model
$$;
comment on function embed_queue.batch_price(text) is 'USD per million tokens of p_model through the Batch API (models.usd_per_million_tokens_batch, else half the price; 0 if unknown).';

comment on function embed_queue.batch_progress(bigint, text, text, bigint, integer, jsonb) is
  'Moves a batch''s write-back cursor (p_file output or error: bytes and lines done) and adds the counts {written, stale, released, failed, tokens}; '
  'tokens are priced at the batch price. Returns the cost added, or null when p_worker does not hold the batch (roll back then). '
  'Call it in the transaction that wrote those lines.';

-- Jobs a batch gave back (release() keeps their lane) go to the bulk lane, where the synchronous
-- path takes them.
create function embed_queue.batch_to_bulk(p_batch bigint)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_internal text := coalesce(nullif(pg_catalog.current_setting('embed_queue.internal', true), ''), 'off');
  v_count integer;
begin
  perform pg_catalog.set_config('embed_queue.internal', 'on', true);
  update public.embedding_queue q set lane = 'bulk'
  where q.batch_id = p_batch and q.status = 'pending' and q.lane = 'batch';
  get diagnostics v_count = row_count;
  perform pg_catalog.set_config('embed_queue.internal', v_internal, true);
  return v_count;
end
$$;
comment on function embed_queue.batch_to_bulk(bigint) is
  'Moves the pending jobs batch p_batch gave back from the batch lane to the bulk lane (the synchronous path). Returns how many.';

create function embed_queue.batch_finish(p_batch bigint, p_worker text, p_outcome text, p_error text default null)
returns integer
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_released integer;
begin
  update embed_queue.batches b set step = 'done', outcome = coalesce(b.outcome, p_outcome),
    error = coalesce(p_error, b.error), finished_at = pg_catalog.now(), updated_at = pg_catalog.now(),
    locked_by = null, locked_until = null
  where b.id = p_batch and (b.locked_by = p_worker or p_worker is null) and b.step <> 'done';
  if not found then
    return null;
  end if;
  -- Whatever the batch still holds (lines with no answer, a batch never submitted) goes back to
  -- the synchronous path with its attempt refunded.
  v_released := embed_queue.release('batch:' || p_batch, null);
  perform embed_queue.batch_to_bulk(p_batch);
  update embed_queue.batches b set released = b.released + v_released where b.id = p_batch;
  return v_released;
end
$$;
comment on function embed_queue.batch_finish(bigint, text, text, text) is
  'Ends a batch (step done, outcome if none yet) and releases every job it still holds (attempt refunded). Returns how many were released.';

create function embed_queue.batch_let_go(p_batch bigint, p_worker text)
returns void
language sql volatile security invoker set search_path = ''
as $$
  update embed_queue.batches b set locked_by = null, locked_until = null
  where b.id = p_batch and b.locked_by = p_worker
$$;
comment on function embed_queue.batch_let_go(bigint, text) is 'Ends a run''s lease of a batch (the next run may take it).';

create function embed_queue.batch_due()
returns boolean
language sql stable security invoker set search_path = ''
as $$
  select exists (
    select 1 from embed_queue.batches b
    where b.step <> 'done'
      and (b.locked_until is null or b.locked_until < pg_catalog.now())
      and (b.step <> 'submitted' or b.next_poll_at <= pg_catalog.now() or b.cancel_requested)
  )
$$;
comment on function embed_queue.batch_due() is 'True when an open batch has a step to do now: tick() then calls the function even with no pending job.';

create function embed_queue.note_batch_run(p_run_id bigint, p_batch jsonb)
returns void
language sql volatile security invoker set search_path = ''
as $$
  update embed_queue.runs r set batch = p_batch where r.id = p_run_id
$$;
comment on function embed_queue.note_batch_run(bigint, jsonb) is 'Records what a run did with batches (runs.batch).';

-- The operator's cancel. A batch not yet submitted ends at once (jobs released) unless a run is
-- on it right now; otherwise the next run cancels it at the provider, writes back what it did,
-- and releases the rest.
create function embed_queue.cancel_batch(p_batch bigint)
returns text
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_b embed_queue.batches;
begin
  select * into v_b from embed_queue.batches b where b.id = p_batch for update;
  if not found then
    raise exception 'embed_queue.cancel_batch: no batch %', p_batch using errcode = 'P0002',
      hint = 'select id, step, provider_status from embed_queue.batches where step <> ''done''';
  end if;
  if v_b.step = 'done' then
    return 'already done (' || coalesce(v_b.outcome, '?') || ')';
  end if;
  update embed_queue.batches b set cancel_requested = true, updated_at = pg_catalog.now() where b.id = p_batch;
  if v_b.step in ('claimed', 'uploaded') and (v_b.locked_until is null or v_b.locked_until < pg_catalog.now()) then
    perform embed_queue.batch_finish(p_batch, null, 'cancelled', 'cancelled by the operator before it was submitted');
    return 'cancelled: jobs released';
  end if;
  return 'cancel requested: the next run cancels it at the provider and writes back what is done';
end
$$;
comment on function embed_queue.cancel_batch(bigint) is
  'Cancels a batch: one not submitted ends at once with its jobs released; a submitted one is cancelled at the provider by the next run, '
  'which writes back the lines done and releases the rest.';

create view embed_queue.batch_status with (security_invoker = true) as
  select b.id, b.step, b.outcome, b.provider_status, b.provider_batch_id, b.model, b.jobs, b.requests,
         (select pg_catalog.count(*) from public.embedding_queue q
          where q.batch_id = b.id and q.status = 'processing' and q.locked_by = 'batch:' || b.id) as holding,
         b.written, b.stale, b.released, b.failed, b.tokens, b.cost_usd, b.request_counts, b.cancel_requested,
         b.created_at, b.submitted_at, b.finished_at, b.error
  from embed_queue.batches b
  order by b.id desc;
comment on view embed_queue.batch_status is
  'Every batch with the jobs it still holds (processing, locked_by ''batch:<id>''), what it wrote, gave back and cost.';

revoke all on embed_queue.batches, embed_queue.batch_requests, embed_queue.batch_status from public, anon, authenticated;
grant select, insert, update, delete on embed_queue.batches, embed_queue.batch_requests to service_role;
grant select on embed_queue.batch_status to service_role;
revoke all on all functions in schema embed_queue from public, anon, authenticated;
grant execute on function
  embed_queue.batch_candidates(integer),
  embed_queue.batch_open(text, text, integer),
  embed_queue.batch_take(text, integer),
  embed_queue.batch_jobs(bigint, bigint, integer),
  embed_queue.batch_uploaded(bigint, text, text, jsonb),
  embed_queue.batch_submitted(bigint, text, text, text),
  embed_queue.batch_polled(bigint, text, text, jsonb, text, text, text),
  embed_queue.batch_requests_of(bigint),
  embed_queue.batch_progress(bigint, text, text, bigint, integer, jsonb),
  embed_queue.batch_price(text),
  embed_queue.batch_finish(bigint, text, text, text),
  embed_queue.batch_to_bulk(bigint),
  embed_queue.batch_let_go(bigint, text),
  embed_queue.batch_due(),
  embed_queue.note_batch_run(bigint, jsonb),
  embed_queue.cancel_batch(bigint)
to service_role;
