/**
 * What one run of the function answers (its HTTP body) and what the CLI reads back: the wire
 * shape shared by the function (worker.ts builds it) and the operator CLI (cli/fn.ts).
 */

export type Trigger = "cron" | "webhook" | "manual";

/** What a run did with Batch API batches (embed-queue/batch.ts); also in embed_queue.runs.batch. */
export interface BatchSummary {
  opened: number;
  uploaded: number;
  submitted: number;
  polled: number;
  /** Jobs completed with a vector from a batch. */
  written: number;
  /** Jobs whose row changed or went while their batch ran: nothing written. */
  stale: number;
  /** Jobs given back to the synchronous path (failed lines, expiry, cancel), attempt refunded. */
  released: number;
  /** Jobs failed for good (an input the provider refuses). */
  failed: number;
  /** Tokens billed for the lines written back, and their cost at the batch price. */
  tokens: number;
  cost_usd: number;
  /** Stopped for the worker's CPU, memory or time with batch work left (the run hands over). */
  more: boolean;
  events: Array<Record<string, unknown>>;
}

export interface RunSummary {
  run_id: number | null;
  trigger: Trigger;
  dry_run: boolean;
  claimed: number;
  completed: number;
  failed: number;
  retried_later: number;
  skipped: number;
  /** Jobs completed without a request: the row's stored vector already embeds that text with that model. */
  unchanged: number;
  stale: number;
  lost: number;
  released: number;
  /** Vectors made but not written (the write-back failed): their jobs were released. */
  dropped: number;
  requests: number;
  rate_limited: number;
  tokens: number;
  truncated: number;
  /** Synchronous requests at the model's price plus batch tokens at the batch price. */
  estimated_cost_usd: number;
  /** Batch steps this run did (null: none). tokens above count the synchronous requests only. */
  batch?: BatchSummary | null;
  duration_ms: number;
  pending: number | null;
  /**
   * Why the run stopped claiming: the queue was empty, its time budget, max_jobs, a refused key,
   * beforeunload, a dry run, a write-back that failed, the worker's CPU or memory (budget.ts), or
   * busy: a cron or webhook run found settings.max_concurrent_runs runs working and claimed nothing.
   */
  stopped:
    | "empty"
    | "budget"
    | "max_jobs"
    | "auth"
    | "aborted"
    | "dry_run"
    | "write_failed"
    | "cpu"
    | "memory"
    | "busy";
  error: string | null;
}
