/**
 * `npm run chaos`: 10,000 rows drained while things go wrong, then every row checked.
 *
 *   npm run chaos -- [--rows 10000] [--runs 1] [--seed 1] [--chaos-seconds 75]
 *
 * On a stack of its own (stack "chaos", ports 27622/27621, a fresh cluster with durable commits,
 * so that a crash-like restart loses nothing that was committed), for --chaos-seconds:
 * - the function process is SIGKILLed every 4 to 9 s (the pid in the gateway's pid file; the
 *   gateway starts a new one on the next request);
 * - PostgreSQL is restarted once (pg_ctl restart -m immediate: no shutdown checkpoint, crash
 *   recovery at start), about 40 % into the chaos;
 * - the provider answers 20 % of requests 429, 10 % 500 and hangs on 2 % (answered 504 after
 *   20 s; the function's request timeout is set to 5 s), drawn from a seeded PRNG, until the end;
 * - 20 % of the rows get a new text and 5 % are soft-deleted, in small transactions spread over
 *   the first 60 % of the chaos.
 * The rows are inserted in 5 transactions over the first seconds; the drain goes the hands-off
 * way (webhook, pg_cron) and by manual calls every few seconds (a manual driver, as an operator
 * running `drain` would). To keep the run short the stack runs with short timings:
 * embed_queue.settings lease_seconds 15, backoff_base_seconds 1, backoff_max_seconds 5,
 * rate_limited_default_seconds 1; function EMBED_QUEUE_LEASE_SECONDS=15,
 * EMBED_QUEUE_REQUEST_TIMEOUT_MS=5000, EMBED_QUEUE_BATCH_SIZE=100, EMBED_QUEUE_TIME_BUDGET_MS=30000.
 *
 * After the chaos the queue is given up to 10 minutes to settle (nothing pending or processing),
 * then the invariants are checked and printed with their counts; any breach exits 1:
 *   live_rows_with_exact_vector   every live row holds exactly fakeVector(its final content),
 *                                 compared in SQL as vectors (float32 by float32)
 *   deleted_rows_with_work        soft-deleted rows with a job still pending or processing: 0
 *   jobs_processing               no job left in processing: 0
 *   jobs_pending                  nothing left to do: 0
 *   failed_without_reason         failed jobs without an error_message: 0
 *   tokens_within_10_percent      see `tokenAccount`: the tokens billed minus the first send of
 *                                 each superseded text are at most 1.10 x the minimum
 * and reported: jobs failed (with reasons), kills delivered, requests by status, runs by
 * trigger, deleted rows that still hold the vector they had before deletion.
 */
import * as stack from "../local/stack.ts";
import * as h from "./lib/harness.ts";
import { type Bench, log } from "./lib/harness.ts";
import { edited, prng, rows as makeRows } from "./lib/texts.ts";
import { fakeVector } from "../tests/fakes/fake_vector.ts";
import { sha256Hex } from "../tests/fakes/openai_server.ts";
import { toPgvector } from "../supabase/functions/_shared/vectors.ts";
import { portOffset } from "../tests/lib/env.ts";

const NAME = "chaos";
const DB_PORT = 27622 + portOffset;
const API_PORT = 27621 + portOffset;
const KNOBS = {
  EMBED_QUEUE_LEASE_SECONDS: "15",
  EMBED_QUEUE_REQUEST_TIMEOUT_MS: "5000",
  EMBED_QUEUE_BATCH_SIZE: "100",
  EMBED_QUEUE_TIME_BUDGET_MS: "30000",
};
const FAULTS = { "429": 0.2, "500": 0.1, hang: 0.02 };
const SETTLE_MS = 10 * 60_000;

interface Args {
  rows: number;
  runs: number;
  seed: number;
  chaosSeconds: number;
}

function parseArgs(a: string[]): Args {
  const num = (n: string, d: number) => {
    const i = a.indexOf(n);
    if (i < 0) return d;
    const x = Number(a[i + 1]);
    if (!Number.isFinite(x) || x <= 0) throw new Error(`${n} needs a positive number`);
    return x;
  };
  return {
    rows: num("--rows", 10_000),
    runs: num("--runs", 1),
    seed: num("--seed", 1),
    chaosSeconds: num("--chaos-seconds", 75),
  };
}

/** Runs `f` until it succeeds (the database may be restarting), at most `tries` times. */
async function persist<T>(what: string, f: () => Promise<T>, tries = 60): Promise<T> {
  for (let i = 1;; i++) {
    try {
      return await f();
    } catch (e) {
      if (i >= tries) throw new Error(`${what}: ${(e as Error).message}`);
      await h.sleep(500);
    }
  }
}

