/**
 * The Edge Function on the running test stack (gateway → function → test OpenAI server):
 * credentials, concurrent runs, a killed function process, a poisoned input, and rows edited
 * during a drain. Each test makes its own rows; background runs started by the webhook may
 * work on them too, which is part of what is being tested.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { adminScript, adminStats } from "../fakes/openai_process.ts";
import { sha256Hex } from "../fakes/openai_server.ts";
import { waitDead } from "../lib/process.ts";
import { SECRET_KEY } from "../../local/keys.ts";
import { db, env, ignore, invoke, isVectorOf, scenario, waitFor } from "./helpers.ts";

async function drain(tables = ["sessions"]) {
  // Manual runs until our rows are done; background runs may be taking some of them.
  for (let i = 0; i < 20; i++) {
    const r = await invoke({ tables, time_budget_ms: 30_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (r.body.pending === 0) return r.body;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error("queue did not drain");
}

Deno.test({ name: "function: no or wrong credential gets 401 and changes nothing", ignore }, async () => {
  const sql = db();
  try {
    const [{ n: before }] =
      await sql`select count(*)::int as n from embed_queue.runs where trigger = 'manual'`;
    for (const key of [null, "wrong", env.anonKey]) {
      const r = await invoke({}, key);
      assert.equal(r.status, 401, `key ${key === env.anonKey ? "anon" : key}`);
      assert.match(String(r.body.error), /unauthorized/);
    }
    const [{ n: after }] =
      await sql`select count(*)::int as n from embed_queue.runs where trigger = 'manual'`;
    assert.equal(after, before, "no run was started");
    // The Vault secret pg_cron and the webhook send is accepted.
    const [{ s }] =
      await sql`select decrypted_secret as s from vault.decrypted_secrets where name = 'embed_queue_secret'`;
    const ok = await invoke({ dry_run: true }, s);
    assert.equal(ok.status, 200);
    // So is the project's new-style secret key (SUPABASE_SECRET_KEYS), and a made-up one is not.
    assert.equal((await invoke({ dry_run: true }, SECRET_KEY)).status, 200, "sb_secret_ key accepted");
    assert.equal((await invoke({ dry_run: true }, SECRET_KEY.slice(0, -1) + "x")).status, 401);
    // Malformed bodies get 400 with the reason.
    const bad = await invoke({ batch_size: "ten" });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.error), /batch_size/);
    const unknown = await invoke({ bach_size: 10 });
    assert.equal(unknown.status, 400);
    assert.match(String(unknown.body.error), /unknown field/);
  } finally {
    await sql.end();
  }
});

Deno.test(
  { name: "function: four concurrent runs never send the same job twice", ignore },
  () =>
    scenario(async ({ sql, user, tag }) => {
      const titles = Array.from({ length: 400 }, (_, i) => `concurrency ${tag} row ${i}`);
      await adminScript(env.fakeAdminUrl, { latency_ms: 50 });
      await sql`insert into public.sessions (user_id, title) select ${user}, unnest(${
        sql.array(titles)
      }::text[])`;
      const runs = await Promise.all(
        Array.from(
          { length: 4 },
          () => invoke({ tables: ["sessions"], batch_size: 25, time_budget_ms: 60_000 }),
        ),
      );
      for (const r of runs) assert.equal(r.status, 200, JSON.stringify(r.body));
      await drain();
      const rows =
        await sql`select title, title_embedding::text as v from public.sessions where user_id = ${user}`;
      assert.equal(rows.length, 400);
      for (const r of rows) assert.ok(isVectorOf(r.v, r.title), `vector of "${r.title}"`);
      const stats = await adminStats(env.fakeAdminUrl);
      for (const t of titles) {
        assert.equal(stats.inputs_by_text_hash[sha256Hex(t)], 1, "each text sent exactly once");
      }
      const claimedTotal = runs.reduce((n, r) => n + Number(r.body.claimed), 0);
      assert.ok(claimedTotal <= 400, "no job claimed by two of these runs");
    }),
);

Deno.test(
  { name: "function: a poisoned input fails alone; the guide's retry runs it again", ignore },
  () =>
    scenario(async ({ sql, user, tag }) => {
      const poison = `POISON-${tag}`;
      await adminScript(env.fakeAdminUrl, { poison });
      const titles = Array.from({ length: 12 }, (_, i) => i === 7 ? `bad ${poison} row` : `good ${tag} ${i}`);
      await sql`insert into public.sessions (user_id, title) select ${user}, unnest(${
        sql.array(titles)
      }::text[])`;
      await drain();
      const jobs = await sql`
      select s.title, q.status, q.error_message, s.title_embedding::text as v
      from public.sessions s join public.embedding_queue q on q.record_id = s.id::text and q.table_name = 'sessions'
      where s.user_id = ${user}`;
      const bad = jobs.filter((j) => j.title.includes(poison));
      const good = jobs.filter((j) => !j.title.includes(poison));
      assert.equal(bad.length, 1);
      assert.equal(bad[0].status, "failed");
      assert.equal(bad[0].v, null);
      assert.match(bad[0].error_message, /400|rejected/i);
      assert.ok(!bad[0].error_message.includes(poison), "the error does not repeat the user's text");
      assert.equal(good.length, 11);
      for (const g of good) {
        assert.equal(g.status, "completed");
        assert.ok(isVectorOf(g.v, g.title));
      }
      // The guide's retry, word for word, after the cause is fixed.
      await adminScript(env.fakeAdminUrl, { poison: null });
      await sql.unsafe(`UPDATE embedding_queue 
   SET status = 'pending', error_message = NULL 
   WHERE status = 'failed'`);
      await drain();
      const [after] = await sql`
      select q.status, s.title_embedding::text as v, s.title from public.sessions s
      join public.embedding_queue q on q.record_id = s.id::text and q.table_name = 'sessions'
      where s.user_id = ${user} and s.title like ${"%" + poison + "%"}`;
      assert.equal(after.status, "completed");
      assert.ok(isVectorOf(after.v, after.title));
    }),
);

Deno.test(
  { name: "function: rows edited during a drain end with the vector of their final content", ignore },
  () =>
    scenario(async ({ sql, user, tag }) => {
      await adminScript(env.fakeAdminUrl, { latency_ms: 300 });
      const ids = (await sql`
      insert into public.sessions (user_id, title)
      select ${user}, 'edit ' || ${tag} || ' v1 ' || g from generate_series(1, 60) g returning id`).map((r) =>
        r.id
      );
      const running = invoke({ tables: ["sessions"], batch_size: 10, time_budget_ms: 60_000 });
      // Edit a third of the rows while requests are in flight, some twice.
      for (let round = 2; round <= 3; round++) {
        await new Promise((r) => setTimeout(r, 200));
        await sql`update public.sessions set title = 'edit ' || ${tag} || ' v' || ${round} || ' ' || id
                where id = any(${sql.array(ids.slice(0, 20))}::uuid[])`;
      }
      assert.equal((await running).status, 200);
      await adminScript(env.fakeAdminUrl, { latency_ms: 0 });
      await drain();
      const rows =
        await sql`select title, title_embedding::text as v from public.sessions where user_id = ${user}`;
      assert.equal(rows.length, 60);
      for (const r of rows) {
        assert.ok(
          isVectorOf(r.v, r.title),
          `"${r.title}" holds the vector of its final title`,
        );
      }
      assert.equal(rows.filter((r) => r.title.includes(" v3 ")).length, 20);
    }),
);

Deno.test({
  name: "function: a function process killed mid-batch loses nothing once its lease expires",
  ignore,
}, () =>
  scenario(async ({ sql, user, tag }) => {
    await adminScript(env.fakeAdminUrl, { latency_ms: 5000 });
    await sql`insert into public.sessions (user_id, title)
              select ${user}, 'crash ' || ${tag} || ' ' || g from generate_series(1, 30) g`;
    const running = invoke({ tables: ["sessions"], time_budget_ms: 60_000 });
    // Wait until our rows are claimed, then kill the function process hard.
    await waitFor("claimed", async () => {
      const [{ n }] = await sql`
        select count(*)::int as n from public.embedding_queue q join public.sessions s on q.record_id = s.id::text
        where s.user_id = ${user} and q.status = 'processing'`;
      return n > 0;
    });
    const pid = Number(Deno.readTextFileSync(join(env.stateDir, "functions", "embed-queue.pid")).trim());
    Deno.kill(pid, "SIGKILL");
    // Until it is dead: a call racing the kill may reach the dying process and get 502.
    await waitDead(pid);
    // The manual run may have died with the process, or found the rows already taken by a
    // webhook run in the same process: either way the holder is gone now.
    await running;
    const stuck = await sql`
      select q.id from public.embedding_queue q join public.sessions s on q.record_id = s.id::text
      where s.user_id = ${user} and q.status = 'processing'`;
    assert.ok(stuck.length > 0, "jobs were held by the killed run");
    // Let the lease expire (backdated rather than waited for), and any backoff with it.
    await sql`update public.embedding_queue set locked_until = now() - interval '1 second'
              where id = any(${sql.array(stuck.map((s) => String(s.id)))}::bigint[])`;
    await sql`select embed_queue.rescue()`;
    await sql`update public.embedding_queue set run_at = now()
              where id = any(${sql.array(stuck.map((s) => String(s.id)))}::bigint[]) and status = 'pending'`;
    await adminScript(env.fakeAdminUrl, { latency_ms: 0 });
    await drain();
    const rows = await sql`
      select s.title, s.title_embedding::text as v, q.status, q.attempts from public.sessions s
      join public.embedding_queue q on q.record_id = s.id::text and q.table_name = 'sessions' where s.user_id = ${user}`;
    assert.equal(rows.length, 30);
    for (const row of rows) {
      assert.equal(row.status, "completed");
      assert.ok(isVectorOf(row.v, row.title));
    }
  }));
