/**
 * The Docker-free local Supabase stack: PostgreSQL (pgvector, pg_cron, pgTAP, the pg_net and
 * Vault stand-ins), the pg_net worker and the Edge Functions gateway.
 *
 *   deno run -A local/stack.ts up [--name dev] [--db-port 54322] [--api-port 54321] [--no-functions]
 *   deno run -A local/stack.ts down | status [--json] | reset | env
 *
 * A reset is a new cluster (pg_cron holds its database open), bootstrapped and pushed again
 * with the real Supabase CLI: `supabase db reset --remote` would drop auth, net and cron here.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { parseEnvFile } from "../cli/env_file.ts";
import { exists, readPid, run as runCommand } from "./proc.ts";
import { poolerStatus, poolerUrl, startPooler, stopPooler } from "./pooler.ts";
import { anonKey, JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY, serviceRoleKey } from "./keys.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const DENO = Deno.execPath();
const SUPABASE = join(ROOT, "node_modules/.bin/supabase");

export interface StackOptions {
  /** Folder name under .stack/ ; several stacks can run side by side on other ports. */
  name: string;
  dbPort: number;
  apiPort: number;
  /** Start the gateway and the pg_net worker (false: database only, nothing gets processed). */
  functions: boolean;
  /** Throwaway cluster: durability settings off for speed. */
  ephemeral: boolean;
  /**
   * Variables for the functions on top of supabase/functions/.env (OPENAI_*, EMBEDDING_*,
   * EMBED_QUEUE_*), written to the env file the gateway reads; never taken from the shell.
   */
  functionEnv: Record<string, string>;
  quiet: boolean;
  /** Load supabase/seed.sql with the first push (false: migrations only). */
  seed?: boolean;
  /** Runs after bootstrap and before the first push: lets a test build what a user's database already holds. */
  beforePush?: (dbUrl: string) => Promise<void>;
}

export const DEFAULTS: StackOptions = {
  name: "dev",
  dbPort: 54322,
  apiPort: 54321,
  functions: true,
  ephemeral: false,
  functionEnv: {},
  quiet: false,
};

export interface StackInfo {
  name: string;
  /** As `postgres`, the non-superuser that runs migrations, as on hosted Supabase. */
  dbUrl: string;
  /** As `supabase_admin`, the superuser: the platform's own services (the pg_net worker) only. */
  adminDbUrl: string;
  /**
   * Through the transaction pooler (pgbouncer in transaction mode, as Supabase's port 6543): on
   * the database port + 7, which makes 54329 for the dev stack, the Supabase CLI's pooler port.
   */
  poolerUrl: string;
  apiUrl: string;
  functionsUrl: string;
  anonKey: string;
  serviceRoleKey: string;
  /** The new-style secret key (sb_secret_...), accepted wherever the service role key is. */
  secretKey: string;
  jwtSecret: string;
  stateDir: string;
}

interface State {
  dbPort: number;
  apiPort: number;
  pgData: string;
  pushedSeed: boolean;
  /** sha256 of each migration file as this stack applied it (the CLI records versions only). */
  migrations?: Record<string, string>;
}

/** sha256 of each file in supabase/migrations, by file name. */
export async function migrationHashes(): Promise<Record<string, string>> {
  const dir = join(ROOT, "supabase/migrations");
  const names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".sql")).map((e) =>
    e.name
  )
    .sort();
  const out: Record<string, string> = {};
  for (const name of names) {
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(join(dir, name)));
    out[name] = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return out;
}

const isRoot = Deno.uid() === 0;
/** The pooler listens on the database port plus this. */
const POOLER_PORT_OFFSET = 7;
const PG_MAJOR = detectPgMajor();

function detectPgMajor(): string {
  for (const v of ["17", "16", "15"]) {
    try {
      Deno.statSync(`/usr/lib/postgresql/${v}/bin/postgres`);
      return v;
    } catch { /* next */ }
  }
  return "15";
}
const PG_BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;

/** A stack's folder: .stack/<name>, for a name of letters, digits, '-' and '_' only (never '..' or a path). */
export function stateDir(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new Error(`stack name ${JSON.stringify(name)} is not valid: use letters, digits, '-' and '_' only`);
  }
  return join(ROOT, ".stack", name);
}

