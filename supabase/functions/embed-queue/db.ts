/**
 * Every SQL statement the function runs, in one place. The queue logic lives in the database
 * (schema embed_queue, see supabase/migrations); this module only calls it.
 */
import postgres from "postgres";
import type { PaceGrant, PaceStore } from "../_shared/limiter.ts";

export interface ClaimedJob {
  id: number;
  table_name: string;
  record_id: string;
  embedding_column: string;
  content: string;
  content_hash: string;
  attempts: number;
  max_attempts: number;
  dimensions: number;
  /** The text was cut at claim (settings.claim_max_chars); content_hash is still the whole text's. */
  clipped: boolean;
  /**
   * The model the job's target column holds (embed_queue.targets.model), which its vector must
   * be made with; null or absent: not pinned, the function's EMBEDDING_MODEL.
   */
  model?: string | null;
  /**
   * The job's last vector embeds this very text (embedded_hash = content_hash): it may complete
   * with no request (embed_queue.complete_unchanged). Absent: unknown, ask.
   */
  maybe_unchanged?: boolean;
}

export interface CompletedJob {
  id: number;
  contentHash: string;
  /** pgvector text literal. */
  embedding: string;
  tokens: number;
  truncated: boolean;
}

export type FailureKind = "retryable" | "permanent" | "rate_limited";

export interface JobFailure {
  id: number;
  kind: FailureKind;
  /** Short, sanitized: never user text, keys or vectors. */
  error: string;
  retry_after_ms?: number;
}

export type Outcome = "completed" | "stale" | "lost";

export interface RunRecord {
  claimed: number;
  completed: number;
  failed: number;
  skipped: number;
  /** Jobs completed without a request: the stored vector already embeds that text with that model. */
  unchanged?: number;
  stale: number;
  requests: number;
  rate_limited: number;
  tokens: number;
  cost_usd: number;
  error: string | null;
}

/** What a run learns when it starts. */
export interface RunStart {
  /** null: "busy", settings.max_concurrent_runs runs are working; end at once, claim nothing. */
  runId: number | null;
  /** settings.rate_limited_default_seconds in ms: the wait after a 429 that names no retry-after. */
  rateLimitedDefaultMs: number;
}

/** What the run needs from the database; tests pass a fake. */
export interface QueueDb {
  claim(
    worker: string,
    limit: number,
    leaseSeconds: number,
    tables?: string[],
  ): Promise<ClaimedJob[]>;
  complete(
    worker: string,
    jobs: CompletedJob[],
    model: string,
    dimensions: number,
  ): Promise<Map<number, Outcome>>;
  /**
   * Completes without a request the held jobs whose text and model are those of the vector they
   * last wrote (embed_queue.complete_unchanged); returns their ids. Absent: every job is sent.
   */
  completeUnchanged?(
    worker: string,
    jobs: Array<{ id: number; contentHash: string }>,
    model: string,
    dimensions: number,
  ): Promise<Set<number>>;
  fail(worker: string, failures: JobFailure[]): Promise<Map<number, string>>;
  release(worker: string, ids?: number[]): Promise<number>;
  /** Records the start of a run (embed_queue.begin_run); a cron or webhook run may be told "busy". */
  startRun(worker: string, trigger: string): Promise<RunStart>;
  finishRun(runId: number, stats: RunRecord): Promise<void>;
  pendingCount(tables?: string[]): Promise<number>;
  /**
   * The queue tables the targets write to (embed_queue.targets), within `tables` when given:
   * the lanes take turns preferring each (worker.ts, "one table per claim"). Absent: no turns.
   */
  queueTables?(tables?: string[]): Promise<string[]>;
  queueSecret(): Promise<string | null>;
  /** Calls the function again through pg_net (embed_queue.invoke), as pg_cron would. */
  handOver(): Promise<void>;
  /** The provider's pace shared by every run (embed_queue.pace), under `key` (limiter.ts paceKey). */
  pace(key: string): PaceStore;
  close(): Promise<void>;
}

