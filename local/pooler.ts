/**
 * A local stand-in for Supabase's transaction pooler: Debian's `pgbouncer` in transaction mode in
 * front of the local stack's PostgreSQL.
 *
 * On hosted Supabase the pooler is Supavisor; its transaction mode listens on port 6543 (the
 * "Transaction pooler" connection string). The Supabase CLI's own local pooler listens on 54329
 * (`[db.pooler]` in the config.toml template of Supabase CLI 3.1: transaction mode, 20 server
 * connections, 100 clients). Here it listens on a port the caller chooses and forwards to the
 * stack's database. `supabase db push --dry-run` and `supabase db lint` (CLI 3.1) work through it.
 *
 * What it reproduces of Supavisor's transaction mode, for a client:
 * - A server connection belongs to a client for one transaction only, then goes back to the
 *   pool. Nothing resets it between clients: Supavisor sends `DISCARD ALL` only in session mode
 *   (supabase/supavisor lib/supavisor/db_handler.ex, `:cleanup`, at v2.9.7), and pgbouncer runs
 *   no `server_reset_query` in transaction mode. So a session-level `set`, a session advisory
 *   lock, `LISTEN`, a temporary table or a `prepare` made in one transaction may be gone in the
 *   next, or seen by another client; Supabase's self-hosting guide lists exactly these as not
 *   supported in transaction mode (supabase.com/docs/guides/self-hosting/accessing-postgres).
 * - No named prepared statements (protocol-level Parse with a name): Supabase's docs say
 *   Supavisor's transaction mode does not support them (supabase.com/docs/guides/troubleshooting/
 *   disabling-prepared-statements-qL8lEL); Supavisor can translate them only behind the
 *   `named_prepared_statements` feature flag, off by default (supavisor config/runtime.exs and
 *   docs/faq.md, v2.9.7). Clients must use unnamed statements (postgres.js `prepare: false`).
 *   pgbouncer 1.18 (bookworm) cannot track them at all; with 1.21 or later (trixie), which can,
 *   we write `max_prepared_statements = 0` so that it does not.
 * - A pool of 15 server connections per database and user (Supavisor's tenant default
 *   `default_pool_size`, lib/supavisor/tenants/tenant.ex; the dashboard's default "Pool Size")
 *   and 200 clients (the pooler's client limit of the smallest computes, as in Supabase's
 *   troubleshooting note "Preventing Max client connections reached errors", supabase/supabase
 *   discussion 22305); a client waits for a free server connection up to 60 s, then gets an
 *   error (a queued connection waits "up to a minute" there, same note; pgbouncer's own default
 *   is 120 s). The pool size can be set per pooler.
 * - Startup parameters Supavisor does not use (it reads user, database, application_name and
 *   `search_path`, see lib/supavisor/client_handler/protocol_helpers.ex) are ignored instead of
 *   refused: `extra_float_digits`, `options` (psql's PGOPTIONS), `search_path`.
 * - Passwords are checked with SCRAM-SHA-256 from the client and towards the server.
 *
 * What differs:
 * - The user name is the role's own (`postgres`); hosted Supavisor wants `postgres.<project-ref>`.
 * - `search_path` in the startup packet is ignored here; Supavisor keeps one pool per search_path.
 * - No TLS, no session mode on a second port (hosted: 5432 on the pooler host), no IPv6.
 * - The roles it knows are fixed in its auth file: postgres, authenticator and supabase_admin
 *   with the local stack's password `postgres`; Supavisor asks the database (auth_query).
 * - Errors at the pool's limits read as pgbouncer's, not Supavisor's (e.g. "no more connections
 *   allowed (max_client_conn)" instead of "Max client connections reached").
 *
 * Files live under `<stateDir>/pooler/`: pgbouncer.ini, userlist.txt, pgbouncer.pid,
 * pgbouncer.log. pgbouncer refuses to run as root, so as root it runs as the `postgres` user, and
 * its folder moves under /tmp when that user cannot reach the state folder (as local/stack.ts
 * does for the data folder).
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { exists, readPid, run as runCommand } from "./proc.ts";

export interface PoolerOptions {
  /** The stack's state folder; the pooler's files go in `<stateDir>/pooler/` (or a /tmp twin). */
  stateDir: string;
  dbHost: string;
  dbPort: number;
  /** The port the pooler listens on, on 127.0.0.1. */
  port: number;
  /** Server connections per database and user (Supavisor's default: 15). */
  poolSize?: number;
  quiet?: boolean;
}

