/**
 * What the benchmarks share: a local stack of their own with the fake OpenAI server, SQL and
 * admin helpers, bounded waiting, process CPU from /proc, and a description of the machine.
 * Nothing here is deployable code or part of `npm test`.
 */
import postgres from "postgres";
import { join } from "node:path";
import * as stack from "../../local/stack.ts";
import {
  adminReset,
  adminScript,
  adminStats,
  startFakeOpenAIProcess,
} from "../../tests/fakes/openai_process.ts";
import type { FakeOpenAIProcess, FakeScript, FakeStats } from "../../tests/fakes/openai_process.ts";
import { countTokens as exactCount } from "gpt-tokenizer/encoding/cl100k_base";
import type { Row } from "./texts.ts";
import { invokeFunction } from "../../tests/lib/invoke.ts";
import { sleep, waitFor as waitUntil } from "../../tests/lib/wait.ts";

export type { FakeScript, FakeStats };

export interface Bench {
  name: string;
  info: stack.StackInfo;
  fake: FakeOpenAIProcess;
  sql: postgres.Sql;
  user: string;
  /** The knobs the function runs with now (stack functionEnv). */
  knobs: Record<string, string>;
  close(): Promise<void>;
}

export function log(msg: string) {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

export { sleep };

/** Polls `f` every `everyMs` (250 ms unless told) until it returns a value, or throws after `ms`. */
export function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined | null | false>,
  ms: number,
  everyMs = 250,
): Promise<T> {
  return waitUntil(what, f, ms, everyMs);
}

