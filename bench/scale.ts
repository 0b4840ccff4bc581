/**
 * `npm run bench -- --parts scale`: a million queued rows (not part of the default parts: ~30 min).
 * A local stack of its own (stack "scale", ports 27822/27821 plus EQ_PORT_OFFSET, a fresh
 * ephemeral cluster) and the fake OpenAI server answering at once with no limits.
 *
 *   npm run bench -- --parts scale [--scale-sizes 10000,100000,1000000] [--scale-rounds 15]
 *                                  [--scale-users 100] [--scale-drain-seconds 300]
 *                                  [--scale-no-hnsw-seconds 120]
 *
 * 1. Fill. The rows are the usual mix (bench/lib/texts.ts): a pool of 20,000 texts is staged once,
 *    then rows are inserted with generate_series in SQL, 50,000 a statement, into sessions and
 *    summaries, each text made unique with its row number, spread over `users` users. The source
 *    tables' triggers queue them as in real life (the statement-level insert trigger:
 *    embed_queue.enqueue_many, fresh lane, virtual times per user). Nothing processes the queue
 *    while it fills (gateway and pg_net worker stopped).
 * 2. At each size (jobs pending), `rounds` rounds of: top the backlog up to the size, then
 *    claim(1,000) and complete() those 1,000 jobs, each timed. Both are the function's own calls
 *    (supabase/functions/embed-queue/db.ts, createDb) through the transaction pooler, as the
 *    function reaches the database on Supabase. Vectors are fakeVector(text) as the fake server
 *    makes them, encoded with the function's toPgvector before the clock starts. Then one claim
 *    and complete on a direct connection with auto_explain (analyze, buffers, nested statements),
 *    whose plans are written next to the report.
 * 3. Drain: the gateway and pg_net start again, the function (default knobs: the edge runtime's
 *    limits enforced) drains the 1M backlog hands-off (a manual call, then the webhook, hand-overs
 *    and the 10 s tick) for `drain-seconds` (0: until empty). Every 15 s a probe times
 *    claim(1,000) with the function's call and gives the jobs back (release). Peak memory of the
 *    function's workers: the runtime's own measure (V8 heap + external, the gateway's mem files)
 *    and the process's peak resident set (VmHWM), sampled every 250 ms.
 * 4. Then (unless --scale-no-hnsw-seconds 0) the vector columns' HNSW indexes are dropped and a
 *    few rounds and a second drain sample are made without them: what index maintenance costs.
 * 5. Table and index sizes and dead tuples at the full backlog, after the drain(s), and after
 *    autovacuum has run on the queue (waited for up to 3 min; if it has not, a plain VACUUM,
 *    which is what autovacuum does once 20 % of the table is dead).
 */
import * as h from "./lib/harness.ts";
import { type Bench, log } from "./lib/harness.ts";
import { rows as makeRows } from "./lib/texts.ts";
import { createDb } from "../supabase/functions/embed-queue/db.ts";
import { fakeVector } from "../tests/fakes/fake_vector.ts";
import { toPgvector } from "../supabase/functions/_shared/vectors.ts";
import { portOffset } from "../tests/lib/env.ts";
import postgres from "postgres";
import { join } from "node:path";

const NAME = "scale";
const DB_PORT = 27822 + portOffset;
const API_PORT = 27821 + portOffset;
const POOL = 20_000;
const PAGE = 50_000;
const CLAIM = 1000;

export interface ScaleArgs {
  sizes: number[];
  rounds: number;
  users: number;
  drainSeconds: number;
  /** Then, with the vector columns' HNSW indexes dropped: rounds and a drain sample of this long (0: skip). */
  noHnswSeconds: number;
  out: string;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "";
  }
}

async function pendingCount(sql: postgres.Sql): Promise<number> {
  const [{ n }] = await sql`select count(*)::int as n from public.embedding_queue where status = 'pending'`;
  return n;
}