interface Invariant {
  name: string;
  count: number;
  ok: boolean;
  detail?: unknown;
}

/**
 * Token accounting. With T the distinct texts the server embedded (200 answers), n_t how often
 * and k_t the tokens of text t:
 *   billed      = sum over T of n_t * k_t                      (the fake server's `tokens`)
 *   minimum     = sum of k_t over the distinct final texts of live rows: what a run that saw no
 *                 edit in flight and lost nothing would send
 *   superseded  = sum of k_t over embedded texts that are no row's final live text (a row's text
 *                 before its edit, a row since soft-deleted), once each: sent while they were
 *                 current, so not waste of the function's making; depends on when the edits came
 *   resent      = sum of (n_t - 1) * k_t: the same text sent again (a run killed after the
 *                 answer and before the write, a lease taken back, a timeout after the provider
 *                 did the work)
 * billed = minimum + superseded + resent when every final text was embedded (checked by the
 * vector invariant). The check: billed - superseded <= 1.10 x minimum, i.e. resent <= 10 %.
 */
function tokenAccount(
  stats: h.FakeStats,
  finalLiveTexts: Set<string>,
  tokensOf: Map<string, { text: string; tokens: number }>,
) {
  let billedKnown = 0, superseded = 0, resent = 0, unknownTexts = 0;
  for (const [hash, n] of Object.entries(stats.inputs_by_text_hash)) {
    const t = tokensOf.get(hash);
    if (!t) {
      unknownTexts++;
      continue;
    }
    billedKnown += n * t.tokens;
    if (!finalLiveTexts.has(t.text)) superseded += t.tokens;
    resent += (n - 1) * t.tokens;
  }
  let minimum = 0;
  for (const text of finalLiveTexts) minimum += tokensOf.get(sha256Hex(text))?.tokens ?? h.tokens(text);
  return {
    billed: stats.tokens,
    billed_known_texts: billedKnown,
    unknown_texts: unknownTexts,
    minimum,
    superseded,
    resent,
    billed_over_minimum: Math.round((stats.tokens / minimum) * 1000) / 1000,
    billed_less_superseded_over_minimum: Math.round(((stats.tokens - superseded) / minimum) * 1000) / 1000,
  };
}

