/**
 * The HTTP face of the function. POST only; every field of the JSON body is optional:
 *
 *   { "batch_size": 1000, "max_jobs": null, "time_budget_ms": 100000, "tables": ["sessions"],
 *     "dry_run": false, "trigger": "manual", "wait": true }
 *
 * batch_size: jobs claimed at a time per lane; max_jobs: stop after claiming this many (a
 * paced drain); tables: only these targets' tables; dry_run: claim, plan, release.
 *
 * cron and webhook calls (trigger "cron" | "webhook") are answered 202 at once and the run goes
 * on in the background (EdgeRuntime.waitUntil), so pg_net's worker is not held; a manual call
 * waits for the run and gets its summary. Job failures are reported in the body; a 5xx means the
 * database could not be reached.
 *
 * One background run per worker: a cron or webhook call that reaches a worker whose background
 * run is still working is answered 202 with `"started": false` and starts nothing (that run
 * takes the work). Two runs in one worker shared its CPU, and the edge runtime sends the 10 s
 * tick, the webhook and a hand-over to the same worker until it retires it.
 *
 * `{"ping": true}` answers `{"worker": "<id>"}`, this worker's random id, and runs nothing: a run
 * calls its own function so to learn whether the runtime still routes requests to its worker
 * (budget.ts: a proof that its CPU is under the soft limit).
 */
import { type Config, maxTimeBudgetMs } from "../_shared/config.ts";
import type { QueueDb } from "./db.ts";
import { isConnectionError } from "./db.ts";
import type { EmbeddingProvider } from "../_shared/provider.ts";
import type { Authenticator } from "./auth.ts";
import { type RunOptions, runQueue, type RunSummary, type Trigger } from "./worker.ts";
import { log as defaultLog } from "./log.ts";
import type { Budget } from "./budget.ts";
import type { BatchRunner } from "./batch.ts";

