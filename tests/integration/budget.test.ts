/**
 * The function keeps under the edge runtime's CPU limits, hands-off: on a stack of its own whose
 * host enforces hosted's limits (CPU soft 1 s, hard 2 s per worker), a backlog that needs several
 * workers' worth of CPU (6,000 rows, 0.3 to 0.5 ms of CPU each, so more than the soft limit of one
 * worker) drains with no worker killed: a worker proves itself under the soft limit as it goes
 * and, found retired, gives back what it holds and hands over to a fresh worker. (Scaled-down limits were
 * harsher than hosted's: a worker's fixed costs do not scale with them.)
 *
 * Stack "budget", ports 25822/25821 + EQ_PORT_OFFSET, its own fake provider.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import * as stack from "../../local/stack.ts";
import { startFakeOpenAIProcess } from "../fakes/openai_process.ts";
import { waitFor } from "./helpers.ts";
import { portOffset, testEnv } from "../lib/env.ts";

const ignore = !testEnv.dbUrl;
const NAME = "budget";
const ROWS = 6000;

function events(logFile: string): Array<Record<string, unknown>> {
  return Deno.readTextFileSync(logFile).split("\n").filter((l) => l.includes("{")).flatMap((l) => {
    try {
      return [JSON.parse(l.slice(l.indexOf("{")))];
    } catch {
      return [];
    }
  });
}

Deno.test({
  name: "budget: a backlog bigger than a worker's CPU drains hands-off with no worker killed",
  ignore,
}, async () => {
  const fake = await startFakeOpenAIProcess();
  await stack.destroy({ name: NAME, quiet: true });
  const opts = {
    name: NAME,
    dbPort: 25822 + portOffset,
    apiPort: 25821 + portOffset,
    ephemeral: true,
    quiet: true,
    seed: false,
    functionEnv: {
      OPENAI_API_KEY: fake.apiKey,
      OPENAI_BASE_URL: fake.baseUrl,
    },
  };
  const info = await stack.up(opts);
  const sql = postgres(info.dbUrl, { max: 2, onnotice: () => {} });
  try {
    const [{ id: user }] = await sql`
      insert into auth.users (email) values ('budget@example.test') returning id`;
    await sql`
      insert into public.sessions (user_id, title)
      select ${user}, 'Planning session ' || g || ': roadmap, budget, hiring and the release train'
      from generate_series(1, ${ROWS}) g`;
    await waitFor("the backlog to drain", async () => {
      const [{ n }] =
        await sql`select count(*)::int as n from public.embedding_queue where status <> 'completed'`;
      return n === 0;
    }, 300_000); // a bound for a broken drain, generous for a busy machine

    const [{ embedded }] = await sql`
      select count(*)::int as embedded from public.sessions where title_embedding is not null`;
    assert.equal(embedded, ROWS, "every row holds a vector");
    const ev = events(join(info.stateDir, "logs/gateway.log"));
    const killed = ev.filter((e) => e.event === "gateway.worker_limit");
    assert.deepEqual(killed, [], "no worker was killed at a limit");
    // The limit was in play: runs stopped claiming for the worker's CPU or memory, or the host
    // retired a worker at the soft limit (what happens first depends on the machine's speed).
    const stopped = ev.filter((e) =>
      e.event === "run.finish" && (e.stopped === "cpu" || e.stopped === "memory")
    );
    const retired = ev.filter((e) => e.event === "gateway.worker_retired");
    assert.ok(stopped.length + retired.length >= 1, "the worker's limits were reached and kept");
    const proofs = ev.filter((e) => e.event === "worker.proof");
    assert.ok(proofs.some((e) => e.same_worker === true), "workers proved themselves and went on");
  } finally {
    await sql.end();
    await stack.destroy({ name: NAME, quiet: true });
    await fake.close();
  }
});
