/**
 * `deno run -A bench/fairness.ts`: fresh rows under a flood, on a local stack of its own (stack
 * "fairness", ports 27722/27721 plus EQ_PORT_OFFSET, a fresh ephemeral cluster) with the fake
 * OpenAI server enforcing the same limits as `npm run bench` (3,000 RPM, 1,000,000 TPM, windows
 * full at the start, so capacity comes back at the steady rate).
 *
 *   deno run -A bench/fairness.ts [--rows 20000] [--singles 20] [--gap-ms 2000] [--knobs K=V,...]
 *                                 [--out bench/results/fairness.json]
 *
 * Three drains of the same N rows, each the hands-off way (insert → webhook/cron → function):
 *   alone      one user's backlog of N rows, nothing else: the backlog's throughput to compare with;
 *   one flood  the same backlog while another user writes `singles` single rows, `gap-ms` apart,
 *              starting 10 s into the drain: commit-to-vector latency of each single row;
 *   three      three users' backlogs of N/3 rows each, and a fourth user's single rows, the same way.
 * Daily token caps are lifted for the run (settings.user_daily_tokens = null): the backlogs are
 * larger than the default cap.
 */
import * as h from "./lib/harness.ts";
import { type Bench, log } from "./lib/harness.ts";
import { type Row, rows as makeRows } from "./lib/texts.ts";

const NAME = "fairness";
const OFFSET = Number(Deno.env.get("EQ_PORT_OFFSET") ?? 0);
const LIMITS = { rpm: 3000, tpm: 1_000_000, latency_ms: 150, per_token_latency_us: 10 };

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}
const ROWS = arg("--rows", 20_000);
const SINGLES = arg("--singles", 20);
const GAP_MS = arg("--gap-ms", 2000);
/** Knobs the function runs with, e.g. --knobs EMBED_QUEUE_TIME_BUDGET_MS=4000 (comma-separated). */
const KNOBS: Record<string, string> = (() => {
  const i = Deno.args.indexOf("--knobs");
  if (i < 0) return {};
  return Object.fromEntries(Deno.args[i + 1].split(",").map((kv) => kv.split("=").map((x) => x.trim())));
})();
const OUT = (() => {
  const i = Deno.args.indexOf("--out");
  return i >= 0 ? Deno.args[i + 1] : "bench/results/fairness.json";
})();

async function newUser(b: Bench): Promise<string> {
  const id = crypto.randomUUID();
  await b.sql`insert into auth.users (id, email) values (${id}, ${`fair-${id}@example.test`})`;
  return id;
}

/** One statement per table and user, in one transaction: a user's bulk insert. */
async function insertFor(
  b: Bench,
  backlogs: Array<{ user: string; rows: Row[] }>,
  beforeCommit: () => Promise<void>,
) {
  await b.sql.begin(async (tx) => {
    for (const { user, rows } of backlogs) {
      for (const table of ["sessions", "summaries"] as const) {
        const texts = rows.filter((r) => r.table === table).map((r) => r.text);
        if (!texts.length) continue;
        if (table === "sessions") {
          await tx`insert into public.sessions (user_id, title) select ${user}, unnest(${
            tx.array(texts)
          }::text[])`;
        } else {
          await tx`insert into public.summaries (user_id, content) select ${user}, unnest(${
            tx.array(texts)
          }::text[])`;
        }
      }
    }
    await beforeCommit();
  });
}

interface DrainResult {
  scenario: string;
  backlog_rows: number;
  backlog_seconds: number;
  backlog_rows_per_s: number;
  singles: number;
  single_p50_ms: number | null;
  single_p90_ms: number | null;
  single_max_ms: number | null;
  single_latencies_ms: number[];
  failed: number;
}

