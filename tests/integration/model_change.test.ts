/**
 * Identical text and a model change, through the stack's function, the search function and the
 * CLI, against the test OpenAI server (whose vectors depend on the model):
 * - a requeue of an embedded row with unchanged text, and a text changed and changed back, send
 *   no request (counted at the server);
 * - `reembed --model text-embedding-3-large` on the seeded data and a generated set of 600
 *   rows, with users searching all along: every answer ranks vectors of one model only (each
 *   result's similarity is that model's, recomputed here), through the switch, a roll-back, a
 *   switch back, a roll-back and the drop of the newer vectors. The test leaves the tables as it
 *   found them (3-small, not pinned).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SignJWT } from "jose";
import type postgres from "postgres";
import { JWT_SECRET } from "../../local/keys.ts";
import { fakeVector } from "../fakes/fake_vector.ts";
import { adminReset, adminStats } from "../fakes/openai_process.ts";
import { cli } from "../cli/helpers.ts";
import { db, env, ignore, invoke, isVectorOf, makeUser, scenario, waitFor } from "./helpers.ts";

const SMALL = "text-embedding-3-small";
const LARGE = "text-embedding-3-large";
const ALICE = "a11ce000-0000-4000-8000-000000000001"; // a seeded user
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

async function completed(sql: postgres.Sql, table: string, id: string): Promise<boolean> {
  const rows = await sql`select 1 from public.embedding_queue
    where table_name = ${table} and record_id = ${id} and status = 'completed'`;
  return rows.length === 1;
}

Deno.test({ name: "identical text: a requeue and a text changed back send no request", ignore }, async () => {
  await scenario(async ({ sql, user, tag }) => {
    const title = `${tag} unchanged text`;
    const [{ id }] =
      await sql`insert into public.sessions (user_id, title) values (${user}, ${title}) returning id`;
    await waitFor("the row to be embedded", () => completed(sql, "sessions", id));
    await adminReset(env.fakeAdminUrl);

    // The guide's manual requeue, then a run: nothing sent, the job completed as unchanged.
    await sql`select embed_queue.requeue('sessions', ${id})`;
    const run = await invoke({ tables: ["sessions"] });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(run.body.unchanged, 1, JSON.stringify(run.body));
    assert.equal(run.body.requests, 0, "the run made no request");
    const seen = (await adminStats(env.fakeAdminUrl)).inputs_by_text_hash;
    assert.equal(seen[sha256(title)], undefined, "the server never got the text");
    const [rec] = await sql`select unchanged from embed_queue.runs where id = ${run.body.run_id as number}`;
    assert.equal(rec.unchanged, 1, "the run record says so");

    // Changed and changed back before it was embedded again: the cleared vector comes back.
    await sql.begin(async (tx) => {
      await tx`update public.sessions set title = ${`${title}, edited`} where id = ${id}`;
      await tx`update public.sessions set title = ${title} where id = ${id}`;
    });
    await waitFor("the job to complete again", () => completed(sql, "sessions", id));
    const stats = await adminStats(env.fakeAdminUrl);
    assert.equal(stats.inputs_by_text_hash[sha256(title)], undefined, "the text was not sent again");
    const [row] = await sql`select title_embedding::text as v from public.sessions where id = ${id}`;
    assert.ok(isVectorOf(row.v, title), "the row holds its text's vector");
  });
});

async function userJwt(sub: string): Promise<string> {
  return await new SignJWT({ sub, role: "authenticated", aud: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(JWT_SECRET));
}

function cosine(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += a[i] * b[i];
  return d;
}

interface Check {
  searches: number;
  rows: number;
  models: Set<string>;
  problems: string[];
}

/**
 * One search through the function; every ranked row's similarity must be the one the model the
 * answer names gives for that row's text, or the ranking mixed models.
 */
