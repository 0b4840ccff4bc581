/** Shared by the integration tests: the test stack's URLs, keys and small waiting helpers. */
import postgres from "postgres";
import { testEnv } from "../lib/env.ts";
import { fakeVector } from "../fakes/fake_vector.ts";
import { adminReset } from "../fakes/openai_process.ts";
import { invokeFunction } from "../lib/invoke.ts";
import { waitFor } from "../lib/wait.ts";

export const env = testEnv;
export const ignore = !env.dbUrl;

export function db() {
  return postgres(env.dbUrl, { max: 2, onnotice: () => {} });
}

/** A manual call of the test stack's function, as the service role unless told. */
export function invoke(body: Record<string, unknown> = {}, key: string | null = env.serviceRoleKey) {
  return invokeFunction(env.functionsUrl, key, body);
}

export { waitFor };

export function parseVector(text: string | null): number[] | null {
  return text === null ? null : JSON.parse(text);
}

/** True when `stored` (pgvector text) is the test server's vector for `text`. */
export function isVectorOf(stored: string | null, text: string, dims = 1536): boolean {
  const v = parseVector(stored);
  if (!v || v.length !== dims) return false;
  const want = fakeVector(text, dims);
  for (let i = 0; i < dims; i++) if (Math.abs(v[i] - want[i]) > 1e-6) return false;
  return true;
}

/** A user of our own, so tests touch only their own rows. */
export async function makeUser(sql: postgres.Sql): Promise<string> {
  const id = crypto.randomUUID();
  await sql`insert into auth.users (id, email) values (${id}, ${`t-${id}@example.test`})`;
  return id;
}

/**
 * A test's own world: a connection, a user of its own, a unique tag for its texts, and the
 * test server's script reset before and after.
 */
export async function scenario(
  f: (ctx: { sql: postgres.Sql; user: string; tag: string }) => Promise<void>,
): Promise<void> {
  const sql = db();
  await adminReset(env.fakeAdminUrl);
  try {
    await f({ sql, user: await makeUser(sql), tag: crypto.randomUUID() });
  } finally {
    await adminReset(env.fakeAdminUrl);
    await sql.end();
  }
}