async function drain(
  b: Bench,
  scenario: string,
  floods: number,
  singles: number,
  seed: number,
): Promise<DrainResult> {
  await h.clean(b);
  await b.sql`delete from embed_queue.spend`;
  await h.fakeScript(b, LIMITS);
  await h.sleep(3000);
  const writer = await newUser(b);
  const users = await Promise.all(Array.from({ length: floods }, () => newUser(b)));
  const all = makeRows(ROWS, { seed });
  const per = Math.ceil(ROWS / floods);
  const backlogs = users.map((user, k) => ({ user, rows: all.slice(k * per, (k + 1) * per) }));
  log(
    `${scenario}: ${floods} backlog(s) of ${per} rows${
      singles ? `, ${singles} single rows ${GAP_MS} ms apart` : ""
    }`,
  );
  await insertFor(b, backlogs, () => h.fakePrefill(b, 1));
  const t0 = Date.now();

  const latencies: number[] = [];
  const singleTexts = makeRows(singles, { seed: seed + 1, unique: `single-${scenario}` });
  const writing = (async () => {
    if (!singles) return;
    await h.sleep(10_000);
    const poll = (await import("postgres")).default(b.info.dbUrl, { max: 1, onnotice: () => {} });
    try {
      for (const row of singleTexts) {
        const slot = Date.now();
        const [{ id }] = await b.sql`
          insert into public.sessions (user_id, title) values (${writer}, ${row.text}) returning id`;
        const committed = Date.now();
        await h.waitFor(
          "a single row to get its vector",
          async () => {
            const [r] =
              await poll`select title_embedding is not null as done from public.sessions where id = ${id}`;
            return r.done;
          },
          300_000,
          20,
        );
        latencies.push(Date.now() - committed);
        await h.sleep(Math.max(0, slot + GAP_MS - Date.now()));
      }
    } finally {
      await poll.end();
    }
  })();

  await h.waitFor(
    "the drain",
    async () => {
      const c = await h.queueCounts(b.sql);
      return c.pending + c.processing === 0;
    },
    30 * 60_000,
    500,
  );
  await writing;
  const [{ end }] = await b.sql`
    select (extract(epoch from max(q.completed_at)) * 1000)::float8 as end
    from public.embedding_queue q where q.user_id = any (${b.sql.array(users)}::uuid[])`;
  const seconds = (Number(end) - t0) / 1000;
  const c = await h.queueCounts(b.sql);
  const res: DrainResult = {
    scenario,
    backlog_rows: ROWS,
    backlog_seconds: Math.round(seconds * 10) / 10,
    backlog_rows_per_s: Math.round((ROWS / seconds) * 10) / 10,
    singles: latencies.length,
    single_p50_ms: latencies.length ? h.percentile(latencies, 50) : null,
    single_p90_ms: latencies.length ? h.percentile(latencies, 90) : null,
    single_max_ms: latencies.length ? Math.max(...latencies) : null,
    single_latencies_ms: latencies,
    failed: c.failed,
  };
  log(
    `  backlog ${res.backlog_rows_per_s} rows/s (${res.backlog_seconds} s); singles p50 ${res.single_p50_ms} ms, ` +
      `p90 ${res.single_p90_ms} ms, max ${res.single_max_ms} ms; failed ${res.failed}`,
  );
  return res;
}

async function main(): Promise<number> {
  const b = await h.startBench({ name: NAME, dbPort: 27722 + OFFSET, apiPort: 27721 + OFFSET, knobs: KNOBS });
  const report: Record<string, unknown> = {
    command: `deno run -A bench/fairness.ts ${Deno.args.join(" ")}`.trim(),
    started_at: new Date().toISOString(),
    machine: await h.machine(b.info.dbUrl),
    limits: LIMITS,
    knobs: KNOBS,
  };
  try {
    await b.sql`update embed_queue.settings set user_daily_tokens = null, global_daily_tokens = null`;
    const alone = await drain(b, "alone", 1, 0, 7000);
    const one = await drain(b, "one flood", 1, SINGLES, 7000);
    const three = await drain(b, "three floods", 3, SINGLES, 7000);
    report.drains = [alone, one, three];
    report.backlog_throughput_change = {
      one_flood: Math.round((one.backlog_rows_per_s / alone.backlog_rows_per_s - 1) * 1000) / 10,
      three_floods: Math.round((three.backlog_rows_per_s / alone.backlog_rows_per_s - 1) * 1000) / 10,
    };
  } finally {
    await b.close();
  }
  report.finished_at = new Date().toISOString();
  const json = JSON.stringify(report, null, 2);
  Deno.mkdirSync(OUT.replace(/\/[^/]*$/, ""), { recursive: true });
  Deno.writeTextFileSync(OUT, json + "\n");
  console.log(json);
  return 0;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`fairness bench failed: ${(e as Error).stack ?? e}`);
  }
  Deno.exit(code);
}
