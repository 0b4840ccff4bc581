/**
 * The Docker-free local Supabase stack: PostgreSQL (pgvector, pg_cron, pgTAP, the pg_net and
 * Vault stand-ins), the pg_net worker and the Edge Functions gateway.
 *
 *   deno run -A local/stack.ts up [--name dev] [--db-port 54322] [--api-port 54321] [--no-functions]
 *   deno run -A local/stack.ts down | status [--json] | reset | env
 *
 * The parts, one concern each: stack/common.ts (options, state, URLs and keys), stack/postgres.ts
 * (the cluster), stack/schema.ts (bootstrap, Vault secrets, migrations and seed), stack/services.ts
 * (gateway, pg_net worker, pg_cron seconds) and stack/cli.ts (this command line). This module
 * puts them together (up, down, reset, status) and is what the tests, benchmarks and CLI import.
 *
 * A reset is a new cluster (pg_cron holds its database open), bootstrapped and pushed again
 * with the real Supabase CLI: `supabase db reset --remote` would drop auth, net and cron here.
 */
import { join } from "node:path";
import { exists, readPid } from "./proc.ts";
import { poolerStatus, startPooler, stopPooler } from "./pooler.ts";
import {
  DEFAULTS,
  info,
  log,
  pidAlive,
  POOLER_PORT_OFFSET,
  portInUse,
  readState,
  type StackInfo,
  type StackOptions,
  stateDir,
  writeState,
} from "./stack/common.ts";
import {
  choosePgData,
  initCluster,
  PG_MAJOR,
  pgRunning,
  startCluster,
  stopCluster,
} from "./stack/postgres.ts";
import { bootstrap, migrationHashes, push, setQueueSecrets } from "./stack/schema.ts";
import { httpOk, startServices, stopServices } from "./stack/services.ts";

export { DEFAULTS, info, portInUse, ROOT, stateDir } from "./stack/common.ts";
export type { StackInfo, StackOptions } from "./stack/common.ts";
export { psql, restartDatabase } from "./stack/postgres.ts";
export { migrationHashes } from "./stack/schema.ts";
export { startServices, stopServices } from "./stack/services.ts";

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
    await startCluster(pgData);
  }
  writeState(o.name, st);

  if (await bootstrap(inf)) log(o, "bootstrapped roles, schemas and extensions (as supabase_admin)");
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

export async function down(opts: Partial<StackOptions> = {}) {
  const o = { ...DEFAULTS, ...opts };
  await stopServices(o);
  await stopPooler(stateDir(o.name));
  const st = readState(o.name);
  if (st && await pgRunning(st.pgData)) {
    await stopCluster(st.pgData);
    log(o, "PostgreSQL stopped");
  }
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

if (import.meta.main) {
  const { main } = await import("./stack/cli.ts");
  Deno.exit(await main(Deno.args, { up, down, reset, status, describe, info }));
}