export async function info(opts: Partial<StackOptions> = {}): Promise<StackInfo> {
  const o = { ...DEFAULTS, ...opts };
  const st = readState(o.name);
  const dbPort = st?.dbPort ?? o.dbPort;
  const apiPort = st?.apiPort ?? o.apiPort;
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  return {
    name: o.name,
    dbUrl: `postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres`,
    adminDbUrl: `postgresql://supabase_admin:postgres@127.0.0.1:${dbPort}/postgres`,
    poolerUrl: poolerUrl(dbPort + POOLER_PORT_OFFSET),
    apiUrl,
    functionsUrl: `${apiUrl}/functions/v1`,
    anonKey: await anonKey(),
    serviceRoleKey: await serviceRoleKey(),
    secretKey: SECRET_KEY,
    jwtSecret: JWT_SECRET,
    stateDir: stateDir(o.name),
  };
}

function readState(name: string): State | null {
  const file = join(stateDir(name), "state.json");
  try {
    return JSON.parse(Deno.readTextFileSync(file));
  } catch {
    return null;
  }
}

function writeState(name: string, st: State) {
  Deno.mkdirSync(stateDir(name), { recursive: true });
  Deno.writeTextFileSync(join(stateDir(name), "state.json"), JSON.stringify(st, null, 2) + "\n");
}

function run(
  cmd: string,
  args: string[],
  opts: { asPostgres?: boolean; env?: Record<string, string>; cwd?: string } = {},
) {
  return runCommand(cmd, args, { cwd: ROOT, ...opts });
}

async function must(cmd: string, args: string[], what: string, opts: Parameters<typeof run>[2] = {}) {
  const r = await run(cmd, args, opts);
  if (!r.ok) throw new Error(`${what} failed (exit ${r.code}):\n${r.text.trim()}`);
  return r.text;
}

export function portInUse(port: number): boolean {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
    return false;
  } catch {
    return true;
  }
}

function pidAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** The data folder must be reachable by the postgres user when we run as root. */
async function choosePgData(name: string): Promise<string> {
  const preferred = join(stateDir(name), "pgdata");
  if (!isRoot) return preferred;
  const probe = await run("test", ["-x", stateDir(name)], { asPostgres: true });
  if (probe.ok) return preferred;
  const hash = createHash("sha1").update(ROOT).digest("hex").slice(0, 10);
  return `/tmp/embed-queue-${hash}/${name}/pgdata`;
}

async function pgRunning(pgData: string): Promise<boolean> {
  const r = await run(`${PG_BIN}/pg_ctl`, ["-D", pgData, "status"], { asPostgres: true });
  return r.ok;
}

async function initCluster(o: StackOptions, pgData: string) {
  Deno.mkdirSync(pgData, { recursive: true });
  const pw = await Deno.makeTempFile({ prefix: "eq-pw-" });
  Deno.writeTextFileSync(pw, "postgres\n");
  Deno.chmodSync(pw, 0o644);
  if (isRoot) {
    await must("chown", ["-R", "postgres:postgres", join(pgData, "..")], "chown data folder");
  }
  Deno.chmodSync(pgData, 0o700);
  await must(
    `${PG_BIN}/initdb`,
    [
      "-D",
      pgData,
      // The bootstrap superuser is supabase_admin, as in Supabase's image (POSTGRES_USER);
      // local/sql/bootstrap.sql creates `postgres` and demotes it.
      "-U",
      "supabase_admin",
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      `--pwfile=${pw}`,
      "--encoding=UTF8",
      "--locale=C.UTF-8",
    ],
    "initdb",
    { asPostgres: true },
  );
  Deno.removeSync(pw);
  const conf = [
    "",
    "# embed-queue local stack",
    `port = ${o.dbPort}`,
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = '/tmp'",
    "shared_preload_libraries = 'pg_cron'",
    "cron.database_name = 'postgres'",
    "cron.use_background_workers = on",
    "max_worker_processes = 32",
    "max_connections = 200",
    "log_min_messages = warning",
    ...(o.ephemeral ? ["fsync = off", "synchronous_commit = off", "full_page_writes = off"] : []),
  ].join("\n") + "\n";
  const confPath = join(pgData, "postgresql.conf");
  await Deno.writeTextFile(confPath, conf, { append: true });
}

