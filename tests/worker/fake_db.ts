/**
 * An in-memory QueueDb with the SQL API's semantics (claim leases and counts an attempt,
 * complete fences on worker and hash, fail by kind, release refunds), for testing the run
 * loop without a database. The real semantics are tested by pgTAP against Postgres.
 */
import type {
  ClaimedJob,
  CompletedJob,
  JobFailure,
  Outcome,
  QueueDb,
  RunRecord,
  RunStart,
} from "../../supabase/functions/embed-queue/db.ts";
import { MemoryPace } from "../../supabase/functions/_shared/limiter.ts";

export interface FakeJob {
  id: number;
  content: string;
  status: "pending" | "processing" | "completed" | "failed";
  attempts: number;
  maxAttempts: number;
  lockedBy: string | null;
  hash: string | null;
  embedding: string | null;
  error: string | null;
  dimensions: number;
  /** Failed back with a backoff or retry-after: not claimable again during the test. */
  delayed: boolean;
}

/** The Vault queue secret the fake holds (at least MIN_QUEUE_SECRET_CHARS long). */
export const QUEUE_SECRET = "queue-secret-for-the-tests-0123456789abcdef";

export class FakeDb implements QueueDb {
  jobs = new Map<number, FakeJob>();
  runs: Array<{ id: number; trigger: string; stats?: RunRecord }> = [];
  claims: number[][] = [];
  failures: JobFailure[] = [];
  released: number[] = [];
  secret: string | null = QUEUE_SECRET;
  /** Calls of each write, and errors to throw from the next ones (in order), for failure tests. */
  calls = { complete: 0, fail: 0, release: 0 };
  throwNext: { complete: unknown[]; fail: unknown[]; release: unknown[] } = {
    complete: [],
    fail: [],
    release: [],
  };

  private injected(op: "complete" | "fail" | "release"): unknown {
    this.calls[op]++;
    return this.throwNext[op].shift();
  }

  constructor(contents: string[], dimensions = 8) {
    contents.forEach((content, i) =>
      this.jobs.set(i + 1, {
        id: i + 1,
        content,
        status: "pending",
        attempts: 0,
        maxAttempts: 5,
        lockedBy: null,
        hash: null,
        embedding: null,
        error: null,
        dimensions,
        delayed: false,
      })
    );
  }

  /** A job's queue table, where a test gives it one ("sessions" otherwise); claim filters on it. */
  tableOf = new Map<number, string>();
  /** Absent unless a test sets it: then the run's lanes take turns between the tables. */
  queueTables?: (tables?: string[]) => Promise<string[]>;
  /** The `tables` each claim was asked for (null: all). */
  claimTables: Array<string[] | null> = [];

  claim(
    worker: string,
    limit: number,
    _lease?: number,
    tables?: string[],
  ): Promise<ClaimedJob[]> {
    const out: ClaimedJob[] = [];
    this.claimTables.push(tables?.length ? [...tables] : null);
    for (const j of this.jobs.values()) {
      if (out.length >= limit) break;
      if (j.status !== "pending" || j.delayed) continue;
      if (
        tables?.length && !tables.includes(this.tableOf.get(j.id) ?? "sessions")
      ) continue;
      j.status = "processing";
      j.lockedBy = worker;
      j.attempts++;
      j.hash = `h:${j.content}`;
      out.push({
        id: j.id,
        table_name: this.tableOf.get(j.id) ?? "sessions",
        record_id: String(j.id),
        embedding_column: "title_embedding",
        content: j.content,
        content_hash: j.hash,
        attempts: j.attempts,
        max_attempts: j.maxAttempts,
        dimensions: j.dimensions,
        clipped: false,
      });
    }
    this.claims.push(out.map((j) => j.id));
    return Promise.resolve(out);
  }

  complete(
    worker: string,
    done: CompletedJob[],
  ): Promise<Map<number, Outcome>> {
    const err = this.injected("complete");
    if (err) return Promise.reject(err);
    const m = new Map<number, Outcome>();
    for (const d of done) {
      const j = this.jobs.get(d.id)!;
      if (
        j.lockedBy !== worker || j.status !== "processing" ||
        j.hash !== d.contentHash
      ) {
        m.set(d.id, "lost");
        continue;
      }
      j.status = "completed";
      j.embedding = d.embedding;
      j.lockedBy = null;
      m.set(d.id, "completed");
    }
    return Promise.resolve(m);
  }

  fail(worker: string, failures: JobFailure[]): Promise<Map<number, string>> {
    const err = this.injected("fail");
    if (err) return Promise.reject(err);
    this.failures.push(...failures);
    const m = new Map<number, string>();
    for (const f of failures) {
      const j = this.jobs.get(f.id)!;
      if (j.lockedBy !== worker) continue;
      j.lockedBy = null;
      j.error = f.error;
      j.delayed = true;
      if (f.kind === "rate_limited") {
        j.attempts--;
        j.status = "pending";
        j.delayed = (f.retry_after_ms ?? this.rateLimitedDefaultMs) > 0;
      } else if (f.kind === "permanent" || j.attempts >= j.maxAttempts) {
        j.status = "failed";
      } else j.status = "pending";
      m.set(f.id, j.status);
    }
    return Promise.resolve(m);
  }

  release(worker: string, ids?: number[]): Promise<number> {
    const err = this.injected("release");
    if (err) return Promise.reject(err);
    let n = 0;
    for (const j of this.jobs.values()) {
      if (j.lockedBy === worker && (!ids || ids.includes(j.id))) {
        j.lockedBy = null;
        j.status = "pending";
        j.attempts--;
        this.released.push(j.id);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  /** Cron and webhook runs are told "busy" while this many runs are unfinished (as begin_run). */
  maxConcurrentRuns = Infinity;
  /** settings.rate_limited_default_seconds, in ms. */
  rateLimitedDefaultMs = 10_000;
  startRun(_worker: string, trigger: string): Promise<RunStart> {
    const working = this.runs.filter((r) => r.stats === undefined).length;
    if (trigger !== "manual" && working >= this.maxConcurrentRuns) {
      return Promise.resolve({
        runId: null,
        rateLimitedDefaultMs: this.rateLimitedDefaultMs,
      });
    }
    this.runs.push({ id: this.runs.length + 1, trigger });
    return Promise.resolve({
      runId: this.runs.length,
      rateLimitedDefaultMs: this.rateLimitedDefaultMs,
    });
  }

  /** One shared pace per key, as embed_queue.pace; `paceNow` is its clock. */
  paces = new Map<string, MemoryPace>();
  paceNow: () => number = Date.now;
  pace(key: string): MemoryPace {
    let p = this.paces.get(key);
    if (!p) {
      this.paces.set(
        key,
        p = new MemoryPace({
          now: () => this.paceNow(),
          defaultPauseMs: this.rateLimitedDefaultMs,
        }),
      );
    }
    return p;
  }

  finishRun(runId: number, stats: RunRecord): Promise<void> {
    this.runs[runId - 1].stats = stats;
    return Promise.resolve();
  }

  pendingCount(): Promise<number> {
    return Promise.resolve(
      [...this.jobs.values()].filter((j) => j.status === "pending" || j.status === "processing").length,
    );
  }

  handOvers = 0;
  handOver(): Promise<void> {
    this.handOvers++;
    return Promise.resolve();
  }

  queueSecret(): Promise<string | null> {
    return Promise.resolve(this.secret);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  byStatus(status: FakeJob["status"]): FakeJob[] {
    return [...this.jobs.values()].filter((j) => j.status === status);
  }
}
