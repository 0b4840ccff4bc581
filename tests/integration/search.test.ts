/**
 * The search Edge Function and the search SQL functions through the local gateway and its Data
 * API stand-in, with real JWTs signed by the stack's secret: two users each find only their own
 * rows (through the function and through rpc), anon and a missing JWT get nothing, soft-deleted
 * rows never appear, the rate limit answers 429, and the query text reaches no log of the stack.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SignJWT } from "jose";
import { JWT_SECRET } from "../../local/keys.ts";
import { fakeVector } from "../fakes/fake_vector.ts";
import { localEmbedding } from "../../supabase/functions/_shared/provider.ts";
import { toPgvector } from "../../supabase/functions/_shared/vectors.ts";
import { db, env, ignore, makeUser, waitFor } from "./helpers.ts";
import type postgres from "postgres";

async function userJwt(sub: string): Promise<string> {
  return await new SignJWT({ sub, role: "authenticated", aud: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(JWT_SECRET));
}

async function search(body: Record<string, unknown>, token: string | null) {
  const res = await fetch(`${env.functionsUrl}/search`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      apikey: env.anonKey,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, any> = {};
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body: json, headers: res.headers };
}

/** A call as supabase-js rpc() makes it through the Data API. */
async function rpc(
  fn: string,
  args: Record<string, unknown>,
  token: string | null,
) {
  const res = await fetch(`${env.apiUrl}/rest/v1/rpc/${fn}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      apikey: env.anonKey,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(args),
  });
  return { status: res.status, body: await res.json() };
}

async function makeSession(
  sql: postgres.Sql,
  user: string,
  title: string,
): Promise<string> {
  const [{ id }] =
    await sql`insert into public.sessions (user_id, title) values (${user}, ${title}) returning id`;
  return id;
}

async function waitEmbedded(sql: postgres.Sql, ids: string[]) {
  await waitFor("the rows to be embedded", async () => {
    const [{ n }] = await sql`select count(*)::int as n from public.embedding_queue
      where table_name = 'sessions' and record_id = any(${ids}) and status = 'completed'`;
    return n === ids.length;
  });
}

const ids = (rows: Array<{ id: string }> | undefined) => (rows ?? []).map((r) => r.id);

Deno.test({
  name: "search: two users, each finds only their own rows, through the function and through rpc",
  ignore,
}, async () => {
  const sql = db();
  try {
    const [a, b] = [await makeUser(sql), await makeUser(sql)];
    const title = `${crypto.randomUUID()} glacier hiking gear list`;
    // The same text for both: the same vector, so only row-level security tells them apart.
    const [sa, sb] = [
      await makeSession(sql, a, title),
      await makeSession(sql, b, title),
    ];
    await waitEmbedded(sql, [sa, sb]);
    const [ta, tb] = [await userJwt(a), await userJwt(b)];

    for (const [token, mine, theirs] of [[ta, sa, sb], [tb, sb, sa]]) {
      const r = await search({
        query: title,
        tables: ["sessions"],
        match_count: 5,
      }, token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const found = ids(r.body.results.sessions);
      assert.equal(found[0], mine, "the own row first");
      assert.ok(!found.includes(theirs), "never the other user's row");
      assert.ok(
        r.body.results.sessions[0].score > 0 &&
          r.body.results.sessions[0].similarity > 0.999,
      );

      const semantic = await search({
        query: title,
        tables: ["sessions"],
        mode: "semantic",
      }, token);
      assert.equal(semantic.status, 200);
      assert.deepEqual(
        ids(semantic.body.results.sessions).filter((x) => x === mine || x === theirs),
        [mine],
      );

      const viaRpc = await rpc("match_sessions", {
        query_embedding: toPgvector(fakeVector(title, 1536)),
        match_count: 5,
        match_threshold: 0.999,
      }, token);
      assert.equal(viaRpc.status, 200, JSON.stringify(viaRpc.body));
      assert.deepEqual(
        ids(viaRpc.body),
        [mine],
        "rpc as the Data API calls it: the own row only",
      );
    }
  } finally {
    await sql.end();
  }
});

Deno.test({
  name: "search: anon and a missing or forged JWT get nothing",
  ignore,
}, async () => {
  const sql = db();
  try {
    const user = await makeUser(sql);
    const r0 = await search({ query: "anything" }, null);
    assert.equal(
      r0.status,
      401,
      "no JWT: the gateway refuses (verify_jwt = true)",
    );
    const forged = await new SignJWT({ sub: user, role: "authenticated" })
      .setProtectedHeader({ alg: "HS256" })
      .sign(
        new TextEncoder().encode("another-secret-of-at-least-32-characters!!"),
      );
    assert.equal(
      (await search({ query: "anything" }, forged)).status,
      401,
      "forged JWT",
    );
    assert.equal(
      (await search({ query: "anything" }, env.anonKey)).status,
      401,
      "the anon key is no user",
    );

    const anon = await rpc("match_sessions", {
      query_embedding: toPgvector(fakeVector("x", 1536)),
    }, env.anonKey);
    assert.equal(anon.status, 401, "anon may not call match_sessions");
    assert.equal(anon.body.code, "42501");
    const hybrid = await rpc("hybrid_search_summaries", {
      query_text: "x",
      query_embedding: toPgvector(fakeVector("x", 1536)),
    }, null);
    assert.equal(hybrid.status, 401, "the apikey alone is anon");
    const forgedRpc = await rpc(
      "match_sessions",
      { query_embedding: "[1]" },
      forged,
    );
    assert.equal(forgedRpc.status, 401);
    const unknown = await rpc("match_everything", {}, await userJwt(user));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, "PGRST202");
  } finally {
    await sql.end();
  }
});

Deno.test(
  { name: "search: a soft-deleted row never appears", ignore },
  async () => {
    const sql = db();
    try {
      const user = await makeUser(sql);
      const title = `${crypto.randomUUID()} moving the piano upstairs`;
      const [live, gone] = [
        await makeSession(sql, user, title),
        await makeSession(sql, user, `${title} again`),
      ];
      await waitEmbedded(sql, [live, gone]);
      await sql`update public.sessions set deleted_at = now() where id = ${gone}`;
      const token = await userJwt(user);
      // The query is the deleted row's own text: its vector is the query's, its words all match;
      // a threshold of -1 lets every live row of the user through.
      for (const mode of ["hybrid", "semantic"]) {
        const r = await search(
          { query: `${title} again`, tables: ["sessions"], mode, match_threshold: -1 },
          token,
        );
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const found = ids(r.body.results.sessions);
        assert.ok(found.includes(live), mode);
        assert.ok(!found.includes(gone), `${mode}: the soft-deleted row is left out`);
      }
      const related = await rpc(
        "related_sessions",
        { session_id: live },
        token,
      );
      assert.equal(related.status, 200);
      assert.ok(!ids(related.body).includes(gone));
    } finally {
      await sql.end();
    }
  },
);

Deno.test({
  name: "search: past the per-user rate limit the function answers 429, others still search",
  ignore,
}, async () => {
  const sql = db();
  const [{ burst, rate }] =
    await sql`select burst, rate_per_minute::float8 as rate from embed_search.settings`;
  try {
    await sql`update embed_search.settings set burst = 2, rate_per_minute = 1`;
    const [a, b] = [
      await userJwt(await makeUser(sql)),
      await userJwt(await makeUser(sql)),
    ];
    assert.equal((await search({ query: "one" }, a)).status, 200);
    assert.equal((await search({ query: "two" }, a)).status, 200);
    const third = await search({ query: "three" }, a);
    assert.equal(third.status, 429);
    assert.ok(Number(third.headers.get("retry-after")) >= 1);
    assert.equal(
      (await search({ query: "one" }, b)).status,
      200,
      "another user has a bucket of their own",
    );
  } finally {
    await sql`update embed_search.settings set burst = ${burst}, rate_per_minute = ${rate}`;
    await sql.end();
  }
});

Deno.test({
  name: "search: the query text appears in no log of the stack",
  ignore,
}, async () => {
  const sql = db();
  try {
    const token = await userJwt(await makeUser(sql));
    const secret = `confidential-${crypto.randomUUID()}`;
    assert.equal(
      (await search({ query: `${secret} salary review` }, token)).status,
      200,
    );
    assert.equal(
      (await search(
        { query: `${secret} salary review`, match_count: 999 },
        token,
      )).status,
      400,
    );
    assert.equal(
      (await search(
        { query: `${secret} salary review`, mode: "semantic" },
        token,
      )).status,
      200,
    );
    // The function's lines reach the gateway's log through its stdout: wait for the last one.
    const logs = join(env.stateDir, "logs");
    await waitFor("the function's log lines", async () => {
      const text = await Deno.readTextFile(join(logs, "gateway.log"));
      return (text.match(/"event":"search"/g) ?? []).length >= 2;
    });
    for (const e of Deno.readDirSync(logs)) {
      if (!e.isFile) continue;
      const text = Deno.readTextFileSync(join(logs, e.name));
      assert.ok(!text.includes(secret), `${e.name} holds the query text`);
    }
  } finally {
    await sql.end();
  }
});

Deno.test({
  name: "search: on the seeded data with the local provider, hybrid search puts the sourdough rows first",
  ignore,
}, async () => {
  // The test stack embeds with the test OpenAI server; here Alice's seeded rows get the local
  // provider's vectors inside a transaction that is rolled back, and the search runs as Alice.
  const sql = db();
  const ROLLBACK = new Error("rollback");
  const alice = "a11ce000-0000-4000-8000-000000000001";
  const model = "local-hash-v1";
  try {
    await sql.begin(async (tx) => {
      const rows =
        await tx`select 'sessions' as t, id::text, title as text from public.sessions where user_id = ${alice} and deleted_at is null
        union all select 'summaries', id::text, content from public.summaries where user_id = ${alice} and deleted_at is null`;
      for (const r of rows) {
        const v = toPgvector(localEmbedding(r.text, 1536));
        if (r.t === "sessions") {
          await tx`update public.sessions set title_embedding = ${v}::extensions.vector where id = ${r.id}`;
        } else {await tx`update public.summaries set content_embedding = ${v}::extensions.vector where id = ${r.id}`;}
        await tx`update public.embedding_queue set status = 'completed', model = ${model}, completed_at = now()
          where table_name = ${r.t} and record_id = ${r.id}`;
      }
      const q = toPgvector(localEmbedding("sourdough hydration", 1536));
      await tx`select set_config('role', 'authenticated', true),
                      set_config('request.jwt.claims', ${
        JSON.stringify({ sub: alice, role: "authenticated" })
      }, true)`;
      const sessions =
        await tx`select id::text, title from public.hybrid_search_sessions('sourdough hydration', ${q}::extensions.vector, 5, query_model => ${model})`;
      assert.equal(
        sessions[0].id,
        "5e551000-0000-4000-8000-000000000001",
        JSON.stringify(sessions),
      );
      assert.match(sessions[0].title, /^Sourdough starter revival/);
      const summaries =
        await tx`select id::text, content from public.hybrid_search_summaries('sourdough hydration', ${q}::extensions.vector, 5, query_model => ${model})`;
      assert.equal(
        summaries[0].id,
        "50a40000-0000-4000-8000-000000000001",
        JSON.stringify(summaries.map((s) =>
          s.id
        )),
      );
      assert.match(summaries[0].content, /starter/);
      throw ROLLBACK;
    });
  } catch (e) {
    if (e !== ROLLBACK) {
      throw e;
    }
  } finally {
    await sql.end();
  }
});