/** Sizes of the queue, its indexes and the source tables, with live and dead tuples. */
async function sizes(sql: postgres.Sql) {
  const rels = await sql`
    select c.relname as name, c.relkind as kind,
           pg_relation_size(c.oid)::float8 as bytes,
           coalesce(pg_relation_size(c.reltoastrelid), 0)::float8 as toast_bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and (c.relname in ('embedding_queue', 'sessions', 'summaries')
      or c.oid in (select i.indexrelid from pg_index i
                   where i.indrelid in ('public.embedding_queue'::regclass)))
    order by c.relkind desc, c.relname`;
  const stats = await sql`
    select relname as name, n_live_tup::float8 as live, n_dead_tup::float8 as dead,
           last_autovacuum, last_autoanalyze, autovacuum_count::int as autovacuums
    from pg_stat_user_tables where schemaname = 'public' and relname in ('embedding_queue', 'sessions', 'summaries')
    order by relname`;
  const mb = (x: number) => r1(x / 1048576);
  return {
    relations_mb: Object.fromEntries(
      rels.map((r) => [r.name, { heap: mb(r.bytes), toast: mb(r.toast_bytes) }]),
    ),
    tuples: Object.fromEntries(stats.map((s) => [s.name, {
      live: s.live,
      dead: s.dead,
      last_autovacuum: s.last_autovacuum,
      last_autoanalyze: s.last_autoanalyze,
      autovacuums: s.autovacuums,
    }])),
  };
}

interface Filler {
  next: number;
  users: string[];
}

/** Inserts rows (the source tables' triggers queue them) until `target` jobs are pending. */
async function fillTo(b: Bench, f: Filler, target: number) {
  let n = await pendingCount(b.sql);
  while (n < target) {
    const k = Math.min(PAGE, target - n);
    const from = f.next, to = f.next + k - 1;
    await b.sql.begin(async (tx) => {
      for (const [table, col] of [["sessions", "title"], ["summaries", "content"]] as const) {
        await tx.unsafe(
          `insert into public.${table} (user_id, ${col})
           select ($3::uuid[])[1 + (g % $4)], p.text || ' [' || g || ']'
           from generate_series($1::bigint, $2::bigint) g
           join public.bench_pool p on p.n = g % ${POOL}
           where p.tbl = '${table}'`,
          [from, to, f.users, f.users.length],
        );
      }
    });
    f.next += k;
    n += k;
  }
}

/** The plans of every statement one call runs, through auto_explain (superuser session). */
async function explainCall(b: Bench, call: (s: postgres.Sql) => Promise<unknown>): Promise<string[]> {
  const plans: string[] = [];
  const s = postgres(b.info.adminDbUrl, {
    max: 1,
    onnotice: (n) => plans.push(String(n.message)),
    connection: { application_name: "bench-explain" },
  });
  try {
    await s.begin(async (tx) => {
      await tx`load 'auto_explain'`;
      await tx`set local auto_explain.log_min_duration = 0`;
      await tx`set local auto_explain.log_analyze = on`;
      await tx`set local auto_explain.log_buffers = on`;
      await tx`set local auto_explain.log_nested_statements = on`;
      await tx`set local auto_explain.log_level = notice`;
      await tx`set local role postgres`;
      await call(tx as unknown as postgres.Sql);
    });
  } finally {
    await s.end({ timeout: 5 });
  }
  return plans;
}

/** "Execution Time" or the top node's actual time of each plan, with its first line. */
function planSummary(plans: string[]): Array<{ ms: number; query: string; top: string }> {
  return plans.map((p) => {
    const q = p.match(/Query Text: ([\s\S]*?)\n\s*(\S.*)/);
    const t = p.match(/duration: ([\d.]+) ms/);
    return {
      ms: t ? Number(t[1]) : NaN,
      query: (q?.[1] ?? "").replace(/\s+/g, " ").slice(0, 120),
      top: (q?.[2] ?? "").trim().slice(0, 160),
    };
  }).filter((x) => x.ms >= 0.5).sort((a, c) => c.ms - a.ms);
}

/** Shared buffers (hit + read) of the top-level call of embed_queue.<fn> among the plans. */
function topBuffers(plans: string[], fn: string): number | null {
  const p = plans.find((x) => x.includes(`Function Scan on ${fn}`));
  const m = p?.match(/Function Scan on \w+[^\n]*\n\s*Buffers: shared hit=(\d+)(?: read=(\d+))?/);
  return m ? Number(m[1]) + Number(m[2] ?? 0) : null;
}

interface Probe {
  jobs: Array<{ id: number; content: string; content_hash: string }>;
  claim_ms: number;
}

/** `n` rounds of claim(1,000) then complete() of those jobs, each call timed, as the function makes them. */
async function rounds(b: Bench, before: () => Promise<void>, tag: string, n: number) {
  const db = createDb(b.info.poolerUrl, { max: 1 });
  const claims: number[] = [], completes: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      await before();
      const worker = `${tag}-${i}`;
      let c0 = performance.now();
      const jobs = await db.claim(worker, CLAIM, 120);
      const claimMs = performance.now() - c0;
      const done = jobs.map((j) => ({
        id: j.id,
        contentHash: j.content_hash,
        embedding: toPgvector(fakeVector(j.content, j.dimensions ?? 1536)),
        tokens: Math.ceil(j.content.length / 4),
        truncated: false,
      }));
      c0 = performance.now();
      const out = await db.complete(worker, done, "text-embedding-3-small", 1536);
      const completeMs = performance.now() - c0;
      const ok = [...out.values()].filter((x) => x === "completed").length;
      if (jobs.length !== CLAIM || ok !== CLAIM) {
        throw new Error(`round ${i}: claimed ${jobs.length}, completed ${ok} (want ${CLAIM})`);
      }
      claims.push(claimMs);
      completes.push(completeMs);
    }
  } finally {
    await db.close();
  }
  return { claims, completes };
}

