/**
 * What one run of the function answers (its HTTP body) and what the CLI reads back: the wire
 * shape shared by the function (worker.ts builds it) and the operator CLI (cli/fn.ts).
 */

export type Trigger = "cron" | "webhook" | "manual";

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
  estimated_cost_usd: number;
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