async function searchOnce(token: string, query: string, mode: string, check: Check) {
  const res = await fetch(`${env.functionsUrl}/search`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: env.anonKey, authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, mode, match_count: 10 }),
  });
  const body = await res.json();
  check.searches++;
  if (res.status !== 200) {
    check.problems.push(`search answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
    return;
  }
  for (const table of ["sessions", "summaries"] as const) {
    const model: string = body.models?.[table];
    check.models.add(model);
    const q = fakeVector(query, 1536, model);
    for (const r of body.results[table] ?? []) {
      if (r.similarity === null || r.similarity === undefined) continue;
      const text = table === "sessions" ? r.title : r.content;
      const want = cosine(q, fakeVector(text, 1536, model));
      check.rows++;
      if (Math.abs(want - r.similarity) > 1e-4) {
        check.problems.push(
          `${table} ${r.id}: similarity ${r.similarity}, ${model} gives ${want.toFixed(6)}`,
        );
      }
    }
  }
}

/** Searches as each user, in turn, until stopped. */
function searcher(tokens: Array<{ token: string; query: string }>, check: Check) {
  let stop = false;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const t = tokens[i % tokens.length];
      await searchOnce(t.token, t.query, i % 3 === 0 ? "semantic" : "hybrid", check);
    }
  })();
  return async () => {
    stop = true;
    await done;
  };
}

async function drainUntil(what: string, f: () => Promise<boolean>) {
  await waitFor(what, async () => {
    if (await f()) return true;
    await invoke({ batch_size: 500 });
    return false;
  }, 120_000);
}

Deno.test({
  name:
    "model change: reembed, switch, roll back and switch again while users search; no ranking mixes models",
  ignore,
}, async () => {
  const sql = db();
  const [limits] = await sql`select burst, rate_per_minute from embed_search.settings`;
  await sql`update embed_search.settings set burst = 1000000, rate_per_minute = 1000000`;
  const user = await makeUser(sql);
  const words = [
    "river",
    "sourdough",
    "glacier",
    "budget",
    "roadmap",
    "garden",
    "violin",
    "harbor",
    "orbit",
    "tide",
  ];
  const check: Check = { searches: 0, rows: 0, models: new Set(), problems: [] };
  let stopSearching: (() => Promise<void>) | null = null;
  try {
    // A generated set of the test's own: 600 sessions of three words each.
    await sql`
      insert into public.sessions (user_id, title)
      select ${user}, 'generated ' || g || ' ' || (${words}::text[])[1 + g % 10] || ' ' || (${words}::text[])[1 + (g / 10) % 10]
      from generate_series(1, 600) g`;
    await drainUntil("the generated rows to be embedded", async () => {
      const [{ n }] =
        await sql`select count(*)::int as n from public.embedding_queue where status in ('pending', 'processing')`;
      return n === 0;
    });

    stopSearching = searcher([
      { token: await userJwt(ALICE), query: "sourdough starter hydration" },
      { token: await userJwt(user), query: "glacier river budget" },
    ], check);

    // The one command.
    const started = await cli(["reembed", "--model", LARGE, "--dimensions", "1536"]);
    assert.equal(started.code, 0, started.stderr + started.stdout);
    assert.match(
      started.stdout,
      /sessions\.title_embedding: text-embedding-3-small → text-embedding-3-large/,
    );
    assert.match(
      started.stdout,
      /summaries\.content_embedding: text-embedding-3-small → text-embedding-3-large/,
    );

    // The new model's work drains (bulk) while users search the old model; the tick switches.
    await drainUntil("the new model to cover every row and the switch", async () => {
      await sql`select embed_queue.advance_model_changes()`;
      const [{ n }] = await sql`select count(*)::int as n from embed_queue.targets
        where queue_table in ('sessions', 'summaries') and generation = 'active' and model = ${LARGE}`;
      return n === 2;
    });
    const [{ v }] = await sql`select title_embedding::text as v, title from public.sessions
      where user_id = ${user} order by id limit 1`;
    const [{ title }] =
      await sql`select title from public.sessions where user_id = ${user} order by id limit 1`;
    assert.ok(isVectorOf(v, title, 1536) === false, "the column no longer holds the old model's vector");
    const want = fakeVector(title, 1536, LARGE);
    assert.ok(
      JSON.parse(v).every((x: number, i: number) => Math.abs(x - want[i]) < 1e-6),
      "it holds the new one",
    );
    await new Promise((r) => setTimeout(r, 500)); // searches on the new model

    // Status, roll back (searches go on), switch again by hand.
    const status = await cli(["reembed", "--status"]);
    assert.match(status.stdout, /title_embedding_prev\s+text-embedding-3-small\s+previous/);
    const back = await cli(["reembed", "--rollback"]);
    assert.equal(back.code, 0, back.stderr);
    await new Promise((r) => setTimeout(r, 500));
    const again = await cli(["reembed", "--switch"]);
    assert.equal(again.code, 0, again.stderr);
    await new Promise((r) => setTimeout(r, 500));
    const back2 = await cli(["reembed", "--rollback"]);
    assert.equal(back2.code, 0, back2.stderr);
    await new Promise((r) => setTimeout(r, 300));
    // Drop the newer vectors (searches go on): the old model alone again.
    const dropped = await cli(["reembed", "--cancel"]);
    assert.match(dropped.stdout, /sessions: dropped column title_embedding_next/);
    assert.match(dropped.stdout, /summaries: dropped column content_embedding_next/);
    const left = await sql`select column_name from information_schema.columns
      where table_schema = 'public' and table_name in ('sessions', 'summaries') and column_name like '%embedding\_%'`;
    assert.deepEqual(left.map((r) => r.column_name), [], "no other generation's column is left");

    await stopSearching();
    stopSearching = null;
    assert.deepEqual(check.problems, [], "no answer ranked vectors of two models");
    assert.ok(
      check.models.has(SMALL) && check.models.has(LARGE),
      `searched both models: ${[...check.models]}`,
    );
    assert.ok(
      check.searches >= 10 && check.rows > 0,
      `${check.searches} searches, ${check.rows} rows checked`,
    );
  } finally {
    await stopSearching?.();
    // As found: the old model active, the new model's columns dropped, the targets not pinned.
    await sql`select embed_queue.rollback_model(t.queue_table, t.embedding_column)
      from embed_queue.targets a join embed_queue.targets t on t.id = a.id
      where a.generation = 'active' and (embed_queue.other_generation(a)).generation = 'previous'`;
    await sql`select embed_queue.cancel_reembed(t.queue_table, t.embedding_column)
      from embed_queue.targets t where t.generation = 'active'`;
    await sql`update embed_queue.targets set model = null where generation = 'active'`;
    await sql`update embed_search.settings set burst = ${limits.burst}, rate_per_minute = ${limits.rate_per_minute}`;
    await sql`delete from public.sessions where user_id = ${user}`;
    await sql.end();
  }
});
