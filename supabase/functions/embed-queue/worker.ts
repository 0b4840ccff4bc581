/**
 * One run: claim → embed → write back → acknowledge, in a loop until the queue is empty or the
 * time budget is spent. `concurrency` lanes each claim their own batch, so that many requests
 * are in flight; a RateLimiter paces all of them by the provider's own signals, through a pace
 * every run shares (embed_queue.pace), so overlapping runs together stay under the limits.
 * Requests are cut to a small share of the provider's token limit (batching.ts requestTokenCap).
 * A cron or webhook run that finds settings.max_concurrent_runs runs working ends at once
 * ("busy") without claiming.
 *
 * Failure handling, by the kind of the provider's error (errors.ts):
 * - rate_limited: every lane of every run pauses for retry-after (or
 *   settings.rate_limited_default_seconds) and the request is sent again; if the budget runs out
 *   first, that request's jobs are snoozed (embed_queue.fail kind rate_limited: runnable after the
 *   retry-after, attempt refunded), the run stops, its other unsent jobs are released without
 *   spending an attempt, and (cron or webhook) it calls the next run;
 * - retryable (5xx, timeouts): retried in the run with backoff, then failed back to the queue
 *   (the attempt spent at claim stays spent; the queue backs off further);
 * - bad_request: the request is split (around the input the provider named, else in halves)
 *   until the bad input fails alone and the rest complete;
 * - auth: the run stops and every job it holds is released with its attempt refunded;
 * - permanent: the request's jobs fail with a reason an operator can act on.
 *
 * Each request goes send → decide → report: `send` talks to the provider only, `decide`
 * (decide.ts, pure) picks what to do about an error, and `report` writes the outcome to the
 * queue. A database error while reporting is never taken for a provider error: the write is
 * retried, not the request, so nothing is paid for twice. If the write cannot be made in time
 * the vectors are dropped, the jobs released, and the run's record says so.
 */
import type { ClaimedJob, CompletedJob, JobFailure, QueueDb } from "./db.ts";
import type { Config } from "../_shared/config.ts";
import { createProvider, type EmbeddingProvider } from "../_shared/provider.ts";
import { LOCAL_MODEL, PRICES } from "../_shared/config.ts";
import { packRequests, type ProviderRequest, repack, requestTokenCap } from "./batching.ts";
import { truncateToTokens } from "../_shared/tokens.ts";
import { backoffMs } from "../_shared/backoff.ts";
import { decide } from "./decide.ts";
import { type Budget, PER_REQUEST_MS, PER_RUN_MS, UNLIMITED, WAIT_MAX_MS } from "./budget.ts";
import { paceKey, PaceTooSlow, RateLimiter, type Release } from "../_shared/limiter.ts";
import { operatorMessage, ProviderError, toProviderError } from "../_shared/errors.ts";
import { toPgvector } from "../_shared/vectors.ts";
import type { RunSummary, Trigger } from "../_shared/summary.ts";
import type { BatchRunner } from "./batch.ts";
import { log as defaultLog } from "./log.ts";

export type { RunSummary, Trigger };

export interface RunOptions {
  trigger: Trigger;
  /** Jobs claimed per lane per cycle. */
  batchSize: number;
  timeBudgetMs: number;
  tables?: string[];
  dryRun: boolean;
  /**
   * Claim once more this long after the queue first comes up empty (0: stop at once). The
   * webhook calls at most once per webhook_min_interval_ms, so a row committed inside that
   * interval is not announced; a run lingering longer than the interval still takes it,
   * instead of the next pg_cron tick (a minute on pg_cron 1.4). Cron and webhook runs linger.
   */
  lingerMs?: number;
  /** Stop claiming once this many jobs were claimed (a paced drain: one batch per call). */
  maxJobs?: number;
}

