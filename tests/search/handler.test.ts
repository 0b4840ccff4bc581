/**
 * The search function's handler, called directly with a fake provider and a fake Data API:
 * who may search, what the body may hold, the rate limit, what is sent to the match functions,
 * and that the query text never reaches a log line or an error.
 */
import assert from "node:assert/strict";
import { createSearchHandler, jwtClaims } from "../../supabase/functions/search/handler.ts";
import { argsFor, functionFor, type SearchApi, type SearchRow } from "../../supabase/functions/search/db.ts";
import { ProviderError } from "../../supabase/functions/_shared/errors.ts";
import type { EmbeddingProvider } from "../../supabase/functions/_shared/provider.ts";
import { BadRequest, parseRequest } from "../../supabase/functions/search/request.ts";

const SECRET_QUERY = "my very private question about sourdough";

function unsignedJwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) =>
    btoa(JSON.stringify(o)).replaceAll("=", "").replaceAll("+", "-").replaceAll(
      "/",
      "_",
    );
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.sig`;
}
const USER = "c0ffee00-0000-4000-8000-00000000000a";
const userJwt = unsignedJwt({ sub: USER, role: "authenticated" });

function fakeProvider(
  fail?: ProviderError,
): EmbeddingProvider & { inputs: string[][] } {
  const inputs: string[][] = [];
  return {
    name: "fake",
    model: "m-fake",
    dimensions: 3,
    inputs,
    embed(texts: string[]) {
      inputs.push(texts);
      if (fail) return Promise.reject(fail);
      return Promise.resolve({
        vectors: texts.map(() => new Float32Array([1, 0, 0])),
        promptTokens: 3,
        rate: {},
      });
    },
  };
}

interface Calls {
  auth: string[];
  searches: Array<
    {
      table: string;
      mode: string;
      vector: string;
      model: string;
      sessionId: string | null;
    }
  >;
}

function fakeApi(
  calls: Calls,
  opts: { allowed?: boolean; rows?: SearchRow[] } = {},
) {
  return (authorization: string): SearchApi => {
    calls.auth.push(authorization);
    return {
      takeToken: () => Promise.resolve({ allowed: opts.allowed ?? true, retryAfterMs: 2500 }),
      search: (table, req, vector, model) => {
        calls.searches.push({
          table,
          mode: req.mode,
          vector,
          model,
          sessionId: req.sessionId,
        });
        return Promise.resolve(
          opts.rows ?? [{ id: `${table}-1`, similarity: 0.9 }],
        );
      },
    };
  };
}

function setup(opts: { allowed?: boolean; fail?: ProviderError } = {}) {
  const calls: Calls = { auth: [], searches: [] };
  const lines: string[] = [];
  const provider = fakeProvider(opts.fail);
  const handler = createSearchHandler({
    provider,
    api: fakeApi(calls, opts),
    log: (event, fields) => lines.push(JSON.stringify({ event, ...fields })),
  });
  return { handler, calls, lines, provider };
}

const post = (body: unknown, token: string | null = userJwt) =>
  new Request("http://x/search", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

Deno.test("search handler: a signed-in user's query is embedded once and both tables searched as that user", async () => {
  const { handler, calls, lines, provider } = setup();
  const res = await handler(post({ query: SECRET_QUERY }));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.model, "m-fake");
  assert.equal(body.mode, "hybrid");
  assert.deepEqual(Object.keys(body.results).sort(), ["sessions", "summaries"]);
  assert.equal(body.results.sessions[0].similarity, 0.9);
  assert.equal(typeof body.timing.embed_ms, "number");
  assert.deepEqual(provider.inputs, [[SECRET_QUERY]]);
  assert.deepEqual(
    calls.auth,
    [`Bearer ${userJwt}`],
    "the Data API is called with the user's own header",
  );
  assert.deepEqual(calls.searches.map((s) => [s.table, s.mode, s.model]), [
    ["sessions", "hybrid", "m-fake"],
    ["summaries", "hybrid", "m-fake"],
  ]);
  assert.ok(calls.searches[0].vector.startsWith("[1,0,0]"));
  assert.equal(lines.length, 1);
  assert.ok(
    !lines.join("\n").includes(SECRET_QUERY),
    "the query text is not logged",
  );
  assert.match(lines[0], /"query_chars":40/);
});

Deno.test("search handler: no token, an anon or service token, or a token without sub is 401, nothing embedded", async () => {
  for (
    const token of [
      null,
      "not-a-jwt",
      unsignedJwt({ role: "anon" }),
      unsignedJwt({ role: "service_role" }),
      unsignedJwt({ role: "authenticated" }),
    ]
  ) {
    const { handler, calls, provider } = setup();
    const res = await handler(post({ query: SECRET_QUERY }, token));
    assert.equal(res.status, 401, String(token));
    assert.equal(provider.inputs.length, 0);
    assert.equal(calls.searches.length, 0);
  }
});

Deno.test("search handler: a bad body is 400 naming the field, without echoing the query", async () => {
  const cases: Array<[unknown, RegExp]> = [
    ["{not json", /JSON object/],
    [{}, /query must be a non-empty string/],
    [{ query: "   " }, /query must be a non-empty string/],
    [{ query: "x".repeat(2001) }, /at most 2000/],
    [{ query: SECRET_QUERY, tables: ["users"] }, /tables/],
    [{ query: SECRET_QUERY, mode: "fuzzy" }, /mode/],
    [{ query: SECRET_QUERY, match_count: 0 }, /match_count/],
    [{ query: SECRET_QUERY, match_threshold: 2 }, /match_threshold/],
    [{ query: SECRET_QUERY, session_id: "abc" }, /session_id/],
    [{ query: SECRET_QUERY, qeury: "x" }, /unknown field qeury/],
  ];
  for (const [body, want] of cases) {
    const { handler, provider } = setup();
    const res = await handler(post(body));
    assert.equal(res.status, 400, JSON.stringify(body).slice(0, 50));
    const text = await res.text();
    assert.match(text, want);
    assert.ok(!text.includes(SECRET_QUERY));
    assert.equal(provider.inputs.length, 0);
  }
});

Deno.test("search handler: over the rate limit is 429 with Retry-After, before any provider call", async () => {
  const { handler, provider, lines } = setup({ allowed: false });
  const res = await handler(post({ query: SECRET_QUERY }));
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), "3");
  assert.equal(provider.inputs.length, 0);
  assert.match(lines.join(), /search.rate_limited/);
});

Deno.test("search handler: a provider failure is 502 with the operator's message, no query text anywhere", async () => {
  const fail = new ProviderError(
    "bad_request",
    `input rejected: ${SECRET_QUERY}`,
    { status: 400 },
  );
  const { handler, lines, calls } = setup({ fail });
  const res = await handler(post({ query: SECRET_QUERY }));
  assert.equal(res.status, 502);
  const text = await res.text();
  assert.ok(!text.includes(SECRET_QUERY), text);
  assert.ok(!lines.join("\n").includes(SECRET_QUERY));
  assert.equal(calls.searches.length, 0);
});

Deno.test("search handler: semantic mode, one table, a session's summaries; OPTIONS and GET", async () => {
  const { handler, calls } = setup();
  let res = await handler(
    post({
      query: "q",
      mode: "semantic",
      tables: ["sessions"],
      match_count: 3,
    }),
  );
  assert.equal(res.status, 200);
  assert.deepEqual(Object.keys((await res.json()).results), ["sessions"]);
  res = await handler(
    post({ query: "q", session_id: "c0ffee00-0000-4000-8000-0000000005a1" }),
  );
  assert.equal(res.status, 200);
  assert.deepEqual(calls.searches.map((s) => [s.table, s.mode, s.sessionId]), [
    ["sessions", "semantic", null],
    ["summaries", "hybrid", "c0ffee00-0000-4000-8000-0000000005a1"],
  ]);
  res = await handler(new Request("http://x/search", { method: "OPTIONS" }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  await res.body?.cancel();
  res = await handler(
    new Request("http://x/search", {
      method: "GET",
      headers: { authorization: `Bearer ${userJwt}` },
    }),
  );
  assert.equal(res.status, 405);
  await res.body?.cancel();
});

Deno.test("search handler: chunks mode searches summaries by their chunks, sessions by their vector", () => {
  const req = parseRequest({ query: "q", mode: "chunks", match_threshold: 0.1 });
  assert.equal(functionFor("summaries", req.mode), "match_summaries_chunked");
  assert.equal(functionFor("sessions", req.mode), "match_sessions");
  assert.equal(functionFor("summaries", "hybrid"), "hybrid_search_summaries");
  assert.deepEqual(argsFor("summaries", req, "[1]", "m"), {
    query_embedding: "[1]",
    match_count: 10,
    query_model: "m",
    match_threshold: 0.1,
  });
  assert.equal(argsFor("sessions", parseRequest({ query: "q" }), "[1]", "m").query_text, "q");
});

Deno.test("search request: defaults and limits", () => {
  assert.deepEqual(parseRequest({ query: "q" }), {
    query: "q",
    tables: ["sessions", "summaries"],
    mode: "hybrid",
    matchCount: 10,
    matchThreshold: 0,
    sessionId: null,
  });
  assert.equal(parseRequest({ query: "q", match_count: 50 }).matchCount, 50);
  assert.throws(
    () => parseRequest({ query: "q", match_count: 51 }),
    BadRequest,
  );
  assert.deepEqual(
    parseRequest({ query: "q", tables: ["summaries", "summaries"] }).tables,
    ["summaries"],
  );
  assert.equal(jwtClaims(userJwt)?.sub, USER);
  assert.equal(jwtClaims("x.!!!.y"), null);
});
