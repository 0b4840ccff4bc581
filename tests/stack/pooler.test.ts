/**
 * The transaction pooler (local/pooler.ts, the stand-in for Supavisor on port 6543) in front of
 * the test stack's database: it starts once, refuses a taken port and a wrong password, is really
 * in transaction mode (two clients share one server connection; a session advisory lock excludes
 * nobody), the function's database layer works through it, and stop leaves no process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { createDb } from "../../supabase/functions/embed-queue/db.ts";
import { poolerStatus, poolerUrl, startPooler, stopPooler } from "../../local/pooler.ts";
import { ROOT } from "../../local/stack.ts";
import { portOffset, testEnv } from "../lib/env.ts";
import { waitDead } from "../lib/process.ts";
import { poolerStateDir, stopTestPooler, testDbAddress, testPoolerUrl } from "../lib/pooler.ts";
import { jobOf, makeSession, makeUser } from "../cli/helpers.ts";

const ignore = !testEnv.dbUrl;
if (ignore) console.error("pooler tests skipped: EQ_TEST_DB_URL is not set (run them through npm test)");

/** A second pooler of one server connection, so that sharing is certain, not likely. */
const ONE_PORT = 25633 + portOffset;

function client(url: string) {
  return postgres(url, { max: 1, prepare: false, onnotice: () => {}, connect_timeout: 10 });
}

function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Holds the hands-off path (pg_cron's tick, the webhook) while `f` runs, once no job is being
 * processed, so that the job `f` makes stays for this test to claim. (The CLI tests' helper also
 * waits for unfinished runs, which a function killed by an earlier test leaves behind.)
 */
async function withHandsOffHeld<T>(sql: postgres.Sql, f: () => Promise<T>): Promise<T> {
  await sql`select cron.alter_job(jobid, active := false) from cron.job where jobname = 'embed-queue-tick'`;
  await sql`update embed_queue.webhook_state set last_poke_at = now() + interval '1 hour'`;
  try {
    const until = Date.now() + 60_000;
    let quiet = 0;
    while (quiet < 3) {
      if (Date.now() > until) throw new Error("jobs stayed processing for a minute");
      const [{ n }] =
        await sql`select count(*)::int as n from public.embedding_queue where status = 'processing'`;
      quiet = n === 0 ? quiet + 1 : 0;
      await new Promise((r) => setTimeout(r, 100));
    }
    return await f();
  } finally {
    await sql`update embed_queue.webhook_state set last_poke_at = null`;
    await sql`select cron.alter_job(jobid, active := true) from cron.job where jobname = 'embed-queue-tick'`;
  }
}

/** Rejects with `what` instead of waiting for ever (a session-mode pool of one would hold B). */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(what)), 15_000);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(t);
  }
}

