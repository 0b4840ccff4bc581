/**
 * Stack lifecycle on its own ports: up from nothing, a second up is a no-op, a taken port is
 * refused with a clear message, so is an edited migration, and down leaves no process behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as stack from "../../local/stack.ts";
import { portOffset } from "../lib/env.ts";

const ignore = !Deno.env.get("EQ_TEST_DB_URL");
const NAME = "lifecycle";
const opts = { name: NAME, dbPort: 25422 + portOffset, apiPort: 25421 + portOffset, ephemeral: true, quiet: true };

function pids(): number[] {
  const dir = join(stack.ROOT, ".stack", NAME);
  const out: number[] = [];
  for (const f of ["gateway.pid", "net_worker.pid", "cron_seconds.pid"]) {
    try {
      out.push(Number(Deno.readTextFileSync(join(dir, f)).trim()));
    } catch { /* none */ }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Every process whose command line mentions this stack's folder or ports. */
async function leftovers(): Promise<string[]> {
  const out = await new Deno.Command("ps", { args: ["-eo", "pid,args"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) => l.includes(`.stack/${NAME}`) || l.includes(String(opts.apiPort)) || l.includes(String(opts.dbPort)))
    .filter((l) => !l.includes(" ps "));
}

Deno.test(
  { name: "stack lifecycle: up, idempotent up, port conflict, down leaves nothing", ignore },
  async () => {
    await stack.destroy(opts);
    try {
      const info = await stack.up(opts);
      const st = await stack.status(opts);
      assert.equal(st.db, true, "database up");
      assert.equal(st.gateway, true, "gateway up");
      assert.equal(st.netWorker, true, "pg_net worker up");
      const health = await fetch(`${info.apiUrl}/health`);
      assert.equal(health.status, 200);
      await health.body?.cancel();

      const before = pids();
      await stack.up(opts);
      assert.deepEqual(pids(), before, "a second up starts nothing new");

      // Another stack asking for the same database port gets a clear message, not a hang.
      await assert.rejects(
        stack.up({ ...opts, name: "lifecycle-conflict", dbPort: opts.dbPort, apiPort: 25431 + portOffset }),
        new RegExp(`port ${opts.dbPort} is already in use`),
      );
      await stack.destroy({ name: "lifecycle-conflict", quiet: true });

      // A migration file edited after this stack applied it (simulated by the recorded hash):
      // refused with the way out, rather than running the old SQL silently.
      const statePath = join(stack.ROOT, ".stack", NAME, "state.json");
      const saved = Deno.readTextFileSync(statePath);
      const state = JSON.parse(saved);
      const [first] = Object.keys(state.migrations);
      assert.deepEqual(state.migrations, await stack.migrationHashes(), "the applied files are recorded");
      state.migrations[first] = "0".repeat(64);
      Deno.writeTextFileSync(statePath, JSON.stringify(state));
      await assert.rejects(
        stack.up(opts),
        new RegExp(`migration ${first} changed since this stack applied it`),
      );
      Deno.writeTextFileSync(statePath, saved);

      await stack.down(opts);
      for (const pid of before) assert.equal(alive(pid), false, `process ${pid} still running after down`);
      const st2 = await stack.status(opts);
      assert.equal(st2.db, false);
      assert.deepEqual(await leftovers(), []);
    } finally {
      await stack.destroy(opts);
    }
  },
);
