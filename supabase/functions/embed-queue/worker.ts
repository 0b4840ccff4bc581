/**
 * One run: claim → embed → write back → acknowledge, in a loop until the queue is empty or the
 * time budget is spent. `concurrency` lanes each claim their own batch, so that many requests
 * are in flight; a shared RateLimiter paces all of them by the provider's own signals.
 *
 * Failure handling, by the kind of the provider's error (errors.ts):
 * - rate_limited: everyone pauses for retry-after and the request is sent again; if the budget
 *   runs out first, the run stops, its unsent jobs are released without spending an attempt,
 *   and (cron or webhook) it calls the next run;
 * - retryable (5xx, timeouts): retried in the run with backoff, then failed back to the queue
 *   (the attempt spent at claim stays spent; the queue backs off further);
 * - bad_request: the request is split (around the input the provider named, else in halves)
 *   until the bad input fails alone and the rest complete;
 * - auth: the run stops and every job it holds is released with its attempt refunded;
 * - permanent: the request's jobs fail with a reason an operator can act on.
 */
import type { ClaimedJob, CompletedJob, JobFailure, QueueDb } from "./db.ts";
import type { Config } from "../_shared/config.ts";
import type { EmbeddingProvider } from "../_shared/provider.ts";
import { packRequests, type ProviderRequest } from "./batching.ts";
import { truncateToTokens } from "../_shared/tokens.ts";
import { backoffMs } from "../_shared/backoff.ts";
import { RateLimiter } from "../_shared/limiter.ts";
import { operatorMessage, ProviderError, toProviderError } from "../_shared/errors.ts";
import { toPgvector } from "../_shared/vectors.ts";
import type { RunSummary, Trigger } from "../_shared/summary.ts";
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
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

/** Jobs per complete() call: bounds one statement's size (about 15 MB of text at 1536 dims). */
const WRITE_CHUNK = 500;
/** Time kept in hand before a lease or the budget ends, for the write-back. */
const MARGIN_MS = 2000;

interface Task {
  req: ProviderRequest;
  tries: number;
}

