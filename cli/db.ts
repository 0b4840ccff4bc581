/**
 * Every SQL statement the CLI runs, in one place. The queue logic lives in the database (schema
 * embed_queue, see supabase/migrations); this module reads its views and calls its functions.
 * Counts come back as numbers (cast in SQL), timestamps as Date.
 */
import postgres from "postgres";

export interface TargetRow {
  table_name: string;
  embedding_column: string;
  content_column: string | null;
  dimensions: number;
}

export interface QueueStatusRow {
  table_name: string;
  status: string;
  count: number;
}

export interface CoverageRow {
  table_name: string;
  embedding_column: string;
  total: number;
  with_embeddings: number;
  missing: number;
}

export interface LagRow {
  table_name: string;
  embedding_column: string;
  pending: number;
  processing: number;
  oldest_pending_at: Date | null;
  lag_seconds: number | null;
}

/** A daily token cap in force today (embed_queue.spend_caps): the global one when set, each capped user. */
export interface SpendCapRow {
  scope: "global" | "user";
  fair_key: string | null;
  tokens: number;
  daily_tokens: number;
  reached: boolean;
  waiting: number;
  resumes_at: Date;
}

export interface FailureRow {
  table_name: string;
  error_message: string | null;
  count: number;
  record_ids: string[];
}

export interface UsageRow {
  table_name: string;
  embedding_column: string;
  model: string | null;
  completed: number;
  tokens: number;
  cost_usd: number | null;
}

export interface RunRow {
  id: number;
  worker: string | null;
  trigger: string;
  started_at: Date;
  finished_at: Date | null;
  claimed: number;
  completed: number;
  failed: number;
  skipped: number;
  /** Jobs completed without a request: their stored vector already embedded that text with that model. */
  unchanged?: number;
  stale: number;
  requests: number;
  rate_limited: number;
  tokens: number;
  cost_usd: number;
  error: string | null;
}

/**
 * A table the tick keeps bounded (embed_queue.housekeep; pg_net prunes its own responses): rows
 * that count toward it, the table's size on disk with its indexes, its oldest row and how long
 * rows are kept.
 */
export interface HousekeepingRow {
  table_name: string;
  /** Rows of this project (for cron.job_run_details: the history of job embed-queue-tick only). */
  rows: number;
  /** pg_total_relation_size of the whole table (for cron.job_run_details: every job's history). */
  bytes: number;
  oldest_at: Date | null;
  /** The retention in force, as PostgreSQL prints an interval ("7 days"), with where it is set. */
  kept_for: string;
}

/** One Batch API batch (view embed_queue.batch_status). */
export interface BatchRow {
  id: number;
  step: string;
  outcome: string | null;
  provider_status: string | null;
  provider_batch_id: string | null;
  jobs: number;
  holding: number;
  written: number;
  stale: number;
  released: number;
  failed: number;
  tokens: number;
  cost_usd: number;
  created_at: Date;
  finished_at: Date | null;
  error: string | null;
}

/** One target's jobs right now, and what finished since `since`. */
export interface TargetSnapshot {
  table_name: string;
  embedding_column: string;
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  skipped: number;
  /** Jobs that reached completed, failed or skipped at or after `since`. */
  done_since: number;
  completed_since: number;
  failed_since: number;
  skipped_since: number;
  tokens_since: number;
  cost_since: number;
}

export interface PendingContent {
  id: number;
  table_name: string;
  embedding_column: string;
  content: string | null;
  /** embed_queue.is_blank(content): the database's one blank-content rule, never re-implemented here. */
  blank: boolean;
}

/** A row of search --as: the hybrid score beside the cosine similarity. */
export interface SearchAsRow {
  record_id: string;
  content: string | null;
  score: number;
  similarity: number;
}

export interface SearchRow {
  record_id: string;
  content: string | null;
  similarity: number;
}

