/**
 * Adopting an install of the user's guide: a cluster where the guide's app, its
 * embedding_queue (55 pending, 3 failed, 10 completed with vectors) and its triggers exist
 * before the project's migrations are pushed as postgres. Then the hands-off path runs
 * (pg_cron / webhook → pg_net → gateway → function → the fake provider) and the test checks:
 * every adopted pending job is embedded with no manual call, no completed row is sent again,
 * the failed jobs keep their messages until the guide's retry UPDATE brings them back, the old
 * triggers are reported and, while they remain, one change still makes one job embedded once;
 * once dropped as documented, one insert makes exactly one job.
 *
 * Its own stack ("adopt", ports 25722/25721 + EQ_PORT_OFFSET) and its own fake provider, so
 * its counts are its own. The seed is not loaded: it would add the local seed's rows.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import * as stack from "../../local/stack.ts";
import { adminStats, startFakeOpenAIProcess } from "../fakes/openai_process.ts";
import { sha256Hex } from "../fakes/openai_server.ts";
import { isVectorOf, waitFor } from "../integration/helpers.ts";
import { portOffset } from "../lib/env.ts";
import { cli } from "../cli/helpers.ts";

const NAME = "adopt";
const GUIDE_SQL = fileURLToPath(new URL("./guide_install.sql", import.meta.url));
const SESSION = (i: number) => `5e55a000-0000-4000-8000-${String(i).padStart(12, "0")}`;
const SUMMARY = (i: number) => `50aa0000-0000-4000-8000-${String(i).padStart(12, "0")}`;

async function loadGuide(dbUrl: string) {
  const out = await new Deno.Command("psql", {
    args: ["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", dbUrl, "-f", GUIDE_SQL],
    env: { PGOPTIONS: "--client-min-messages=warning" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`the guide's install failed:\n${new TextDecoder().decode(out.stderr)}`);
}

/** pg_prove over every pgTAP file that does not say it needs the seed or is not for an adopted install. */
async function pgProve(dbUrl: string): Promise<{ code: number; output: string }> {
  const dir = fileURLToPath(new URL("../../supabase/tests/", import.meta.url));
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".sql")).sort()
    .filter((n) => !/^-- (Needs the seed|Not on an adopted install)/.test(Deno.readTextFileSync(dir + n)));
  assert.ok(files.length >= 10, "most pgTAP files apply to an adopted install");
  const u = new URL(dbUrl);
  const out = await new Deno.Command("pg_prove", {
    args: [
      "--host",
      u.hostname,
      "--port",
      u.port,
      "--username",
      "postgres",
      "--dbname",
      "postgres",
      ...files.map((n) => dir + n),
    ],
    env: { PGPASSWORD: "postgres" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

async function drained(sql: postgres.Sql, ms = 150_000) {
  await waitFor("the queue to drain", async () => {
    const [{ open }] = await sql`
      select count(*)::int as open from public.embedding_queue where status in ('pending', 'processing')`;
    return open === 0;
  }, ms);
}

async function statusCounts(sql: postgres.Sql) {
  const rows = await sql`
    SELECT table_name, status, COUNT(*)::int as count FROM embedding_queue
    GROUP BY table_name, status ORDER BY table_name, status`;
  return rows.map((r) => `${r.table_name} ${r.status} ${r.count}`);
}

Deno.test({
  name: "adopt: the guide's install is upgraded in place and drained hands-off",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const fake = await startFakeOpenAIProcess();
  await stack.destroy({ name: NAME, quiet: true });
  let sql: postgres.Sql | null = null;
  try {
    const stackOpts = {
      name: NAME,
      dbPort: 25722 + portOffset,
      apiPort: 25721 + portOffset,
      ephemeral: true,
      quiet: true,
      seed: false,
      functionEnv: { OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.baseUrl },
    };
    // The database first, with nothing processing: the pgTAP files that do not need the seed
    // pass on the adopted install too.
    const info = await stack.up({ ...stackOpts, functions: false, beforePush: loadGuide });
    const tap = await pgProve(info.dbUrl);
    assert.equal(tap.code, 0, tap.output);
    sql = postgres(info.dbUrl, { max: 2, onnotice: () => {} });

    // The texts the old script completed, and those it failed.
    const completedTexts = [
      ...(await sql`select title as t from public.sessions where id = any(${
        [1, 2, 3, 4, 5, 6].map(SESSION)
      }::uuid[])`),
      ...(await sql`select content as t from public.summaries where id = any(${
        [1, 2, 3, 4].map(SUMMARY)
      }::uuid[])`),
    ].map((r) => r.t as string);
    assert.equal(completedTexts.length, 10);

    // The old triggers are reported, and nothing was dropped.
    const old =
      await sql`select table_name, trigger_name, function_name, enabled from embed_queue.old_triggers order by 1`;
    assert.deepEqual(old.map((r) => `${r.table_name} ${r.trigger_name} ${r.function_name} ${r.enabled}`), [
      "sessions queue_session_embedding public.queue_session_embedding true",
      "summaries queue_summary_embedding public.queue_summary_embedding true",
    ]);
    const legacy =
      await sql`select table_name, unknown_origin::int as n from embed_queue.legacy_vectors order by 1`;
    assert.deepEqual(legacy.map((r) => `${r.table_name} ${r.n}`), ["sessions 6", "summaries 4"]);

    // The operator is told: `doctor` (exit 1 while old triggers remain) and `status`.
    const cliEnv = {
      SUPABASE_URL: info.apiUrl,
      SUPABASE_DB_URL: info.dbUrl,
      SUPABASE_SERVICE_ROLE_KEY: info.serviceRoleKey,
    };
    const doctor = await cli(["doctor"], { env: cliEnv });
    assert.equal(doctor.code, 1, doctor.stderr);
    assert.match(
      doctor.stdout,
      /public\.sessions: trigger queue_session_embedding \(function public\.queue_session_embedding\)/,
    );
    assert.match(doctor.stdout, /public\.summaries: trigger queue_summary_embedding/);
    assert.match(doctor.stdout, /select \* from embed_queue\.drop_old_triggers\(\);/);
    assert.match(doctor.stdout, /10 vector\(s\) of unknown origin .*legacy_vectors = trust/);
    const status = await cli(["status", "--json"], { env: cliEnv });
    assert.equal(status.code, 0, status.stderr);
    const sj = JSON.parse(status.stdout);
    assert.equal(sj.legacy_vectors.unknown_origin, 10);
    assert.deepEqual(sj.old_triggers.map((o: { trigger_name: string }) => o.trigger_name), [
      "queue_session_embedding",
      "queue_summary_embedding",
    ]);

    // Hands-off: every adopted pending job is embedded, nothing else is.
    await stack.startServices(stackOpts, info);
    await drained(sql);
    assert.deepEqual(await statusCounts(sql), [
      "sessions completed 39",
      "sessions failed 2",
      "summaries completed 26",
      "summaries failed 1",
    ]);
    const sessions = await sql`
      select id::text, title, title_embedding::text as v from public.sessions
      where id <> all(${[1, 2, 3, 4, 5, 6, 7, 8].map(SESSION)}::uuid[])`;
    const summaries = await sql`
      select id::text, content, content_embedding::text as v from public.summaries
      where id <> all(${[1, 2, 3, 4, 5].map(SUMMARY)}::uuid[])`;
    assert.equal(sessions.length + summaries.length, 55);
    for (const s of sessions) {
      assert.ok(isVectorOf(s.v, s.title), `session ${s.id} has the vector of its title`);
    }
    for (const s of summaries) {
      assert.ok(isVectorOf(s.v, s.content), `summary ${s.id} has the vector of its content`);
    }

    // No completed row was sent again; their vectors are the old script's, untouched.
    let stats = await adminStats(fake.adminUrl);
    assert.equal(stats.inputs, 55, "one input per adopted pending job");
    for (const t of completedTexts) {
      assert.equal(stats.inputs_by_text_hash[sha256Hex(t)], undefined, "a completed row's text was not sent");
    }
    const [{ kept }] = await sql`
      select (select count(*) from public.sessions where title_embedding = array_fill(0.5::real, array[1536])::extensions.vector)::int
           + (select count(*) from public.summaries where content_embedding = array_fill(0.25::real, array[1536])::extensions.vector)::int as kept`;
    assert.equal(kept, 10);

    // The failed jobs keep their messages; the guide's retry UPDATE brings them back.
    const failed =
      await sql`select record_id, error_message from embedding_queue where status = 'failed' order by record_id`;
    assert.deepEqual(failed.map((r) => `${r.record_id} ${r.error_message}`), [
      `${SUMMARY(5)} Failed to generate embedding: fetch failed (ECONNRESET)`,
      `${SESSION(7)} Failed to generate embedding: 429 Too Many Requests`,
      `${SESSION(8)} Failed to generate embedding: 429 Too Many Requests`,
    ]);
    await sql.unsafe(`UPDATE embedding_queue 
SET status = 'pending', error_message = NULL 
WHERE status = 'failed';`);
    await drained(sql);
    const retried = await sql`
      select s.title as t, s.title_embedding::text as v from public.sessions s where s.id = any(${
      [7, 8].map(SESSION)
    }::uuid[])
      union all
      select m.content, m.content_embedding::text from public.summaries m where m.id = ${SUMMARY(5)}::uuid`;
    for (const r of retried) assert.ok(isVectorOf(r.v, r.t), "a retried row has the vector of its text");
    const [{ n: stillFailed }] =
      await sql`select count(*)::int as n from embedding_queue where status <> 'completed'`;
    assert.equal(stillFailed, 0);

    // While the old triggers remain, one change still makes one job, embedded once.
    const user = "9a1de000-0000-4000-8000-000000000001";
    const both = `Adopt test, both sets of triggers ${crypto.randomUUID()}`;
    const [{ id: bothId }] =
      await sql`insert into public.sessions (user_id, title) values (${user}, ${both}) returning id::text`;
    const [{ n: bothJobs }] =
      await sql`select count(*)::int as n from embedding_queue where record_id = ${bothId}`;
    assert.equal(bothJobs, 1, "one job for one insert, old triggers and ours together");
    await drained(sql);
    const [bothJob] = await sql`select status from embedding_queue where record_id = ${bothId}`;
    assert.equal(bothJob.status, "completed", "writing the vector did not queue the row again");
    stats = await adminStats(fake.adminUrl);
    assert.equal(stats.inputs_by_text_hash[sha256Hex(both)], 1, "the new row was sent once");

    // Dropped as documented: the triggers go, the user's functions stay.
    const dropped =
      await sql`select table_name, trigger_name, function_dropped from embed_queue.drop_old_triggers()`;
    assert.deepEqual(dropped.map((r) => `${r.table_name} ${r.trigger_name} ${r.function_dropped}`), [
      "public.sessions queue_session_embedding false",
      "public.summaries queue_summary_embedding false",
    ]);
    const [{ n: oldLeft }] = await sql`select count(*)::int as n from embed_queue.old_triggers`;
    assert.equal(oldLeft, 0);
    const [{ n: functionsKept }] = await sql`
      select count(*)::int as n from pg_proc where proname in ('queue_session_embedding', 'queue_summary_embedding')`;
    assert.equal(functionsKept, 2, "the user's functions were not dropped");

    const after = await cli(["doctor"], { env: cliEnv });
    assert.equal(after.code, 0, after.stdout);

    const one = `Adopt test, our triggers only ${crypto.randomUUID()}`;
    const [{ id: oneId }] =
      await sql`insert into public.summaries (user_id, content) values (${user}, ${one}) returning id::text`;
    const [{ n: oneJobs }] =
      await sql`select count(*)::int as n from embedding_queue where record_id = ${oneId}`;
    assert.equal(oneJobs, 1, "one insert makes exactly one job");
    await drained(sql);
    stats = await adminStats(fake.adminUrl);
    assert.equal(stats.inputs_by_text_hash[sha256Hex(one)], 1);
    assert.equal(
      stats.inputs,
      55 + 3 + 2,
      "nothing but the adopted backlog, the retried jobs and the two new rows was embedded",
    );
  } finally {
    await sql?.end();
    await stack.destroy({ name: NAME, quiet: true }).catch(() => {});
    await fake.close();
  }
});