const stats = (xs: number[]) => ({
  first: r1(xs[0]),
  median: r1(h.median(xs.slice(1))),
  p90: r1(h.percentile(xs.slice(1), 90)),
  all: xs.map(r1),
});

async function measureSize(b: Bench, f: Filler, size: number, rounds_: number, outBase: string) {
  log(`--- ${size.toLocaleString("en")} jobs pending`);
  const t0 = Date.now();
  await fillTo(b, f, size);
  log(`  filled in ${r1((Date.now() - t0) / 1000)} s (load ${loadavg()})`);
  const { claims, completes } = await rounds(b, () => fillTo(b, f, size), `scale-${size}`, rounds_);
  await fillTo(b, f, size);
  // One more round with every statement's plan (direct connection, superuser session as postgres).
  let claimed: Probe["jobs"] = [];
  const claimPlans = await explainCall(b, async (s) => {
    claimed =
      await s`select id::int as id, content, content_hash from embed_queue.claim('scale-explain', ${CLAIM}, 120)`;
  });
  const done = claimed.map((j) => toPgvector(fakeVector(j.content, 1536)));
  const completePlans = await explainCall(b, async (s) => {
    await s`select * from embed_queue.complete('scale-explain', ${
      s.array(claimed.map((j) => String(j.id)))
    }::bigint[],
      ${s.array(claimed.map((j) => j.content_hash))}::text[], ${s.array(done)}::text[],
      null, null, 'text-embedding-3-small', 1536)`;
  });
  Deno.writeTextFileSync(`${outBase}-explain-${size}.txt`, [...claimPlans, ...completePlans].join("\n\n"));
  const res = {
    size,
    load_average: loadavg(),
    rounds: rounds_,
    claim_ms: stats(claims),
    complete_ms: stats(completes),
    /** Shared buffers the one explained call touched (hit + read): a count the machine's load does not change. */
    claim_buffers: topBuffers(claimPlans, "claim"),
    complete_buffers: topBuffers(completePlans, "complete"),
    claim_plan: planSummary(claimPlans).slice(0, 8),
    complete_plan: planSummary(completePlans).slice(0, 5),
  };
  log(
    `  claim(${CLAIM}) median ${res.claim_ms.median} ms (p90 ${res.claim_ms.p90}); complete median ${res.complete_ms.median} ms (p90 ${res.complete_ms.p90}); load ${res.load_average}`,
  );
  for (const p of res.claim_plan.slice(0, 4)) {
    log(`    claim: ${p.ms} ms  ${p.top}  ← ${p.query.slice(0, 70)}`);
  }
  return res;
}

/** Peak memory of the function's workers while `running()`: the runtime's measure and VmHWM. */
function memorySampler(b: Bench) {
  const dir = join(b.info.stateDir, "functions");
  let runtimePeak = 0, rssPeak = 0;
  const workers = new Set<number>();
  const timer = setInterval(() => {
    try {
      for (const e of Deno.readDirSync(dir)) {
        if (!e.name.endsWith(".mem")) continue;
        try {
          const n = Number(Deno.readTextFileSync(join(dir, e.name)).trim().split(" ")[0]);
          if (Number.isFinite(n)) runtimePeak = Math.max(runtimePeak, n);
        } catch { /* gone */ }
      }
    } catch { /* no dir yet */ }
    const pid = h.functionPid(b);
    if (pid) {
      workers.add(pid);
      try {
        const st = Deno.readTextFileSync(`/proc/${pid}/status`);
        const hwm = Number(st.match(/VmHWM:\s+(\d+)/)?.[1] ?? 0) * 1024;
        rssPeak = Math.max(rssPeak, hwm);
      } catch { /* gone */ }
    }
  }, 250);
  return {
    stop() {
      clearInterval(timer);
      return {
        runtime_peak_mb: r1(runtimePeak / 1048576),
        rss_peak_mb: r1(rssPeak / 1048576),
        workers_seen: workers.size,
      };
    },
  };
}

