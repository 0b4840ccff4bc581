/**
 * `start` on a fresh stack of its own (not the shared test stack): the hands-off path drains the
 * seeded backlog with no call from the CLI, the summary counts every seeded row, and the stack
 * is stopped afterwards with no process left. Then Ctrl-C on a running `start` stops it too.
 */
import assert from "node:assert/strict";
import * as stack from "../../local/stack.ts";
import { cliEnv, env, ignore } from "./helpers.ts";
import { portOffset } from "../lib/env.ts";

const NAME = "cli-start";
const DB_PORT = 25522 + portOffset;
const API_PORT = 25521 + portOffset;
const START = [
  "run",
  "-A",
  "--config",
  "deno.json",
  "cli/main.ts",
  "start",
  "--stack",
  NAME,
  "--db-port",
  String(DB_PORT),
  "--api-port",
  String(API_PORT),
];

/** The CLI's environment for a stack of its own: no project variables, the fake OpenAI server. */
function startEnv(): Record<string, string> {
  const e = cliEnv();
  delete e.SUPABASE_URL;
  delete e.SUPABASE_SERVICE_ROLE_KEY;
  delete e.SUPABASE_DB_URL;
  return e;
}

async function assertStopped() {
  const s = await stack.status({ name: NAME });
  assert.deepEqual({ db: s.db, gateway: s.gateway, netWorker: s.netWorker }, {
    db: false,
    gateway: false,
    netWorker: false,
  });
  assert.equal(stack.portInUse(DB_PORT), false, "nothing listens on the database port");
  assert.equal(stack.portInUse(API_PORT), false, "nothing listens on the API port");
}

Deno.test({
  name: "cli start: a fresh stack drains its seed hands-off, prints the guide's summary, stops",
  ignore: ignore || !env.fakeOpenAIUrl,
}, async () => {
  await stack.destroy({ name: NAME, quiet: true });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...START, "--exit-after-drain"],
      cwd: stack.ROOT,
      env: startEnv(),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `exit ${out.code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /this command makes no call itself/);
    // stdout is a pipe here: plain progress lines, one per second, per target.
    assert.match(
      stdout,
      /^\[\s*\d+ s\] sessions \d+\/\d+: pending \d+, processing \d+, completed \d+, failed \d+, [\d.]+ rows\/s \| summaries /m,
    );
    const i = stdout.indexOf("=== PROCESSING SUMMARY ===");
    assert.ok(i >= 0, stdout);
    const block = stdout.slice(i).split("\n");
    assert.deepEqual(block.slice(0, 4), [
      "=== PROCESSING SUMMARY ===",
      "Total records processed: 55",
      "Total errors: 0",
      "Success rate: 100.0%",
    ]);
    assert.match(stdout.slice(i), /^Tokens: [\d,]+$/m);
    assert.match(stdout.slice(i), /^Estimated cost: \$/m);
    assert.match(stdout.slice(i), /^Model: text-embedding-3-small$/m);
    assert.match(stdout, /Stopped: no process of the stack is left\.\n$/);
    await assertStopped();

    // Nothing came from the CLI: every run of that stack was started by the webhook or pg_cron.
    // (The data is still there: start it again, database only, to look.)
    const info = await stack.up({ name: NAME, functions: false, quiet: true });
    try {
      const triggers = await stack.psql(
        info.dbUrl,
        "select string_agg(distinct trigger, ',' order by trigger) from embed_queue.runs",
      );
      assert.ok(triggers !== "" && !triggers.includes("manual"), `runs by ${triggers}`);
      const done = await stack.psql(
        info.dbUrl,
        "select count(*) from public.embedding_queue where status = 'completed'",
      );
      assert.equal(done, "55");
    } finally {
      await stack.down({ name: NAME, quiet: true });
    }

    // Ctrl-C (twice, as npm forwards the terminal's) on a running start stops the whole stack.
    const child = new Deno.Command(Deno.execPath(), {
      args: START,
      cwd: stack.ROOT,
      env: startEnv(),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("Watching for new rows")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /Total records processed: 0\n/, "nothing left to do on a drained stack");
    child.kill("SIGINT");
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(status.code, 0, seen);
    assert.match(seen, /Stopped: no process of the stack is left\.\n$/);
    await assertStopped();
  } finally {
    await stack.destroy({ name: NAME, quiet: true });
  }
});
