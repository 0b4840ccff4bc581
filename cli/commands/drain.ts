/**
 * `drain`: the guide's processor. Calls the function (supabase-js, trigger "manual") until
 * nothing is pending, with an optional pause between calls, then prints the guide's summary.
 * The database URL is optional here: with it the bar knows the backlog before the first call
 * and the summary names the model.
 */
import { int, str } from "../args.ts";
import { needFunction } from "../connection.ts";
import { checkTable, connect, type Ctx, dbError, sleep } from "../context.ts";
import { type CliDb, openDb } from "../db.ts";
import { createDisplay } from "../display.ts";
import { CliError } from "../errors.ts";
import { createCaller, type RunRequest } from "../fn.ts";
import { describeModels, fmtInt, RateMeter, summaryBlock } from "../format.ts";

export interface DrainTotals {
  calls: number;
  claimed: number;
  completed: number;
  failed: number;
  skipped: number;
  retriedLater: number;
  requests: number;
  rateLimited: number;
  tokens: number;
  costUsd: number;
  pending: number | null;
}

export async function drain(ctx: Ctx): Promise<number> {
  const batchSize = int(ctx.args, "batch-size");
  const delayMs = int(ctx.args, "delay-ms") ?? 0;
  const table = str(ctx.args, "table");
  const conn = await connect(ctx);
  const fn = needFunction(conn, "drain");
  const call = createCaller({ apiUrl: fn.apiUrl, key: fn.key, local: conn.local, stackName: conn.stackName });
  const db: CliDb | null = conn.dbUrl ? openDb(conn.dbUrl) : null;
  const started = Date.now();
  const since = new Date(started);
  try {
    let initialPending: number | null = null;
    if (db) {
      try {
        if (table) await checkTable(db, table);
        initialPending = await db.pendingCount(table ? [table] : undefined);
      } catch (e) {
        throw dbError(conn, e);
      }
    }
    console.log(`Draining the embedding queue (${conn.label})`);
    console.log(`Batch size: ${batchSize ?? "the function's default"}`);
    console.log(`Delay between calls: ${delayMs} ms`);
    if (table) console.log(`Table: ${table}`);
    if (initialPending !== null) console.log(`Pending jobs: ${fmtInt(initialPending)}`);
    console.log("");

    const body: RunRequest = { trigger: "manual" };
    if (batchSize !== undefined) body.batch_size = batchSize;
    // With a pause between calls, each call takes one batch and stops (the guide's pacing);
    // without one, a call keeps claiming until the queue is empty.
    if (delayMs > 0 && batchSize !== undefined) body.max_jobs = batchSize;
    if (table) body.tables = [table];

    const t: DrainTotals = {
      calls: 0,
      claimed: 0,
      completed: 0,
      failed: 0,
      skipped: 0,
      retriedLater: 0,
      requests: 0,
      rateLimited: 0,
      tokens: 0,
      costUsd: 0,
      pending: initialPending,
    };
    const display = createDisplay();
    const meter = new RateMeter();
    const label = table ?? "all tables";
    const show = () => {
      const done = t.completed + t.failed + t.skipped;
      meter.add(Date.now() - started, done);
      display.update(Date.now() - started, [{
        label,
        done,
        total: done + (t.pending ?? 0),
        pending: t.pending ?? 0,
        processing: 0,
        completed: t.completed,
        failed: t.failed,
        rate: meter.rate(),
      }], true);
    };
    if (initialPending !== null) show();
    let authError: string | null = null;
    let waiting = 0;
    try {
      while (!ctx.signal.aborted) {
        const s = await call(body);
        t.calls++;
        t.claimed += s.claimed;
        t.completed += s.completed;
        t.failed += s.failed;
        t.skipped += s.skipped;
        t.retriedLater += s.retried_later;
        t.requests += s.requests;
        t.rateLimited += s.rate_limited;
        t.tokens += s.tokens;
        t.costUsd += s.estimated_cost_usd;
        t.pending = s.pending;
        show();
        if (s.stopped === "auth") {
          authError = s.error ?? "its key or account was refused";
          break;
        }
        if (s.pending === 0) break;
        if (s.claimed === 0) {
          // Nothing runnable: what is pending waits for its retry time (backoff) or is held by another run.
          waiting = s.pending ?? 0;
          break;
        }
        if (delayMs > 0) await sleep(delayMs, ctx.signal);
      }
    } finally {
      display.stop();
    }

    const models = db ? await db.modelsSince(since).catch(() => [] as string[]) : [];
    const extra: Array<[string, string]> = [
      [
        "Calls to the function",
        `${t.calls} (provider requests ${t.requests}, rate limited ${t.rateLimited})`,
      ],
    ];
    if (t.retriedLater > 0) {
      extra.push(["Retried later (failed a try, back in the queue)", String(t.retriedLater)]);
    }
    if (waiting > 0) {
      extra.push([
        "Still pending",
        `${waiting} (waiting for a retry time, or held by another run: see \`status\`)`,
      ]);
    }
    console.log("");
    for (
      const line of summaryBlock({
        processed: t.completed + t.failed + t.skipped,
        errors: t.failed,
        skipped: t.skipped,
        tokens: t.tokens,
        costUsd: t.costUsd,
        durationMs: Date.now() - started,
        model: describeModels(models),
        extra,
      })
    ) console.log(line);
    if (authError) {
      throw new CliError(`the embeddings provider refused the function's requests: ${authError}`);
    }
    if (ctx.signal.aborted) return 130;
    if (t.failed > 0) {
      console.error(`${t.failed} job(s) failed: see \`status\` for the errors, then \`retry\``);
      return 1;
    }
    return 0;
  } finally {
    await db?.close().catch(() => {});
  }
}
