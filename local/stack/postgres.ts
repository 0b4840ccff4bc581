/**
 * The stack's PostgreSQL cluster: Debian's server binaries, run as the postgres user when we are
 * root; initdb with supabase_admin as the bootstrap superuser; start, stop, restart; psql.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { DEFAULTS, log, must, readState, ROOT, run, type StackOptions, stateDir } from "./common.ts";

const isRoot = Deno.uid() === 0;
export const PG_MAJOR = detectPgMajor();

function detectPgMajor(): string {
  for (const v of ["17", "16", "15"]) {
    try {
      Deno.statSync(`/usr/lib/postgresql/${v}/bin/postgres`);
      return v;
    } catch { /* next */ }
  }
  return "15";
}
export const PG_BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;

/** The data folder must be reachable by the postgres user when we run as root. */
export async function choosePgData(name: string): Promise<string> {
  const preferred = join(stateDir(name), "pgdata");
  if (!isRoot) return preferred;
  const probe = await run("test", ["-x", stateDir(name)], { asPostgres: true });
  if (probe.ok) return preferred;
  const hash = createHash("sha1").update(ROOT).digest("hex").slice(0, 10);
  return `/tmp/embed-queue-${hash}/${name}/pgdata`;
}

export async function pgRunning(pgData: string): Promise<boolean> {
  const r = await run(`${PG_BIN}/pg_ctl`, ["-D", pgData, "status"], { asPostgres: true });
  return r.ok;
}

export async function initCluster(o: StackOptions, pgData: string) {
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

export async function psqlFile(dbUrl: string, file: string) {
  await must("psql", ["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", dbUrl, "-f", file], `psql ${file}`, {
    env: { PGOPTIONS: "--client-min-messages=warning" },
  });
}

export async function psql(dbUrl: string, sql: string): Promise<string> {
  return (await must("psql", ["-qAtX", "-v", "ON_ERROR_STOP=1", "-d", dbUrl, "-c", sql], "psql", {
    env: { PGOPTIONS: "--client-min-messages=warning" },
  })).trim();
}

/** Starts the cluster in `pgData` (logging to its server.log) and waits until it accepts connections. */
export async function startCluster(pgData: string) {
  await must(
    `${PG_BIN}/pg_ctl`,
    ["-D", pgData, "-l", join(pgData, "server.log"), "-w", "-t", "60", "start"],
    "pg_ctl start",
    {
      asPostgres: true,
    },
  );
}

/** Stops the cluster in `pgData` (fast shutdown) and waits for it. */
export async function stopCluster(pgData: string) {
  await must(`${PG_BIN}/pg_ctl`, ["-D", pgData, "-m", "fast", "-w", "stop"], "pg_ctl stop", {
    asPostgres: true,
  });
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
