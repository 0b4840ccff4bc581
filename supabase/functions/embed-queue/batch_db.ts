/**
 * Every SQL statement of the Batch API path (batch.ts), in one place: the functions of the
 * batches migration (20261124001300_batches.sql) and, for the write-back, the same
 * complete()/fail()/release() the synchronous path calls, with 'batch:<id>' as the lock owner.
 */
import postgres from "postgres";
import type { CompletedJob, JobFailure } from "./db.ts";

export type BatchStep =
  | "claimed"
  | "uploaded"
  | "submitted"
  | "downloading"
  | "done";

export interface BatchRow {
  id: number;
  step: BatchStep;
  outcome: string | null;
  provider_status: string | null;
  model: string;
  dimensions: number;
  inputs_per_request: number;
  jobs: number;
  input_file_id: string | null;
  provider_batch_id: string | null;
  output_file_id: string | null;
  error_file_id: string | null;
  output_bytes_done: number;
  output_lines_done: number;
  error_bytes_done: number;
  error_lines_done: number;
  cancel_requested: boolean;
}

export interface BatchJob {
  id: number;
  content: string;
  content_hash: string;
  clipped: boolean;
}

/** One line of the input file: custom_id eq-<batch>-<line>, its inputs' jobs in order. */
export interface BatchLine {
  line: number;
  job_ids: number[];
  hashes: string[];
  truncated: boolean[];
}

/** What one transaction of the write-back does, and the cursor it moves to. */
export interface LineWrites {
  file: "output" | "error";
  bytesDone: number;
  linesDone: number;
  complete: CompletedJob[];
  fail: JobFailure[];
  release: number[];
  tokens: number;
}

export interface WriteCounts {
  written: number;
  stale: number;
  released: number;
  failed: number;
  tokens: number;
  cost_usd: number;
}

export interface BatchDb {
  take(worker: string, leaseSeconds: number): Promise<BatchRow[]>;
  open(
    worker: string,
    model: string,
    dimensions: number,
  ): Promise<BatchRow | null>;
  jobs(batchId: number, after: number, limit: number): Promise<BatchJob[]>;
  uploaded(
    batchId: number,
    worker: string,
    fileId: string,
    lines: BatchLine[],
  ): Promise<boolean>;
  submitted(
    batchId: number,
    worker: string,
    providerBatchId: string,
    status: string,
  ): Promise<boolean>;
  /** The step after the poll (downloading once the batch ended), or null when the lease was lost. */
  polled(
    batchId: number,
    worker: string,
    p: {
      status: string;
      counts: unknown;
      outputFileId: string | null;
      errorFileId: string | null;
      error: string | null;
    },
  ): Promise<BatchStep | null>;
  lines(batchId: number): Promise<Map<number, BatchLine>>;
  /** complete(), fail(), release() and the cursor in one transaction; null when the lease was lost (nothing written). */
  write(
    batch: BatchRow,
    worker: string,
    w: LineWrites,
  ): Promise<WriteCounts | null>;
  /** Ends the batch and releases what it still holds; null when another run ended it. */
  finish(
    batchId: number,
    worker: string | null,
    outcome: string,
    error?: string | null,
  ): Promise<number | null>;
  letGo(batchId: number, worker: string): Promise<void>;
  noteRun(runId: number, summary: unknown): Promise<void>;
}

const BATCH_COLUMNS =
  `id, step, outcome, provider_status, model, dimensions, inputs_per_request, jobs, input_file_id, provider_batch_id,
  output_file_id, error_file_id, output_bytes_done, output_lines_done, error_bytes_done, error_lines_done, cancel_requested`;

const toRow = (r: postgres.Row): BatchRow => ({
  ...(r as unknown as BatchRow),
  id: Number(r.id),
  output_bytes_done: Number(r.output_bytes_done),
  error_bytes_done: Number(r.error_bytes_done),
});

const textArray = (
  sql: postgres.Sql | postgres.TransactionSql,
  xs: unknown[],
) => sql.array(xs.map((x) => String(x)));

/** Raised inside the write transaction to roll it back when the batch is no longer this run's. */
class LeaseLost extends Error {}

/** A connection of its own for the batch steps, as db.ts opens one (works behind the transaction pooler). */
export function connectBatchDb(dbUrl: string): BatchDb {
  return createBatchDb(postgres(dbUrl, {
    max: 2,
    prepare: false,
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "embed-queue-batch" },
  }));
}