export interface PoolerInfo {
  url: string;
  pid: number;
}

const POOLER_DEFAULTS = { poolSize: 15, maxClients: 200, waitSeconds: 60 };
/** Roles a client may log in as through the pooler, with the local stack's password. */
const ROLES = ["postgres", "authenticator", "supabase_admin"];
const PASSWORD = "postgres";

const isRoot = Deno.uid() === 0;
const PGBOUNCER = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find(exists) ?? "pgbouncer";

/** The connection string of a pooler on `port` (as `postgres`, database `postgres`). */
export function poolerUrl(port: number, user = "postgres"): string {
  return `postgresql://${user}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

async function run(cmd: string, args: string[], asPostgres = false) {
  return await runCommand(cmd, args, { asPostgres });
}

/** Where the pooler's files go when the `postgres` user cannot reach the state folder. */
function tmpTwin(stateDir: string): string {
  return `/tmp/embed-queue-pooler-${createHash("sha1").update(stateDir).digest("hex").slice(0, 10)}`;
}

/** The pooler's folder: under the state folder, or under /tmp if `postgres` cannot reach that. */
async function poolerDir(stateDir: string): Promise<string> {
  Deno.mkdirSync(stateDir, { recursive: true });
  const preferred = join(stateDir, "pooler");
  if (!isRoot || (await run("test", ["-x", stateDir], true)).ok) return preferred;
  return tmpTwin(stateDir);
}

/** Both places a pooler of this state folder may have used (for stop). */
function candidateDirs(stateDir: string): string[] {
  return [join(stateDir, "pooler"), tmpTwin(stateDir)];
}

/** Alive and a pgbouncer (a pid file left by a crash may name another process by now). */
function isPgbouncer(pid: number | null): pid is number {
  if (!pid) return false;
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("pgbouncer");
  } catch {
    return false;
  }
}

function portInUse(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return false;
  } catch {
    return true;
  }
}

async function pgbouncerVersion(): Promise<[number, number]> {
  const r = await run(PGBOUNCER, ["--version"]);
  const m = r.text.match(/PgBouncer (\d+)\.(\d+)/i);
  if (!r.ok || !m) {
    throw new Error("pgbouncer is not installed: run `npm run setup` (it installs Debian's pgbouncer)");
  }
  return [Number(m[1]), Number(m[2])];
}

function iniText(o: Required<Omit<PoolerOptions, "quiet">>, dir: string, version: [number, number]): string {
  const [major, minor] = version;
  return [
    "; Written by local/pooler.ts: a stand-in for Supavisor's transaction mode (see that file).",
    "[databases]",
    // Any database name the client asks for, on the stack's server.
    `* = host=${o.dbHost} port=${o.dbPort}`,
    "",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${o.port}`,
    "unix_socket_dir =",
    "pool_mode = transaction",
    `default_pool_size = ${o.poolSize}`,
    `max_client_conn = ${POOLER_DEFAULTS.maxClients}`,
    `query_wait_timeout = ${POOLER_DEFAULTS.waitSeconds}`,
    "auth_type = scram-sha-256",
    `auth_file = ${join(dir, "userlist.txt")}`,
    "ignore_startup_parameters = extra_float_digits,options,search_path",
    // Named prepared statements are not carried across server connections (see the header).
    ...(major > 1 || minor >= 21 ? ["max_prepared_statements = 0"] : []),
    `logfile = ${join(dir, "pgbouncer.log")}`,
    `pidfile = ${join(dir, "pgbouncer.pid")}`,
    "log_connections = 0",
    "log_disconnections = 0",
    "",
  ].join("\n");
}

/**
 * Starts pgbouncer in transaction mode on 127.0.0.1:`port` in front of `dbHost:dbPort`, as a
 * daemon. A no-op when this state folder's pooler is already running (its settings stay as they
 * were). Throws one line when the port is taken or pgbouncer is missing.
 */
