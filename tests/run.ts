/**
 * `npm test`: brings up an ephemeral local stack on its own ports, runs every pgTAP file with
 * pg_prove and every Deno test, tears the stack down, and ends with one line
 * `N passed, N failed` over all of them.
 */
import { join } from "node:path";
import * as stack from "../local/stack.ts";
import { startFakeOpenAIProcess } from "./fakes/openai_process.ts";
import { portOffset } from "./lib/env.ts";

const NAME = "test";
// Fixed ports below Linux's ephemeral range (32768–60999): no outgoing connection can be holding
// them when the stack binds (as with every stack the tests and benchmarks start).
const DB_PORT = Number(Deno.env.get("EQ_TEST_DB_PORT") ?? 25322 + portOffset);
const API_PORT = Number(Deno.env.get("EQ_TEST_API_PORT") ?? 25321 + portOffset);

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

/** Runs a command, echoing its output, and counts TAP results (top-level `ok`/`not ok`). */
async function runTap(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  tally: Tally,
  indentOk: RegExp,
) {
  const child = new Deno.Command(cmd, {
    args,
    env,
    cwd: stack.ROOT,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  })
    .spawn();
  const dec = new TextDecoder();
  let buf = "";
  let fileFailed = 0; // `not ok` lines seen in the current pg_prove file
  const handle = (line: string) => {
    console.log(line);
    if (/^\S+\.sql \.+/.test(line)) fileFailed = 0;
    // pg_prove's count for a file, which includes tests that never ran (the file died early).
    const summary = line.match(/^Failed (\d+)\/\d+ subtests/);
    if (summary) tally.failed += Math.max(0, Number(summary[1]) - fileFailed);
    const m = line.match(indentOk);
    if (m) {
      if (m[1]) {
        tally.failed++;
        fileFailed++;
      } else if (/# SKIP/i.test(line)) tally.skipped++;
      else tally.passed++;
    }
  };
  for await (const chunk of child.stdout) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      handle(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  if (buf) handle(buf);
  return (await child.status).code;
}

/** A runner that failed without a counted failure (a crash, a type error) still counts one. */
function noteExit(tally: Tally, failedBefore: number) {
  if (tally.failed === failedBefore) tally.failed++;
}

/** The stack's log files, by name (none when the folder is gone). */
function logFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

function printLogTails(dir: string, lines: number) {
  for (const name of logFiles(dir)) {
    const text = Deno.readTextFileSync(join(dir, name)).trimEnd();
    console.log(`\n# the last ${lines} lines of ${name}`);
    for (const line of text.split("\n").slice(-lines)) console.log(`#   ${line}`);
  }
}

/** Events that say something went wrong, wherever in a log they are. */
const INCIDENTS = new Set([
  "gateway.request_failed",
  "gateway.worker_limit",
  "gateway.function_exited",
  "run.crashed",
  "report.error",
  "edge_runtime.wait_until_rejected",
]);

/**
 * The lines of each log that are not routine: the events above and anything that is not a JSON
 * event (a stack trace, an uncaught error). A failure early in a run is then in the output even
 * when the log's tail is about later tests.
 */
function printIncidents(dir: string, max: number) {
  for (const name of logFiles(dir)) {
    const picked = Deno.readTextFileSync(join(dir, name)).split("\n").filter((line) => {
      if (!line.trim()) return false;
      try {
        const o = JSON.parse(line);
        if (o.event !== "gateway.function_exited") return INCIDENTS.has(o.event);
        return o.code !== 0 && o.signal !== "SIGKILL"; // SIGKILL: a test's own kill or a limit (logged apart)
      } catch {
        return !line.startsWith("Deno.serve: request.signal aborts");
      }
    });
    if (picked.length === 0) continue;
    console.log(
      `\n# incidents in ${name} (${picked.length}${picked.length > max ? `, the last ${max}` : ""})`,
    );
    for (const line of picked.slice(-max)) console.log(`#   ${line}`);
  }
}

async function main(): Promise<number> {
  const tally: Tally = { passed: 0, failed: 0, skipped: 0 };
  const started = performance.now();
  let failures = 0;
  let logsDir: string | null = null;
  const fake = await startFakeOpenAIProcess();
  try {
    await stack.destroy({ name: NAME, quiet: true });
    const stackOpts = {
      name: NAME,
      dbPort: DB_PORT,
      apiPort: API_PORT,
      ephemeral: true,
      quiet: true,
      functionEnv: { OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.baseUrl },
    };
    // The database first, with nothing processing: pgTAP sees the seeded state (55 pending).
    const info = await stack.up({ ...stackOpts, functions: false });
    logsDir = join(info.stateDir, "logs");
    const env: Record<string, string> = {
      ...Deno.env.toObject(),
      EQ_TEST_DB_URL: info.dbUrl,
      EQ_TEST_POOLER_URL: info.poolerUrl,
      EQ_TEST_API_URL: info.apiUrl,
      EQ_TEST_FUNCTIONS_URL: info.functionsUrl,
      EQ_TEST_ANON_KEY: info.anonKey,
      EQ_TEST_SERVICE_ROLE_KEY: info.serviceRoleKey,
      EQ_TEST_STATE_DIR: info.stateDir,
      EQ_TEST_FAKE_OPENAI_URL: fake.baseUrl,
      EQ_TEST_FAKE_OPENAI_KEY: fake.apiKey,
      EQ_TEST_FAKE_OPENAI_ADMIN_URL: fake.adminUrl,
    };

    console.log("\n# pgTAP (pg_prove)");
    const sqlFiles = [...Deno.readDirSync(join(stack.ROOT, "supabase/tests"))]
      .filter((e) => e.name.endsWith(".sql")).map((e) => join("supabase/tests", e.name)).sort();
    if (sqlFiles.length) {
      const u = new URL(info.dbUrl);
      const failedBefore = tally.failed;
      const code = await runTap(
        "pg_prove",
        [
          "--verbose",
          "--host",
          u.hostname,
          "--port",
          u.port,
          "--username",
          "postgres",
          "--dbname",
          "postgres",
          ...sqlFiles,
        ],
        { ...env, PGPASSWORD: "postgres" },
        tally,
        /^(?:.*\.sql \.+ )?(not )?ok \d+/,
      );
      if (code !== 0) noteExit(tally, failedBefore);
    }

    // Then the gateway and the pg_net worker: the seed's webhook call goes out and the
    // hands-off test watches the backlog drain before anything else touches the queue.
    await stack.startServices(stackOpts, info);
    for (const [title, paths] of [["hands-off", ["tests/e2e/"]], ["all other", ["tests/"]]] as const) {
      console.log(`\n# deno test (${title})`);
      const ignoreE2e = title === "hands-off" ? [] : ["--ignore=tests/e2e/"];
      const failedBefore = tally.failed;
      const code = await runTap(
        Deno.execPath(),
        [
          "test",
          "-A",
          "--config",
          "deno.json",
          "--reporter=tap",
          ...ignoreE2e,
          ...paths,
        ],
        env,
        tally,
        /^(not )?ok \d+/,
      );
      if (code !== 0) noteExit(tally, failedBefore);
    }
  } catch (e) {
    console.error(`\ntest run aborted: ${(e as Error).message}`);
    failures++;
    tally.failed++;
  } finally {
    // On a failure, the end of the stack's logs (the function's, the gateway's, the pg_net
    // worker's) before the ephemeral stack and its logs are removed.
    if (tally.failed > 0 && logsDir) {
      printIncidents(logsDir, 100);
      printLogTails(logsDir, 60);
    }
    await stack.destroy({ name: NAME, quiet: true }).catch((e) => console.error(`teardown: ${e.message}`));
    await fake.close();
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`\n# wall time ${secs} s`);
  console.log(`${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped`);
  return failures > 0 || tally.failed > 0 ? 1 : 0;
}

Deno.exit(await main());
