/**
 * Shared by the CLI's integration tests: the test stack from EQ_TEST_* (set by tests/run.ts),
 * the CLI run as a subprocess against it, and rows of our own (own user, unique titles).
 */
import postgres from "postgres";
import { testEnv } from "../lib/env.ts";
import { ROOT } from "../../local/stack.ts";
import { stopTestPooler, testPoolerUrl } from "../lib/pooler.ts";
import { waitFor } from "../lib/wait.ts";

export const env = testEnv;
export const ignore = !env.dbUrl || !env.apiUrl;
if (ignore) {
  console.error(
    "CLI integration tests skipped: EQ_TEST_DB_URL / EQ_TEST_API_URL are not set (run them through npm test)",
  );
}

export function db() {
  return postgres(env.dbUrl, { max: 2, onnotice: () => {} });
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment the CLI gets: ours without any Supabase, OpenAI or queue variable, then the
 * test stack's URLs and key and the fake OpenAI server (the provider the stack's function uses).
 */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!/^(SUPABASE_|NEXT_PUBLIC_|OPENAI_|EMBEDDING_|EMBED_QUEUE_|EQ_)/.test(k)) base[k] = v;
  }
  return {
    ...base,
    NO_COLOR: "1",
    SUPABASE_URL: env.apiUrl,
    SUPABASE_SERVICE_ROLE_KEY: env.serviceRoleKey,
    SUPABASE_DB_URL: env.dbUrl,
    ...(env.fakeOpenAIUrl ? { OPENAI_BASE_URL: env.fakeOpenAIUrl, OPENAI_API_KEY: env.fakeOpenAIKey } : {}),
    ...extra,
  };
}

/**
 * Where the CLI's database connection goes: straight to the test stack's PostgreSQL, or through
 * the transaction pooler in front of it (local/pooler.ts, Supavisor's port 6543 on hosted).
 */
export const VIAS = ["direct", "pooled"] as const;
export type Via = typeof VIAS[number];

/** What a test name says of `via`: nothing for direct. */
export const viaLabel = (via: Via) => (via === "pooled" ? " (through the transaction pooler)" : "");

/** The CLI environment's SUPABASE_DB_URL for `via` (starts the tests' pooler if need be). */
export async function viaEnv(via: Via): Promise<Record<string, string>> {
  return via === "pooled" ? { SUPABASE_DB_URL: await testPoolerUrl() } : {};
}

/** Stops a pooler viaEnv started (none for direct, nor when the stack's own was handed over). */
export async function viaEnd(via: Via) {
  if (via === "pooled") await stopTestPooler();
}

/** Runs `cli/main.ts <args>` as a subprocess, as a user would. */
export async function cli(
  args: string[],
  opts: { env?: Record<string, string>; cleanEnv?: Record<string, string> } = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", "deno.json", "cli/main.ts", ...args],
    cwd: ROOT,
    env: opts.cleanEnv ?? cliEnv(opts.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A user of our own, so tests touch only their own rows. */
export async function makeUser(sql: postgres.Sql): Promise<string> {
  const id = crypto.randomUUID();
  await sql`insert into auth.users (id, email) values (${id}, ${`cli-${id}@example.test`})`;
  return id;
}

/**
 * The webhook calls the function at most once per webhook_min_interval_ms and drops a call
 * inside that interval (pg_cron, once a minute here, picks such work up). Tests that want the
 * fast path clear the last call's time first instead of sleeping past the interval.
 */
export async function unthrottleWebhook(sql: postgres.Sql) {
  await sql`update embed_queue.webhook_state set last_poke_at = null where last_poke_at <= now()`;
}

export async function makeSession(sql: postgres.Sql, userId: string, title: string): Promise<string> {
  await unthrottleWebhook(sql);
  const [{ id }] =
    await sql`insert into public.sessions (user_id, title) values (${userId}, ${title}) returning id`;
  return id as string;
}

export async function jobOf(sql: postgres.Sql, table: string, recordId: string) {
  const rows = await sql`
    select id, status, error_message, attempts, completed_at, model, tokens
    from public.embedding_queue where table_name = ${table} and record_id = ${recordId}`;
  return rows[0] ?? null;
}

export { waitFor };

export async function waitCompleted(sql: postgres.Sql, table: string, recordId: string) {
  return await waitFor(`${table} ${recordId} to be embedded`, async () => {
    const j = await jobOf(sql, table, recordId);
    return j?.status === "completed" ? j : null;
  });
}

/**
 * Holds the hands-off path (the webhook and the pg_cron tick) while `f` runs, so jobs stay
 * pending until the CLI acts on them; waits for running runs to finish first. Deno runs test
 * files one after another, so nothing else needs the path meanwhile; it is restored after.
 */
export async function withHandsOffPaused<T>(sql: postgres.Sql, f: () => Promise<T>): Promise<T> {
  await sql`select cron.alter_job(jobid, active := false) from cron.job where jobname = 'embed-queue-tick'`;
  await sql`update embed_queue.webhook_state set last_poke_at = now() + interval '1 hour'`;
  try {
    await waitFor("running runs to finish", async () => {
      const [{ n }] = await sql`
        select (select count(*) from embed_queue.runs where finished_at is null and started_at > now() - interval '10 minutes')
             + (select count(*) from public.embedding_queue where status = 'processing') as n`;
      return Number(n) === 0;
    });
    return await f();
  } finally {
    await sql`update embed_queue.webhook_state set last_poke_at = null`;
    await sql`select cron.alter_job(jobid, active := true) from cron.job where jobname = 'embed-queue-tick'`;
  }
}

/** The one line an expected error prints: no stack trace, no second line. */
export function oneErrorLine(r: CliResult): string {
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got ${lines.length}:\n${r.stderr}`);
  if (/^\s+at /m.test(r.stderr)) throw new Error(`stack trace on stderr:\n${r.stderr}`);
  return lines[0];
}
