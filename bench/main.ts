/**
 * `npm run bench`: the function's throughput, cost and latency on a local stack of its own
 * (stack "bench", ports 27522/27521 plus EQ_PORT_OFFSET, a fresh ephemeral cluster) with the fake OpenAI server.
 * Prints what it measures as it goes and a JSON report at the end (also written to --out).
 *
 *   npm run bench -- [--parts ceiling,overlap,db,cpu,freshness] [--quick]
 *
 * ceiling    N rows (default 20,000) drained the hands-off way (insert → webhook/cron → pg_net
 *            → gateway → function) against a provider enforcing 3,000 RPM and 1,000,000 TPM at
 *            150 ms + 10 µs per token, with the rate-limit windows full at the start (steady
 *            state, see below); per knob set, against the ceiling the limits allow; then the
 *            guide's script and the recipe (10 invocations of 10 jobs every 10 s tick, as
 *            Supabase's automatic-embeddings guide has it: bench/baselines.ts) on the same server
 *            over a fixed window.
 *              --rows N  --runs R  --baseline-seconds S  --knob-sets "default;EMBED_QUEUE_WALL_CLOCK_MS=400000,EMBED_QUEUE_TIME_BUDGET_MS=140000"
 *              --cold    also one drain from empty windows (the first minute's burst allowed)
 * baselines  the guide's script and the recipe alone (as in ceiling), --runs R times each,
 *            --baseline-seconds S each.
 * overlap    the same drain, started by K invocations at once (default 1 and 8, with the pg_cron
 *            tick joining in as ever) against the same limits, per settings.max_concurrent_runs
 *            (default 2, and 8 so that all of them work, on the one shared pace).
 *              --invocations "1,8"  --overlap-max-runs "2,8"  (and --rows, --runs)
 *            Both parts: --tpm N  the provider's tokens per minute (default 1,000,000).
 * db         N rows (default 50,000, 1,536 dimensions) through an instant provider, next to one
 *            plain UPDATE ... FROM of the same vector texts in the same run.
 *              --db-rows N  --db-runs R
 * cpu        CPU per 1,000 rows inside the function, by stage (bench/cpu.ts).
 * freshness  commit-to-readable latency of single-row inserts on an idle system.
 *              --fresh-count N  --fresh-gap-ms MS
 * scale      (not run by default: ~30 min) claim() and complete() at 10k, 100k and 1M jobs
 *            queued, a drain of the 1M backlog, sizes, dead tuples and a worker's peak memory;
 *            on a stack of its own (bench/scale.ts).
 *              --scale-sizes "10000,100000,1000000"  --scale-rounds R  --scale-users U
 *              --scale-drain-seconds S (0: drain it all)  --scale-no-hnsw-seconds S (0: skip)
 *
 * Why the windows start full: the fake server limits with a sliding 60 s window, so from empty
 * windows any client gets a free first minute (1,000,000 tokens at once) and a 1.5M-token drain
 * would show well above the steady ceiling. Filling the windows first (as if a client had been
 * sending at the limit for the last minute) makes capacity come back at exactly the steady rate,
 * which is what "rows/s against the ceiling" compares.
 */
import * as h from "./lib/harness.ts";
import { type Bench, log } from "./lib/harness.ts";
import { rows as makeRows } from "./lib/texts.ts";
import { guideScript, recipe } from "./baselines.ts";
import { runCpu } from "./cpu.ts";
import { runScale } from "./scale.ts";
import { fakeVector } from "../tests/fakes/fake_vector.ts";
import { toPgvector } from "../supabase/functions/_shared/vectors.ts";
import { portOffset } from "../tests/lib/env.ts";
import { figuresSince, logSize, type WorkerFigures } from "./lib/worker_log.ts";

const NAME = "bench";
const DB_PORT = 27522 + portOffset;
const API_PORT = 27521 + portOffset;
const LIMITS = { rpm: 3000, tpm: 1_000_000, latency_ms: 150, per_token_latency_us: 10 };

interface Args {
  parts: string[];
  invocations: number[];
  overlapMaxRuns: number[];
  tpm: number;
  rows: number;
  runs: number;
  baselineSeconds: number;
  knobSets: Array<Record<string, string>>;
  cold: boolean;
  dbRows: number;
  dbRuns: number;
  freshCount: number;
  freshGapMs: number;
  scaleSizes: number[];
  scaleRounds: number;
  scaleUsers: number;
  scaleDrainSeconds: number;
  scaleNoHnswSeconds: number;
  out: string;
}

