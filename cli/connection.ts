/**
 * Where the CLI talks to: the local stack (URLs and keys from local/stack.ts `info()`), or a
 * project given by SUPABASE_URL, SUPABASE_DB_URL and a key that bypasses RLS (hosted, or any
 * other stack). The guide's NEXT_PUBLIC_SUPABASE_URL is read when SUPABASE_URL is not set.
 *
 * The key: SUPABASE_SECRET_KEY, one of the project's new secret API keys (`sb_secret_...`,
 * Dashboard → Settings → API Keys), or else the legacy SUPABASE_SERVICE_ROLE_KEY. The function
 * accepts either (supabase/functions/embed-queue/auth.ts).
 */
import { dbAddress, type DbPlace, UsageError } from "./errors.ts";

export interface Connection {
  /** For messages: `local stack "dev"` or the project's host. */
  label: string;
  local: boolean;
  stackName?: string;
  /** The API URL (functions live under /functions/v1). */
  apiUrl?: string;
  /** The key the function is called with: a secret key (`sb_secret_...`) or the service role key. */
  serviceRoleKey?: string;
  dbUrl?: string;
}

export type Env = Record<string, string | undefined>;

/** The prefix of Supabase's secret API keys; publishable ones start `sb_publishable_`. */
export const SECRET_KEY_PREFIX = "sb_secret_";

/**
 * SUPABASE_SECRET_KEY when set (it must be a secret key, never a publishable one), else
 * SUPABASE_SERVICE_ROLE_KEY (a legacy JWT, or a secret key put there). Messages never show a key.
 */
export function projectKey(env: Env): string | undefined {
  const secret = env.SUPABASE_SECRET_KEY?.trim();
  if (secret) {
    if (!secret.startsWith(SECRET_KEY_PREFIX) || secret.length === SECRET_KEY_PREFIX.length) {
      throw new UsageError(
        `SUPABASE_SECRET_KEY must be one of the project's secret API keys (${SECRET_KEY_PREFIX}..., ` +
          "Dashboard → Settings → API Keys)" +
          (secret.startsWith("sb_publishable_") ? ", not a publishable key" : ""),
      );
    }
    return secret;
  }
  return env.SUPABASE_SERVICE_ROLE_KEY?.trim() || undefined;
}

export interface LocalInfo {
  apiUrl: string;
  dbUrl: string;
  serviceRoleKey: string;
}

/** Pure: picks local or remote from the environment and the --stack flag. */
export function chooseConnection(
  env: Env,
  stackFlag: string | undefined,
  local: (name: string) => LocalInfo,
): Connection {
  const apiUrl = env.SUPABASE_URL || env.NEXT_PUBLIC_SUPABASE_URL || undefined;
  const dbUrl = env.SUPABASE_DB_URL || undefined;
  if (!stackFlag && (apiUrl || dbUrl)) {
    if (dbUrl && !URL.canParse(dbUrl)) {
      // Never the value: it holds the database password.
      throw new UsageError(
        "SUPABASE_DB_URL is not a valid connection string (value not shown): copy it again from Dashboard → Connect, " +
          "and percent-encode special characters in the password",
      );
    }
    let host = "the project";
    try {
      host = new URL(apiUrl ?? dbUrl!).host;
    } catch { /* keep the generic label */ }
    return {
      label: `project ${host}`,
      local: false,
      apiUrl: apiUrl?.replace(/\/+$/, ""),
      serviceRoleKey: projectKey(env),
      dbUrl,
    };
  }
  const name = stackFlag ?? "dev";
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) {
    throw new UsageError(
      "--stack needs a name of letters, digits, - and _ (as in `npm run stack -- up --name NAME`)",
    );
  }
  const i = local(name);
  return { label: `local stack "${name}"`, local: true, stackName: name, ...i };
}

export async function resolveConnection(stackFlag: string | undefined): Promise<Connection> {
  const env = Deno.env.toObject();
  const remote = !stackFlag && (env.SUPABASE_URL || env.NEXT_PUBLIC_SUPABASE_URL || env.SUPABASE_DB_URL);
  if (remote) return chooseConnection(env, stackFlag, () => ({ apiUrl: "", dbUrl: "", serviceRoleKey: "" }));
  // Imported only for the local stack: it reads the stack's state and signs the local keys.
  const stack = await import("../local/stack.ts");
  const i = await stack.info({ name: stackFlag ?? "dev" });
  return chooseConnection(
    {},
    stackFlag ?? "dev",
    () => ({ apiUrl: i.apiUrl, dbUrl: i.dbUrl, serviceRoleKey: i.serviceRoleKey }),
  );
}

export function needDb(c: Connection, command: string): string {
  if (!c.dbUrl) {
    throw new UsageError(
      `${command} needs SUPABASE_DB_URL (the project's Postgres connection string, Dashboard → Connect) next to SUPABASE_URL`,
    );
  }
  return c.dbUrl;
}

export function needFunction(c: Connection, command: string): { apiUrl: string; key: string } {
  if (!c.apiUrl) {
    throw new UsageError(
      `${command} needs SUPABASE_URL (https://<project-ref>.supabase.co) to call the function`,
    );
  }
  if (!c.serviceRoleKey) {
    throw new UsageError(
      `${command} needs SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SECRET_KEY (${SECRET_KEY_PREFIX}..., Dashboard → Settings → API Keys) to call the function`,
    );
  }
  return { apiUrl: c.apiUrl, key: c.serviceRoleKey };
}

export function dbPlace(c: Connection): DbPlace {
  return {
    label: c.local ? c.label : "SUPABASE_DB_URL",
    address: c.dbUrl ? dbAddress(c.dbUrl) : "the database",
    local: c.local,
    stackName: c.stackName,
  };
}