async function chaosRun(a: Args, run: number): Promise<{ ok: boolean; report: Record<string, unknown> }> {
  const seed = a.seed + run;
  const b: Bench = await h.startBench({
    name: NAME,
    dbPort: DB_PORT,
    apiPort: API_PORT,
    knobs: KNOBS,
    ephemeral: false,
  });
  const started = Date.now();
  try {
    await b.sql`update embed_queue.settings set lease_seconds = 15, backoff_base_seconds = 1,
                backoff_max_seconds = 5, rate_limited_default_seconds = 1`;
    await h.fakeScript(b, { rates: FAULTS, hang_ms: 20_000, seed, latency_ms: 100, per_token_latency_us: 5 });
    await h.clean(b);

    const rows = makeRows(a.rows, { seed: 9000 + seed, unique: `c${seed}-` });
    const r = prng(seed);
    // Disjoint sets: 20 % edited, 5 % soft-deleted.
    const order = rows.map((_, i) => i).sort(() => r() - 0.5);
    const editSet = order.slice(0, Math.round(a.rows * 0.2));
    const deleteSet = order.slice(editSet.length, editSet.length + Math.round(a.rows * 0.05));
    const newText = new Map<number, string>();
    for (const i of editSet) newText.set(i, edited(rows[i], r, `e${seed}-${i}`));
    const tokensOf = new Map<string, { text: string; tokens: number }>();
    for (const t of [...rows.map((x) => x.text), ...newText.values()]) {
      tokensOf.set(sha256Hex(t), { text: t, tokens: h.tokens(t) });
    }

    log(
      `chaos run ${
        run + 1
      }: ${a.rows} rows, ${editSet.length} edits, ${deleteSet.length} soft deletes, ${a.chaosSeconds} s of chaos, seed ${seed}`,
    );
    const ids = new Array<string>(rows.length);
    const chaosEnd = Date.now() + a.chaosSeconds * 1000;
    const events = {
      kills: 0,
      kill_attempts: 0,
      db_restarts: 0,
      edits: 0,
      deletes: 0,
      manual_calls: 0,
      manual_errors: 0,
    };
    let done = false;

    // Insert in 5 transactions, a second apart.
    const chunk = Math.ceil(rows.length / 5);
    for (let k = 0; k < rows.length; k += chunk) {
      const part = rows.slice(k, k + chunk);
      const res = await h.insertRows(b, part);
      res.ids.forEach((id, j) => ids[k + j] = id);
      await h.sleep(1000);
    }

    const killer = (async () => {
      while (Date.now() < chaosEnd && !done) {
        await h.sleep(4000 + r() * 5000);
        if (Date.now() >= chaosEnd) break;
        events.kill_attempts++;
        const pid = h.functionPid(b);
        if (pid) {
          try {
            Deno.kill(pid, "SIGKILL");
            events.kills++;
          } catch { /* already gone */ }
        }
      }
    })();
    const restarter = (async () => {
      await h.sleep(a.chaosSeconds * 400);
      log("  restarting PostgreSQL (immediate)");
      await stack.restartDatabase({ name: NAME, mode: "immediate", quiet: true });
      events.db_restarts++;
    })();
    const editor = (async () => {
      const editEnd = Date.now() + a.chaosSeconds * 600;
      const steps = Math.max(1, Math.floor((editEnd - Date.now()) / 500));
      for (let s = 0; s < steps; s++) {
        const e = editSet.slice(
          Math.floor((s * editSet.length) / steps),
          Math.floor(((s + 1) * editSet.length) / steps),
        );
        const d = deleteSet.slice(
          Math.floor((s * deleteSet.length) / steps),
          Math.floor(((s + 1) * deleteSet.length) / steps),
        );
        await persist("edit", () =>
          b.sql.begin(async (tx) => {
            for (const i of e) {
              if (rows[i].table === "sessions") {
                await tx`update public.sessions set title = ${newText.get(i)!} where id = ${ids[i]}`;
              } else await tx`update public.summaries set content = ${newText.get(i)!} where id = ${ids[i]}`;
            }
            for (const i of d) {
              if (
                rows[i].table === "sessions"
              ) await tx`update public.sessions set deleted_at = now() where id = ${ids[i]}`;
              else await tx`update public.summaries set deleted_at = now() where id = ${ids[i]}`;
            }
          }));
        events.edits += e.length;
        events.deletes += d.length;
        await h.sleep(500);
      }
    })();
    const driver = (async () => {
      const until = Date.now() + a.chaosSeconds * 1000 + SETTLE_MS;
      while (!done && Date.now() < until) {
        events.manual_calls++;
        try {
          const res = await h.invoke(b, { time_budget_ms: 20_000 }, 60_000);
          if (res.status !== 200) events.manual_errors++;
        } catch {
          events.manual_errors++;
        }
        await h.sleep(3000);
      }
    })();

    await Promise.all([killer, restarter, editor]);
    log(
      `  chaos over after ${Math.round((Date.now() - started) / 1000)} s: ${
        JSON.stringify(events)
      }; waiting for the queue to settle`,
    );
    let settled = true;
    try {
      await h.waitFor(
        "the queue to settle",
        async () => {
          const c = await persist("counts", () => h.queueCounts(b.sql));
          return c.pending + c.processing === 0;
        },
        SETTLE_MS,
        1000,
      );
    } catch {
      settled = false;
    }
    done = true;
    await driver;
    const drainedAt = Date.now();

    // ---- the invariants
    const inv: Invariant[] = [];
    const live = await b.sql`
      select 'sessions' as t, id::text as id, title as content from public.sessions where deleted_at is null and user_id = ${b.user}
      union all
      select 'summaries', id::text, content from public.summaries where deleted_at is null and user_id = ${b.user}`;
    let wrong = 0, missing = 0;
    const wrongSample: string[] = [];
    for (const t of ["sessions", "summaries"]) {
      const mine = live.filter((x) => x.t === t);
      const col = t === "sessions" ? "title_embedding" : "content_embedding";
      for (let i = 0; i < mine.length; i += 500) {
        const part = mine.slice(i, i + 500);
        const bad = await b.sql.unsafe(
          `select e.id::text as id, s.${col} is null as missing
           from unnest($1::uuid[], $2::text[]) as e (id, v) join public.${t} s on s.id = e.id
           where s.${col} is distinct from e.v::extensions.vector`,
          [part.map((x) => x.id), part.map((x) => toPgvector(fakeVector(x.content, 1536)))],
        );
        for (const x of bad) {
          if (x.missing) missing++;
          else wrong++;
          if (wrongSample.length < 5) {
            wrongSample.push(`${t}/${x.id}${x.missing ? " (no vector)" : " (other vector)"}`);
          }
        }
      }
    }
    inv.push({
      name: "live_rows_with_exact_vector",
      count: live.length - wrong - missing,
      ok: wrong + missing === 0,
      detail: {
        live_rows: live.length,
        without_vector: missing,
        with_another_vector: wrong,
        sample: wrongSample,
      },
    });
    const [{ n: deletedWork }] = await b.sql`
      select count(*)::int as n from public.embedding_queue q
      left join public.sessions s on q.table_name = 'sessions' and s.id::text = q.record_id
      left join public.summaries m on q.table_name = 'summaries' and m.id::text = q.record_id
      where q.status in ('pending', 'processing') and coalesce(s.deleted_at, m.deleted_at) is not null`;
    inv.push({ name: "deleted_rows_with_work", count: deletedWork, ok: deletedWork === 0 });
    const c = await h.queueCounts(b.sql);
    inv.push({ name: "jobs_processing", count: c.processing, ok: c.processing === 0 });
    inv.push({ name: "jobs_pending", count: c.pending, ok: c.pending === 0, detail: { settled } });
    const failed = await b.sql`
      select coalesce(error_message, '(null)') as e, count(*)::int as n, min(attempts) as min_attempts, max(attempts) as max_attempts
      from public.embedding_queue where status = 'failed' group by 1 order by 2 desc`;
    const [{ n: failedNoReason }] = await b.sql`
      select count(*)::int as n from public.embedding_queue where status = 'failed' and error_message is null`;
    inv.push({ name: "failed_without_reason", count: failedNoReason, ok: failedNoReason === 0 });

    const stats = await h.fakeStats(b);
    const finalLive = new Set<string>(live.map((x) => x.content as string));
    const tok = tokenAccount(stats, finalLive, tokensOf);
    inv.push({
      name: "tokens_within_10_percent",
      count: tok.resent,
      ok: tok.billed - tok.superseded <= 1.1 * tok.minimum,
      detail: tok,
    });
    const [{ n: deletedWithVector }] = await b.sql`
      select (select count(*) from public.sessions where deleted_at is not null and title_embedding is not null and user_id = ${b.user})
           + (select count(*) from public.summaries where deleted_at is not null and content_embedding is not null and user_id = ${b.user}) as n`;
    const runs = await b.sql`
      select trigger, count(*)::int as n, count(*) filter (where finished_at is null)::int as unfinished
      from embed_queue.runs group by trigger order by trigger`;
    const report = {
      run: run + 1,
      seed,
      rows: a.rows,
      seconds_to_settle: Math.round((drainedAt - started) / 1000),
      settled,
      events,
      invariants: inv,
      jobs: c,
      failed_by_reason: failed,
      requests_by_status: stats.by_status,
      requests: stats.requests,
      runs_by_trigger: runs,
      deleted_rows_still_holding_a_vector: Number(deletedWithVector),
    };
    return { ok: inv.every((i) => i.ok), report };
  } finally {
    await b.close();
  }
}

