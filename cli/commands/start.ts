/**
 * `start` (what `npm start` runs): brings up the local stack (seeded), then watches the hands-off
 * path (pg_cron and the database webhook call the function through pg_net; this command makes no
 * call) embed the backlog, prints the guide's summary when it is drained, and keeps serving until
 * Ctrl-C, which stops the whole stack.
 *
 * "Processed" counts the jobs that reached completed, failed or skipped since this command
 * started, read from the queue table.
 */
import { join } from "node:path";
import { bool, int, str } from "../args.ts";
import type { Ctx } from "../context.ts";
import { sleep } from "../context.ts";
import { type CliDb, openDb, type TargetSnapshot } from "../db.ts";
import { createDisplay, type Display } from "../display.ts";
import { CliError, describeDbError, oneLine } from "../errors.ts";
import {
  describeModels,
  displayItems,
  fmtDuration,
  RateMeter,
  summaryBlock,
  targetLabel,
} from "../format.ts";
import { functionProviderLine } from "../provider.ts";

const POLL_MS = 1000;

export interface WatchTotals {
  processed: number;
  completed: number;
  failed: number;
  skipped: number;
  tokens: number;
  costUsd: number;
  open: number;
}

export function watchTotals(snaps: TargetSnapshot[]): WatchTotals {
  const sum = (f: (s: TargetSnapshot) => number) => snaps.reduce((n, s) => n + f(s), 0);
  return {
    processed: sum((s) => s.done_since),
    completed: sum((s) => s.completed_since),
    failed: sum((s) => s.failed_since),
    skipped: sum((s) => s.skipped_since),
    tokens: sum((s) => s.tokens_since),
    costUsd: sum((s) => s.cost_since),
    open: sum((s) => s.pending + s.processing),
  };
}