/** The same token count the fake server bills (cl100k_base, special tokens as plain text). */
const PLAIN = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };
export function tokens(text: string): number {
  return exactCount(text, PLAIN);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/**
 * Starts the fake OpenAI server and a fresh ephemeral stack of its own (destroyed first if a
 * previous run left one), waits until the seed's jobs are done, and makes a user for the rows.
 */
export async function startBench(opts: {
  name: string;
  dbPort: number;
  apiPort: number;
  knobs?: Record<string, string>;
  ephemeral?: boolean;
}): Promise<Bench> {
  const fake = await startFakeOpenAIProcess();
  const knobs = { ...opts.knobs };
  let sql: postgres.Sql | null = null;
  try {
    log(`stack "${opts.name}" on ports ${opts.dbPort}/${opts.apiPort} (fresh cluster)`);
    await stack.destroy({ name: opts.name, quiet: true });
    const info = await stack.up({
      name: opts.name,
      dbPort: opts.dbPort,
      apiPort: opts.apiPort,
      ephemeral: opts.ephemeral ?? true,
      quiet: true,
      functionEnv: { OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.baseUrl, ...knobs },
    });
    sql = postgres(info.dbUrl, { max: 4, onnotice: () => {}, connection: { application_name: "bench" } });
    const db = sql;
    await waitFor(
      "the seed's jobs to be done",
      async () => {
        const [{ n }] =
          await db`select count(*)::int as n from public.embedding_queue where status in ('pending', 'processing')`;
        return n === 0;
      },
      180_000,
      500,
    );
    // The benchmarks send more than a user's default daily token cap (settings.user_daily_tokens):
    // they measure throughput, not caps.
    await sql`update embed_queue.settings set user_daily_tokens = null, global_daily_tokens = null`;
    const user = crypto.randomUUID();
    await sql`insert into auth.users (id, email) values (${user}, ${`bench-${user}@example.test`})`;
    const b: Bench = {
      name: opts.name,
      info,
      fake,
      sql,
      user,
      knobs,
      close: async () => {
        await db.end({ timeout: 5 }).catch(() => {});
        await stack.destroy({ name: opts.name, quiet: true }).catch((e) => log(`teardown: ${e.message}`));
        await fake.close();
      },
    };
    return b;
  } catch (e) {
    await sql?.end({ timeout: 5 }).catch(() => {});
    await stack.destroy({ name: opts.name, quiet: true }).catch(() => {});
    await fake.close();
    throw e;
  }
}

/** Restarts the gateway (and so the function) and the pg_net worker with these knobs. */
export async function setKnobs(b: Bench, knobs: Record<string, string>) {
  await stack.stopServices({ name: b.name, quiet: true });
  b.knobs = { ...knobs };
  await stack.startServices({
    name: b.name,
    quiet: true,
    functionEnv: { OPENAI_API_KEY: b.fake.apiKey, OPENAI_BASE_URL: b.fake.baseUrl, ...knobs },
  });
}

/** Stops the gateway and the pg_net worker: nothing processes the queue until startServices. */
export async function stopProcessing(b: Bench) {
  await stack.stopServices({ name: b.name, quiet: true });
}

/** Starts them again, after dropping the calls queued while they were down. */
export async function startProcessing(b: Bench) {
  // pg_net's queue belongs to supabase_admin (as on Supabase): postgres may not empty it.
  const admin = postgres(b.info.adminDbUrl, { max: 1, onnotice: () => {} });
  try {
    await admin`delete from net.http_request_queue`;
  } finally {
    await admin.end({ timeout: 5 });
  }
  await setKnobs(b, b.knobs);
}

/**
 * Empties the application tables, the queue and the run log (truncate: no row triggers) and
 * vacuums, so every measurement starts from the same state.
 */
export async function clean(b: Bench) {
  // cascade: tables that point at these (summary chunks) are emptied with them. A run still
  // finishing (the previous step's, a pg_cron tick's) can deadlock with the truncate: try again.
  for (let attempt = 1;; attempt++) {
    try {
      await b.sql`truncate public.sessions, public.summaries, public.embedding_queue, embed_queue.runs cascade`;
      break;
    } catch (e) {
      if ((e as { code?: string }).code !== "40P01" || attempt >= 5) throw e;
      await sleep(1000);
    }
  }
  await b.sql`update embed_queue.webhook_state set last_poke_at = null`;
  await b.sql`vacuum analyze public.sessions, public.summaries, public.embedding_queue`;
}

export interface Inserted {
  /** ids[i] is the id of rows[i] in its table. */
  ids: string[];
}

/**
 * Inserts the rows for the bench user in one transaction (the triggers queue each one);
 * `beforeCommit` runs inside it, just before the commit. Returns the ids in row order.
 */
export async function insertRows(
  b: Bench,
  rows: Row[],
  beforeCommit?: () => Promise<void>,
): Promise<Inserted> {
  const ids = new Array<string>(rows.length);
  const sessionsIdx: number[] = [], summariesIdx: number[] = [];
  rows.forEach((r, i) => (r.table === "sessions" ? sessionsIdx : summariesIdx).push(i));
  for (const i of rows.keys()) ids[i] = crypto.randomUUID();
  await b.sql.begin(async (tx) => {
    const CHUNK = 10_000;
    for (const [table, idx] of [["sessions", sessionsIdx], ["summaries", summariesIdx]] as const) {
      for (let k = 0; k < idx.length; k += CHUNK) {
        const part = idx.slice(k, k + CHUNK);
        const pids = part.map((i) => ids[i]);
        const texts = part.map((i) => rows[i].text);
        if (table === "sessions") {
          await tx`insert into public.sessions (id, user_id, title)
                   select unnest(${tx.array(pids)}::uuid[]), ${b.user}, unnest(${tx.array(texts)}::text[])`;
        } else {
          await tx`insert into public.summaries (id, user_id, content)
                   select unnest(${tx.array(pids)}::uuid[]), ${b.user}, unnest(${tx.array(texts)}::text[])`;
        }
      }
    }
    if (beforeCommit) await beforeCommit();
  });
  return { ids };
}

export interface QueueCounts {
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  skipped: number;
}

export async function queueCounts(sql: postgres.Sql): Promise<QueueCounts> {
  const rows = await sql`select status, count(*)::int as n from public.embedding_queue group by status`;
  const c: QueueCounts = { pending: 0, processing: 0, completed: 0, failed: 0, skipped: 0 };
  for (const r of rows) c[r.status as keyof QueueCounts] = r.n;
  return c;
}

// ---- the fake server ----

export async function fakeScript(b: Bench, script: Partial<FakeScript>) {
  await adminReset(b.fake.adminUrl);
  await adminScript(b.fake.adminUrl, script);
}

export function fakeStats(b: Bench): Promise<FakeStats> {
  return adminStats(b.fake.adminUrl);
}

/** Fills the fake server's rate-limit windows to `share` of its limits (see openai_server.ts). */
export async function fakePrefill(b: Bench, share: number) {
  const res = await fetch(`${new URL(b.fake.adminUrl).origin}/_admin/prefill`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ share }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`prefill: ${res.status} ${text}`);
}

// ---- the function ----