export interface NetResponseRow {
  status_code: number | null;
  timed_out: boolean | null;
  error: boolean;
  count: number;
}

/** Vectors of unknown origin per target (embed_queue.legacy_vectors). */
export interface LegacyVectorsRow {
  table_name: string;
  embedding_column: string;
  unknown_origin: number;
}

/** A trigger of the user's that writes into embedding_queue (embed_queue.old_triggers). */
export interface OldTriggerRow {
  schema_name: string;
  table_name: string;
  trigger_name: string;
  function_name: string;
  enabled: boolean;
}

/** What `status` and `doctor` say about an install adopted from the guide's script. */
export interface AdoptionReport {
  /** settings.legacy_vectors: 'trust' or 'reembed'. */
  legacyPolicy: string;
  legacy: LegacyVectorsRow[];
  oldTriggers: OldTriggerRow[];
}

/** One row of embed_queue.model_changes. */
export interface ModelChangeRow {
  table_name: string;
  embedding_column: string;
  active_model: string | null;
  active_dimensions: number | null;
  generation: "next" | "previous";
  other_column: string;
  other_model: string | null;
  other_dimensions: number | null;
  switch_when_covered: boolean;
  live_rows: number;
  covered: number;
  open_jobs: number;
  failed_jobs: number;
}

/** What reembed(), switch_model(), rollback_model(), drop_old_vectors() and cancel_reembed() answer. */
export interface GenerationRow {
  table_name: string;
  embedding_column?: string;
  next_column?: string;
  from_model?: string | null;
  to_model?: string;
  model?: string | null;
  previous_model?: string | null;
  dropped_column?: string | null;
}

export type CliDb = ReturnType<typeof openDb>;

const tablesParam = (sql: postgres.Sql, tables?: string[]) =>
  tables && tables.length ? sql.array(tables.map(String)) : null;