export async function start(ctx: Ctx): Promise<number> {
  const name = str(ctx.args, "stack") ?? "dev";
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) {
    throw new CliError("--stack needs a name of letters, digits, - and _", 2);
  }
  const exitAfterDrain = bool(ctx.args, "exit-after-drain");
  const stallMs = (int(ctx.args, "stall-timeout") ?? 600) * 1000;
  const stack = await import("../../local/stack.ts");
  // The function never sees this shell (as under the Supabase CLI); the provider settings a user
  // has exported, OPENAI_API_KEY above all, are handed over by name, and said so below.
  const handed = shellFunctionSettings();
  const opts = {
    name,
    functionEnv: handed,
    ...(int(ctx.args, "db-port") ? { dbPort: int(ctx.args, "db-port") } : {}),
    ...(int(ctx.args, "api-port") ? { apiPort: int(ctx.args, "api-port") } : {}),
  };
  const logDir = join(stack.ROOT, ".stack", name, "logs");

  // Read the function's settings first: a bad variable stops here, before anything starts.
  const providerLine = functionProviderLine();
  const began = Date.now();
  // Jobs finished from now on count as processed (the clock is this machine's, as the stack's).
  const since = new Date(began);
  const before = await stack.status(opts).catch(() => null);
  console.log(`Starting the local stack "${name}" (set-up, migrations and seed on first run)…`);
  if (before?.db && before.gateway) console.log(`(it was already running: Ctrl-C stops it all the same)`);
  let info;
  try {
    info = await stack.up(opts);
  } catch (e) {
    await stack.down({ name, quiet: true }).catch(() => {});
    const text = (e as Error).message ?? String(e);
    Deno.mkdirSync(logDir, { recursive: true });
    const file = join(logDir, "start-error.log");
    Deno.writeTextFileSync(file, text + "\n");
    throw new CliError(
      `the local stack did not start: ${oneLine(text.split("\n")[0], 200)} (full output in ${file})`,
    );
  }
  const upMs = Date.now() - began;
  console.log(
    `Stack up in ${fmtDuration(upMs)}: database ${
      info.dbUrl.replace(/\/\/[^@]*@/, "//")
    }, functions ${info.functionsUrl}`,
  );
  console.log(`Function: ${providerLine}`);
  if (Object.keys(handed).length) {
    console.log(
      `Handed from this shell to the function (it reads nothing else of it): ${
        Object.keys(handed).sort().join(", ")
      }`,
    );
  }
  console.log(
    "Watching the hands-off path (database webhook and pg_cron → pg_net → embed-queue); this command makes no call itself.",
  );
  console.log(
    exitAfterDrain ? "It stops the stack once the backlog is drained." : "Ctrl-C stops the whole stack.\n",
  );

  const db = openDb(info.dbUrl);
  const ui: { display: Display | null } = { display: null };
  try {
    return await watch();
  } catch (e) {
    const m = describeDbError(e, {
      label: `the local stack "${name}"`,
      address: new URL(info.dbUrl).host,
      local: true,
      stackName: name,
    });
    throw m ? new CliError(m) : e;
  } finally {
    ui.display?.stop();
    await db.close().catch(() => {});
    console.log(`Stopping the local stack "${name}"…`);
    await stack.down({ name, quiet: true });
    console.log("Stopped: no process of the stack is left.");
  }

  async function watch(): Promise<number> {
    let display = ui.display = createDisplay();
    const meters = new Map<string, RateMeter>();
    let drained = false;
    let summarized = false;
    let lastDone = -1;
    let lastChange = Date.now();
    let stallWarned = false;
    while (!ctx.signal.aborted) {
      const snaps = await db.snapshot(since);
      const now = Date.now();
      const rates = new Map<string, number>();
      for (const s of snaps) {
        const label = targetLabel(s);
        let m = meters.get(label);
        if (!m) meters.set(label, m = new RateMeter());
        m.add(now - began, s.done_since);
        rates.set(label, m.rate());
      }
      display.update(now - began, displayItems(snaps, rates), drained);
      const t = watchTotals(snaps);
      if (t.processed !== lastDone) {
        lastDone = t.processed;
        lastChange = now;
        stallWarned = false;
      }
      if (!drained && t.open === 0) {
        drained = true;
        if (!summarized) {
          summarized = true;
          display.stop();
          await printSummary(db, t, now);
          if (exitAfterDrain) return t.failed > 0 ? 1 : 0;
          console.log(
            "\nWatching for new rows: insert or update sessions and summaries and they are embedded. Ctrl-C stops the stack.",
          );
          display = ui.display = createDisplay();
        } else {
          display.note(
            `drained again: ${t.processed} jobs processed since start, ${t.failed} failed (${
              new Date(now).toISOString().slice(11, 19)
            } UTC)`,
          );
        }
      } else if (t.open > 0 && now - lastChange > stallMs) {
        const hint = await stallHint(db, new Date(lastChange));
        const msg = `no job finished in ${
          fmtDuration(stallMs)
        } while ${t.open} are open: check \`npm run stack -- status${
          name === "dev" ? "" : ` --name ${name}`
        }\`, the function's log ${join(logDir, "gateway.log")} and net._http_response${hint}`;
        if (!summarized) throw new CliError(msg);
        if (!stallWarned) {
          display.note(`warning: ${msg}`);
          stallWarned = true;
        }
      } else if (t.open > 0) {
        drained = false;
      }
      await sleep(POLL_MS, ctx.signal);
    }
    return 0;
  }

  async function printSummary(db: CliDb, t: WatchTotals, now: number) {
    const models = await db.modelsSince(since).catch(() => [] as string[]);
    console.log("");
    for (
      const line of summaryBlock({
        processed: t.processed,
        errors: t.failed,
        skipped: t.skipped,
        tokens: t.tokens,
        costUsd: t.costUsd,
        durationMs: now - began,
        model: describeModels(models),
        extra: [["Stack start", fmtDuration(upMs)]],
      })
    ) console.log(line);
    if (t.failed > 0) {
      console.log(`${t.failed} job(s) failed: \`npm run status\` shows why, \`npm run retry\` tries again.`);
    }
  }
}

async function stallHint(db: CliDb, since: Date): Promise<string> {
  const rows = await db.recentNetResponses(since).catch(() => []);
  const bad = rows.filter((r) => r.error || r.timed_out || (r.status_code !== null && r.status_code >= 300));
  if (rows.length === 0) {
    return " (pg_net sent no request in that time: is the pg_net worker running, is pg_cron scheduled?)";
  }
  if (bad.length === 0) return "";
  return ` (pg_net's calls got ${
    bad.map((r) =>
      (r.timed_out ? "timeouts" : r.error ? "connection errors" : `HTTP ${r.status_code}`) + ` ×${r.count}`
    ).join(", ")
  })`;
}

/**
 * The shell's OPENAI_*, EMBEDDING_* and EMBED_QUEUE_* variables: what `start` hands to the local
 * function explicitly, as `supabase functions serve --env-file` would from a file.
 */
export function shellFunctionSettings(env = Deno.env.toObject()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^(OPENAI_|EMBEDDING_|EMBED_QUEUE_)[A-Z0-9_]+$/.test(k)) out[k] = v;
  }
  return out;
}