/** A manual call of the function (waits for the run), bounded by `timeoutMs`. */
export function invoke(b: Bench, body: Record<string, unknown>, timeoutMs: number) {
  return invokeFunction(b.info.functionsUrl, b.info.serviceRoleKey, body, timeoutMs);
}

export function functionPid(b: Bench): number | null {
  try {
    const n = Number(Deno.readTextFileSync(join(b.info.stateDir, "functions", "embed-queue.pid")).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

// ---- CPU accounting from /proc (the kernel's, for processes other than this one) ----

const CLK_TCK = 100;

/** User + system CPU seconds of one process, or null when it is gone. */
export function procCpuSeconds(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

function ppidOf(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

function allPids(): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) if (/^\d+$/.test(e.name)) out.push(Number(e.name));
  return out;
}

/** The processes of this bench, by role: the function, PostgreSQL (postmaster and children), the fake server. */
export function benchProcesses(b: Bench): Record<string, number[]> {
  const roles: Record<string, number[]> = {
    function: [],
    postgres: [],
    fake_openai: [],
    gateway_and_net_worker: [],
  };
  const fn = functionPid(b);
  if (fn) roles.function.push(fn);
  let postmaster: number | null = null;
  try {
    const st = JSON.parse(Deno.readTextFileSync(join(b.info.stateDir, "state.json")));
    postmaster = Number(Deno.readTextFileSync(join(st.pgData, "postmaster.pid")).split("\n")[0]);
  } catch { /* not running */ }
  for (const name of ["gateway.pid", "net_worker.pid"]) {
    try {
      roles.gateway_and_net_worker.push(Number(Deno.readTextFileSync(join(b.info.stateDir, name)).trim()));
    } catch { /* not running */ }
  }
  for (const pid of allPids()) {
    const pp = ppidOf(pid);
    if (postmaster && (pid === postmaster || pp === postmaster)) roles.postgres.push(pid);
    else if (pp === Deno.pid) {
      try {
        if (Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("openai_server.ts")) {
          roles.fake_openai.push(pid);
        }
      } catch { /* gone */ }
    }
  }
  return roles;
}

/** CPU seconds per pid, for a later diff. */
export function cpuSnapshot(pids: Record<string, number[]>): Map<number, number> {
  const m = new Map<number, number>();
  for (const list of Object.values(pids)) for (const p of list) m.set(p, procCpuSeconds(p) ?? 0);
  return m;
}

/**
 * CPU seconds spent per role between `before` and now, over the processes alive at the end
 * (processes that came and went in between are missed: PostgreSQL's short-lived backends, so
 * its figure is a lower bound).
 */
export function cpuSince(b: Bench, before: Map<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [role, pids] of Object.entries(benchProcesses(b))) {
    let s = 0;
    for (const p of pids) s += (procCpuSeconds(p) ?? 0) - (before.get(p) ?? 0);
    out[role] = Math.round(s * 100) / 100;
  }
  return out;
}

// ---- the machine ----

export async function machine(dbUrl?: string): Promise<Record<string, string>> {
  const read = (p: string) => {
    try {
      return Deno.readTextFileSync(p).trim();
    } catch {
      return "";
    }
  };
  const mem = read("/proc/meminfo").match(/MemTotal:\s+(\d+)/)?.[1];
  const cpu = read("/proc/cpuinfo").match(/model name\s*:\s*(.+)/)?.[1] ?? "";
  const os = read("/etc/os-release").match(/PRETTY_NAME="([^"]+)"/)?.[1] ?? "";
  let pg = "";
  if (dbUrl) {
    const s = postgres(dbUrl, { max: 1, onnotice: () => {} });
    try {
      const [{ v }] = await s`select version() as v`;
      const [{ vec }] = await s`select extversion as vec from pg_extension where extname = 'vector'`;
      const [{ cron }] = await s`select extversion as cron from pg_extension where extname = 'pg_cron'`;
      pg = `${String(v).split(" on ")[0]}, pgvector ${vec}, pg_cron ${cron}`;
    } finally {
      await s.end();
    }
  }
  return {
    cpus: String(navigator.hardwareConcurrency),
    cpu_model: cpu,
    memory_gib: mem ? (Number(mem) / 1024 / 1024).toFixed(1) : "",
    os: `${os} (debian_version ${read("/etc/debian_version")})`,
    postgres: pg,
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    load_average_at_start: read("/proc/loadavg").split(" ").slice(0, 3).join(" "),
  };
}