export async function runQueue(deps: RunDeps, opts: RunOptions): Promise<RunSummary> {
  const { db, provider, config } = deps;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const log = deps.log ?? defaultLog;
  const signal = deps.signal ?? new AbortController().signal;
  const started = now();
  const deadline = started + opts.timeBudgetMs;
  const worker = `run-${crypto.randomUUID()}`;
  const limiter = new RateLimiter({ concurrency: config.concurrency, now, sleep });
  const held = new Set<number>();
  const s: RunSummary = {
    run_id: null,
    trigger: opts.trigger,
    dry_run: opts.dryRun,
    claimed: 0,
    completed: 0,
    failed: 0,
    retried_later: 0,
    skipped: 0,
    stale: 0,
    lost: 0,
    released: 0,
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

  s.run_id = opts.dryRun ? null : await db.startRun(worker, opts.trigger);
  log("run.start", { run_id: s.run_id, trigger: opts.trigger, worker, model: provider.model });

  async function writeBack(done: CompletedJob[]) {
    for (let i = 0; i < done.length; i += WRITE_CHUNK) {
      const chunk = done.slice(i, i + WRITE_CHUNK);
      const outcomes = await db.complete(worker, chunk, provider.model, provider.dimensions);
      for (const j of chunk) {
        held.delete(j.id);
        const o = outcomes.get(j.id) ?? "lost";
        if (o === "completed") s.completed++;
        else if (o === "stale") s.stale++;
        else s.lost++;
      }
    }
  }

  async function failJobs(failures: JobFailure[]) {
    if (failures.length === 0) return;
    const statuses = await db.fail(worker, failures);
    for (const f of failures) {
      held.delete(f.id);
      if (statuses.get(f.id) === "failed") s.failed++;
      else if (statuses.has(f.id)) s.retried_later++;
      else s.lost++;
    }
  }

  const failuresFor = (req: ProviderRequest, kind: JobFailure["kind"], error: string): JobFailure[] =>
    req.owners.flat().map((id) => ({ id, kind, error }));

  function split(req: ProviderRequest, at?: number): ProviderRequest[] {
    const parts: Array<[number, number]> = at !== undefined && at >= 0 && at < req.inputs.length
      ? [[0, at], [at, at + 1], [at + 1, req.inputs.length]]
      : [[0, Math.ceil(req.inputs.length / 2)], [Math.ceil(req.inputs.length / 2), req.inputs.length]];
    return parts.filter(([a, b]) => b > a).map(([a, b]) => ({
      inputs: req.inputs.slice(a, b),
      owners: req.owners.slice(a, b),
      // Exact per-part counts are not needed for pacing; share the totals by input count.
      tokens: Math.ceil(req.tokens * (b - a) / req.inputs.length),
      estimate: Math.ceil(req.estimate * (b - a) / req.inputs.length),
    }));
  }

  async function processBatch(jobs: ClaimedJob[], batchDeadline: number) {
    const meta = new Map<number, { hash: string; tokens: number; truncated: boolean }>();
    const items = [];
    const wrongSize: JobFailure[] = [];
    for (const job of jobs) {
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
      if (t.truncated) s.truncated++;
      meta.set(job.id, { hash: job.content_hash, tokens: t.tokens, truncated: t.truncated });
      items.push({ id: job.id, text: t.text, tokens: t.tokens });
    }
    await failJobs(wrongSize);
    const tasks: Task[] = packRequests(items, {
      maxInputs: config.maxInputsPerRequest,
      maxTokens: config.maxTokensPerRequest,
    })
      .map((req) => ({ req, tries: 0 }));

    if (opts.dryRun) {
      s.requests += tasks.length;
      s.tokens += tasks.reduce((n, t) => n + t.req.tokens, 0);
      return;
    }

    while (tasks.length > 0) {
      if (stop || signal.aborted || now() > batchDeadline - MARGIN_MS) return; // the rest is released below
      const task = tasks.shift()!;
      const { req } = task;
      const release = await limiter.acquire(req.tokens, signal).catch(() => null);
      if (!release) {
        tasks.unshift(task);
        return;
      }
      const t0 = now();
      try {
        const res = await provider.embed(req.inputs, signal);
        s.requests++;
        limiter.observe(res.rate);
        s.tokens += res.promptTokens;
        const done: CompletedJob[] = [];
        res.vectors.forEach((v, i) => {
          const embedding = toPgvector(v);
          for (const id of req.owners[i]) {
            const m = meta.get(id)!;
            done.push({ id, contentHash: m.hash, embedding, tokens: m.tokens, truncated: m.truncated });
          }
        });
        log("request", {
          run_id: s.run_id,
          inputs: req.inputs.length,
          jobs: done.length,
          tokens: res.promptTokens,
          ms: now() - t0,
        });
        release();
        await writeBack(done);
      } catch (e) {
        release();
        if (signal.aborted) {
          tasks.unshift(task);
          return;
        }
        s.requests++;
        const pe = e instanceof ProviderError ? e : toProviderError(e);
        log("request.error", {
          run_id: s.run_id,
          kind: pe.kind,
          status: pe.status ?? null,
          inputs: req.inputs.length,
          ms: now() - t0,
        });
        const message = operatorMessage(pe);
        switch (pe.kind) {
          case "rate_limited": {
            s.rate_limited++;
            const wait = pe.retryAfterMs ?? 1000;
            limiter.pauseFor(wait);
            tasks.unshift(task);
            if (now() + wait >= batchDeadline - MARGIN_MS) {
              // Out of time before the provider takes more: stop here. What is unsent is
              // released (attempt refunded, runnable at once) and the next run, called by
              // this one, sends it when the provider allows.
              stop ??= "budget";
              return;
            }
            break;
          }
          case "retryable": {
            const wait = backoffMs(task.tries + 1, { baseMs: 500, maxMs: 10_000 }, deps.random);
            if (task.tries < config.maxRequestRetries && now() + wait < batchDeadline - MARGIN_MS) {
              task.tries++;
              await sleep(wait);
              tasks.unshift(task);
            } else {
              await failJobs(failuresFor(req, "retryable", message));
            }
            break;
          }
          case "bad_request":
            if (req.inputs.length === 1) await failJobs(failuresFor(req, "permanent", message));
            else tasks.unshift(...split(req, pe.badInputIndex).map((r) => ({ req: r, tries: 0 })));
            break;
          case "auth":
            stop = "auth";
            s.error = message;
            return;
          default:
            await failJobs(failuresFor(req, "permanent", message));
        }
      }
    }
  }

  let reserved = 0; // jobs asked for so far, against opts.maxJobs
  let reachedMax = false;
  async function lane(index: number) {
    const linger = index === 0 ? opts.lingerMs ?? 0 : 0;
    let lingered = false;
    while (!stop && !signal.aborted) {
      if (now() > deadline - MARGIN_MS) {
        stop ??= "budget";
        return;
      }
      const want = Math.min(opts.batchSize, (opts.maxJobs ?? Infinity) - reserved);
      if (want <= 0) {
        reachedMax = true; // this lane ends; the others finish what they hold
        return;
      }
      reserved += want;
      const jobs = await db.claim(worker, want, config.leaseSeconds, opts.tables);
      reserved -= want - jobs.length;
      if (jobs.length === 0) {
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
      await processBatch(jobs, Math.min(deadline, leaseEnd));
      if (opts.dryRun) {
        stop = "dry_run";
        return;
      }
    }
  }

  try {
    await Promise.all(
      Array.from({ length: opts.dryRun ? 1 : Math.max(1, config.concurrency) }, (_, i) => lane(i)),
    );
  } catch (e) {
    s.error = `run stopped: ${(e as { code?: string }).code ?? (e as Error).name}`;
    throw e;
  } finally {
    if (held.size > 0) {
      // Claimed but not finished (dry run, auth failure, budget, beforeunload): back to
      // pending with the attempt refunded. If this fails too, the lease expires and the
      // rescuer returns them.
      s.released += await db.release(worker, [...held]).catch(() => 0);
      held.clear();
    }
    if (signal.aborted) stop = "aborted";
    s.stopped = stop ?? (reachedMax ? "max_jobs" : "empty");
    s.estimated_cost_usd = Number((s.tokens * config.usdPerMillionTokens / 1e6).toFixed(8));
    s.duration_ms = Math.round(now() - started);
    s.pending = await db.pendingCount(opts.tables).catch(() => null);
    // A background run that ran out of time with work left calls the next one itself, instead
    // of leaving the rest to the next pg_cron tick (a minute on pg_cron 1.4).
    if (s.stopped === "budget" && opts.trigger !== "manual" && (s.pending ?? 0) > 0) {
      await db.handOver().then(() => log("run.hand_over", { run_id: s.run_id }), () => {});
    }
    if (s.run_id !== null) {
      await db.finishRun(s.run_id, {
        claimed: s.claimed,
        completed: s.completed,
        failed: s.failed,
        skipped: s.skipped,
        stale: s.stale + s.lost,
        requests: s.requests,
        rate_limited: s.rate_limited,
        tokens: s.tokens,
        cost_usd: s.estimated_cost_usd,
        error: s.error,
      }).catch(() => {});
    }
    log("run.finish", { ...s });
  }
  return s;
}
