/**
 * The openai provider through the real `openai` SDK against the fake OpenAI-compatible server
 * (started in this process).
 */
import assert from "node:assert/strict";
import { type Config, loadConfig } from "../../supabase/functions/_shared/config.ts";
import { operatorMessage, ProviderError } from "../../supabase/functions/_shared/errors.ts";
import { createProvider } from "../../supabase/functions/_shared/provider.ts";
import { countTokens } from "../../supabase/functions/_shared/tokens.ts";
import { fakeVector } from "../fakes/fake_vector.ts";
import { startFakeOpenAI } from "../fakes/openai_server.ts";
import { adminReset, adminScript, adminStats } from "../fakes/openai_process.ts";

type Fake = Awaited<ReturnType<typeof startFakeOpenAI>>;

async function withFake(fn: (fake: Fake, cfg: (over?: Partial<Config>) => Config) => Promise<void>) {
  const fake = await startFakeOpenAI();
  const cfg = (over: Partial<Config> = {}) => ({
    ...loadConfig({ OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.baseUrl, EMBEDDING_DIMENSIONS: "64" }),
    ...over,
  });
  try {
    await fn(fake, cfg);
  } finally {
    await fake.close();
  }
}

async function rejectsWith(p: Promise<unknown>, check: (e: ProviderError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ProviderError, `not a ProviderError: ${e}`);
    check(e);
    return true;
  });
}

function sameVector(got: Float32Array, want: Float32Array) {
  assert.equal(got.length, want.length);
  assert.deepEqual(Array.from(got), Array.from(want));
}

Deno.test("openai provider: base64 answers decode to the server's exact vectors, in input order", async () => {
  await withFake(async (fake, cfg) => {
    const p = createProvider(cfg());
    assert.equal(p.name, "openai");
    assert.equal(p.model, "text-embedding-3-small");
    const inputs = ["hello world", "日本語のテキスト", "emoji 😀", "hello world again"];
    const r = await p.embed(inputs);
    assert.equal(r.vectors.length, 4);
    inputs.forEach((t, i) => sameVector(r.vectors[i], fakeVector(t, 64)));
    assert.equal(r.promptTokens, inputs.reduce((n, s) => n + countTokens(s), 0));
    const stats = await adminStats(fake.baseUrl);
    assert.equal(stats.requests, 1);
    assert.equal(stats.inputs, 4);
    assert.equal(stats.by_status["200"], 1);
  });
});

Deno.test("openai provider: float answers (number[]) are read too", async () => {
  await withFake(async (fake, cfg) => {
    let sentFormat: unknown;
    // Rewrites the request to ask for floats, as servers that ignore encoding_format answer.
    const floatFetch: typeof fetch = async (input, init) => {
      const body = JSON.parse(String(init?.body));
      sentFormat = body.encoding_format;
      body.encoding_format = "float";
      return await fetch(input, { ...init, body: JSON.stringify(body) });
    };
    const r = await createProvider(cfg(), { fetch: floatFetch }).embed(["one", "two"]);
    assert.equal(sentFormat, "base64", "the provider asks for base64");
    sameVector(r.vectors[0], fakeVector("one", 64));
    sameVector(r.vectors[1], fakeVector("two", 64));
    assert.equal(r.promptTokens, 2);
    assert.ok(fake.baseUrl);
  });
});

Deno.test("openai provider: answers out of order are put back in input order by index", async () => {
  await withFake(async (_fake, cfg) => {
    const reversing: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const body = await res.json();
      body.data.reverse();
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    const r = await createProvider(cfg(), { fetch: reversing }).embed(["a", "b", "c"]);
    ["a", "b", "c"].forEach((t, i) => sameVector(r.vectors[i], fakeVector(t, 64)));
  });
});

Deno.test("openai provider: rate-limit headers are parsed into RateLimitInfo", async () => {
  await withFake(async (fake, cfg) => {
    await adminScript(fake.baseUrl, { rpm: 100, tpm: 50_000 });
    const p = createProvider(cfg());
    const r = await p.embed(["some text to count"]);
    assert.equal(r.rate.limitRequests, 100);
    assert.equal(r.rate.limitTokens, 50_000);
    assert.equal(r.rate.remainingRequests, 99);
    assert.equal(r.rate.remainingTokens, 50_000 - r.promptTokens);
    assert.equal(typeof r.rate.resetRequestsMs, "number");
    assert.equal(typeof r.rate.resetTokensMs, "number");
    const r2 = await p.embed(["more"]);
    assert.equal(r2.rate.remainingRequests, 98);
  });
});

Deno.test("openai provider: a bad key is kind auth (401)", async () => {
  await withFake(async (_fake, cfg) => {
    const p = createProvider(cfg({ openaiApiKey: "sk-wrong-key-0123456789" }));
    await rejectsWith(p.embed(["x"]), (e) => {
      assert.equal(e.kind, "auth");
      assert.equal(e.status, 401);
      assert.ok(!e.message.includes("0123456789"), e.message);
    });
  });
});

Deno.test("openai provider: a 429 insufficient_quota is kind auth, not a rate limit to wait out", async () => {
  await withFake(async (fake, cfg) => {
    const p = createProvider(cfg({}));
    await adminScript(fake.baseUrl, { fail: [{ status: 429, code: "insufficient_quota" }, { status: 429 }] });
    await rejectsWith(p.embed(["x"]), (e) => {
      assert.equal(e.kind, "auth");
      assert.equal(e.status, 429);
      assert.match(operatorMessage(e), /quota exhausted/);
    });
    await rejectsWith(p.embed(["x"]), (e) => assert.equal(e.kind, "rate_limited", "a plain 429 still waits"));
  });
});

