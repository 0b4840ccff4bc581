/**
 * The stack's services beside PostgreSQL, each a detached process with a pid file under the
 * stack's folder: the functions gateway (local/gateway.ts), the pg_net worker
 * (local/net_worker.ts) and the seconds-granular pg_cron stand-in (local/cron_seconds.ts). The
 * transaction pooler has its own module (local/pooler.ts).
 */
import { join } from "node:path";
import { parseEnvFile } from "../../cli/env_file.ts";
import { readPid } from "../proc.ts";
import { PUBLISHABLE_KEY, SECRET_KEY } from "../keys.ts";
import {
  DEFAULTS,
  info,
  log,
  pidAlive,
  portInUse,
  readState,
  ROOT,
  type StackInfo,
  type StackOptions,
  stateDir,
} from "./common.ts";

const DENO = Deno.execPath();

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

export async function httpOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
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