function parseKnobSet(s: string): Record<string, string> {
  if (s.trim() === "default" || s.trim() === "") return {};
  const out: Record<string, string> = {};
  for (const kv of s.split(",")) {
    const [k, v] = kv.split("=").map((x) => x.trim());
    if (!/^EMBED_QUEUE_[A-Z_]+$/.test(k) || v === undefined) {
      throw new Error(`bad knob "${kv}" (want EMBED_QUEUE_X=value)`);
    }
    out[k] = v;
  }
  return out;
}

function parseArgs(a: string[]): Args {
  const quick = a.includes("--quick");
  const get = (n: string) => {
    const i = a.indexOf(n);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const num = (n: string, d: number) => {
    const v = get(n);
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new Error(`${n} needs a positive number`);
    return x;
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  return {
    parts: (get("--parts") ?? "ceiling,db,cpu,freshness").split(","),
    invocations: (get("--invocations") ?? "1,8").split(",").map(Number),
    overlapMaxRuns: (get("--overlap-max-runs") ?? "2,8").split(",").map(Number),
    tpm: num("--tpm", 1_000_000),
    rows: num("--rows", quick ? 3000 : 20_000),
    runs: num("--runs", quick ? 1 : 3),
    baselineSeconds: num("--baseline-seconds", quick ? 20 : 60),
    knobSets:
      (get("--knob-sets") ?? "default;EMBED_QUEUE_WALL_CLOCK_MS=400000,EMBED_QUEUE_TIME_BUDGET_MS=140000")
        .split(";").map(
          parseKnobSet,
        ),
    cold: a.includes("--cold"),
    dbRows: num("--db-rows", quick ? 5000 : 50_000),
    dbRuns: num("--db-runs", quick ? 1 : 3),
    freshCount: num("--fresh-count", quick ? 10 : 50),
    freshGapMs: num("--fresh-gap-ms", 3000),
    scaleSizes: (get("--scale-sizes") ?? (quick ? "10000,50000" : "10000,100000,1000000")).split(",").map(
      Number,
    ),
    scaleRounds: num("--scale-rounds", quick ? 5 : 15),
    scaleUsers: num("--scale-users", 100),
    scaleDrainSeconds: get("--scale-drain-seconds") === "0"
      ? 0
      : num("--scale-drain-seconds", quick ? 30 : 300),
    scaleNoHnswSeconds: get("--scale-no-hnsw-seconds") === "0"
      ? 0
      : num("--scale-no-hnsw-seconds", quick ? 20 : 120),
    out: get("--out") ?? `.cache/bench/bench-${stamp}.json`,
  };
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const knobLabel = (k: Record<string, string>) =>
  Object.keys(k).length ? Object.entries(k).map(([a, b]) => `${a}=${b}`).join(",") : "default";

// ---------------------------------------------------------------- 1. against the ceiling

interface DrainResult {
  knobs: string;
  /** Invocations started at once by the bench (overlap), or 0: the insert's webhook alone (ceiling). */
  invocations: number;
  max_concurrent_runs: number;
  answers_429_per_1000_rows: number;
  prefilled: boolean;
  rows: number;
  seconds: number;
  rows_per_s: number;
  ceiling_rows_per_s: number;
  share_of_ceiling: number;
  avg_tokens_per_row: number;
  inputs_per_request: number;
  requests_200: number;
  answers_429: number;
  runs: Record<string, number>;
  jobs_failed: number;
  failed_reasons: Record<string, number>;
  vectors_checked: number;
  vectors_wrong: number;
  /**
   * Every 10 s from the commit: [seconds, tokens written so far, tokens the provider admitted so
   * far, tokens the limit allowed so far] (the bound: with full windows at the start, tpm/60 a
   * second).
   */
  timeline: Array<[number, number, number, number]>;
  /** When the provider admitted the first and the last request, from the commit. */
  first_admission_s: number;
  last_admission_s: number;
  /** When the last request could have been admitted at the earliest: all tokens / (tpm/60). */
  earliest_last_admission_s: number;
  /**
   * The function's workers in the drain, as the local host measured them (its limits enforced):
   * kills, retirements, CPU and peak memory per worker. Read after the services are restarted,
   * so every worker of the drain has ended and logged its figures.
   */
  workers: WorkerFigures & { cpu_ms_per_1000_rows: number };
}

/**
 * Every `step`-th row's stored vector against fakeVector(its text), compared in SQL as vectors
 * (float32 by float32; the text pgvector prints is its own shortest form, not ours).
 */
async function checkVectors(b: Bench, ids: string[], texts: string[], tables: string[], sample: number) {
  const step = Math.max(1, Math.floor(ids.length / sample));
  let wrong = 0, checked = 0;
  for (const t of ["sessions", "summaries"]) {
    const pick: number[] = [];
    for (let i = 0; i < ids.length; i += step) if (tables[i] === t) pick.push(i);
    const col = t === "sessions" ? "title_embedding" : "content_embedding";
    const [{ n }] = await b.sql.unsafe(
      `select count(*)::int as n from unnest($1::uuid[], $2::text[]) as e (id, v)
       left join public.${t} s on s.id = e.id where s.${col} is distinct from e.v::extensions.vector`,
      [pick.map((i) => ids[i]), pick.map((i) => toPgvector(fakeVector(texts[i], 1536)))],
    );
    wrong += n;
    checked += pick.length;
  }
  return { checked, wrong };
}

async function drainHandsOff(
  b: Bench,
  n: number,
  prefill: boolean,
  seed: number,
  invocations = 0,
): Promise<DrainResult> {
  await h.clean(b);
  await b.sql`delete from embed_queue.pace`;
  const [{ maxRuns }] = await b.sql`select max_concurrent_runs as "maxRuns" from embed_queue.settings`;
  const rows = makeRows(n, { seed });
  const avgTokens = rows.reduce((s, r) => s + h.tokens(r.text), 0) / n;
  await h.fakeScript(b, LIMITS);
  // The function is warm and idle (no run of the previous step still lingering).
  await h.sleep(3000);
  const logFrom = logSize(b.info.stateDir);
  log(
    `drain ${n} rows ${invocations ? `started by ${invocations} invocations at once` : "hands-off"} (${
      knobLabel(b.knobs)
    }; max_concurrent_runs ${maxRuns}; windows ${prefill ? "full" : "empty"} at the start)`,
  );
  let ids: string[];
  let t0: number;
  if (invocations === 0) {
    ({ ids } = await h.insertRows(b, rows, prefill ? () => h.fakePrefill(b, 1) : undefined));
    t0 = Date.now();
  } else {
    // Nothing processes the insert (its webhook call is dropped, its jobs wait an hour, so no
    // pg_cron tick starts a run either); then the windows are filled, the jobs made runnable
    // (as the worker API does, without a webhook call) and the invocations all start at once,
    // as the 10 s tick, the webhook and hand-overs would. The tick joins in from then on.
    await h.stopProcessing(b);
    ({ ids } = await h.insertRows(b, rows));
    await b.sql`update public.embedding_queue set run_at = now() + interval '1 hour'`;
    await h.startProcessing(b);
    await h.invoke(b, { dry_run: true, batch_size: 1 }, 60_000);
    if (prefill) await h.fakePrefill(b, 1);
    await b.sql.begin(async (tx) => {
      await tx`select set_config('embed_queue.internal', 'on', true)`;
      await tx`update public.embedding_queue set run_at = now()`;
    });
    t0 = Date.now();
    const answers = await Promise.all(
      Array.from({ length: invocations }, () => h.invoke(b, { trigger: "webhook" }, 30_000)),
    );
    const bad = answers.filter((r) => r.status !== 202);
    if (bad.length) throw new Error(`invocations answered ${bad.map((r) => r.status).join(", ")}`);
  }
  let lastLog = t0;
  await h.waitFor(
    "the drain",
    async () => {
      const c = await h.queueCounts(b.sql);
      if (Date.now() - lastLog >= 15_000) {
        log(
          `  ${
            Math.round((Date.now() - t0) / 1000)
          } s: pending ${c.pending}, processing ${c.processing}, completed ${c.completed}, failed ${c.failed}`,
        );
        lastLog = Date.now();
      }
      return c.pending + c.processing === 0;
    },
    30 * 60_000,
    500,
  );
  const [{ end }] = await b.sql`
    select (extract(epoch from max(completed_at)) * 1000)::float8 as end from public.embedding_queue`;
  const seconds = (Number(end) - t0) / 1000;
  const stats = await h.fakeStats(b);
  const runs = await b.sql`select trigger, count(*)::int as n from embed_queue.runs group by trigger`;
  const failed = await b.sql`
    select coalesce(error_message, '(none)') as e, count(*)::int as n from public.embedding_queue
    where status = 'failed' group by 1`;
  const c = await h.queueCounts(b.sql);
  const ok200 = stats.by_status["200"] ?? 0;
  const inputsPerRequest = ok200 ? stats.inputs / ok200 : 0;
  const ceilingPerMin = Math.min(LIMITS.rpm * (inputsPerRequest || 2048), LIMITS.tpm / avgTokens);
  const ceiling = ceilingPerMin / 60;
  const v = await checkVectors(b, ids, rows.map((r) => r.text), rows.map((r) => r.table), 200);
  const done = await b.sql`
    select (extract(epoch from completed_at) * 1000)::float8 as t, tokens from public.embedding_queue
    where status = 'completed' order by completed_at`;
  const admitted: Array<[number, number]> =
    await (await fetch(`${new URL(b.fake.adminUrl).origin}/_admin/admitted`)).json();
  const totalAdmitted = admitted.reduce((n, x) => n + x[1], 0);
  const timeline: Array<[number, number, number, number]> = [];
  let k = 0, acc = 0, ka = 0, accA = 0;
  for (let sec = 10; sec < seconds + 10; sec += 10) {
    while (k < done.length && Number(done[k].t) - t0 <= sec * 1000) acc += Number(done[k++].tokens ?? 0);
    while (ka < admitted.length && admitted[ka][0] - t0 <= sec * 1000) accA += admitted[ka++][1];
    timeline.push([
      sec,
      acc,
      accA,
      prefill ? Math.round((LIMITS.tpm / 60) * sec) : LIMITS.tpm * (Math.floor(sec / 60) + 1),
    ]);
  }
  // Every worker of the drain ends (and logs its CPU and peak memory) when the gateway stops.
  await h.setKnobs(b, b.knobs);
  const wf = figuresSince(b.info.stateDir, logFrom);
  const res: DrainResult = {
    knobs: knobLabel(b.knobs),
    invocations,
    max_concurrent_runs: maxRuns,
    answers_429_per_1000_rows: r1(((stats.by_status["429"] ?? 0) * 1000) / n),
    prefilled: prefill,
    rows: n,
    seconds: r1(seconds),
    rows_per_s: r1(n / seconds),
    ceiling_rows_per_s: r1(ceiling),
    share_of_ceiling: r3(n / seconds / ceiling),
    avg_tokens_per_row: r1(avgTokens),
    inputs_per_request: r1(inputsPerRequest),
    requests_200: ok200,
    answers_429: stats.by_status["429"] ?? 0,
    runs: Object.fromEntries(runs.map((r) => [r.trigger, r.n])),
    jobs_failed: c.failed,
    failed_reasons: Object.fromEntries(failed.map((f) => [f.e, f.n])),
    vectors_checked: v.checked,
    vectors_wrong: v.wrong,
    timeline,
    first_admission_s: admitted.length ? r1((admitted[0][0] - t0) / 1000) : -1,
    last_admission_s: admitted.length ? r1((admitted[admitted.length - 1][0] - t0) / 1000) : -1,
    earliest_last_admission_s: r1(totalAdmitted / (LIMITS.tpm / 60)),
    workers: { ...wf, cpu_ms_per_1000_rows: Math.round((wf.cpu_ms_total * 1000) / n) },
  };
  log(
    `  ${res.rows_per_s} rows/s in ${res.seconds} s = ${
      (res.share_of_ceiling * 100).toFixed(1)
    } % of the ceiling ` +
      `(${res.ceiling_rows_per_s} rows/s); 429s ${res.answers_429}; failed ${res.jobs_failed}; runs ${
        JSON.stringify(res.runs)
      }`,
  );
  log(
    `  workers ${wf.workers}: killed ${JSON.stringify(wf.killed)}, retired ${
      JSON.stringify(wf.retired)
    }; CPU ${res.workers.cpu_ms_per_1000_rows} ms per 1,000 rows (max ${wf.cpu_ms_max} ms a worker); peak memory ${wf.peak_memory_mb_max} MB; ` +
      `runs ${wf.runs} ${JSON.stringify(wf.runs_stopped)}, ${wf.runs_skipped} calls turned away`,
  );
  return res;
}

interface BaselineRate {
  which: "guide" | "recipe";
  window_s: number;
  completed: number;
  rows_per_s: number;
  failed: number;
}

async function baseline(
  b: Bench,
  which: "guide" | "recipe",
  windowS: number,
  seed: number,
): Promise<BaselineRate> {
  await h.clean(b);
  // Enough rows that the window, not the backlog, ends the measurement (the guide's script does
  // up to 5 a second, the recipe up to 100 a tick).
  const n = which === "guide" ? Math.ceil(windowS * 10) : Math.ceil(windowS * 15) + 100;
  await h.insertRows(b, makeRows(n, { seed }));
  await h.fakeScript(b, LIMITS);
  log(`baseline: ${which === "guide" ? "the guide's script" : "the recipe"} for ${windowS} s`);
  const start = Date.now();
  const r = await (which === "guide" ? guideScript : recipe)({
    sql: b.sql,
    baseUrl: b.fake.baseUrl,
    apiKey: b.fake.apiKey,
    deadlineMs: start + windowS * 1000,
  });
  // Completed inside the window (the last batch may end just after it).
  const [{ n: inWindow }] = await b.sql`
    select count(*)::int as n from public.embedding_queue
    where status = 'completed' and completed_at <= to_timestamp(${(start + windowS * 1000) / 1000})`;
  const res = {
    which,
    window_s: windowS,
    completed: inWindow,
    rows_per_s: r3(inWindow / windowS),
    failed: r.failed,
  };
  log(`  ${res.rows_per_s} rows/s (${inWindow} rows in ${windowS} s)`);
  return res;
}

async function partCeiling(b: Bench, a: Args) {
  const drains: DrainResult[] = [];
  const baselines: BaselineRate[] = [];
  for (let run = 0; run < a.runs; run++) {
    log(`--- ceiling, run ${run + 1} of ${a.runs}`);
    for (const knobs of a.knobSets) {
      await h.setKnobs(b, knobs);
      await h.invoke(b, { dry_run: true }, 60_000); // the function process is up before the clock starts
      drains.push(await drainHandsOff(b, a.rows, true, 1000 + run));
    }
    if (a.cold && run === 0) drains.push(await drainHandsOff(b, a.rows, false, 5000));
    await h.stopProcessing(b);
    baselines.push(await baseline(b, "guide", a.baselineSeconds, 2000 + run));
    baselines.push(await baseline(b, "recipe", a.baselineSeconds, 3000 + run));
    await h.startProcessing(b);
  }
  const guide = h.median(baselines.filter((x) => x.which === "guide").map((x) => x.rows_per_s));
  const rec = h.median(baselines.filter((x) => x.which === "recipe").map((x) => x.rows_per_s));
  const summary = a.knobSets.map((k) => {
    const mine = drains.filter((d) => d.prefilled && d.knobs === knobLabel(k));
    const rate = h.median(mine.map((d) => d.rows_per_s));
    return {
      knobs: knobLabel(k),
      runs: mine.length,
      median_rows_per_s: rate,
      median_share_of_ceiling: h.median(mine.map((d) => d.share_of_ceiling)),
      times_guide: r1(rate / guide),
      times_recipe: r1(rate / rec),
      ceiling_times_guide: r1(h.median(mine.map((d) => d.ceiling_rows_per_s)) / guide),
      answers_429: mine.map((d) => d.answers_429),
      jobs_failed: mine.map((d) => d.jobs_failed),
    };
  });
  return {
    limits: LIMITS,
    drains,
    baselines,
    median_guide_rows_per_s: guide,
    median_recipe_rows_per_s: rec,
    summary,
  };
}

/** The two baselines alone, `runs` times each, on the same server settings as the ceiling part. */
async function partBaselines(b: Bench, a: Args) {
  const baselines: BaselineRate[] = [];
  await h.stopProcessing(b);
  try {
    for (let run = 0; run < a.runs; run++) {
      log(`--- baselines, run ${run + 1} of ${a.runs}`);
      baselines.push(await baseline(b, "guide", a.baselineSeconds, 2000 + run));
      baselines.push(await baseline(b, "recipe", a.baselineSeconds, 3000 + run));
    }
  } finally {
    await h.startProcessing(b);
  }
  return {
    limits: LIMITS,
    baselines,
    median_guide_rows_per_s: h.median(baselines.filter((x) => x.which === "guide").map((x) => x.rows_per_s)),
    median_recipe_rows_per_s: h.median(
      baselines.filter((x) => x.which === "recipe").map((x) => x.rows_per_s),
    ),
  };
}

// ---------------------------------------------------------------- 1b. overlapping invocations

async function partOverlap(b: Bench, a: Args) {
  const [{ before }] = await b.sql`select max_concurrent_runs as before from embed_queue.settings`;
  const drains: DrainResult[] = [];
  try {
    await h.setKnobs(b, {});
    for (let run = 0; run < a.runs; run++) {
      for (const maxRuns of a.overlapMaxRuns) {
        await b.sql`update embed_queue.settings set max_concurrent_runs = ${maxRuns}`;
        for (const k of a.invocations) {
          log(`--- overlap, run ${run + 1} of ${a.runs}: ${k} invocations, max_concurrent_runs ${maxRuns}`);
          drains.push(await drainHandsOff(b, a.rows, true, 7000 + run, k));
        }
      }
    }
  } finally {
    await b.sql`update embed_queue.settings set max_concurrent_runs = ${before}`;
  }
  const summary = a.overlapMaxRuns.flatMap((maxRuns) =>
    a.invocations.map((k) => {
      const mine = drains.filter((d) => d.invocations === k && d.max_concurrent_runs === maxRuns);
      return {
        invocations: k,
        max_concurrent_runs: maxRuns,
        runs: mine.length,
        median_rows_per_s: h.median(mine.map((d) => d.rows_per_s)),
        median_share_of_ceiling: h.median(mine.map((d) => d.share_of_ceiling)),
        median_429_per_1000_rows: h.median(mine.map((d) => d.answers_429_per_1000_rows)),
        answers_429: mine.map((d) => d.answers_429),
        jobs_failed: mine.map((d) => d.jobs_failed),
        function_runs: mine.map((d) => d.runs),
      };
    })
  );
  for (const x of summary) log(`  ${JSON.stringify(x)}`);
  return { limits: LIMITS, drains, summary };
}

// ---------------------------------------------------------------- 2. database-bound

async function partDb(b: Bench, a: Args) {
  const results: Array<Awaited<ReturnType<typeof dbOnce>>> = [];
  // A paid plan's wall clock (400 s), so one manual run may take the whole drain's time.
  await h.setKnobs(b, { EMBED_QUEUE_WALL_CLOCK_MS: "400000", EMBED_QUEUE_TIME_BUDGET_MS: "185000" });
  for (let run = 0; run < a.dbRuns; run++) results.push(await dbOnce(b, a, run, "shipped"));
  const of = (v: string) => results.filter((x) => x.complete === v);
  const summary = (v: string) => ({
    runs: of(v).length,
    median_function_jobs_per_s: h.median(of(v).map((x) => x.function_jobs_per_s)),
    median_raw_rows_per_s: h.median(of(v).map((x) => x.raw_rows_per_s)),
    median_share_of_raw: h.median(of(v).map((x) => x.share_of_raw)),
    median_postgres_cpu_s: h.median(of(v).map((x) => x.cpu_seconds.postgres)),
    median_function_cpu_ms_per_1000_rows: h.median(of(v).map((x) => x.function_cpu_ms_per_1000_rows)),
  });
  return { results, shipped: summary("shipped") };
}

async function dbOnce(b: Bench, a: Args, run: number, variant: "shipped") {
  {
    log(`--- database-bound, run ${run + 1} of ${a.dbRuns}, complete() ${variant}: ${a.dbRows} rows`);
    await h.stopProcessing(b);
    await h.clean(b);
    const rows = makeRows(a.dbRows, { seed: 4000 + run });
    const t0 = Date.now();
    const { ids } = await h.insertRows(b, rows);
    const insertS = (Date.now() - t0) / 1000;
    // The same vector texts the function will send, staged in a table (not timed).
    await b.sql`drop table if exists public.bench_staging`;
    await b.sql`create unlogged table public.bench_staging (tbl text, id uuid, v text)`;
    for (let i = 0; i < rows.length; i += 1000) {
      const part = rows.slice(i, i + 1000);
      await b.sql`insert into public.bench_staging (tbl, id, v)
        select unnest(${b.sql.array(part.map((r) => r.table))}::text[]),
               unnest(${b.sql.array(ids.slice(i, i + 1000))}::uuid[]),
               unnest(${b.sql.array(part.map((r) => toPgvector(fakeVector(r.text, 1536))))}::text[])`;
    }
    await b.sql`vacuum analyze public.bench_staging`;
    // The floor: one UPDATE ... FROM per table, text cast to vector as the function's write does.
    const u0 = Date.now();
    await b.sql.begin(async (tx) => {
      await tx`update public.sessions s set title_embedding = st.v::extensions.vector
               from public.bench_staging st where st.tbl = 'sessions' and s.id = st.id`;
      await tx`update public.summaries s set content_embedding = st.v::extensions.vector
               from public.bench_staging st where st.tbl = 'summaries' and s.id = st.id`;
    });
    const rawS = (Date.now() - u0) / 1000;
    log(`  raw UPDATE ... FROM: ${a.dbRows} rows in ${r1(rawS)} s`);
    // Back to no vectors (a vector-only update fires no queue trigger), dead rows vacuumed.
    await b.sql`update public.sessions set title_embedding = null`;
    await b.sql`update public.summaries set content_embedding = null`;
    await b.sql`vacuum analyze public.sessions, public.summaries, public.embedding_queue`;

    await h.fakeScript(b, {}); // instant: no latency, no limits
    await h.startProcessing(b);
    await h.invoke(b, { dry_run: true, batch_size: 1 }, 60_000);
    const before = h.cpuSnapshot(h.benchProcesses(b));
    const p0 = Date.now();
    const r = await h.invoke(b, { time_budget_ms: 185_000 }, 900_000);
    // A pg_cron run may have joined in: the drain ends with the last write, whoever made it.
    await h.waitFor(
      "the queue to be empty",
      async () => {
        const c = await h.queueCounts(b.sql);
        return c.pending + c.processing === 0;
      },
      600_000,
      200,
    );
    const [{ end }] = await b.sql`
      select (extract(epoch from max(completed_at)) * 1000)::float8 as end from public.embedding_queue`;
    const productS = Math.max(Number(end) - p0, 1) / 1000;
    const cpu = h.cpuSince(b, before);
    const c = await h.queueCounts(b.sql);
    const [{ wrong }] = await b.sql`
      select count(*)::int as wrong from public.bench_staging st
      left join public.sessions s on st.tbl = 'sessions' and s.id = st.id
      left join public.summaries m on st.tbl = 'summaries' and m.id = st.id
      where coalesce(s.title_embedding, m.content_embedding) is distinct from st.v::extensions.vector`;
    await b.sql`drop table public.bench_staging`;
    const res = {
      complete: variant,
      rows: a.dbRows,
      knobs: knobLabel(b.knobs),
      insert_s: r1(insertS),
      raw_update_s: r1(rawS),
      raw_rows_per_s: Math.round(a.dbRows / rawS),
      function_s: r1(productS),
      function_jobs_per_s: Math.round(c.completed / productS),
      share_of_raw: r3(rawS / productS),
      completed: c.completed,
      left_pending: c.pending + c.processing,
      vectors_not_equal_to_staged: wrong,
      run_status: r.status,
      run: r.body,
      cpu_seconds: cpu,
      function_cpu_ms_per_1000_rows: Math.round((cpu.function * 1000 * 1000) / a.dbRows),
    };
    log(
      `  function: ${res.function_jobs_per_s} jobs/s (${res.function_s} s) = ${
        (res.share_of_raw * 100).toFixed(1)
      } % of ` +
        `the raw ${res.raw_rows_per_s} rows/s; CPU s ${JSON.stringify(cpu)}; wrong vectors ${wrong}`,
    );
    return res;
  }
}

// ---------------------------------------------------------------- 4. freshness

async function partFreshness(b: Bench, a: Args) {
  log(`--- freshness: ${a.freshCount} single-row inserts ${a.freshGapMs} ms apart`);
  await h.setKnobs(b, {});
  await h.clean(b);
  await h.fakeScript(b, LIMITS);
  await h.invoke(b, { dry_run: true }, 60_000);
  await h.sleep(4000); // idle: no run lingering
  const rows = makeRows(a.freshCount, { seed: 6000 });
  const poll = (await import("postgres")).default(b.info.dbUrl, { max: 1, onnotice: () => {} });
  const latencies: number[] = [];
  try {
    for (const [i, row] of rows.entries()) {
      const slot = Date.now();
      const [{ id }] = row.table === "sessions"
        ? await b
          .sql`insert into public.sessions (user_id, title) values (${b.user}, ${row.text}) returning id`
        : await b
          .sql`insert into public.summaries (user_id, content) values (${b.user}, ${row.text}) returning id`;
      const committed = Date.now();
      const col = row.table === "sessions" ? "title_embedding" : "content_embedding";
      await h.waitFor(
        `row ${i} to get its vector`,
        async () => {
          const [r] = await poll.unsafe(
            `select ${col} is not null as done from public.${row.table} where id = $1`,
            [id],
          );
          return r.done;
        },
        120_000,
        10,
      );
      latencies.push(Date.now() - committed);
      await h.sleep(Math.max(0, slot + a.freshGapMs - Date.now()));
    }
  } finally {
    await poll.end();
  }
  const res = {
    inserts: latencies.length,
    gap_ms: a.freshGapMs,
    p50_ms: h.percentile(latencies, 50),
    p90_ms: h.percentile(latencies, 90),
    p99_ms: h.percentile(latencies, 99),
    max_ms: Math.max(...latencies),
    min_ms: Math.min(...latencies),
    latencies_ms: latencies,
  };
  log(
    `  p50 ${res.p50_ms} ms, p90 ${res.p90_ms} ms, p99 ${res.p99_ms} ms (min ${res.min_ms}, max ${res.max_ms})`,
  );
  return res;
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const a = parseArgs(Deno.args);
  LIMITS.tpm = a.tpm;
  const report: Record<string, unknown> = {
    command: `npm run bench -- ${Deno.args.join(" ")}`.trim(),
    started_at: new Date().toISOString(),
    machine: await h.machine(),
  };
  if (a.parts.includes("cpu")) {
    log("--- CPU per 1,000 rows inside the function (before the stack starts)");
    report.cpu = runCpu({ rows: 1000, reps: 7 });
    log(`  ${JSON.stringify(report.cpu)}`);
  }
  const needStack = a.parts.some((p) => ["ceiling", "baselines", "overlap", "db", "freshness"].includes(p));
  if (needStack) {
    const b = await h.startBench({ name: NAME, dbPort: DB_PORT, apiPort: API_PORT });
    try {
      report.machine = await h.machine(b.info.dbUrl);
      if (a.parts.includes("ceiling")) report.ceiling = await partCeiling(b, a);
      if (a.parts.includes("baselines")) report.baselines = await partBaselines(b, a);
      if (a.parts.includes("overlap")) report.overlap = await partOverlap(b, a);
      if (a.parts.includes("db")) report.db = await partDb(b, a);
      if (a.parts.includes("freshness")) report.freshness = await partFreshness(b, a);
    } finally {
      // The gateway log (every run's and worker's events) goes beside the report: the stack's goes.
      Deno.mkdirSync(a.out.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.copyFile(
        `${b.info.stateDir}/logs/gateway.log`,
        a.out.replace(/\.json$/, "") + ".gateway.log",
      )
        .catch(() => {});
      await b.close();
    }
  }
  if (a.parts.includes("scale")) {
    report.scale = await runScale({
      sizes: a.scaleSizes,
      rounds: a.scaleRounds,
      users: a.scaleUsers,
      drainSeconds: a.scaleDrainSeconds,
      noHnswSeconds: a.scaleNoHnswSeconds,
      out: a.out,
    });
  }
  report.finished_at = new Date().toISOString();
  const json = JSON.stringify(report, null, 2);
  Deno.mkdirSync(a.out.replace(/\/[^/]*$/, ""), { recursive: true });
  Deno.writeTextFileSync(a.out, json + "\n");
  console.log(json);
  log(`report written to ${a.out}`);
  return 0;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
  }
  Deno.exit(code);
}
