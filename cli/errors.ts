/**
 * The CLI's expected errors and how they read. An expected error is one line on stderr that says
 * what is wrong and what to do; exit code 2 for usage errors, 1 otherwise. Messages never carry
 * secrets, row content, the search text or vectors. Classification is by error code (SQLSTATE,
 * errno, HTTP status), never by message text.
 */
import { oneLine } from "./format.ts";

export { oneLine };

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}

/** Wrong command line or missing configuration: exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = "UsageError";
  }
}

/** Where the CLI was talking to, for messages: `host:port`, never the password. */
export function dbAddress(dbUrl: string): string {
  try {
    const u = new URL(dbUrl);
    return `${u.hostname}:${u.port || "5432"}`;
  } catch {
    return "the database";
  }
}

export interface DbPlace {
  /** e.g. `the local stack "dev"` or `SUPABASE_DB_URL`. */
  label: string;
  address: string;
  local: boolean;
  stackName?: string;
}

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

function errCode(e: unknown): string {
  const c = (e as { code?: unknown })?.code;
  if (typeof c === "string") return c;
  // Deno's fetch/net errors carry the errno name in the message class, not a code.
  const name = (e as { name?: unknown })?.name;
  if (name === "ConnectionRefused") return "ECONNREFUSED";
  return "";
}

function startHint(p: DbPlace): string {
  return p.local
    ? `start it with \`npm start\` or \`npm run stack -- up${
      p.stackName && p.stackName !== "dev" ? ` --name ${p.stackName}` : ""
    }\``
    : "check SUPABASE_DB_URL (Dashboard → Connect) and that the project is not paused";
}

/**
 * The one-line message for a database error, or null when the error is not one we expect (the
 * caller then reports it as unexpected).
 */
export function describeDbError(e: unknown, p: DbPlace): string | null {
  const code = errCode(e);
  if (CONNECT_CODES.has(code) || /^08/.test(code) || code === "57P03") {
    return `cannot reach the database at ${p.address} (${p.label}): ${startHint(p)}`;
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return `the database host in ${p.label} does not resolve: check SUPABASE_DB_URL`;
  }
  if (code === "28P01" || code === "28000") {
    return `the database refused the login (${p.label}): check the user and password in SUPABASE_DB_URL`;
  }
  if (code === "3D000") return `the database named in ${p.label} does not exist: check SUPABASE_DB_URL`;
  if (code === "53300") {
    return `the database at ${p.address} has no free connections: try again, or use the pooler URL`;
  }
  if (code === "42P01" || code === "3F000" || code === "42883") {
    return `the embed_queue schema is missing or out of date at ${p.address}: apply the migrations (${
      p.local ? "npm run stack -- up" : "supabase db push"
    })`;
  }
  if (code === "42501") {
    return `permission denied at ${p.address}: SUPABASE_DB_URL must log in as postgres (or a role that owns embed_queue)`;
  }
  return null;
}

/** HTTP status of a call to the function → what to do. `bodyError` is the function's own JSON error. */
export function describeFunctionStatus(
  status: number,
  url: string,
  bodyError: string | null,
  local: boolean,
): string {
  if (status === 401 || status === 403) {
    return `the function refused the key (HTTP ${status}): SUPABASE_SERVICE_ROLE_KEY must be the project's service role key, or SUPABASE_SECRET_KEY one of its secret keys (Dashboard → Settings → API Keys)`;
  }
  if (status === 404) {
    return `no function at ${url} (HTTP 404): ${
      local
        ? "is supabase/functions/embed-queue there?"
        : "deploy it with `supabase functions deploy embed-queue`"
    }`;
  }
  if (status === 400) {
    return `the function rejected the request (HTTP 400): ${oneLine(bodyError ?? "bad request", 200)}`;
  }
  if (status === 503) {
    return `the function cannot reach its database (HTTP 503): ${
      oneLine(bodyError ?? "check SUPABASE_DB_URL", 200)
    }`;
  }
  if (status === 546) return "the function ran out of memory or CPU (HTTP 546): try a smaller --batch-size";
  if (status === 504 || status === 408) {
    return `the call to the function timed out (HTTP ${status}): try a smaller --batch-size; the jobs it held return to the queue`;
  }
  return `the function failed (HTTP ${status}): ${
    local
      ? "see the gateway log (.stack/<name>/logs/gateway.log)"
      : "see the function's logs in the Dashboard"
  }`;
}

export function describeFunctionUnreachable(url: string, local: boolean, stackName?: string): string {
  return `cannot reach the function at ${url}: ${
    local
      ? `start the local stack with \`npm start\` or \`npm run stack -- up${
        stackName && stackName !== "dev" ? ` --name ${stackName}` : ""
      }\``
      : "check SUPABASE_URL and that embed-queue is deployed (`supabase functions deploy embed-queue`)"
  }`;
}

/** The variables whose values are credentials, or connection strings that may carry one. */
const SECRET_VARS = [
  "SUPABASE_DB_URL",
  "SUPABASE_POOLER_URL",
  "SUPABASE_SERVICE_ROLE_KEY",
  "SUPABASE_SECRET_KEY",
  "OPENAI_API_KEY",
  "PGPASSWORD",
];

/** The password of a connection string, found by hand: it may be one `new URL` cannot parse. */
function urlPassword(url: string): string | null {
  const scheme = url.indexOf("://");
  if (scheme < 0) return null;
  const rest = url.slice(scheme + 3);
  const at = rest.lastIndexOf("@");
  if (at < 0) return null;
  const colon = rest.slice(0, at).indexOf(":");
  return colon < 0 ? null : rest.slice(colon + 1, at);
}

/**
 * Text with every credential taken out: `user:password@` of any URL in it, and the values (and
 * connection-string passwords) of the environment's secret variables, whether or not they parse.
 */
export function redact(text: string, env: Record<string, string | undefined> = Deno.env.toObject()): string {
  const secrets = new Set<string>();
  for (const k of SECRET_VARS) {
    const v = env[k]?.trim();
    if (!v) continue;
    const pw = urlPassword(v);
    if (pw) {
      secrets.add(pw);
      try {
        secrets.add(decodeURIComponent(pw));
      } catch { /* not percent-encoded */ }
    }
    secrets.add(v);
  }
  let t = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):[^@]*@/gi, "$1:***@");
  for (const s of [...secrets].filter((x) => x.length >= 3).sort((a, b) => b.length - a.length)) {
    t = t.split(s).join("***");
  }
  return t;
}

/** The line for an error nobody planned for: its class and code, first line only, no stack, no credential. */
export function describeUnexpected(e: unknown, env?: Record<string, string | undefined>): string {
  const code = errCode(e);
  const name = (e as Error)?.name ?? "Error";
  const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
  return `unexpected ${name}${code ? ` (${code})` : ""}: ${
    oneLine(redact(msg, env))
  }; set EQ_DEBUG=1 for details`;
}