export interface RunDeps {
  db: QueueDb;
  provider: EmbeddingProvider;
  config: Config;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Aborted on `beforeunload`: stop, and release what was not sent. */
  signal?: AbortSignal;
  /** The worker's CPU and memory, shared by every run in it (budget.ts); none by default. */
  budget?: Budget;
  /**
   * The provider for a job whose target is pinned to another model than `provider`'s
   * (embed_queue.targets.model, a model change): by default `createProvider` with that model.
   */
  providerFor?: (model: string, dimensions: number) => EmbeddingProvider;
  /**
   * Asks whether the runtime still routes requests to this worker (handler.ts: a call to itself);
   * true renews the budget's room (budget.ts). Without it a run stops when the room is used up.
   */
  prove?: () => Promise<boolean>;
  /**
   * Called once the run has stopped working, before it calls the next run (hand-over), so that
   * the hand-over is not turned away by the handler's one background run per worker.
   */
  onStopped?: () => void;
  /** Bulk work through the Batch API (batch.ts): its steps due run first. None: synchronous only. */
  batches?: BatchRunner;
  /** How long a bookkeeping statement may take before the run goes on (BOOKKEEPING_TIMEOUT_MS). */
  bookkeepingTimeoutMs?: number;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

/** Jobs per complete() call: bounds one statement's size (about 15 MB of text at 1536 dims). */
const WRITE_CHUNK = 500;
/**
 * Bytes a job's vector occupies per dimension while its request is in hand: the answer's base64
 * (5.3), the floats (4, twice while decoding), pgvector text (about 11) and the write-back's
 * statement (about 11 again). With REQUEST_MEMORY_SHARE it bounds a request's size.
 */
const BYTES_PER_DIMENSION = 32;
/** Share of the worker's memory limit one request's vectors may take (see BYTES_PER_DIMENSION). */
const REQUEST_MEMORY_SHARE = 0.06;
/** Characters of claimed text tokenized between two looks at the budget (a proof may be due). */
const PACK_CHARS = 262_144;
/** Time kept in hand before a lease or the budget ends, for the write-back. */
const MARGIN_MS = 2000;
/** How often a request waits to see whether those in flight have made room (budget.admit "wait"). */
const ADMIT_POLL_MS = 50;
/** Tries of one write-back statement after a database error, and the backoff between them. */
const WRITE_RETRIES = 3;
const WRITE_RETRY_BACKOFF = { baseMs: 200, maxMs: 2000 };

/**
 * How long the run waits for a bookkeeping statement (release, hand-over, its record) before it
 * goes on without the answer. Measured: in a retired worker a postgres.js query through the
 * transaction pooler was seen never to settle although the server had run it (postgres@3.4.9
 * has open issues of that kind), which held the run, and so the worker, until the runtime
 * killed it. A job whose release is lost this way is returned by its lease.
 */
const BOOKKEEPING_TIMEOUT_MS = 15_000;

/** How long a table whose claim came back empty is passed over by the lanes' turns. */
const DRY_TABLE_MS = 5_000;

/** `p`, or a rejection (code "TIMEOUT") once `ms` have passed. */
function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("timed out"), { code: "TIMEOUT" })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** SQLSTATE classes after which the same statement may succeed: connection, shutdown, conflicts. */
function transientDbError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  // No SQLSTATE (postgres.js names a dropped socket CONNECTION_CLOSED, CONNECT_TIMEOUT, ...).
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return /^(08|53|57|40)/.test(code) || code === "55P03";
}

const sqlState = (e: unknown) => {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : (e as Error)?.name ?? "Error";
};

interface Task {
  req: ProviderRequest;
  tries: number;
}

