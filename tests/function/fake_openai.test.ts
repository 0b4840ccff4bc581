/** The fake OpenAI server itself: protocol details other tests rely on. */
import assert from "node:assert/strict";
import { fakeVector } from "../fakes/fake_vector.ts";
import { formatDuration, sha256Hex, startFakeOpenAI } from "../fakes/openai_server.ts";
import { adminReset, adminScript, adminStats, startFakeOpenAIProcess } from "../fakes/openai_process.ts";
import { parseResetDuration } from "../../supabase/functions/_shared/backoff.ts";

async function post(baseUrl: string, key: string, body: unknown) {
  const res = await fetch(`${baseUrl}/embeddings`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

Deno.test("fakeVector: deterministic, normalized, text-dependent", () => {
  const a = fakeVector("hello", 1536);
  assert.equal(a.length, 1536);
  assert.deepEqual(Array.from(a), Array.from(fakeVector("hello", 1536)));
  const n = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(n - 1) < 1e-5);
  assert.notDeepEqual(Array.from(a), Array.from(fakeVector("hello ", 1536)));
  assert.equal(fakeVector("", 8).length, 8);
});

Deno.test("formatDuration speaks OpenAI's format, which parseResetDuration reads back", () => {
  const table: Array<[number, string]> = [[0, "0s"], [9, "9ms"], [1000, "1s"], [1500, "1.5s"], [
    360_000,
    "6m0s",
  ], [
    3_723_500,
    "1h2m3.5s",
  ]];
  for (const [ms, s] of table) {
    assert.equal(formatDuration(ms), s);
    assert.equal(parseResetDuration(s), ms);
  }
});

Deno.test("fake server: OpenAI's response shape, float and base64, headers on every answer", async () => {
  const fake = await startFakeOpenAI({ apiKey: "sk-test-key" });
  try {
    assert.match(fake.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const f = await post(fake.baseUrl, fake.apiKey, {
      model: "text-embedding-3-small",
      input: "hello world",
    });
    assert.equal(f.status, 200);
    assert.equal(f.body.object, "list");
    assert.equal(f.body.model, "text-embedding-3-small");
    assert.deepEqual(f.body.usage, { prompt_tokens: 2, total_tokens: 2 });
    assert.equal(f.body.data[0].object, "embedding");
    assert.equal(f.body.data[0].index, 0);
    assert.equal(f.body.data[0].embedding.length, 1536);
    const b = await post(fake.baseUrl, fake.apiKey, {
      model: "text-embedding-3-small",
      input: ["a", "b"],
      encoding_format: "base64",
      dimensions: 8,
    });
    assert.equal(typeof b.body.data[1].embedding, "string");
    assert.equal(atob(b.body.data[1].embedding).length, 8 * 4);
    const bad = await post(fake.baseUrl, "wrong", { model: "m", input: "x" });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, "invalid_api_key");
    assert.equal(typeof bad.body.error.message, "string");
    for (const r of [f, b, bad]) {
      for (const h of ["limit", "remaining", "reset"]) {
        assert.ok(r.headers.get(`x-ratelimit-${h}-requests`) !== null, `${r.status} ${h}`);
        assert.ok(r.headers.get(`x-ratelimit-${h}-tokens`) !== null, `${r.status} ${h}`);
      }
    }
    const dimsRefused = await post(fake.baseUrl, fake.apiKey, {
      model: "text-embedding-ada-002",
      input: "x",
      dimensions: 8,
    });
    assert.equal(dimsRefused.status, 400);
    const notFound = await fetch(`${fake.baseUrl}/chat/completions`, { method: "POST" });
    assert.equal(notFound.status, 404);
    await notFound.body?.cancel();
  } finally {
    await fake.close();
  }
});

Deno.test("fake server: rpm and tpm give real 429s with retry-after headers", async () => {
  const fake = await startFakeOpenAI();
  try {
    await adminScript(fake.baseUrl, { rpm: 2 });
    assert.equal((await post(fake.baseUrl, fake.apiKey, { model: "m", input: "a" })).status, 200);
    const second = await post(fake.baseUrl, fake.apiKey, { model: "m", input: "b" });
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-ratelimit-remaining-requests"), "0");
    const third = await post(fake.baseUrl, fake.apiKey, { model: "m", input: "c" });
    assert.equal(third.status, 429);
    assert.ok(Number(third.headers.get("retry-after-ms")) > 0);
    assert.ok(Number(third.headers.get("retry-after")) >= 1);
    assert.equal(third.body.error.code, "rate_limit_exceeded");

    await adminReset(fake.baseUrl);
    await adminScript(fake.baseUrl, { tpm: 10 });
    assert.equal(
      (await post(fake.baseUrl, fake.apiKey, { model: "m", input: "one two three four five six" })).status,
      200,
    );
    const over = await post(fake.baseUrl, fake.apiKey, { model: "m", input: "seven eight nine ten eleven" });
    assert.equal(over.status, 429);
    const stats = await adminStats(fake.baseUrl);
    assert.deepEqual(stats.by_status, { "200": 1, "429": 1 });
  } finally {
    await fake.close();
  }
});

Deno.test("fake server: stats count each text by its sha256; reset clears them", async () => {
  const fake = await startFakeOpenAI();
  try {
    await post(fake.baseUrl, fake.apiKey, { model: "m", input: ["x", "y", "x"] });
    await adminScript(fake.baseUrl, { fail: [{ status: 500 }] });
    await post(fake.baseUrl, fake.apiKey, { model: "m", input: ["z"] }); // failed: not embedded
    const s = await adminStats(fake.baseUrl);
    assert.equal(s.requests, 2);
    assert.equal(s.inputs, 3);
    assert.equal(s.texts_seen, 2);
    assert.equal(s.inputs_by_text_hash[sha256Hex("x")], 2);
    assert.equal(s.inputs_by_text_hash[sha256Hex("y")], 1);
    assert.equal(s.inputs_by_text_hash[sha256Hex("z")], undefined);
    assert.deepEqual(s.by_status, { "200": 1, "500": 1 });
    assert.equal(sha256Hex("x"), "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
    await adminReset(fake.baseUrl);
    const r = await adminStats(fake.baseUrl);
    assert.deepEqual(r, {
      requests: 0,
      inputs: 0,
      tokens: 0,
      by_status: {},
      texts_seen: 0,
      inputs_by_text_hash: {},
    });
  } finally {
    await fake.close();
  }
});

Deno.test("fake server: a bad script is refused; a reset releases hung requests", async () => {
  const fake = await startFakeOpenAI();
  try {
    await assert.rejects(adminScript(fake.baseUrl, { fail: [{ status: 200 }] }), /400/);
    // deno-lint-ignore no-explicit-any
    await assert.rejects(adminScript(fake.baseUrl, { nonsense: 1 } as any), /unknown script field/);
    await adminScript(fake.baseUrl, { fail: [{ hang: true }] });
    const hung = post(fake.baseUrl, fake.apiKey, { model: "m", input: "x" });
    await new Promise((r) => setTimeout(r, 50));
    await adminReset(fake.baseUrl);
    assert.equal((await hung).status, 504);
  } finally {
    await fake.close();
  }
});

Deno.test("fake server as its own process: answers, is scripted over HTTP, and stops", async () => {
  const fake = await startFakeOpenAIProcess();
  try {
    assert.match(fake.adminUrl, /^http:\/\/127\.0\.0\.1:\d+\/_admin$/);
    await adminScript(fake.adminUrl, { fail: [{ status: 503 }] });
    assert.equal((await post(fake.baseUrl, fake.apiKey, { model: "m", input: "x" })).status, 503);
    const ok = await post(fake.baseUrl, fake.apiKey, { model: "m", input: "x", dimensions: 4 });
    assert.equal(ok.status, 400, "dimensions only for text-embedding-3 models");
    const ok2 = await post(fake.baseUrl, fake.apiKey, {
      model: "text-embedding-3-small",
      input: "x",
      dimensions: 4,
    });
    assert.deepEqual(ok2.body.data[0].embedding, Array.from(fakeVector("x", 4)));
    const s = await adminStats(fake.adminUrl);
    assert.equal(s.requests, 3);
    assert.deepEqual(s.by_status, { "200": 1, "400": 1, "503": 1 });
  } finally {
    await fake.close();
  }
  await assert.rejects(fetch(`${fake.adminUrl}/stats`), "the process is gone");
});