Deno.test("openai provider: scripted failures map to their kinds", async () => {
  await withFake(async (fake, cfg) => {
    const p = createProvider(cfg({ requestTimeoutMs: 300 }));
    await adminScript(fake.baseUrl, {
      fail: [{ status: 429, retry_after_ms: 500 }, { status: 500 }, { status: 503 }, { hang: true }],
    });
    await rejectsWith(p.embed(["x"]), (e) => {
      assert.equal(e.kind, "rate_limited");
      assert.equal(e.status, 429);
      assert.equal(e.retryAfterMs, 500);
    });
    await rejectsWith(p.embed(["x"]), (e) => {
      assert.equal(e.kind, "retryable");
      assert.equal(e.status, 500);
    });
    await rejectsWith(p.embed(["x"]), (e) => assert.equal(e.kind, "retryable"));
    await rejectsWith(p.embed(["x"]), (e) => {
      assert.equal(e.kind, "retryable", "a timeout is retryable");
      assert.equal(e.status, undefined);
    });
    // The queue is used up: the next request succeeds.
    const r = await p.embed(["x"]);
    sameVector(r.vectors[0], fakeVector("x", 64));
    const stats = await adminStats(fake.baseUrl);
    assert.equal(stats.requests, 5, "no retries inside the SDK (maxRetries 0)");
    assert.equal(stats.by_status["429"], 1);
    assert.equal(stats.by_status["500"], 1);
  });
});

Deno.test("openai provider: a caller's abort is retryable and stops the request", async () => {
  await withFake(async (fake, cfg) => {
    await adminScript(fake.baseUrl, { fail: [{ hang: true }] });
    const ac = new AbortController();
    const pending = createProvider(cfg()).embed(["x"], ac.signal);
    setTimeout(() => ac.abort(), 50);
    await rejectsWith(pending, (e) => assert.equal(e.kind, "retryable"));
  });
});

Deno.test("openai provider: a poisoned input is bad_request with its index", async () => {
  await withFake(async (fake, cfg) => {
    await adminScript(fake.baseUrl, { poison: "POISON" });
    const p = createProvider(cfg());
    await rejectsWith(p.embed(["fine", "also fine", "fine", "this is POISON here", "ok"]), (e) => {
      assert.equal(e.kind, "bad_request");
      assert.equal(e.status, 400);
      assert.equal(e.badInputIndex, 3);
    });
    await adminReset(fake.baseUrl);
    assert.equal((await p.embed(["this is POISON here"])).vectors.length, 1, "reset clears the poison");
  });
});

Deno.test("openai provider: the server's own limits are bad_request (empty, too long, too many)", async () => {
  await withFake(async (_fake, cfg) => {
    const p = createProvider(cfg());
    await rejectsWith(p.embed(["a", ""]), (e) => {
      assert.equal(e.kind, "bad_request");
      assert.equal(e.badInputIndex, 1);
    });
    await rejectsWith(p.embed(["a", "b", "word ".repeat(9000)]), (e) => {
      assert.equal(e.kind, "bad_request");
      assert.equal(e.badInputIndex, 2);
    });
    await rejectsWith(p.embed(Array.from({ length: 2049 }, (_, i) => `t${i}`)), (e) => {
      assert.equal(e.kind, "bad_request");
    });
    // 160 inputs of 8000 ASCII bytes: 320k estimated tokens, over the 300k request limit.
    await rejectsWith(
      p.embed(Array.from({ length: 160 }, (_, i) => `${i} ` + "abcdefgh".repeat(1000))),
      (e) => {
        assert.equal(e.kind, "bad_request");
        assert.equal(e.badInputIndex, undefined);
      },
    );
  });
});

Deno.test("openai provider: a vector of the wrong length is permanent and never returned", async () => {
  await withFake(async (fake, cfg) => {
    await adminScript(fake.baseUrl, { force_dimensions: 32 });
    await rejectsWith(createProvider(cfg()).embed(["x"]), (e) => {
      assert.equal(e.kind, "permanent");
      assert.match(e.hint ?? "", /32 dimensions, expected 64/);
    });
  });
});

Deno.test("openai provider: a count mismatch is retryable", async () => {
  await withFake(async (_fake, cfg) => {
    const dropping: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const body = await res.json();
      body.data.pop();
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    await rejectsWith(createProvider(cfg(), { fetch: dropping }).embed(["a", "b"]), (e) => {
      assert.equal(e.kind, "retryable");
    });
  });
});

Deno.test("openai provider: `dimensions` is sent only to text-embedding-3 models", async () => {
  await withFake(async (_fake, cfg) => {
    const sent: unknown[] = [];
    const spy: typeof fetch = (input, init) => {
      sent.push(JSON.parse(String(init?.body)).dimensions);
      return fetch(input, init);
    };
    await createProvider(cfg(), { fetch: spy }).embed(["a"]);
    const ada = createProvider(cfg({ model: "text-embedding-ada-002", dimensions: 1536 }), { fetch: spy });
    const r = await ada.embed(["a"]);
    assert.deepEqual(sent, [64, undefined]);
    assert.equal(r.vectors[0].length, 1536);
  });
});