async function psqlFile(dbUrl: string, file: string) {
  await must("psql", ["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", dbUrl, "-f", file], `psql ${file}`, {
    env: { PGOPTIONS: "--client-min-messages=warning" },
  });
}

export async function psql(dbUrl: string, sql: string): Promise<string> {
  return (await must("psql", ["-qAtX", "-v", "ON_ERROR_STOP=1", "-d", dbUrl, "-c", sql], "psql", {
    env: { PGOPTIONS: "--client-min-messages=warning" },
  })).trim();
}

/** Applies migrations (and, the first time, the seed) with the real Supabase CLI. */
async function push(dbUrl: string, withSeed: boolean) {
  const args = ["db", "push", `--remote=${dbUrl}`, "--yes"];
  if (withSeed) args.push("--include-seed");
  const r = await run(SUPABASE, args, {
    env: { SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", PGSSLMODE: "disable" },
  });
  if (r.ok) return;
  if (/Remote migration versions not found/.test(r.text)) {
    throw new Error(
      "this stack's database was migrated with migration files that no longer exist here " +
        "(the migrations changed since it was made): start it afresh with `npm run stack -- reset`",
    );
  }
  throw new Error(`supabase db push failed (exit ${r.code}):\n${r.text.trim()}`);
}

/** Vault secrets the scheduler and the webhook use to call the function on this stack's port. */
async function setQueueSecrets(dbUrl: string, functionsUrl: string, secret: string) {
  await psql(
    dbUrl,
    `do $$ begin
       if exists (select 1 from vault.secrets where name = 'embed_queue_url') then
         perform vault.update_secret(id, '${functionsUrl}/embed-queue') from vault.secrets where name = 'embed_queue_url';
       else
         perform vault.create_secret('${functionsUrl}/embed-queue', 'embed_queue_url', 'URL of the embed-queue Edge Function');
       end if;
       if not exists (select 1 from vault.secrets where name = 'embed_queue_secret') then
         perform vault.create_secret('${secret}', 'embed_queue_secret', 'Bearer credential pg_cron and the webhook send to embed-queue');
       end if;
     end $$;`,
  );
}

function spawnDetached(name: string, logFile: string, args: string[], env: Record<string, string>): number {
  // sh does the redirection so the process keeps logging after this one exits.
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec "$@" >>"$EQ_LOG" 2>&1', name, ...args],
    env: { ...env, EQ_LOG: logFile },
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  return child.pid;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000, logFile?: string) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  let tail = "";
  if (logFile) {
    try {
      tail = "\n" + Deno.readTextFileSync(logFile).split("\n").slice(-15).join("\n");
    } catch { /* no log */ }
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s${tail}`);
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

function log(o: StackOptions, msg: string) {
  if (!o.quiet) console.error(`[stack:${o.name}] ${msg}`);
}

export async function up(opts: Partial<StackOptions> = {}): Promise<StackInfo> {
  const o = { ...DEFAULTS, ...opts };
  const dir = stateDir(o.name);
  Deno.mkdirSync(join(dir, "logs"), { recursive: true });
  let st = readState(o.name);
  if (st) {
    o.dbPort = st.dbPort;
    o.apiPort = st.apiPort;
  }
  const pgData = st?.pgData ?? await choosePgData(o.name);
  const fresh = !exists(join(pgData, "PG_VERSION"));
  st = {
    dbPort: o.dbPort,
    apiPort: o.apiPort,
    pgData,
    pushedSeed: fresh ? false : st?.pushedSeed ?? false,
    migrations: fresh ? undefined : st?.migrations,
  };
  // The CLI skips a migration whose version it has applied, whatever the file says now: a file
  // edited since would leave this database running the old SQL without a word.
  const hashes = await migrationHashes();
  const changed = Object.keys(st.migrations ?? {}).filter((n) =>
    n in hashes && hashes[n] !== st!.migrations![n]
  );
  if (changed.length) {
    throw new Error(
      `migration ${changed[0]} changed since this stack applied it: start the stack afresh with ` +
        "`npm run stack -- reset` (its data is lost)",
    );
  }
  const inf = await info(o);

  if (!(await pgRunning(pgData))) {
    if (portInUse(o.dbPort)) {
      throw new Error(
        `port ${o.dbPort} is already in use by another program: stop it, or choose another with --db-port`,
      );
    }
    if (fresh) {
      log(o, `initdb (PostgreSQL ${PG_MAJOR})`);
      await initCluster(o, pgData);
    }
    writeState(o.name, st);
    log(o, `starting PostgreSQL on 127.0.0.1:${o.dbPort}`);
    await must(
      `${PG_BIN}/pg_ctl`,
      ["-D", pgData, "-l", join(pgData, "server.log"), "-w", "-t", "60", "start"],
      "pg_ctl start",
      {
        asPostgres: true,
      },
    );
  }
  writeState(o.name, st);

  const bootstrapped = await psql(inf.adminDbUrl, "select to_regclass('auth.users') is not null").catch(() =>
    "f"
  );
  if (bootstrapped !== "t") {
    log(o, "bootstrapping roles, schemas and extensions (as supabase_admin)");
    await psqlFile(inf.adminDbUrl, join(ROOT, "local/sql/bootstrap.sql"));
  } else if (await psql(inf.adminDbUrl, "select rolsuper from pg_roles where rolname = 'postgres'") !== "f") {
    // Made before `postgres` lost SUPERUSER (as on hosted Supabase): its migrations ran with powers
    // the platform does not give, so nothing it says about a deploy can be trusted.
    throw new Error(
      "this stack was made when `postgres` was a superuser, which it is not on Supabase: start it " +
        "afresh with `npm run stack -- reset` (its data is lost)",
    );
  }
  await setQueueSecrets(inf.dbUrl, inf.functionsUrl, inf.serviceRoleKey);
  if (o.beforePush && !st.pushedSeed) await o.beforePush(inf.dbUrl);
  const withSeed = !st.pushedSeed && o.seed !== false;
  log(o, withSeed ? "supabase db push --include-seed" : "supabase db push (new migrations)");
  await push(inf.dbUrl, withSeed);
  st.pushedSeed = true;
  st.migrations = hashes;
  writeState(o.name, st);

  // The transaction pooler, as Supabase puts Supavisor in front of every project.
  await startPooler({
    stateDir: dir,
    dbHost: "127.0.0.1",
    dbPort: o.dbPort,
    port: o.dbPort + POOLER_PORT_OFFSET,
    quiet: o.quiet,
  });

  if (o.functions) await startServices(o, inf);
  return inf;
}

/** The gateway (functions) and the pg_net worker; both are no-ops when already running. */
export async function startServices(opts: Partial<StackOptions>, inf?: StackInfo) {
  const o = { ...DEFAULTS, ...opts };
  const st = readState(o.name);
  if (st) {
    o.dbPort = st.dbPort;
    o.apiPort = st.apiPort;
  }
  inf ??= await info(o);
  const dir = stateDir(o.name);
  const gwPidFile = join(dir, "gateway.pid");
  if (!pidAlive(readPid(gwPidFile))) {
    if (portInUse(o.apiPort)) {
      throw new Error(
        `port ${o.apiPort} is already in use by another program: stop it, or choose another with --api-port`,
      );
    }
    const { file: envFile, env: fnEnv } = writeFunctionEnv(dir, o.functionEnv);
    // The plan's limits are the function's own settings (it keeps under them); the host
    // enforces the same values, the edge runtime's defaults where none is given.
    const limitFlags = Object.entries({
      EMBED_QUEUE_WALL_CLOCK_MS: "--wall-clock-ms",
      EMBED_QUEUE_CPU_SOFT_MS: "--cpu-soft-ms",
      EMBED_QUEUE_CPU_HARD_MS: "--cpu-hard-ms",
      EMBED_QUEUE_MEMORY_MB: "--memory-mb",
    }).flatMap(([name, flag]) => /^\d+$/.test(fnEnv[name] ?? "") ? [flag, fnEnv[name]] : []);
    const args = [
      DENO,
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "local/gateway.ts"),
      "--port",
      String(o.apiPort),
      "--functions-dir",
      join(ROOT, "supabase/functions"),
      "--config",
      join(ROOT, "supabase/config.toml"),
      "--state-dir",
      dir,
      "--env-file",
      envFile,
      // The Data API (PostgREST) connects as authenticator and switches role per request.
      "--data-api-db-url",
      `postgresql://authenticator:postgres@127.0.0.1:${o.dbPort}/postgres`,
      ...limitFlags,
    ];
    const logFile = join(dir, "logs/gateway.log");
    // The gateway's own environment: what Deno needs to run, and the platform's variables by
    // name. Nothing else of the caller's shell reaches a function (see writeFunctionEnv).
    const pid = spawnDetached("gateway", logFile, args, {
      ...runtimeEnv(),
      SUPABASE_URL: inf.apiUrl,
      // Through the transaction pooler, as the README tells a hosted project to connect: no
      // session state survives a transaction, so the function must need none.
      SUPABASE_DB_URL: inf.poolerUrl,
      SUPABASE_ANON_KEY: inf.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: inf.serviceRoleKey,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE_KEY }),
      JWT_SECRET: inf.jwtSecret,
    });
    Deno.writeTextFileSync(gwPidFile, `${pid}\n`);
    log(o, `functions gateway on ${inf.apiUrl}`);
    await waitFor("functions gateway", () => httpOk(`${inf.apiUrl}/health`), 30_000, logFile);
  }
  const nwPidFile = join(dir, "net_worker.pid");
  if (!pidAlive(readPid(nwPidFile))) {
    const logFile = join(dir, "logs/net_worker.log");
    const pid = spawnDetached("net_worker", logFile, [
      DENO,
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "local/net_worker.ts"),
      "--db-url",
      inf.adminDbUrl,
    ], runtimeEnv());
    Deno.writeTextFileSync(nwPidFile, `${pid}\n`);
    log(o, "pg_net worker started");
  }
  // Hosted pg_cron (1.6) ticks every 10 s; Debian 12's (1.4) only every minute. Restore the hosted
  // rhythm so overlapping runs happen here as they will there (local/cron_seconds.ts).
  const csPidFile = join(dir, "cron_seconds.pid");
  if (!pidAlive(readPid(csPidFile))) {
    const logFile = join(dir, "logs/cron_seconds.log");
    const pid = spawnDetached("cron_seconds", logFile, [
      DENO,
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "local/cron_seconds.ts"),
      "--db-url",
      inf.dbUrl,
    ], runtimeEnv());
    Deno.writeTextFileSync(csPidFile, `${pid}\n`);
  }
}