async function drain(b: Bench, seconds: number) {
  log(`--- drain (${seconds ? `${seconds} s sample` : "until empty"}; instant provider, default knobs)`);
  await h.fakeScript(b, {});
  await h.startProcessing(b);
  const mem = memorySampler(b);
  const probeDb = createDb(b.info.poolerUrl, { max: 1 });
  const startPending = await pendingCount(b.sql);
  const [{ before }] = await b
    .sql`select count(*)::int as before from public.embedding_queue where status = 'completed'`;
  const t0 = Date.now();
  // As the insert's webhook would (answered 202, the run in the background); hand-overs and the
  // tick keep it going.
  const answer = h.invoke(b, { trigger: "webhook" }, 30_000).catch(() => null);
  const timeline: Array<
    { s: number; completed: number; pending: number; probe_claim_ms: number; load: string }
  > = [];
  let lastProbe = t0;
  try {
    for (;;) {
      await h.sleep(1000);
      const elapsed = (Date.now() - t0) / 1000;
      const c = await h.queueCounts(b.sql);
      if (Date.now() - lastProbe >= 15_000) {
        lastProbe = Date.now();
        const p0 = performance.now();
        const jobs = await probeDb.claim("scale-probe", CLAIM, 120);
        const ms = performance.now() - p0;
        await probeDb.release("scale-probe");
        timeline.push({
          s: r1(elapsed),
          completed: c.completed - before,
          pending: c.pending,
          probe_claim_ms: r1(ms),
          load: loadavg(),
        });
        log(
          `  ${Math.round(elapsed)} s: completed ${
            c.completed - before
          }, pending ${c.pending}, failed ${c.failed}; probe claim ${
            r1(ms)
          } ms (${jobs.length} jobs); load ${loadavg()}`,
        );
      }
      if (c.pending + c.processing === 0) break;
      if (seconds && elapsed >= seconds) break;
    }
  } finally {
    await probeDb.close();
  }
  const stopped = Date.now();
  await answer;
  await h.stopProcessing(b);
  const memory = mem.stop();
  // Jobs a run still held when processing stopped go back (the function's lease would return them).
  await b.sql.begin(async (tx) => {
    await tx`select set_config('embed_queue.internal', 'on', true)`;
    await tx`update public.embedding_queue set status = 'pending', locked_by = null, locked_until = null
             where status = 'processing'`;
  });
  const [{ done, first, last, failed }] = await b.sql`
    select count(*) filter (where status = 'completed')::int - ${before}::int as done,
           count(*) filter (where status = 'failed')::int as failed,
           extract(epoch from min(completed_at) filter (where completed_at >= to_timestamp(${
    t0 / 1000
  })))::float8 as first,
           extract(epoch from max(completed_at))::float8 as last
    from public.embedding_queue`;
  // The rate over the sample's wall time: completed_at is the completing transaction's start
  // (now()), which trails the commit by as long as a complete() takes (tens of seconds here).
  const wall = Math.max(1, (stopped - t0) / 1000);
  const lastCompletedS = Number(last) - t0 / 1000;
  const runs = await b.sql`
    select trigger, count(*)::int as n, coalesce(sum(completed), 0)::int as completed from embed_queue.runs
    where started_at >= to_timestamp(${t0 / 1000}) group by trigger`;
  const rate = done / wall;
  const res = {
    sample_seconds: r1(wall),
    last_completed_at_s: r1(lastCompletedS),
    started_pending: startPending,
    completed: done,
    failed,
    rows_per_s: r1(rate),
    first_completion_s: r1(Number(first) - t0 / 1000),
    full_drain_estimate_s: Math.round(startPending / rate),
    runs: Object.fromEntries(runs.map((r) => [r.trigger, { runs: r.n, completed: r.completed }])),
    memory,
    timeline,
  };
  log(
    `  ${res.rows_per_s} rows/s over ${res.sample_seconds} s (${done} rows, ${failed} failed); memory ${
      JSON.stringify(memory)
    }`,
  );
  return res;
}

async function waitAutovacuum(b: Bench, since: Date, maxMs: number) {
  const until = Date.now() + maxMs;
  for (;;) {
    const [{ at }] = await b.sql`
      select greatest(last_autovacuum, last_vacuum) as at from pg_stat_user_tables where relid = 'public.embedding_queue'::regclass`;
    if (at && new Date(at) > since) return new Date(at);
    if (Date.now() > until) return null;
    await h.sleep(5000);
  }
}