export function openDb(dbUrl: string) {
  const sql = postgres(dbUrl, {
    max: 2,
    prepare: false, // works behind Supabase's transaction pooler too
    idle_timeout: 10,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "embed-queue-cli" },
  });

  return {
    sql,

    async close() {
      await sql.end({ timeout: 5 });
    },

    async targets(): Promise<TargetRow[]> {
      return await sql<TargetRow[]>`
        select queue_table as table_name, embedding_column, content_column, dimensions::int as dimensions
        from embed_queue.targets order by queue_table, embedding_column`;
    },

    // --- status --------------------------------------------------------------------------

    /** The guide's "Check Queue Status" query. */
    async queueStatus(): Promise<QueueStatusRow[]> {
      return await sql<QueueStatusRow[]>`
        select table_name, status, count::int as count from embed_queue.queue_status order by table_name, status`;
    },

    async coverage(): Promise<CoverageRow[]> {
      return await sql<CoverageRow[]>`
        select table_name, embedding_column, total::int as total, with_embeddings::int as with_embeddings,
               missing::int as missing
        from embed_queue.coverage order by table_name, embedding_column`;
    },

    async lag(): Promise<LagRow[]> {
      return await sql<LagRow[]>`
        select table_name, embedding_column, pending::int as pending, processing::int as processing,
               oldest_pending_at, lag_seconds::float8 as lag_seconds
        from embed_queue.lag order by table_name, embedding_column`;
    },

    /** Why pg_cron and the webhook cannot call the function (Vault secrets missing, empty, too short), or null. */
    async invokeProblem(): Promise<string | null> {
      const [{ problem }] = await sql<
        { problem: string | null }[]
      >`select embed_queue.invoke_problem() as problem`;
      return problem;
    },

    async spendCaps(): Promise<SpendCapRow[]> {
      return await sql<SpendCapRow[]>`
        select scope, fair_key, tokens::float8 as tokens, daily_tokens::float8 as daily_tokens, reached,
               waiting::int as waiting, resumes_at
        from embed_queue.spend_caps order by scope, fair_key`;
    },

    async failures(): Promise<FailureRow[]> {
      return await sql<FailureRow[]>`
        select table_name, error_message, count::int as count, record_ids
        from embed_queue.failures order by count desc, table_name, error_message`;
    },

    async usage(): Promise<UsageRow[]> {
      return await sql<UsageRow[]>`
        select table_name, embedding_column, model, completed::int as completed, coalesce(tokens, 0)::float8 as tokens,
               cost_usd::float8 as cost_usd
        from embed_queue.usage order by table_name, embedding_column, model`;
    },

    async runs(limit: number): Promise<RunRow[]> {
      return await sql<RunRow[]>`
        select id::int as id, worker, trigger, started_at, finished_at, claimed::int as claimed,
               completed::int as completed, failed::int as failed, skipped::int as skipped, unchanged::int as unchanged, stale::int as stale,
               requests::int as requests, rate_limited::int as rate_limited, coalesce(tokens, 0)::float8 as tokens,
               coalesce(cost_usd, 0)::float8 as cost_usd, error
        from embed_queue.runs order by id desc limit ${limit}`;
    },

    /**
     * The tables the tick prunes, each only if it exists and this role may read it (pg_cron's
     * history and pg_net's responses belong to the platform).
     */
    async housekeeping(): Promise<HousekeepingRow[]> {
      const [can] = await sql<{ cron: boolean; net: boolean }[]>`
        select coalesce(to_regclass('cron.job_run_details') is not null and to_regclass('cron.job') is not null
                 and has_table_privilege('cron.job_run_details', 'select') and has_table_privilege('cron.job', 'select'), false) as cron,
               coalesce(to_regclass('net._http_response') is not null
                 and has_table_privilege('net._http_response', 'select'), false) as net`;
      const out = await sql<HousekeepingRow[]>`
        select 'embed_queue.runs' as table_name, count(*)::float8 as rows,
               pg_total_relation_size('embed_queue.runs')::float8 as bytes, min(r.started_at) as oldest_at,
               (select s.runs_retention::text || ' (settings.runs_retention)' from embed_queue.settings s) as kept_for
        from embed_queue.runs r`;
      if (can.cron) {
        out.push(
          ...await sql<HousekeepingRow[]>`
          select 'cron.job_run_details' as table_name, count(*)::float8 as rows,
                 pg_total_relation_size('cron.job_run_details')::float8 as bytes, min(d.start_time) as oldest_at,
                 (select s.cron_history_retention::text || ' (settings.cron_history_retention)' from embed_queue.settings s)
                   as kept_for
          from cron.job_run_details d
          where d.jobid = (select j.jobid from cron.job j where j.jobname = 'embed-queue-tick')`,
        );
      }
      if (can.net) {
        out.push(
          ...await sql<HousekeepingRow[]>`
          select 'net._http_response' as table_name, count(*)::float8 as rows,
                 pg_total_relation_size('net._http_response')::float8 as bytes, min(r.created) as oldest_at,
                 coalesce(nullif(current_setting('pg_net.ttl', true), '') || ' (pg_net.ttl)', '6 hours (pg_net.ttl default)')
                   as kept_for
          from net._http_response r`,
        );
      }
      return out;
    },

    // --- adoption (the guide's install) ------------------------------------------------------

    async adoption(): Promise<AdoptionReport> {
      const [{ policy }] = await sql<
        { policy: string }[]
      >`select legacy_vectors as policy from embed_queue.settings`;
      const legacy = await sql<LegacyVectorsRow[]>`
        select table_name, embedding_column, unknown_origin::int as unknown_origin
        from embed_queue.legacy_vectors order by table_name, embedding_column`;
      const oldTriggers = await sql<OldTriggerRow[]>`
        select schema_name, table_name, trigger_name, function_name, enabled
        from embed_queue.old_triggers order by schema_name, table_name, trigger_name`;
      return { legacyPolicy: policy, legacy, oldTriggers };
    },

    // --- the live display ------------------------------------------------------------------

    /** Per target: jobs by status now, and what reached a final state at or after `since`. */
    async snapshot(since: Date): Promise<TargetSnapshot[]> {
      return await sql<TargetSnapshot[]>`
        with q as (
          select q.table_name, q.embedding_column, q.status, q.tokens, q.model,
                 (q.status in ('completed', 'failed', 'skipped')
                  and case when q.status = 'completed' then coalesce(q.completed_at, q.updated_at)
                           else q.updated_at end >= ${since}) as done
          from public.embedding_queue q
        )
        select t.queue_table as table_name, t.embedding_column,
               count(*) filter (where q.status = 'pending')::int as pending,
               count(*) filter (where q.status = 'processing')::int as processing,
               count(*) filter (where q.status = 'completed')::int as completed,
               count(*) filter (where q.status = 'failed')::int as failed,
               count(*) filter (where q.status = 'skipped')::int as skipped,
               count(*) filter (where q.done)::int as done_since,
               count(*) filter (where q.done and q.status = 'completed')::int as completed_since,
               count(*) filter (where q.done and q.status = 'failed')::int as failed_since,
               count(*) filter (where q.done and q.status = 'skipped')::int as skipped_since,
               coalesce(sum(q.tokens) filter (where q.done and q.status = 'completed'), 0)::float8 as tokens_since,
               coalesce(sum(q.tokens * m.usd_per_million_tokens / 1e6)
                 filter (where q.done and q.status = 'completed'), 0)::float8 as cost_since
        from embed_queue.targets t
        left join q on q.table_name = t.queue_table and q.embedding_column = t.embedding_column
        left join embed_queue.models m on m.model = q.model
        group by t.queue_table, t.embedding_column
        order by t.queue_table, t.embedding_column`;
    },

    /** Models that wrote the jobs finished at or after `since`. */
    async modelsSince(since: Date): Promise<string[]> {
      const rows = await sql<{ model: string }[]>`
        select distinct model from public.embedding_queue
        where status = 'completed' and model is not null and coalesce(completed_at, updated_at) >= ${since}
        order by model`;
      return rows.map((r) => r.model);
    },

    /** What pg_net got back from the function lately (for a stalled display). */
    async recentNetResponses(since: Date): Promise<NetResponseRow[]> {
      const [{ present }] = await sql<{ present: boolean }[]>`
        select to_regclass('net._http_response') is not null as present`;
      if (!present) return [];
      return await sql<NetResponseRow[]>`
        select status_code,
               -- pg_net 0.19 records a timeout as error_msg "Timeout of N ms reached..." and leaves
               -- timed_out null (src/core.c, insert_failure_response).
               coalesce(timed_out, false) or coalesce(error_msg like 'Timeout of %', false) as timed_out,
               error_msg is not null as error, count(*)::int as count
        from net._http_response where created >= ${since}
        group by 1, 2, 3 order by count desc limit 5`;
    },

    // --- queue changes ---------------------------------------------------------------------

    /** The guide's retry (`status = 'pending'` for failed jobs), scoped. */
    async retry(table: string | null, recordId: string | null): Promise<number> {
      const [{ n }] = await sql<{ n: number }[]>`select embed_queue.retry(${table}, ${recordId})::int as n`;
      return n;
    },

    /** Statuses of the jobs of one row (to tell "unknown id" from "nothing to retry"). */
    async jobStatuses(table: string | null, recordId: string): Promise<string[]> {
      const rows = await sql<{ status: string }[]>`
        select status from public.embedding_queue
        where record_id = ${recordId} and (${table}::text is null or table_name = ${table})
        order by status`;
      return rows.map((r) => r.status);
    },

    /** The guide's manual requeue. */
    async requeue(table: string, recordId: string): Promise<number> {
      const [{ n }] = await sql<{ n: number }[]>`select embed_queue.requeue(${table}, ${recordId})::int as n`;
      return n;
    },

    async backfillPage(
      table: string,
      after: string | null,
      limit: number,
    ): Promise<{ queued: number; last_key: string | null }> {
      const [row] = await sql<{ queued: number; last_key: string | null }[]>`
        select queued::int as queued, last_key from embed_queue.backfill_page(${table}, ${after}, ${limit})`;
      return row ?? { queued: 0, last_key: null };
    },

    // --- reembed ------------------------------------------------------------------------------

    /** Tables with an active target (the ones a model change applies to). */
    async activeTables(): Promise<string[]> {
      const rows = await sql<{ t: string }[]>`
        select distinct queue_table as t from embed_queue.targets where generation = 'active' order by 1`;
      return rows.map((r) => r.t);
    },

    async modelChanges(): Promise<ModelChangeRow[]> {
      return await sql<ModelChangeRow[]>`
        select table_name, embedding_column, active_model, active_dimensions, generation, other_column, other_model,
               other_dimensions, switch_when_covered, live_rows::int as live_rows, covered::int as covered,
               open_jobs::int as open_jobs, failed_jobs::int as failed_jobs
        from embed_queue.model_changes`;
    },

    /** Starts a change (embed_queue.reembed without queueing: the caller queues page by page). */
    async reembed(
      table: string,
      model: string,
      dimensions: number,
      column: string | null,
    ): Promise<GenerationRow[]> {
      return await sql<GenerationRow[]>`
        select table_name, embedding_column, next_column, from_model, to_model
        from embed_queue.reembed(${table}, ${model}, ${dimensions}, ${column}, false)`;
    },

    async switchModel(table: string, column: string | null, force: boolean): Promise<GenerationRow[]> {
      return await sql<GenerationRow[]>`
        select table_name, embedding_column, model, previous_model from embed_queue.switch_model(${table}, ${column}, ${force})`;
    },

    async rollbackModel(table: string, column: string | null): Promise<GenerationRow[]> {
      return await sql<GenerationRow[]>`
        select table_name, embedding_column, model, previous_model from embed_queue.rollback_model(${table}, ${column})`;
    },

    async dropOldVectors(table: string, column: string | null): Promise<GenerationRow[]> {
      return await sql<GenerationRow[]>`
        select table_name, dropped_column from embed_queue.drop_old_vectors(${table}, ${column})`;
    },

    async cancelReembed(table: string, column: string | null): Promise<GenerationRow[]> {
      return await sql<GenerationRow[]>`
        select table_name, dropped_column from embed_queue.cancel_reembed(${table}, ${column})`;
    },

    async pendingCount(tables?: string[]): Promise<number> {
      const [{ n }] = await sql<{ n: number }[]>`
        select embed_queue.pending_count(${tablesParam(sql, tables)}::text[])::int as n`;
      return n;
    },

    // --- estimate ----------------------------------------------------------------------------

    /** Pending jobs with the content they would send (read from the source row), by id. */
    async pendingContents(table: string | null, afterId: number, limit: number): Promise<PendingContent[]> {
      const rows = await sql<PendingContent[]>`
        select q.id, q.table_name, q.embedding_column, q.content, embed_queue.is_blank(q.content) as blank
        from public.embedding_queue q
        where q.status = 'pending' and q.id > ${afterId} and (${table}::text is null or q.table_name = ${table})
        order by q.id limit ${limit}`;
      return rows.map((r) => ({ ...r, id: Number(r.id) }));
    },

    async batches(limit: number): Promise<BatchRow[]> {
      // Open batches, then the last ones done.
      return await sql<BatchRow[]>`
        select id::int as id, step, outcome, provider_status, provider_batch_id, jobs, holding::int as holding,
               written, stale, released, failed, tokens::float8 as tokens, cost_usd::float8 as cost_usd,
               created_at, finished_at, error
        from embed_queue.batch_status
        order by step = 'done', id desc limit ${limit}`;
    },

    async cancelBatch(id: number): Promise<string> {
      const [{ r }] = await sql<{ r: string }[]>`select embed_queue.cancel_batch(${id}) as r`;
      return r;
    },

    async modelBatchPrice(model: string): Promise<number | null> {
      const rows = await sql<{ p: number }[]>`select embed_queue.batch_price(${model})::float8 as p
        where exists (select 1 from embed_queue.models where model = ${model})`;
      return rows.length ? rows[0].p : null;
    },

    async modelPrice(model: string): Promise<number | null> {
      const rows = await sql<{ p: number }[]>`
        select usd_per_million_tokens::float8 as p from embed_queue.models where model = ${model}`;
      return rows.length ? rows[0].p : null;
    },

    // --- search ------------------------------------------------------------------------------

    /**
     * Builds the table's HNSW index if it has none, with `create index concurrently` (writes go on
     * meanwhile), each statement on its own outside any transaction. Returns how many were built.
     */
    async ensureSearchIndex(table: string): Promise<number> {
      const rows = await sql<{ drop_statement: string | null; create_statement: string }[]>`
        select drop_statement, create_statement from embed_queue.search_index_statements(${table})`;
      for (const r of rows) {
        if (r.drop_statement) await sql.unsafe(r.drop_statement);
        await sql.unsafe(r.create_statement);
      }
      return rows.length;
    },

    async search(table: string, vector: string, limit: number): Promise<SearchRow[]> {
      return await sql<SearchRow[]>`
        select record_id, content, similarity::float8 as similarity
        from embed_queue.search(${table}, ${vector}::extensions.vector, ${limit})`;
    },

    /** Whether auth.users has this id (search --as). */
    async userExists(userId: string): Promise<boolean> {
      const rows = await sql`select 1 from auth.users where id = ${userId}::uuid`;
      return rows.length > 0;
    },

    /**
     * What the search function returns to one signed-in user: the hybrid search as role
     * authenticated with that user's claims, set for this transaction only (set_config(..., true)),
     * so it holds through a transaction pooler and leaves nothing on the connection.
     */
    async searchAs(
      userId: string,
      table: "sessions" | "summaries",
      text: string,
      vector: string,
      limit: number,
      model: string,
    ): Promise<SearchAsRow[]> {
      const claims = JSON.stringify({ sub: userId, role: "authenticated" });
      return await sql.begin(async (tx) => {
        await tx`select pg_catalog.set_config('role', 'authenticated', true),
                        pg_catalog.set_config('request.jwt.claims', ${claims}, true)`;
        return table === "sessions"
          ? await tx<SearchAsRow[]>`
              select id::text as record_id, title as content, score::float8 as score, similarity::float8 as similarity
              from public.hybrid_search_sessions(${text}, ${vector}::extensions.vector, ${limit}, query_model => ${model})`
          : await tx<SearchAsRow[]>`
              select id::text as record_id, content, score::float8 as score, similarity::float8 as similarity
              from public.hybrid_search_summaries(${text}, ${vector}::extensions.vector, ${limit}, query_model => ${model})`;
      }) as SearchAsRow[];
    },

    /** The model a table's (first) active column is pinned to (embed_queue.targets.model), or null. */
    async pinnedModel(table: string): Promise<string | null> {
      const rows = await sql<{ model: string | null }[]>`
        select model from embed_queue.targets where queue_table = ${table} and generation = 'active' order by id limit 1`;
      return rows[0]?.model ?? null;
    },

    /** Which models wrote a table's embeddings (search warns when the query's model differs). */
    async modelsOf(table: string): Promise<{ model: string; count: number }[]> {
      return await sql<{ model: string; count: number }[]>`
        select model, count(*)::int as count from public.embedding_queue
        where table_name = ${table} and status = 'completed' and model is not null
        group by model order by count desc`;
    },
  };
}
