/**
 * Where the CLI talks to: the local stack (URLs and keys from local/stack.ts `info()`), or a
 * project given by SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY and SUPABASE_DB_URL (hosted, or any
 * other stack). The guide's NEXT_PUBLIC_SUPABASE_URL is read when SUPABASE_URL is not set.
 */
import { dbAddress, type DbPlace, UsageError } from "./errors.ts";

export interface Connection {
  /** For messages: `local stack "dev"` or the project's host. */
  label: string;
  local: boolean;
  stackName?: string;
  /** The API URL (functions live under /functions/v1). */
  apiUrl?: string;
  serviceRoleKey?: string;
  dbUrl?: string;
}

export type Env = Record<string, string | undefined>;

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
    let host = "the project";
    try {
      host = new URL(apiUrl ?? dbUrl!).host;
    } catch { /* keep the generic label */ }
    return {
      label: `project ${host}`,
      local: false,
      apiUrl: apiUrl?.replace(/\/+$/, ""),
      serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY || undefined,
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
      `${command} needs SUPABASE_SERVICE_ROLE_KEY (Dashboard → Settings → API) to call the function`,
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