export async function runScale(a: ScaleArgs) {
  const b = await h.startBench({ name: NAME, dbPort: DB_PORT, apiPort: API_PORT });
  const outBase = a.out.replace(/\.json$/, "");
  Deno.mkdirSync(a.out.replace(/\/[^/]*$/, ""), { recursive: true });
  try {
    const report: Record<string, unknown> = { args: a, load_average_at_start: loadavg() };
    const [{ av }] = await b.sql`select current_setting('autovacuum') as av`;
    report.autovacuum = av;
    await h.stopProcessing(b);
    await h.clean(b);
    // The texts: a pool of the usual mix, staged once.
    const pool = makeRows(POOL, { seed: 9000 });
    await b
      .sql`create unlogged table public.bench_pool (n int primary key, tbl text not null, text text not null)`;
    for (let i = 0; i < POOL; i += 5000) {
      const part = pool.slice(i, i + 5000);
      await b.sql`insert into public.bench_pool (n, tbl, text)
        select * from unnest(${b.sql.array(part.map((_, k) => i + k))}::int[],
                             ${b.sql.array(part.map((r) => r.table))}::text[],
                             ${b.sql.array(part.map((r) => r.text))}::text[])`;
    }
    const users: string[] = [];
    for (let u = 0; u < a.users; u++) users.push(crypto.randomUUID());
    await b.sql`insert into auth.users (id, email)
      select u, 'scale-' || u || '@example.test' from unnest(${b.sql.array(users)}::uuid[]) u`;
    const f: Filler = { next: 0, users };
    const atSize = [];
    for (const size of a.sizes) atSize.push(await measureSize(b, f, size, a.rounds, outBase));
    report.at_size = atSize;
    const base = atSize[0];
    report.claim_ratio_largest_to_smallest = r2(
      atSize[atSize.length - 1].claim_ms.median / base.claim_ms.median,
    );
    report.complete_ratio_largest_to_smallest = r2(
      atSize[atSize.length - 1].complete_ms.median / base.complete_ms.median,
    );
    log(`  claim median at ${a.sizes.at(-1)} / at ${a.sizes[0]}: ${report.claim_ratio_largest_to_smallest}×`);
    report.sizes_full = await sizes(b.sql);
    log(`  sizes at the full backlog: ${JSON.stringify(report.sizes_full)}`);
    const drainStart = new Date();
    report.drain = await drain(b, a.drainSeconds);
    report.sizes_after_drain = await sizes(b.sql);
    log(`  sizes after the drain: ${JSON.stringify(report.sizes_after_drain)}`);
    if (a.noHnswSeconds > 0) {
      // What the HNSW indexes on the vector columns cost: the same calls and drain without them
      // (pgvector's advice for a bulk load: build the index after the data is in).
      const idx = await b.sql`
        select i.indexrelid::regclass::text as name from pg_index i
        join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam
        where am.amname = 'hnsw' and i.indrelid in ('public.sessions'::regclass, 'public.summaries'::regclass)`;
      for (const x of idx) await b.sql.unsafe(`drop index ${x.name}`);
      log(`--- without the HNSW indexes (${idx.map((x) => x.name).join(", ")} dropped)`);
      const r = await rounds(b, async () => {}, "scale-no-hnsw", Math.min(a.rounds, 6));
      report.without_hnsw = {
        dropped: idx.map((x) => x.name),
        pending: await pendingCount(b.sql),
        claim_ms: stats(r.claims),
        complete_ms: stats(r.completes),
        drain: await drain(b, a.noHnswSeconds),
      };
      log(`  claim median ${stats(r.claims).median} ms, complete median ${stats(r.completes).median} ms`);
      report.sizes_after_second_drain = await sizes(b.sql);
    }
    const av2 = await waitAutovacuum(b, drainStart, 180_000);
    report.autovacuum_after_drain = av2;
    if (!av2) {
      // autovacuum waits for 20 % of the table to be dead (autovacuum_vacuum_scale_factor): a
      // sample of the drain does not get there. A plain VACUUM does what it would do.
      log("  autovacuum did not run on the queue within 3 min: a plain VACUUM instead");
      await b.sql`vacuum public.embedding_queue, public.sessions, public.summaries`;
      report.manual_vacuum = true;
    }
    report.sizes_after_autovacuum = await sizes(b.sql);
    log(
      `  after ${av2 ? `autovacuum (${av2.toISOString()})` : "a plain VACUUM"}: ${
        JSON.stringify(report.sizes_after_autovacuum)
      }`,
    );
    report.load_average_at_end = loadavg();
    return report;
  } finally {
    await b.sql`drop table if exists public.bench_pool`.catch(() => {});
    await b.close();
  }
}