async function main(): Promise<number> {
  const a = parseArgs(Deno.args);
  const reports = [];
  let allOk = true;
  for (let run = 0; run < a.runs; run++) {
    const { ok, report } = await chaosRun(a, run);
    allOk &&= ok;
    reports.push(report);
    console.log(
      `\nchaos run ${run + 1} (seed ${report.seed}): settled in ${report.seconds_to_settle} s; ${
        JSON.stringify(report.events)
      }`,
    );
    for (const i of report.invariants as Invariant[]) {
      console.log(
        `  ${i.ok ? "ok    " : "BREACH"} ${i.name.padEnd(28)} ${i.count}${
          i.detail ? "  " + JSON.stringify(i.detail) : ""
        }`,
      );
    }
    console.log(
      `  jobs ${JSON.stringify(report.jobs)}; failed by reason ${JSON.stringify(report.failed_by_reason)}`,
    );
    console.log(
      `  provider answers ${JSON.stringify(report.requests_by_status)}; runs ${
        JSON.stringify(report.runs_by_trigger)
      }`,
    );
    console.log(
      `  soft-deleted rows still holding their earlier vector: ${report.deleted_rows_still_holding_a_vector}`,
    );
  }
  const out = `.cache/bench/chaos-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}.json`;
  Deno.mkdirSync(".cache/bench", { recursive: true });
  Deno.writeTextFileSync(
    out,
    JSON.stringify(
      { command: `npm run chaos -- ${Deno.args.join(" ")}`.trim(), machine: await h.machine(), reports },
      null,
      2,
    ) + "\n",
  );
  console.log(`\n${allOk ? "all invariants held" : "INVARIANT BREACHED"} (report: ${out})`);
  return allOk ? 0 : 1;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`chaos failed: ${(e as Error).stack ?? e}`);
  }
  Deno.exit(code);
}