const textArray = (sql: postgres.Sql, xs: unknown[]) => sql.array(xs.map((x) => String(x)));
const tablesParam = (
  sql: postgres.Sql,
  tables?: string[],
) => (tables && tables.length ? textArray(sql, tables) : null);

/**
 * Every statement here takes at least one parameter, so that nothing is ever pipelined behind it.
 * With `prepare: false` postgres.js sends a statement with parameters in two steps (describe,
 * then execute) and takes no other statement on that connection meanwhile; a statement without
 * parameters lets the next one be pipelined behind it. Behind a transaction pooler the pipelined
 * one can lose its answer: the pooler hands the server connection back at the first statement's
 * end, then drops what the server says about the second (pgbouncer 1.18 logs "got packet '1' from
 * server when not linked") and the second's promise never settles. Seen locally as releases
 * pipelined behind a hand-over's `invoke('cron')` that hung until the runtime killed the worker.
 * (postgres.js's max_pipeline cannot be set to 0 instead: sql.begin then fails UNSAFE_TRANSACTION.)
 * tests/worker/statements.test.ts checks it.
 */

export function createDb(dbUrl: string, opts: { max?: number } = {}): QueueDb {
  const sql = postgres(dbUrl, {
    max: opts.max ?? 4,
    prepare: false, // works behind Supabase's transaction pooler too
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "embed-queue" },
  });

  return {
    async claim(worker, limit, leaseSeconds, tables) {
      // The model each job's column holds comes from its target (targets.model), read in the
      // same statement; a switch of models between the two is caught by complete()'s fence.
      // Whether the job's last vector embeds this text comes from the job (claim leaves
      // embedded_hash alone), so complete_unchanged is asked only when it may say yes.
      const tablesArg = tablesParam(sql, tables);
      const rows = await sql`
        select c.id, c.table_name, c.record_id, c.embedding_column, c.content, c.content_hash, c.attempts,
               c.max_attempts, c.dimensions, c.clipped, t.model,
               coalesce(q.embedded_hash = c.content_hash and q.embedded_model is not null, false) as maybe_unchanged
        from embed_queue.claim(${worker}, ${limit}, ${leaseSeconds}, ${tablesArg}::text[]) c
        left join embed_queue.targets t on t.queue_table = c.table_name and t.embedding_column = c.embedding_column
        left join public.embedding_queue q on q.id = c.id`;
      return rows.map((r) => ({ ...r, id: Number(r.id) }) as ClaimedJob);
    },

    async complete(worker, jobs, model, dimensions) {
      if (jobs.length === 0) return new Map();
      const rows = await sql`
        select id, outcome from embed_queue.complete(
          ${worker},
          ${textArray(sql, jobs.map((j) => j.id))}::bigint[],
          ${textArray(sql, jobs.map((j) => j.contentHash))}::text[],
          ${textArray(sql, jobs.map((j) => j.embedding))}::text[],
          ${textArray(sql, jobs.map((j) => j.tokens))}::int[],
          ${textArray(sql, jobs.map((j) => j.truncated))}::boolean[],
          ${model}, ${dimensions})`;
      return new Map(rows.map((r) => [Number(r.id), r.outcome as Outcome]));
    },

    async completeUnchanged(worker, jobs, model, dimensions) {
      if (jobs.length === 0) return new Set();
      const rows = await sql`
        select id from embed_queue.complete_unchanged(
          ${worker},
          ${textArray(sql, jobs.map((j) => j.id))}::bigint[],
          ${textArray(sql, jobs.map((j) => j.contentHash))}::text[],
          ${model}, ${dimensions})`;
      return new Set(rows.map((r) => Number(r.id)));
    },

    async fail(worker, failures) {
      if (failures.length === 0) return new Map();
      const rows = await sql`
        select id, status from embed_queue.fail(${worker}, ${
        sql.json(failures as unknown as postgres.JSONValue)
      }::jsonb)`;
      return new Map(rows.map((r) => [Number(r.id), r.status as string]));
    },

    async release(worker, ids) {
      const [{ n }] = await sql`
        select embed_queue.release(${worker}, ${ids ? textArray(sql, ids) : null}::bigint[]) as n`;
      return Number(n);
    },

    async startRun(worker, trigger) {
      const [r] = await sql`
        select run_id, rate_limited_default_ms from embed_queue.begin_run(${worker}, ${trigger})`;
      return {
        runId: r.run_id === null ? null : Number(r.run_id),
        rateLimitedDefaultMs: Number(r.rate_limited_default_ms),
      };
    },

    pace(key) {
      const orNull = (
        x: number | undefined,
      ) => (x === undefined ? null : Math.round(x));
      return {
        async take(tokens, maxWaitMs): Promise<PaceGrant> {
          const wait = maxWaitMs === undefined || !Number.isFinite(maxWaitMs)
            ? null
            : Math.min(2_000_000_000, Math.max(0, Math.floor(maxWaitMs)));
          const [r] = await sql`
            select granted, wait_ms, limit_requests, limit_tokens, tokens_mark, requests_mark
            from embed_queue.pace_take(${key}, ${Math.max(0, Math.round(tokens))}, ${wait}::integer)`;
          return {
            granted: r.granted,
            waitMs: Number(r.wait_ms),
            limitRequests: r.limit_requests === null ? undefined : Number(r.limit_requests),
            limitTokens: r.limit_tokens === null ? undefined : Number(r.limit_tokens),
            mark: r.tokens_mark === null || r.requests_mark === null
              ? undefined
              : { tokens: Number(r.tokens_mark), requests: Number(r.requests_mark) },
          };
        },
        async observe(info, mark) {
          await sql`select embed_queue.pace_observe(${key}, ${orNull(info?.limitRequests)}::integer,
            ${orNull(info?.limitTokens)}::bigint, ${orNull(info?.remainingRequests)}::integer,
            ${orNull(info?.remainingTokens)}::bigint, ${info !== null}, ${orNull(mark?.tokens)}::bigint,
            ${orNull(mark?.requests)}::bigint)`;
        },
        async pause(ms, refundTokens = 0) {
          const [{ applied }] = await sql`
            select embed_queue.pace_pause(${key}, ${ms === null ? null : Math.ceil(ms)}::integer,
              ${Math.max(0, Math.round(refundTokens))}::bigint) as applied`;
          return Number(applied);
        },
        async limits() {
          const [r] = await sql`
            select limit_requests, limit_tokens from embed_queue.pace where key = ${key}`;
          return {
            limitRequests: r?.limit_requests == null ? undefined : Number(r.limit_requests),
            limitTokens: r?.limit_tokens == null ? undefined : Number(r.limit_tokens),
          };
        },
      };
    },

    async finishRun(runId, stats) {
      await sql`select embed_queue.finish_run(${runId}, ${
        sql.json(stats as unknown as postgres.JSONValue)
      }::jsonb)`;
    },

    async pendingCount(tables) {
      const [{ n }] = await sql`select embed_queue.pending_count(${tablesParam(sql, tables)}::text[]) as n`;
      return Number(n);
    },

    async queueTables(tables) {
      const rows = await sql`
        select distinct t.queue_table as t from embed_queue.targets t
        where ${tablesParam(sql, tables)}::text[] is null or t.queue_table = any (${tablesParam(sql, tables)}::text[])
        order by 1`;
      return rows.map((r) => String(r.t));
    },

    async queueSecret() {
      // A parameter, so nothing is pipelined behind it (see the note above createDb).
      const [{ s }] = await sql`select embed_queue.queue_secret() as s where ${true}::boolean`;
      return s ?? null;
    },

    async handOver() {
      // A parameter, so nothing is pipelined behind it (see the note above createDb).
      await sql`select embed_queue.invoke(${"cron"}::text)`;
    },

    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}

/** SQLSTATE classes that mean the database could not be reached or is going away. */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: string })?.code ?? "";
  return /^(08|57P)/.test(code) ||
    [
      "ECONNREFUSED",
      "ECONNRESET",
      "ETIMEDOUT",
      "CONNECT_TIMEOUT",
      "CONNECTION_CLOSED",
      "CONNECTION_ENDED",
      "CONNECTION_DESTROYED",
    ]
      .includes(code);
}
