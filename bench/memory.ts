/**
 * `deno run -A bench/memory.ts`: a worker's peak memory, as the edge runtime measures it (V8 used
 * heap + external memory; the local host samples it, local/function_host.ts), while it embeds
 * huge rows. On a stack of its own (stack "memory", ports 29322/29321 plus EQ_PORT_OFFSET, a fresh
 * ephemeral cluster, hosted's limits enforced) with the fake OpenAI server.
 *
 *   deno run -A bench/memory.ts [--rows 20] [--mb 30] [--small 2000] [--claim-max-chars N]
 *
 * `rows` rows of `mb` MB of text each (made in SQL, so the bench does not send them) and `small`
 * ordinary rows of the same user are inserted in one transaction and drained the hands-off way.
 * Then the services are restarted so every worker ends and logs its peak; prints a JSON report:
 * the peak per worker and per run (run.finish worker_memory_mb), kills, and the rows' outcome.
 * `--claim-max-chars` sets settings.claim_max_chars first (default: the setting's default), to see
 * the bound hold with the largest prefix a claim may hand out.
 */
import * as h from "./lib/harness.ts";
import { log } from "./lib/harness.ts";
import { rows as makeRows } from "./lib/texts.ts";
import { portOffset } from "../tests/lib/env.ts";
import { figuresSince, logSize } from "./lib/worker_log.ts";

const arg = (n: string, d: number) => {
  const i = Deno.args.indexOf(n);
  return i >= 0 ? Number(Deno.args[i + 1]) : d;
};
const ROWS = arg("--rows", 20);
const MB = arg("--mb", 30);
const SMALL = arg("--small", 2000);
const CLAIM_MAX_CHARS = arg("--claim-max-chars", 0);

const b = await h.startBench({ name: "memory", dbPort: 29322 + portOffset, apiPort: 29321 + portOffset });
try {
  await h.clean(b);
  if (CLAIM_MAX_CHARS > 0) {
    await b.sql`update embed_queue.settings set claim_max_chars = ${CLAIM_MAX_CHARS}`;
  }
  const [{ chars, bytes }] = await b.sql`
    select claim_max_chars as chars, claim_max_bytes as bytes from embed_queue.settings`;
  const from = logSize(b.info.stateDir);
  log(
    `${ROWS} rows of ${MB} MB and ${SMALL} ordinary rows (claim_max_chars ${chars}, claim_max_bytes ${bytes})`,
  );
  const small = makeRows(SMALL, { seed: 11 }).map((r) => r.text);
  const t0 = Date.now();
  await b.sql.begin(async (tx) => {
    // Text that does not repeat within a row's first megabytes (md5 chains), repeated to size.
    await tx`
      insert into public.sessions (user_id, title)
      select ${b.user}, repeat(string_agg(md5(g::text || ':' || r::text), ' '), ${
      Math.ceil(MB * 2 ** 20 / (33 * 4096))
    })
      from generate_series(1, ${ROWS}) r, generate_series(1, 4096) g group by r`;
    await tx`insert into public.sessions (user_id, title) select ${b.user}, unnest(${small}::text[])`;
  });
  log(`  inserted in ${((Date.now() - t0) / 1000).toFixed(1)} s; draining`);
  await h.waitFor(
    "the drain",
    async () => {
      const c = await h.queueCounts(b.sql);
      return c.pending + c.processing === 0;
    },
    15 * 60_000,
    500,
  );
  const seconds = (Date.now() - t0) / 1000;
  const outcome = await b.sql`
    select status, truncated, count(*)::int as n, max(attempts)::int as max_attempts
    from public.embedding_queue group by 1, 2 order by 1, 2`;
  const [{ huge }] = await b.sql`
    select count(*)::int as huge from public.sessions where length(title) >= ${MB * 2 ** 20}`;
  await h.setKnobs(b, b.knobs); // every worker ends and logs its peak
  const wf = figuresSince(b.info.stateDir, from);
  const report = {
    command: `deno run -A bench/memory.ts ${Deno.args.join(" ")}`.trim(),
    rows: ROWS,
    mb: MB,
    huge_rows_in_table: huge,
    small: SMALL,
    claim_max_chars: chars,
    claim_max_bytes: Number(bytes),
    seconds: Math.round(seconds * 10) / 10,
    outcome,
    workers: wf,
    machine: await h.machine(),
  };
  log(
    `  peak memory: ${wf.peak_memory_mb_max} MB a worker (runs reported up to ${wf.run_memory_mb_max} MB); ` +
      `killed ${JSON.stringify(wf.killed)}; ${wf.workers} workers`,
  );
  console.log(JSON.stringify(report, null, 2));
} finally {
  // The gateway log (every run's and worker's events) is kept: the stack's goes with it.
  Deno.mkdirSync(".cache/bench", { recursive: true });
  const kept = `.cache/bench/memory-${new Date().toISOString().replace(/[:.]/g, "-")}.gateway.log`;
  await Deno.copyFile(`${b.info.stateDir}/logs/gateway.log`, kept).then(() => log(`gateway log kept in ${kept}`), () => {});
  await b.close();
}