export function createBatchDb(sql: postgres.Sql): BatchDb {
  return {
    async take(worker, leaseSeconds) {
      const rows = await sql.unsafe(
        `select ${BATCH_COLUMNS} from embed_queue.batch_take($1, $2) order by id`,
        [worker, leaseSeconds],
      );
      return rows.map(toRow);
    },

    async open(worker, model, dimensions) {
      const [o] =
        await sql`select batch_id, jobs from embed_queue.batch_open(${worker}, ${model}, ${dimensions})`;
      if (!o) return null;
      const [r] = await sql.unsafe(
        `select ${BATCH_COLUMNS} from embed_queue.batches where id = $1`,
        [o.batch_id],
      );
      return r ? toRow(r) : null;
    },

    async jobs(batchId, after, limit) {
      const rows =
        await sql`select id, content, content_hash, clipped from embed_queue.batch_jobs(${batchId}, ${after}, ${limit})`;
      return rows.map((r) => ({ ...r, id: Number(r.id) }) as BatchJob);
    },

    async uploaded(batchId, worker, fileId, lines) {
      const [{ ok }] =
        await sql`select embed_queue.batch_uploaded(${batchId}, ${worker}, ${fileId}, ${
          sql.json(lines as unknown as postgres.JSONValue)
        }::jsonb) as ok`;
      return ok === true;
    },

    async submitted(batchId, worker, providerBatchId, status) {
      const [{ ok }] =
        await sql`select embed_queue.batch_submitted(${batchId}, ${worker}, ${providerBatchId}, ${status}) as ok`;
      return ok === true;
    },

    async polled(batchId, worker, p) {
      const [{ step }] =
        await sql`select embed_queue.batch_polled(${batchId}, ${worker}, ${p.status}, ${
          sql.json((p.counts ?? null) as postgres.JSONValue)
        }::jsonb, ${p.outputFileId}, ${p.errorFileId}, ${p.error}) as step`;
      return (step ?? null) as BatchStep | null;
    },

    async lines(batchId) {
      const rows =
        await sql`select line, job_ids, hashes, truncated from embed_queue.batch_requests_of(${batchId})`;
      return new Map(rows.map((r) => [r.line as number, {
        line: r.line as number,
        job_ids: (r.job_ids as string[]).map(Number),
        hashes: r.hashes as string[],
        truncated: r.truncated as boolean[],
      }]));
    },

    async write(batch, worker, w) {
      const owner = `batch:${batch.id}`;
      try {
        return await sql.begin(async (tx) => {
          const c: WriteCounts = {
            written: 0,
            stale: 0,
            released: 0,
            failed: 0,
            tokens: w.tokens,
            cost_usd: 0,
          };
          if (w.complete.length > 0) {
            const rows = await tx`
              select outcome from embed_queue.complete(
                ${owner},
                ${textArray(tx, w.complete.map((j) => j.id))}::bigint[],
                ${textArray(tx, w.complete.map((j) => j.contentHash))}::text[],
                ${textArray(tx, w.complete.map((j) => j.embedding))}::text[],
                ${textArray(tx, w.complete.map((j) => j.tokens))}::int[],
                ${textArray(tx, w.complete.map((j) => j.truncated))}::boolean[],
                ${batch.model}, ${batch.dimensions})`;
            for (const r of rows) {
              if (r.outcome === "completed") c.written++;
              else c.stale++; // stale, or lost: the row changed or went, and its job with it
            }
          }
          if (w.fail.length > 0) {
            const rows =
              await tx`select status from embed_queue.fail(${owner}, ${
                tx.json(w.fail as unknown as postgres.JSONValue)
              }::jsonb)`;
            c.failed += rows.filter((r) => r.status === "failed").length;
            c.released += rows.filter((r) => r.status !== "failed").length;
          }
          if (w.release.length > 0) {
            const [{ n }] = await tx`select embed_queue.release(${owner}, ${
              textArray(tx, w.release)
            }::bigint[]) as n`;
            c.released += Number(n);
          }
          // What went back (released, or stale and pending again) to the bulk lane.
          await tx`select embed_queue.batch_to_bulk(${batch.id})`;
          const [{ cost }] =
            await tx`select embed_queue.batch_progress(${batch.id}, ${worker}, ${w.file},
            ${w.bytesDone}, ${w.linesDone}, ${
              tx.json(
                { ...c, cost_usd: undefined } as unknown as postgres.JSONValue,
              )
            }::jsonb) as cost`;
          if (cost === null) throw new LeaseLost();
          c.cost_usd = Number(cost);
          return c;
        });
      } catch (e) {
        if (e instanceof LeaseLost) return null;
        throw e;
      }
    },

    async finish(batchId, worker, outcome, error = null) {
      const [{ n }] =
        await sql`select embed_queue.batch_finish(${batchId}, ${worker}, ${outcome}, ${error}) as n`;
      return n === null ? null : Number(n);
    },

    async letGo(batchId, worker) {
      await sql`select embed_queue.batch_let_go(${batchId}, ${worker})`;
    },

    async noteRun(runId, summary) {
      await sql`select embed_queue.note_batch_run(${runId}, ${
        sql.json(summary as postgres.JSONValue)
      }::jsonb)`;
    },
  };
}