/** What a Deno process needs to find itself and its module cache; no setting of the project's. */
function runtimeEnv(): Record<string, string> {
  const keep: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (/^(PATH|HOME|LANG|LC_ALL|TZ|DENO_DIR|NO_COLOR)$/.test(k)) keep[k] = v;
  }
  return keep;
}

/**
 * The functions' environment file, as `supabase functions serve --env-file` takes one:
 * supabase/functions/.env, then the variables the caller names explicitly (tests, benchmarks,
 * and `start`, which says which of the shell's OPENAI_*, EMBEDDING_* and EMBED_QUEUE_* it
 * passes). The shell itself never reaches a function, as under the CLI and on hosted Supabase.
 */
function writeFunctionEnv(
  dir: string,
  extra: Record<string, string>,
): { file: string; env: Record<string, string> } {
  let text = "";
  try {
    text = Deno.readTextFileSync(join(ROOT, "supabase/functions/.env"));
  } catch { /* none */ }
  const lines = Object.entries(extra).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || /[\n\r"]/.test(v)) {
      throw new Error(`function variable ${k} cannot be written to an env file`);
    }
    return `${k}="${v}"`;
  });
  const file = join(dir, "functions.env");
  Deno.writeTextFileSync(
    file,
    [text.trimEnd(), "# passed explicitly by the caller", ...lines].join("\n") + "\n",
    {
      mode: 0o600,
    },
  );
  Deno.chmodSync(file, 0o600);
  return { file, env: { ...parseEnvFile(text), ...extra } };
}