export async function runQueue(
  deps: RunDeps,
  opts: RunOptions,
): Promise<RunSummary> {
  const { db, provider, config } = deps;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ??
    ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const log = deps.log ?? defaultLog;
  const signal = deps.signal ?? new AbortController().signal;
  const budget = deps.budget ?? UNLIMITED;
  /** Until a request in flight is done or jobs settle (budget.changed), else a short poll. */
  const budgetChanged = () => budget.changed?.(WAIT_MAX_MS) ?? sleep(ADMIT_POLL_MS);
  const bound = <T>(p: Promise<T>) => bounded(p, deps.bookkeepingTimeoutMs ?? BOOKKEEPING_TIMEOUT_MS);
  budget.charge(PER_RUN_MS);
  const started = now();
  const deadline = started + opts.timeBudgetMs;
  const worker = `run-${crypto.randomUUID()}`;
  const held = new Set<number>();
  // A proof was asked for and the answer came from another worker (or none came): the runtime
  // has retired this one. It claims and sends nothing more and calls the next run at once, so
  // that a fresh worker takes over while this one finishes what is in flight. (Sending on
  // within the room of the last proof got a worker to 1,870 ms of CPU: the estimate errs.)
  let retired = false;
  let handedOver = false;
  const s: RunSummary = {
    run_id: null,
    trigger: opts.trigger,
    dry_run: opts.dryRun,
    claimed: 0,
    completed: 0,
    failed: 0,
    retried_later: 0,
    skipped: 0,
    unchanged: 0,
    stale: 0,
    lost: 0,
    released: 0,
    dropped: 0,
    requests: 0,
    rate_limited: 0,
    tokens: 0,
    truncated: 0,
    estimated_cost_usd: 0,
    duration_ms: 0,
    pending: null,
    stopped: "empty",
    error: null,
  };
  // Set from the lanes (closures), so declared without an initial narrowing to null.
  let stop = null as RunSummary["stopped"] | null;

  /** A background run (cron, webhook) that stops with work left calls the next run. */
  const handsOver = opts.trigger !== "manual";
  function handOver() {
    if (handedOver) return Promise.resolve();
    handedOver = true;
    return bound(db.handOver()).then(() => log("run.hand_over", { run_id: s.run_id }), () => {});
  }

  /**
   * Whether the runtime still serves this worker (budget.ts, a proof). False once it is found
   * retired, and without a way to ask (the run then stops when the room is used up).
   */
  async function prove(): Promise<boolean> {
    if (retired || !deps.prove) return false;
    if (await deps.prove()) return true;
    retired = true;
    stop ??= "cpu";
    // The fresh worker the runtime now routes to starts the next run while this one finishes.
    if (handsOver) void handOver();
    return false;
  }

  // A dry run sends nothing, so it neither counts against max_concurrent_runs nor waits after a 429.
  let rateLimitedDefaultMs = 0;
  if (!opts.dryRun) {
    const start = await db.startRun(worker, opts.trigger);
    if (start.runId === null) {
      s.stopped = "busy";
      s.duration_ms = Math.round(now() - started);
      log("run.finish", { ...s });
      return s;
    }
    s.run_id = start.runId;
    rateLimitedDefaultMs = start.rateLimitedDefaultMs;
  }
  log("run.start", {
    run_id: s.run_id,
    trigger: opts.trigger,
    worker,
    model: provider.model,
  });
  // Open batches first (poll, write back, submit), then possibly a new one; the lanes get what
  // the budget leaves.
  if (deps.batches && !opts.dryRun) {
    s.batch = await deps.batches({ runId: s.run_id, worker, deadline, signal });
  }
  let storeErrors = 0;
  let spentUsd = 0;
  /** USD per million tokens: the configured price, or another model's list price (a model change). */
  const priceOf = (p: EmbeddingProvider) =>
    p.model === config.model ? config.usdPerMillionTokens : PRICES[p.model] ?? 0;
  // One pace per model (the provider's limits are per model): the configured one now, another
  // when a pinned target's jobs ask for it (a model change).
  const limiters = new Map<string, RateLimiter>();
  async function limiterFor(model: string): Promise<RateLimiter> {
    const known = limiters.get(model);
    if (known) return known;
    const limiter = new RateLimiter({
      concurrency: config.concurrency,
      now,
      sleep,
      store: opts.dryRun ? undefined : db.pace(
        await paceKey(
          model,
          config.openaiBaseUrl ?? config.provider,
          config.openaiApiKey ?? "",
        ),
      ),
      onStoreError: (e) => {
        if (storeErrors++ === 0) {
          log("pace.error", { run_id: s.run_id, code: sqlState(e) });
        }
      },
    });
    limiters.set(model, limiter);
    await limiter.learnLimits();
    return limiter;
  }
  await limiterFor(provider.model);

  /** The provider that makes a claimed job's vector: its target's model, else the configured one. */
  const providers = new Map<string, EmbeddingProvider | string>();
  function providerOf(job: ClaimedJob): EmbeddingProvider | string {
    // Not pinned: the configured model, whose size the column must have (checked in processBatch).
    const model = job.model ?? provider.model;
    if (!job.model || (model === provider.model && job.dimensions === provider.dimensions)) return provider;
    const key = `${model}/${job.dimensions}`;
    let p = providers.get(key);
    if (p === undefined) {
      if (deps.providerFor) p = deps.providerFor(model, job.dimensions);
      else if (config.provider === "local" && model !== LOCAL_MODEL) {
        p =
          `column ${job.table_name}.${job.embedding_column} holds model ${model} (embed_queue.targets.model), ` +
          `which the local provider cannot make: set OPENAI_API_KEY`;
      } else p = createProvider({ ...config, model, dimensions: job.dimensions });
      providers.set(key, p);
    }
    return p;
  }

  /**
   * Runs one write to the queue, retrying the statement (never the provider request) after a
   * transient database error while time is left; null when it could not be made.
   */
  async function persist<T>(
    what: string,
    write: () => Promise<T>,
    until: number,
  ): Promise<T | null> {
    for (let attempt = 1;; attempt++) {
      try {
        return await write();
      } catch (e) {
        const wait = backoffMs(attempt, WRITE_RETRY_BACKOFF, deps.random);
        const again = transientDbError(e) && attempt <= WRITE_RETRIES &&
          now() + wait < until &&
          !signal.aborted;
        log("report.error", {
          run_id: s.run_id,
          what,
          code: sqlState(e),
          attempt,
          again,
        });
        if (!again) {
          s.error ??= `${what} failed (${sqlState(e)})`;
          return null;
        }
        await sleep(wait);
      }
    }
  }

  /** Writes vectors back; if a chunk cannot be written, its vectors are dropped and its jobs released. */
  async function writeBack(done: CompletedJob[], until: number, provider: EmbeddingProvider) {
    for (let i = 0; i < done.length; i += WRITE_CHUNK) {
      const chunk = done.slice(i, i + WRITE_CHUNK);
      const outcomes = await persist(
        "write-back",
        () => db.complete(worker, chunk, provider.model, provider.dimensions),
        until,
      );
      if (!outcomes) {
        // Released with the attempt refunded; if the release fails too, the lease runs out and
        // the rescuer takes them back (spending the attempt, so nothing loops for ever).
        const ids = chunk.map((j) => j.id);
        const n = await bound(db.release(worker, ids)).catch(() => 0);
        s.released += n;
        s.dropped += chunk.length;
        for (const id of ids) held.delete(id);
        s.error = `write-back failed: ${chunk.length} vectors dropped, ${n} jobs released (${s.error})`;
        // The database is in trouble: claiming more would only pay for more vectors to drop.
        stop ??= "write_failed";
        continue;
      }
      for (const j of chunk) {
        held.delete(j.id);
        const o = outcomes.get(j.id) ?? "lost";
        if (o === "completed") s.completed++;
        else if (o === "stale") s.stale++;
        else s.lost++;
      }
    }
  }

  /**
   * Gives claimed jobs this run will not send back to pending, attempt refunded. If the release
   * fails they stay held, for the release at the end of the run (or the lease) to return.
   */
  async function giveBack(ids: number[]) {
    const mine = ids.filter((id) => held.has(id));
    if (mine.length === 0) return;
    for (const id of mine) held.delete(id);
    try {
      // Read after the await: lanes give back at the same time.
      const n = await bound(db.release(worker, mine));
      s.released += n;
    } catch (e) {
      log("report.error", { run_id: s.run_id, what: "release", code: sqlState(e), again: false });
      for (const id of mine) held.add(id);
    }
  }

  async function failJobs(failures: JobFailure[], until = deadline) {
    if (failures.length === 0) return;
    const statuses = await persist(
      "fail",
      () => db.fail(worker, failures),
      until,
    );
    for (const f of failures) {
      // Not reported: left to the lease (the rescuer spends the attempt), never sent again in this run.
      held.delete(f.id);
      if (!statuses) continue;
      if (statuses.get(f.id) === "failed") s.failed++;
      else if (statuses.has(f.id)) s.retried_later++;
      else s.lost++;
    }
  }

  const failuresFor = (
    req: ProviderRequest,
    kind: JobFailure["kind"],
    error: string,
  ): JobFailure[] => req.owners.flat().map((id) => ({ id, kind, error }));

  function split(req: ProviderRequest, at?: number): ProviderRequest[] {
    const parts: Array<[number, number]> = at !== undefined && at >= 0 && at < req.inputs.length
      ? [[0, at], [at, at + 1], [at + 1, req.inputs.length]]
      : [[0, Math.ceil(req.inputs.length / 2)], [
        Math.ceil(req.inputs.length / 2),
        req.inputs.length,
      ]];
    return parts.filter(([a, b]) => b > a).map(([a, b]) => ({
      inputs: req.inputs.slice(a, b),
      owners: req.owners.slice(a, b),
      counts: req.counts.slice(a, b),
      tokens: req.counts.slice(a, b).reduce((n, c) => n + c, 0),
      // The bytes/4 estimate is only a bound for packing: share it by input count.
      estimate: Math.ceil(req.estimate * (b - a) / req.inputs.length),
    }));
  }

  /**
   * Jobs whose stored vector already embeds their text with this model are completed without a
   * request (embed_queue.complete_unchanged); the others are returned, to be sent. A database
   * error here only means they are sent.
   */
  async function withoutUnchanged(jobs: ClaimedJob[], provider: EmbeddingProvider): Promise<ClaimedJob[]> {
    if (opts.dryRun || !db.completeUnchanged) return jobs;
    const same = jobs.filter((j) => j.dimensions === provider.dimensions && j.maybe_unchanged !== false);
    if (same.length === 0) return jobs;
    let done: Set<number>;
    try {
      const asked = same.map((j) => ({ id: j.id, contentHash: j.content_hash }));
      done = await db.completeUnchanged(worker, asked, provider.model, provider.dimensions);
    } catch (e) {
      log("report.error", { run_id: s.run_id, what: "complete-unchanged", code: sqlState(e), again: false });
      return jobs;
    }
    if (done.size === 0) return jobs;
    s.unchanged += done.size;
    for (const id of done) held.delete(id);
    return jobs.filter((j) => !done.has(j.id));
  }

  /** Inputs per request that keep its vectors within REQUEST_MEMORY_SHARE of the memory limit. */
  function maxInputsForMemory(provider: EmbeddingProvider): number {
    return Math.max(
      1,
      Math.floor(
        (config.memoryMb * 2 ** 20 * REQUEST_MEMORY_SHARE) / (provider.dimensions * BYTES_PER_DIMENSION),
      ),
    );
  }

  /**
   * `progress.settled`: jobs whose vectors are encoded, handed back to the budget as they go (what
   * is left waits for the write-back only), so that the lanes claim again while writes are slow.
   */
  async function processBatch(
    claimed: ClaimedJob[],
    batchDeadline: number,
    progress: { settled: number },
    provider: EmbeddingProvider,
    limiter: RateLimiter,
  ) {
    const jobs = await withoutUnchanged(claimed, provider);
    const meta = new Map<number, { hash: string; tokens: number; truncated: boolean }>();
    const items: Array<{ id: number; text: string; tokens: number }> = [];
    const limitsNow = () => ({
      maxInputs: Math.min(config.maxInputsPerRequest, budget.maxJobsPerRequest(), maxInputsForMemory(provider)),
      maxTokens: requestTokenCap(limiter.limits, config.maxTokensPerRequest),
    });
    const wrongSize: JobFailure[] = [];
    // Tokenized a slice of text at a time: a claim of long texts costs CPU by its length, not by
    // its count, so the worker proves itself between slices as it does between requests.
    for (let i = 0; i < jobs.length;) {
      if (i > 0 && !opts.dryRun && budget.proofDue() && !(await prove())) {
        // Retired (or it cannot tell): nothing of this claim was sent; it goes back unsent now.
        stop ??= "cpu";
        await giveBack(jobs.map((j) => j.id));
        return;
      }
      budget.timed(() => {
        for (let chars = 0; i < jobs.length && chars < PACK_CHARS; i++) {
          const job = jobs[i];
          chars += job.content.length;
          if (job.dimensions !== provider.dimensions) {
            wrongSize.push({
              id: job.id,
              kind: "permanent",
              error:
                `column ${job.table_name}.${job.embedding_column} holds ${job.dimensions} dimensions but the provider makes ${provider.dimensions}: set EMBEDDING_DIMENSIONS=${job.dimensions}`,
            });
            continue;
          }
          const t = truncateToTokens(job.content, config.maxTokensPerInput);
          const truncated = t.truncated || job.clipped === true;
          if (truncated) s.truncated++;
          meta.set(job.id, { hash: job.content_hash, tokens: t.tokens, truncated });
          items.push({ id: job.id, text: t.text, tokens: t.tokens });
        }
      });
    }
    const tasks: Task[] = budget.timed(() =>
      packRequests(items, limitsNow()).map((req) => ({ req, tries: 0 }))
    );
    await failJobs(wrongSize);

    if (opts.dryRun) {
      const tokens = tasks.reduce((n, t) => n + t.req.tokens, 0);
      s.requests += tasks.length;
      s.tokens += tokens;
      spentUsd += tokens * priceOf(provider) / 1e6;
      return;
    }

    try {
      await sendAll(tasks, batchDeadline, meta, progress, provider, limiter, limitsNow);
    } finally {
      // What the batch did not send goes back now (attempt refunded), not when the run ends, so
      // that the next run (the hand-over, a tick) takes it at once.
      await giveBack(tasks.flatMap((t) => t.req.owners.flat()));
    }
  }

  /** Sends a batch's requests in turn; returns early (tasks left) when the run must stop sending. */
  async function sendAll(
    tasks: Task[],
    batchDeadline: number,
    meta: Map<number, { hash: string; tokens: number; truncated: boolean }>,
    progress: { settled: number },
    provider: EmbeddingProvider,
    limiter: RateLimiter,
    limitsNow: () => { maxInputs: number; maxTokens: number },
  ) {
    while (tasks.length > 0) {
      // A run that stopped claiming for the worker's CPU or memory finishes what it holds while
      // the budget admits it, unless its worker was found retired; for any other stop it sends
      // no more.
      const halt = retired || (stop !== null && stop !== "cpu" && stop !== "memory");
      if (halt || signal.aborted || now() > batchDeadline - MARGIN_MS) return;
      if (budget.mustYield()) {
        // Past the yield point since the last proof: go on only if the runtime still serves this
        // worker; otherwise what is held goes back unsent for a fresh one.
        if (await prove()) continue;
        stop ??= "cpu";
        return;
      }
      const task = tasks.shift()!;
      const { req } = task;
      // The limits may have become known (or changed) since packing: cut to the cap now.
      const parts = repack(req, limitsNow());
      if (parts.length > 1) {
        tasks.unshift(...parts.map((r) => ({ req: r, tries: task.tries })));
        continue;
      }
      // The worker's CPU since the runtime last proved it under the soft limit (budget.ts).
      const jobs = req.owners.reduce((n, o) => n + o.length, 0);
      const admission = budget.admit(jobs);
      if (admission !== "send") {
        tasks.unshift(task);
        if (admission === "wait") await budgetChanged();
        else if (!(await prove())) {
          // Retired (or it cannot tell): the room is used up; what is held goes back unsent.
          stop ??= "cpu";
          return;
        }
        continue;
      }
      // Room is running low: ask for the next proof while this request goes (an answer from
      // another worker starts the hand-over; this run goes on within the room it has).
      if (budget.proofDue()) void prove();
      // The request's CPU is spent once its vectors are encoded; the write-back only waits.
      let admitted = true;
      const unadmit = () => {
        if (admitted) budget.sent(jobs);
        admitted = false;
      };
      const encoded = () => {
        unadmit();
        budget.settle(jobs, jobs);
        progress.settled += jobs;
      };
      try {
        if (await sendAndReport(task, batchDeadline, meta, tasks, encoded, provider, limiter) === "return") return;
      } finally {
        unadmit();
      }
    }
  }

  /** One request: send, decide, report. "return": the batch stops (what is left is released). */
  async function sendAndReport(
    task: Task,
    batchDeadline: number,
    meta: Map<number, { hash: string; tokens: number; truncated: boolean }>,
    tasks: Task[],
    encoded: () => void,
    provider: EmbeddingProvider,
    limiter: RateLimiter,
  ): Promise<"return" | "next"> {
    const { req } = task;
    {
      let release: Release | null = null;
      try {
        release = await limiter.acquire(
          req.tokens,
          signal,
          batchDeadline - MARGIN_MS - now(),
        );
      } catch (e) {
        tasks.unshift(task);
        if (e instanceof PaceTooSlow) {
          // The shared pace lets it go only after the time left: give the unsent jobs back now
          // (attempt refunded), not at the end of the run, so that a run with time left (the
          // next tick's, or the hand-over) takes them at once.
          stop ??= "budget";
          await giveBack(tasks.flatMap((t) => t.req.owners.flat()));
          tasks.length = 0;
        }
        return "return";
      }
      const t0 = now();
      // send: the provider only.
      let res: Awaited<ReturnType<EmbeddingProvider["embed"]>>;
      try {
        // Timed: an offline provider computes here; a remote one only sets its request up.
        res = await budget.timed(() => provider.embed(req.inputs, signal, budget.timed));
      } catch (e) {
        release();
        if (signal.aborted) {
          tasks.unshift(task);
          return "return";
        }
        s.requests++;
        budget.charge(PER_REQUEST_MS);
        await limiter.observe(null);
        const pe = e instanceof ProviderError ? e : toProviderError(e);
        log("request.error", {
          run_id: s.run_id,
          kind: pe.kind,
          status: pe.status ?? null,
          inputs: req.inputs.length,
          ms: now() - t0,
        });
        if (pe.kind === "rate_limited") s.rate_limited++;
        // decide, then report.
        const d = decide({
          error: pe,
          tries: task.tries,
          inputs: req.inputs.length,
          msLeft: batchDeadline - MARGIN_MS - now(),
          maxRetries: config.maxRequestRetries,
          rateLimitedDefaultMs,
          random: deps.random,
        });
        switch (d.do) {
          case "retry":
            if (d.pauseAll) await limiter.pauseFor(d.waitMs, req.tokens);
            else {
              task.tries++;
              await sleep(d.waitMs);
            }
            tasks.unshift(task);
            break;
          case "split":
            tasks.unshift(
              ...split(req, d.at).map((r) => ({ req: r, tries: 0 })),
            );
            break;
          case "fail":
            await failJobs(
              failuresFor(req, d.kind, operatorMessage(pe)),
              batchDeadline,
            );
            break;
          case "snooze":
            // Past the time left: these jobs wait for the retry-after in the queue, attempt
            // refunded; the other runs wait for it too.
            stop ??= "budget";
            await limiter.pauseFor(d.retryAfterMs ?? null, req.tokens);
            await failJobs(
              req.owners.flat().map((id) => ({
                id,
                kind: "rate_limited" as const,
                error: operatorMessage(pe),
                ...(d.retryAfterMs !== undefined ? { retry_after_ms: Math.ceil(d.retryAfterMs) } : {}),
              })),
              batchDeadline,
            );
            return "return";
          case "stop":
            stop = "auth";
            s.error = operatorMessage(pe);
            return "return";
        }
        return "next";
      }
      release();
      s.requests++;
      budget.charge(PER_REQUEST_MS);
      await limiter.observe(res.rate, release.mark);
      s.tokens += res.promptTokens;
      // Priced by the model that made them: the configured price, or another model's list price.
      spentUsd += res.promptTokens * priceOf(provider) / 1e6;
      const done: CompletedJob[] = [];
      budget.timed(() =>
        res.vectors.forEach((v, i) => {
          const embedding = toPgvector(v);
          for (const id of req.owners[i]) {
            const m = meta.get(id)!;
            done.push({ id, contentHash: m.hash, embedding, tokens: m.tokens, truncated: m.truncated });
          }
        })
      );
      encoded();
      log("request", {
        run_id: s.run_id,
        inputs: req.inputs.length,
        jobs: done.length,
        tokens: res.promptTokens,
        ms: now() - t0,
      });
      // report: outside the provider's error handling.
      await writeBack(done, batchDeadline, provider);
      return "next";
    }
  }

  /**
   * One table per claim. The lanes take turns preferring each queue table, and a claim whose
   * table has nothing runnable takes from all of them (that table is then passed over for
   * DRY_TABLE_MS). Claims in the fair order alone take one table's jobs after another: a backfill
   * of sessions then summaries sent twelve thousand short titles first, whose write-back (the
   * HNSW index) bound the run while it used half the token window, and a sliding window never
   * gives unused capacity back (BENCHMARKS.md 1.11). Taking turns keeps the database writing
   * short rows while the provider embeds long ones. Within a table the order is claim()'s: fresh
   * first, users in turn.
   */
  const tables = !opts.dryRun && db.queueTables
    ? await bound(db.queueTables(opts.tables)).catch(() => [] as string[])
    : [];
  const dryUntil = new Map<string, number>();
  let turn = 0;
  function preferredTable(): string | undefined {
    const t = now();
    const live = tables.filter((name) => (dryUntil.get(name) ?? 0) <= t);
    return live.length < 2 ? undefined : live[turn++ % live.length];
  }

  let reserved = 0; // jobs asked for so far, against opts.maxJobs
  let reachedMax = false;
  let busyLanes = 0; // lanes claiming or working on a batch
  async function lane(index: number) {
    const linger = index === 0 ? opts.lingerMs ?? 0 : 0;
    let lingered = false;
    while (!stop && !signal.aborted) {
      if (now() > deadline - MARGIN_MS) {
        stop ??= "budget";
        return;
      }
      const asked = Math.min(opts.batchSize, (opts.maxJobs ?? Infinity) - reserved);
      if (asked <= 0) {
        reachedMax = true; // this lane ends; the others finish what they hold
        return;
      }
      // Claims are bounded by the work held and by memory (budget.ts); a smaller claim near it.
      const want = budget.allow(asked);
      if (want === 0) {
        // Out of memory, or of room with nothing held: the run stops claiming. The jobs the
        // other lanes hold fill the room: this lane waits until they have done some (woken when
        // they settle; polling every 50 ms, reading the heap each time, cost a worker waiting
        // 30 s on the write-back of rows of 30 MB a whole second of CPU).
        const over = budget.exhausted();
        if (over === "memory" || busyLanes === 0) {
          stop ??= over ?? "cpu";
          return;
        }
        await budgetChanged();
        continue;
      }
      busyLanes++;
      reserved += want;
      let jobs: ClaimedJob[];
      try {
        const table = preferredTable();
        jobs = await db.claim(worker, want, config.leaseSeconds, table ? [table] : opts.tables);
        if (table && jobs.length === 0) {
          dryUntil.set(table, now() + DRY_TABLE_MS);
          jobs = await db.claim(worker, want, config.leaseSeconds, opts.tables);
        }
      } catch (e) {
        budget.settle(want, 0);
        busyLanes--;
        throw e;
      }
      reserved -= want - jobs.length;
      if (jobs.length === 0) {
        budget.settle(want, 0);
        busyLanes--;
        if (linger > 0 && !lingered && now() + linger < deadline - MARGIN_MS) {
          lingered = true;
          await sleep(linger);
          continue;
        }
        return;
      }
      lingered = false;
      s.claimed += jobs.length;
      for (const j of jobs) held.add(j.id);
      const leaseEnd = now() + config.leaseSeconds * 1000;
      const progress = { settled: 0 };
      try {
        // One batch per model the jobs' columns hold (one, but during a model change two).
        const groups = new Map<EmbeddingProvider | string, ClaimedJob[]>();
        for (const j of jobs) {
          const p = providerOf(j);
          const group = groups.get(p);
          if (group) group.push(j);
          else groups.set(p, [j]);
        }
        for (const [p, group] of groups) {
          if (typeof p === "string") {
            await failJobs(group.map((j) => ({ id: j.id, kind: "permanent" as const, error: p })));
            continue;
          }
          await processBatch(group, Math.min(deadline, leaseEnd), progress, p, await limiterFor(p.model));
        }
      } finally {
        budget.settle(want - progress.settled, jobs.length - progress.settled);
        busyLanes--;
      }
      if (opts.dryRun) {
        stop = "dry_run";
        return;
      }
    }
  }

  try {
    await Promise.all(
      Array.from(
        { length: opts.dryRun ? 1 : Math.max(1, config.concurrency) },
        (_, i) => lane(i),
      ),
    );
  } catch (e) {
    s.error = `run stopped: ${(e as { code?: string }).code ?? (e as Error).name}`;
    throw e;
  } finally {
    if (held.size > 0) {
      // Claimed but not finished (dry run, auth failure, budget, beforeunload): back to
      // pending with the attempt refunded. If this fails too, the lease expires and the
      // rescuer returns them.
      const n = await bound(db.release(worker, [...held])).catch(() => 0);
      s.released += n;
      held.clear();
    }
    if (signal.aborted) stop = "aborted";
    s.stopped = stop ?? (reachedMax ? "max_jobs" : "empty");
    s.estimated_cost_usd = Number(
      (spentUsd + (s.batch?.cost_usd ?? 0)).toFixed(8),
    );
    s.duration_ms = Math.round(now() - started);
    s.pending = await bound(db.pendingCount(opts.tables)).catch(() => null);
    if (s.run_id !== null) {
      await bound(db.finishRun(s.run_id, {
        claimed: s.claimed,
        completed: s.completed,
        failed: s.failed,
        skipped: s.skipped,
        unchanged: s.unchanged,
        stale: s.stale + s.lost,
        requests: s.requests,
        rate_limited: s.rate_limited,
        tokens: s.tokens + (s.batch?.tokens ?? 0),
        cost_usd: s.estimated_cost_usd,
        error: s.error,
      })).catch(() => {});
    }
    // A background run that ran out of time, or of its worker's CPU or memory, with work left
    // calls the next one itself instead of leaving the rest to the next pg_cron tick; a worker
    // past its soft CPU limit is retired, so the call reaches a fresh one. After its record is
    // finished, so the next run does not find this one still working (max_concurrent_runs). A
    // worker out of room that claimed nothing is not called again (the call could land on it and
    // go round without end), unless it is known to be retired.
    deps.onStopped?.();
    const outOfRoom = s.stopped === "budget" ||
      ((s.stopped === "cpu" || s.stopped === "memory") && (s.claimed > 0 || retired));
    // A batch write-back that stopped for the worker's CPU with lines left also hands over. A
    // run whose worker was found retired has called the next run already (prove()).
    if (handsOver && ((outOfRoom && (s.pending ?? 0) > 0) || s.batch?.more === true)) {
      await handOver();
    }
    const u = budget.usage();
    log("run.finish", {
      ...s,
      worker_cpu_ms_estimate: u.cpuMs,
      worker_memory_mb: Math.round(u.memoryBytes / 2 ** 20),
    });
  }
  return s;
}