export interface HandlerDeps {
  config: Config;
  db: QueueDb;
  provider: EmbeddingProvider;
  auth: Authenticator;
  /** EdgeRuntime.waitUntil on Supabase; tests pass their own. */
  waitUntil: (p: Promise<unknown>) => void;
  /** Aborted when the runtime is about to stop the worker (beforeunload). */
  shutdown?: AbortSignal;
  /** The worker's CPU and memory, shared by its runs (budget.ts). */
  budget?: Budget;
  /**
   * How a run reaches its own function to prove its worker is still served (budget.ts): the
   * function's URL and a key its auth accepts. Without it a run stops when the budget's room is used.
   */
  self?: { url: string; key: string; fetch?: typeof fetch };
  /** Bulk work through the Batch API (batch.ts); only with the openai provider. */
  batches?: BatchRunner;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

export class BadRequest extends Error {}

const TRIGGERS: Trigger[] = ["cron", "webhook", "manual"];
const FIELDS = new Set([
  "batch_size",
  "max_jobs",
  "time_budget_ms",
  "tables",
  "dry_run",
  "trigger",
  "wait",
  "ping",
]);
/** How long a run waits for the answer to its proof call before taking the worker for retired. */
const PROOF_TIMEOUT_MS = 10_000;

function int(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new BadRequest(`${name} must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** Validates a request body into run options (defaults from the config). */
export function parseBody(text: string, config: Config): RunOptions & { wait: boolean; ping: boolean } {
  let body: Record<string, unknown> = {};
  if (text.trim() !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new BadRequest("body is not valid JSON");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new BadRequest("body must be a JSON object");
    }
    body = parsed as Record<string, unknown>;
  }
  for (const k of Object.keys(body)) {
    if (!FIELDS.has(k)) {
      throw new BadRequest(`unknown field "${k.slice(0, 40)}" (known: ${[...FIELDS].join(", ")})`);
    }
  }
  const trigger = (body.trigger ?? "manual") as Trigger;
  if (!TRIGGERS.includes(trigger)) throw new BadRequest(`trigger must be one of ${TRIGGERS.join(", ")}`);
  let tables: string[] | undefined;
  if (body.tables !== undefined && body.tables !== null) {
    if (
      !Array.isArray(body.tables) ||
      body.tables.some((t) => typeof t !== "string" || t === "" || t.length > 63)
    ) {
      throw new BadRequest("tables must be an array of table names");
    }
    tables = body.tables as string[];
  }
  for (const k of ["dry_run", "wait", "ping"]) {
    if (body[k] !== undefined && typeof body[k] !== "boolean") {
      throw new BadRequest(`${k} must be true or false`);
    }
  }
  return {
    trigger,
    batchSize: body.batch_size === undefined
      ? config.batchSize
      : int(body.batch_size, "batch_size", 1, 10_000),
    timeBudgetMs: body.time_budget_ms === undefined
      ? config.timeBudgetMs
      : int(body.time_budget_ms, "time_budget_ms", 1_000, maxTimeBudgetMs(config.wallClockMs)),
    tables,
    dryRun: body.dry_run === true,
    lingerMs: trigger === "manual" ? 0 : config.lingerMs,
    maxJobs: body.max_jobs === undefined || body.max_jobs === null
      ? undefined
      : int(body.max_jobs, "max_jobs", 1, 1_000_000),
    wait: typeof body.wait === "boolean" ? body.wait : trigger === "manual",
    ping: body.ping === true,
  };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  const log = deps.log ?? defaultLog;
  const workerId = crypto.randomUUID();
  let background = 0; // background runs working in this worker

  // One proof call at a time, shared by every lane that wants one.
  let proving: Promise<boolean> | null = null;
  const self = deps.self;
  const prove = self
    ? (): Promise<boolean> =>
      proving ??= (async () => {
        try {
          const res = await (self.fetch ?? fetch)(self.url, {
            method: "POST",
            headers: { authorization: `Bearer ${self.key}`, "content-type": "application/json" },
            body: JSON.stringify({ ping: true }),
            signal: AbortSignal.timeout(PROOF_TIMEOUT_MS),
          });
          const body = res.ok ? await res.json().catch(() => null) : await res.body?.cancel();
          const same = (body as { worker?: unknown } | null | undefined)?.worker === workerId;
          log("worker.proof", { status: res.status, same_worker: same });
          return same;
        } catch (e) {
          // Unanswered: taken for retired, the safe side.
          log("worker.proof", { status: null, same_worker: false, error: (e as Error)?.name ?? "Error" });
          return false;
        }
      })().finally(() => proving = null)
    : undefined;

  const run = (opts: RunOptions, onStopped?: () => void): Promise<RunSummary> =>
    runQueue({
      db: deps.db,
      provider: deps.provider,
      config: deps.config,
      signal: deps.shutdown,
      budget: deps.budget,
      prove,
      onStopped,
      batches: deps.batches,
      log,
    }, opts);

  return async (req) => {
    deps.budget?.requestArrived();
    if (req.method !== "POST") return json(405, { error: "use POST" });
    let authorized: boolean;
    try {
      authorized = await deps.auth.check(req);
    } catch (e) {
      if (isConnectionError(e)) return json(503, { error: "database unreachable: check SUPABASE_DB_URL" });
      throw e;
    }
    if (!authorized) {
      await req.body?.cancel();
      return json(401, {
        error: "unauthorized: send the service role key or the queue secret as a Bearer token",
      });
    }
    let opts;
    try {
      opts = parseBody(await req.text(), deps.config);
    } catch (e) {
      if (e instanceof BadRequest) return json(400, { error: e.message });
      throw e;
    }
    if (opts.ping) return json(200, { worker: workerId });
    if (!opts.wait) {
      if (background > 0) {
        log("run.skipped", { trigger: opts.trigger, reason: "a background run is working in this worker" });
        return json(202, { accepted: true, trigger: opts.trigger, started: false });
      }
      background++;
      let counted = true;
      const stopped = () => {
        if (counted) background--;
        counted = false;
      };
      deps.waitUntil(
        run(opts, stopped).catch((e) =>
          log("run.crashed", { code: (e as { code?: string }).code ?? (e as Error).name })
        ).finally(stopped),
      );
      return json(202, { accepted: true, trigger: opts.trigger, started: true });
    }
    try {
      return json(200, await run(opts));
    } catch (e) {
      if (isConnectionError(e)) return json(503, { error: "database unreachable: check SUPABASE_DB_URL" });
      log("run.crashed", { code: (e as { code?: string }).code ?? (e as Error).name });
      return json(500, { error: "run failed: see the function logs" });
    }
  };
}