/**
 * Whether `pid` is still the process `file` recorded: it started no later than the file was
 * written. Pids wrap around quickly on a busy machine (pid_max is often 32768), so a stale pid
 * file may name someone else's process, and killing its group would kill theirs.
 */
function pidIsFrom(pid: number, file: string): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const startTicks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const btime = Number(Deno.readTextFileSync("/proc/stat").match(/^btime (\d+)$/m)?.[1]);
    const written = Deno.statSync(file).mtime?.getTime();
    if (!Number.isFinite(startTicks) || !Number.isFinite(btime) || written === undefined) return true;
    // Clock ticks are 100 a second on Linux; a second of slack for rounding.
    return (btime + startTicks / 100) * 1000 <= written + 1000;
  } catch {
    return true; // no /proc: trust the file, as before
  }
}

async function stopPid(file: string, label: string, o: StackOptions) {
  const pid = readPid(file);
  if (pidAlive(pid) && pidIsFrom(pid!, file)) {
    // Each service leads its own process group (detached): signal the group so
    // function processes started by the gateway go too.
    try {
      Deno.kill(-pid!, "SIGTERM");
    } catch { /* gone */ }
    const until = Date.now() + 5000;
    while (Date.now() < until && pidAlive(pid)) await new Promise((r) => setTimeout(r, 50));
    try {
      Deno.kill(-pid!, "SIGKILL");
    } catch { /* gone */ }
    log(o, `${label} stopped`);
  }
  try {
    Deno.removeSync(file);
  } catch { /* none */ }
}