export async function startPooler(opts: PoolerOptions): Promise<PoolerInfo> {
  const o = { poolSize: POOLER_DEFAULTS.poolSize, ...opts };
  const dir = await poolerDir(o.stateDir);
  const pidFile = join(dir, "pgbouncer.pid");
  const running = readPid(pidFile);
  if (isPgbouncer(running)) return { url: poolerUrl(runningPort(dir) ?? o.port), pid: running };

  if (portInUse(o.port)) {
    throw new Error(
      `port ${o.port} is already in use by another program: stop it, or choose another pooler port`,
    );
  }
  const version = await pgbouncerVersion();
  Deno.mkdirSync(dir, { recursive: true });
  try {
    Deno.removeSync(pidFile); // a stale one makes pgbouncer refuse to start
  } catch { /* none */ }
  const ini = join(dir, "pgbouncer.ini");
  Deno.writeTextFileSync(ini, iniText(o, dir, version));
  Deno.writeTextFileSync(join(dir, "userlist.txt"), ROLES.map((r) => `"${r}" "${PASSWORD}"\n`).join(""));
  // The auth file holds passwords: readable by the pooler's user only.
  Deno.chmodSync(join(dir, "userlist.txt"), 0o600);
  if (isRoot) {
    const r = await run("chown", ["-R", "postgres:postgres", dir]);
    if (!r.ok) throw new Error(`chown of the pooler's folder failed: ${r.text.trim()}`);
  }
  // -d: pgbouncer forks into the background and writes its pid file.
  const r = await run(PGBOUNCER, ["-d", "-q", ini], true);
  const logFile = join(dir, "pgbouncer.log");
  if (!r.ok) throw new Error(`pgbouncer did not start (exit ${r.code}): ${lastLines(logFile, r.text)}`);
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const pid = readPid(pidFile);
    if (isPgbouncer(pid) && portInUse(o.port)) {
      if (!o.quiet) console.error(`[pooler] pgbouncer (transaction mode) on 127.0.0.1:${o.port}`);
      return { url: poolerUrl(o.port), pid };
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`pgbouncer did not start listening on ${o.port}: ${lastLines(logFile, r.text)}`);
}

/** The port a running pooler was started with (its ini file), whatever this call asked for. */
function runningPort(dir: string): number | null {
  try {
    const m = Deno.readTextFileSync(join(dir, "pgbouncer.ini")).match(/^listen_port = (\d+)$/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function lastLines(logFile: string, fallback: string): string {
  let text = fallback;
  try {
    text = Deno.readTextFileSync(logFile) || fallback;
  } catch { /* no log yet */ }
  return text.trim().split("\n").slice(-3).join(" | ") || "no output";
}

/**
 * Stops this state folder's pooler (client connections drop); no process is left. With
 * `remove`, its folder goes too (the /tmp one is outside the state folder).
 */
export async function stopPooler(stateDir: string, opts: { remove?: boolean } = {}): Promise<void> {
  for (const dir of candidateDirs(stateDir)) {
    const pidFile = join(dir, "pgbouncer.pid");
    const pid = readPid(pidFile);
    if (isPgbouncer(pid)) {
      // SIGINT: pgbouncer's "safe shutdown" waits for transactions in flight (up to 2 s here);
      // then SIGKILL.
      try {
        Deno.kill(pid, "SIGINT");
      } catch { /* gone */ }
      const until = Date.now() + 2000;
      while (Date.now() < until && isPgbouncer(pid)) await new Promise((r) => setTimeout(r, 20));
      if (isPgbouncer(pid)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
        while (isPgbouncer(pid)) await new Promise((r) => setTimeout(r, 20));
      }
    }
    try {
      if (opts.remove) Deno.removeSync(dir, { recursive: true });
      else Deno.removeSync(pidFile);
    } catch { /* none */ }
  }
}

/** Whether this state folder's pooler runs (and its pid). */
export function poolerStatus(stateDir: string): { running: boolean; pid: number | null } {
  for (const dir of candidateDirs(stateDir)) {
    const pid = readPid(join(dir, "pgbouncer.pid"));
    if (isPgbouncer(pid)) return { running: true, pid };
  }
  return { running: false, pid: null };
}