Deno.test(
  { name: "pooler: postgres.js, psql and the Supabase CLI go through to the stack's server", ignore },
  async () => {
    const url = await testPoolerUrl();
    const sql = client(url);
    try {
      const [r] = await sql<{ who: string; port: number }[]>`
      select current_user as who, inet_server_port() as port`;
      assert.equal(r.who, "postgres");
      assert.equal(r.port, testDbAddress().port, "answered by the stack's PostgreSQL");
      assert.notEqual(
        new URL(url).port,
        String(testDbAddress().port),
        "through another port than the server's",
      );

      // The other clients here: psql with PGOPTIONS (an `options` startup parameter, as local/stack.ts
      // sends) and the Supabase CLI (`db push`, as the stack and a deploy run it).
      const dec = new TextDecoder();
      const p = await new Deno.Command("psql", {
        args: ["-qAtX", "-d", url, "-c", "select current_user"],
        env: { PGOPTIONS: "--client-min-messages=warning" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(dec.decode(p.stdout).trim(), "postgres", dec.decode(p.stderr));
      const push = await new Deno.Command(join(ROOT, "node_modules/.bin/supabase"), {
        args: ["db", "push", `--remote=${url}`, "--dry-run", "--yes"],
        cwd: ROOT,
        env: { SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", PGSSLMODE: "disable" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const pushed = dec.decode(push.stdout) + dec.decode(push.stderr);
      assert.equal(push.code, 0, pushed);
      assert.match(pushed, /Remote database is up to date/);

      // Never kinder than the real one: a wrong password is refused.
      const bad = new URL(url);
      bad.password = "not-the-password";
      const wrong = client(bad.href);
      await assert.rejects(wrong`select 1`, /password|SASL|authentication/i);
      await wrong.end({ timeout: 1 });
    } finally {
      await sql.end();
    }
  },
);

Deno.test({
  name: "pooler: start twice is one process, a taken port is one clear error, stop leaves no process",
  ignore,
}, async () => {
  const stateDir = poolerStateDir("pool-lifecycle");
  const { host, port: dbPort } = testDbAddress();
  const o = { stateDir, dbHost: host, dbPort, port: ONE_PORT, quiet: true };
  try {
    const first = await startPooler(o);
    const again = await startPooler(o);
    assert.equal(again.pid, first.pid, "a second start is a no-op");
    assert.equal(first.url, poolerUrl(ONE_PORT));
    assert.deepEqual(poolerStatus(stateDir), { running: true, pid: first.pid });

    const other = poolerStateDir("pool-lifecycle-other");
    await assert.rejects(
      startPooler({ ...o, stateDir: other }),
      (e: Error) =>
        e.message ===
          `port ${ONE_PORT} is already in use by another program: stop it, or choose another pooler port`,
    );
    assert.equal(poolerStatus(other).running, false);

    await stopPooler(stateDir);
    await waitDead(first.pid);
    assert.deepEqual(poolerStatus(stateDir), { running: false, pid: null });
    assert.equal(portFree(ONE_PORT), true, "the port is free again");
  } finally {
    await stopPooler(stateDir);
  }
});

Deno.test({
  name: "pooler: transaction mode: two clients share one server connection, session locks exclude nobody",
  ignore,
}, async () => {
  const stateDir = poolerStateDir("pool-of-one");
  const { host, port: dbPort } = testDbAddress();
  const { url } = await startPooler({
    stateDir,
    dbHost: host,
    dbPort,
    port: ONE_PORT,
    poolSize: 1,
    quiet: true,
  });
  const a = client(url);
  const b = client(url);
  const key = 7_424_242;
  const held = "B waited for a server connection while A sat idle: the pooler is not in transaction mode";
  try {
    // A connects and stays connected, idle; in session mode it would keep the only server.
    const [{ pid: pa }] = await a<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const [{ pid: pb }] = await within(b<{ pid: number }[]>`select pg_backend_pid() as pid`, held);
    assert.equal(pb, pa, "one server connection served both clients");

    // A session advisory lock outlives A's transaction on the server, not for A: B, on the same
    // server connection, gets it too. On a direct connection (or session mode) B would not.
    const [{ got: ga }] = await a<{ got: boolean }[]>`select pg_try_advisory_lock(${key}) as got`;
    assert.equal(ga, true);
    const [{ got: gb }] = await within(
      b<{ got: boolean }[]>`select pg_try_advisory_lock(${key}) as got`,
      held,
    );
    assert.equal(gb, true, "a session advisory lock taken by A does not exclude B");

    // A session-level `set` by A is still there for B: nothing resets a server between clients.
    await a`set statement_timeout = '4321ms'`;
    const [{ statement_timeout }] = await within(b`show statement_timeout`, held);
    assert.equal(statement_timeout, "4321ms", "A's session setting leaked to B");

    // Direct, the same lock is refused to another session while held.
    const direct = client(testEnv.dbUrl);
    try {
      await a`select pg_advisory_lock(${key})`;
      const [{ got }] = await direct<{ got: boolean }[]>`select pg_try_advisory_lock(${key}) as got`;
      assert.equal(got, false, "a direct session is excluded");
    } finally {
      await direct.end();
    }
  } finally {
    await a`select pg_advisory_unlock_all()`.catch(() => {});
    await a`reset all`.catch(() => {});
    await Promise.all([a.end({ timeout: 1 }), b.end({ timeout: 1 })]);
    await stopPooler(stateDir);
  }
});

Deno.test({
  name: "pooler: the function's database layer (db.ts) claims and completes through it",
  ignore,
}, async () => {
  const url = await testPoolerUrl();
  const sql = postgres(testEnv.dbUrl, { max: 2, onnotice: () => {} });
  const qdb = createDb(url, { max: 2 });
  const worker = `pooler-test-${crypto.randomUUID()}`;
  try {
    const [{ s }] = await sql`select embed_queue.queue_secret() as s`;
    const secret = await qdb.queueSecret();
    assert.ok(secret !== null && secret === s, "queue_secret reads the same Vault secret");

    const user = await makeUser(sql);
    await withHandsOffHeld(sql, async () => {
      const id = await makeSession(sql, user, `pooler-test ${crypto.randomUUID()} claim probe`);
      const [{ n }] = await sql`select embed_queue.pending_count(array['sessions'])::int as n`;
      assert.equal(await qdb.pendingCount(["sessions"]), n);
      assert.ok(n >= 1);

      const { runId } = await qdb.startRun(worker, "manual");
      assert.ok(runId !== null, "a manual run is never refused");
      const claimed = await qdb.claim(worker, 1000, 60, ["sessions"]);
      const mine = claimed.find((j) => j.record_id === id);
      assert.ok(mine, "our job was claimed through the pooler");
      const others = claimed.filter((j) => j !== mine).map((j) => j.id);
      if (others.length) assert.equal(await qdb.release(worker, others), others.length);

      const vector = `[${Array.from({ length: mine.dimensions }, (_, i) => (i === 0 ? 1 : 0)).join(",")}]`;
      const outcomes = await qdb.complete(
        worker,
        [{
          id: mine.id,
          contentHash: mine.content_hash,
          embedding: vector,
          tokens: 4,
          truncated: false,
        }],
        "text-embedding-3-small",
        mine.dimensions,
      );
      assert.equal(outcomes.get(mine.id), "completed");
      await qdb.finishRun(runId, {
        claimed: 1,
        completed: 1,
        failed: 0,
        skipped: 0,
        stale: 0,
        requests: 0,
        rate_limited: 0,
        tokens: 4,
        cost_usd: 0,
        error: null,
      });

      // The shared pace: a new run reads the limits an earlier run learned (limiter learnLimits).
      const paceKey = `pooler-test:${crypto.randomUUID()}`;
      const pace = qdb.pace(paceKey);
      assert.deepEqual(await pace.limits(), { limitRequests: undefined, limitTokens: undefined });
      await pace.observe({ limitRequests: 3000, limitTokens: 1_000_000, remainingTokens: 900_000 });
      assert.deepEqual(await pace.limits(), { limitRequests: 3000, limitTokens: 1_000_000 });
      await sql`delete from embed_queue.pace where key = ${paceKey}`;

      const job = await jobOf(sql, "sessions", id);
      assert.equal(job.status, "completed");
      assert.equal(job.tokens, 4);
      const [row] =
        await sql`select title_embedding is not null as has from public.sessions where id = ${id}`;
      assert.equal(row.has, true, "the vector was written back");
      const [run] =
        await sql`select finished_at is not null as done, completed from embed_queue.runs where id = ${runId}`;
      assert.deepEqual({ ...run }, { done: true, completed: 1 });
    });
  } finally {
    await qdb.release(worker).catch(() => {});
    await qdb.close();
    await sql.end();
    await stopTestPooler();
  }
});