/** Stops the functions gateway (and its function processes) and the pg_net worker. */
export async function stopServices(opts: Partial<StackOptions> = {}) {
  const o = { ...DEFAULTS, ...opts };
  const dir = stateDir(o.name);
  await stopPid(join(dir, "gateway.pid"), "functions gateway", o);
  await stopPid(join(dir, "net_worker.pid"), "pg_net worker", o);
  await stopPid(join(dir, "cron_seconds.pid"), "pg_cron seconds stand-in", o);
  // Function processes the gateway may have left in their own groups.
  try {
    for (const e of Deno.readDirSync(join(dir, "functions"))) {
      if (e.name.endsWith(".pid")) await stopPid(join(dir, "functions", e.name), `function ${e.name}`, o);
    }
  } catch { /* none */ }
}

export async function down(opts: Partial<StackOptions> = {}) {
  const o = { ...DEFAULTS, ...opts };
  await stopServices(o);
  await stopPooler(stateDir(o.name));
  const st = readState(o.name);
  if (st && await pgRunning(st.pgData)) {
    await must(`${PG_BIN}/pg_ctl`, ["-D", st.pgData, "-m", "fast", "-w", "stop"], "pg_ctl stop", {
      asPostgres: true,
    });
    log(o, "PostgreSQL stopped");
  }
}

/**
 * Restarts this stack's PostgreSQL with pg_ctl: every connection drops, pg_cron and the
 * services reconnect by themselves. `mode` is pg_ctl's shutdown mode: "fast" (default) or
 * "immediate" (no shutdown checkpoint: crash recovery at start, as after a crash).
 */
export async function restartDatabase(opts: Partial<StackOptions> & { mode?: "fast" | "immediate" } = {}) {
  const o = { ...DEFAULTS, ...opts };
  const st = readState(o.name);
  if (!st) throw new Error(`stack "${o.name}" does not exist`);
  await must(
    `${PG_BIN}/pg_ctl`,
    [
      "-D",
      st.pgData,
      "-l",
      join(st.pgData, "server.log"),
      "-m",
      opts.mode ?? "fast",
      "-w",
      "-t",
      "60",
      "restart",
    ],
    "pg_ctl restart",
    { asPostgres: true },
  );
  log(o, `PostgreSQL restarted (${opts.mode ?? "fast"})`);
}

/** Removes the cluster and every file of this stack. */
export async function destroy(opts: Partial<StackOptions> = {}) {
  const o = { ...DEFAULTS, ...opts };
  await down(o);
  await stopPooler(stateDir(o.name), { remove: true }).catch(() => {});
  const st = readState(o.name);
  if (st?.pgData) await Deno.remove(join(st.pgData, ".."), { recursive: true }).catch(() => {});
  await Deno.remove(stateDir(o.name), { recursive: true }).catch(() => {});
}

export async function reset(opts: Partial<StackOptions> = {}): Promise<StackInfo> {
  const o = { ...DEFAULTS, ...opts };
  const st = readState(o.name);
  await destroy(o);
  return await up({ ...o, dbPort: st?.dbPort ?? o.dbPort, apiPort: st?.apiPort ?? o.apiPort });
}

