/**
 * The transaction pooler tests talk through (local/pooler.ts, a stand-in for Supavisor's port
 * 6543): the stack's own when tests/run.ts hands one over in EQ_TEST_POOLER_URL, else one these
 * tests start in front of the test stack's database on 25632 + EQ_PORT_OFFSET, under the test
 * stack's state folder. A test file that calls testPoolerUrl() calls stopTestPooler() at its end.
 */
import { join } from "node:path";
import { startPooler, stopPooler } from "../../local/pooler.ts";
import { portOffset, testEnv } from "./env.ts";

export const TEST_POOLER_PORT = 25632 + portOffset;
const given = Deno.env.get("EQ_TEST_POOLER_URL") ?? "";
let ownStateDir: string | null = null;

/** The test stack's database address (host and port) from EQ_TEST_DB_URL. */
export function testDbAddress(): { host: string; port: number } {
  const u = new URL(testEnv.dbUrl);
  return { host: u.hostname, port: Number(u.port || 5432) };
}

/** A state folder for a pooler of the tests' own, under the test stack's (or a temp folder). */
export function poolerStateDir(name: string): string {
  const dir = testEnv.stateDir
    ? join(testEnv.stateDir, name)
    : Deno.makeTempDirSync({ prefix: `eq-${name}-` });
  Deno.mkdirSync(dir, { recursive: true });
  return dir;
}

export async function testPoolerUrl(): Promise<string> {
  if (given) return given;
  ownStateDir ??= poolerStateDir("test-pooler");
  const { host, port } = testDbAddress();
  return (await startPooler({
    stateDir: ownStateDir,
    dbHost: host,
    dbPort: port,
    port: TEST_POOLER_PORT,
    quiet: true,
  }))
    .url;
}

export async function stopTestPooler() {
  if (ownStateDir) await stopPooler(ownStateDir);
}
