/**
 * What every part of the local stack shares: its options and defaults, the state file under
 * .stack/<name>, the URLs and keys a stack answers on, running a command, and its log line.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run as runCommand } from "../proc.ts";
import { poolerUrl } from "../pooler.ts";
import { anonKey, JWT_SECRET, SECRET_KEY, serviceRoleKey } from "../keys.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

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

export interface State {
  dbPort: number;
  apiPort: number;
  pgData: string;
  pushedSeed: boolean;
  /** sha256 of each migration file as this stack applied it (the CLI records versions only). */
  migrations?: Record<string, string>;
}

/** The pooler listens on the database port plus this. */
export const POOLER_PORT_OFFSET = 7;

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

export function readState(name: string): State | null {
  const file = join(stateDir(name), "state.json");
  try {
    return JSON.parse(Deno.readTextFileSync(file));
  } catch {
    return null;
  }
}

export function writeState(name: string, st: State) {
  Deno.mkdirSync(stateDir(name), { recursive: true });
  Deno.writeTextFileSync(join(stateDir(name), "state.json"), JSON.stringify(st, null, 2) + "\n");
}

export function run(
  cmd: string,
  args: string[],
  opts: { asPostgres?: boolean; env?: Record<string, string>; cwd?: string } = {},
) {
  return runCommand(cmd, args, { cwd: ROOT, ...opts });
}

export async function must(cmd: string, args: string[], what: string, opts: Parameters<typeof run>[2] = {}) {
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

export function pidAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

export function log(o: StackOptions, msg: string) {
  if (!o.quiet) console.error(`[stack:${o.name}] ${msg}`);
}