export interface StackStatus {
  name: string;
  db: boolean;
  gateway: boolean;
  netWorker: boolean;
  pooler: boolean;
  info: StackInfo;
}

export async function status(opts: Partial<StackOptions> = {}): Promise<StackStatus> {
  const o = { ...DEFAULTS, ...opts };
  const st = readState(o.name);
  const inf = await info(o);
  const dir = stateDir(o.name);
  return {
    name: o.name,
    db: st ? await pgRunning(st.pgData) : false,
    gateway: pidAlive(readPid(join(dir, "gateway.pid"))) && await httpOk(`${inf.apiUrl}/health`),
    netWorker: pidAlive(readPid(join(dir, "net_worker.pid"))),
    pooler: poolerStatus(dir).running,
    info: inf,
  };
}

export function describe(s: StackStatus): string {
  const i = s.info;
  const mark = (b: boolean) => (b ? "running" : "stopped");
  return [
    `local stack "${s.name}"`,
    `         API URL: ${i.apiUrl}            (${mark(s.gateway)})`,
    `   Functions URL: ${i.functionsUrl}`,
    `          DB URL: ${i.dbUrl}   (${mark(s.db)})`,
    `      Pooler URL: ${i.poolerUrl}   (${mark(s.pooler)}; transaction mode, as port 6543 hosted)`,
    `   pg_net worker: ${mark(s.netWorker)}`,
    `      JWT secret: ${i.jwtSecret}`,
    `        anon key: ${i.anonKey}`,
    `service_role key: ${i.serviceRoleKey}`,
    `      secret key: ${i.secretKey}`,
  ].join("\n");
}

function parseArgs(args: string[]): { cmd: string; o: Partial<StackOptions>; json: boolean } {
  const o: Partial<StackOptions> = {};
  let cmd = "";
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const num = (flag: string) => {
      const n = Number(args[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 65535) {
        throw new Error(`${flag} needs a port number, got '${args[i] ?? ""}'`);
      }
      return n;
    };
    if (a === "--name") stateDir(o.name = args[++i] ?? "");
    else if (a === "--db-port") o.dbPort = num(a);
    else if (a === "--api-port") o.apiPort = num(a);
    else if (a === "--no-functions") o.functions = false;
    else if (a === "--json") json = true;
    else if (a === "--quiet") o.quiet = true;
    else if (!a.startsWith("-") && !cmd) cmd = a;
    else throw new Error(`unknown argument '${a}'`);
  }
  return { cmd, o, json };
}

const USAGE =
  `usage: stack <up|down|status|reset|env> [--name dev] [--db-port 54322] [--api-port 54321] [--no-functions] [--json]
  up      start PostgreSQL, apply migrations and seed with the Supabase CLI, start the functions gateway and the pg_net worker
  down    stop everything this stack started (no process is left)
  status  what is running, with URLs and keys
  reset   a new cluster: bootstrap, migrations, seed
  env     the stack's URLs and keys as shell variables`;

if (import.meta.main) {
  try {
    const { cmd, o, json } = parseArgs(Deno.args);
    if (cmd === "up") {
      await up(o);
      console.log(describe(await status(o)));
    } else if (cmd === "down") {
      await down(o);
    } else if (cmd === "status") {
      const s = await status(o);
      console.log(json ? JSON.stringify(s, null, 2) : describe(s));
    } else if (cmd === "reset") {
      await reset(o);
      console.log(describe(await status(o)));
    } else if (cmd === "env") {
      const i = await info(o);
      console.log(
        [
          `SUPABASE_URL=${i.apiUrl}`,
          `SUPABASE_DB_URL=${i.dbUrl}`,
          `SUPABASE_POOLER_URL=${i.poolerUrl}`,
          `SUPABASE_ANON_KEY=${i.anonKey}`,
          `SUPABASE_SERVICE_ROLE_KEY=${i.serviceRoleKey}`,
          `SUPABASE_SECRET_KEY=${i.secretKey}`,
        ].join("\n"),
      );
    } else {
      console.error(USAGE);
      Deno.exit(cmd ? 2 : 0);
    }
  } catch (e) {
    console.error(`stack: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
