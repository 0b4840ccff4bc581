import assert from "node:assert/strict";
import {
  ConfigError,
  DEFAULTS,
  loadConfig,
  LOCAL_MODEL,
  readSecretKeys,
} from "../../supabase/functions/_shared/config.ts";

Deno.test("loadConfig: defaults without a key are the local provider", () => {
  const c = loadConfig({});
  assert.equal(c.provider, "local");
  assert.equal(c.model, LOCAL_MODEL);
  assert.equal(c.usdPerMillionTokens, 0);
  assert.equal(c.dimensions, 1536);
  assert.equal(c.batchSize, 1000);
  assert.equal(c.maxInputsPerRequest, 2048);
  assert.equal(c.maxTokensPerRequest, 300_000);
  assert.equal(c.maxTokensPerInput, 8191);
  assert.equal(c.concurrency, 4);
  assert.equal(c.wallClockMs, 150_000);
  assert.equal(c.timeBudgetMs, 60_000, "inside half the free plan's 150 s wall clock, less 15 s");
  assert.equal(c.leaseSeconds, 120);
  assert.equal(c.requestTimeoutMs, 60_000);
  assert.equal(c.maxRequestRetries, 2);
  assert.equal(c.openaiApiKey, undefined);
  assert.equal(c.dbUrl, undefined);
});

Deno.test("loadConfig: a key selects OpenAI with its defaults and price", () => {
  const c = loadConfig({
    OPENAI_API_KEY: "sk-test",
    SUPABASE_DB_URL: "postgres://x",
    SUPABASE_SERVICE_ROLE_KEY: "srk",
  });
  assert.equal(c.provider, "openai");
  assert.equal(c.model, DEFAULTS.model);
  assert.equal(c.model, "text-embedding-3-small");
  assert.equal(c.usdPerMillionTokens, 0.02);
  assert.equal(c.openaiApiKey, "sk-test");
  assert.equal(c.dbUrl, "postgres://x");
  assert.equal(c.serviceRoleKey, "srk");
});

Deno.test("loadConfig: values from the environment", () => {
  const c = loadConfig({
    OPENAI_API_KEY: "sk-test",
    OPENAI_BASE_URL: "http://127.0.0.1:9999/v1",
    EMBEDDING_MODEL: "text-embedding-3-large",
    EMBEDDING_DIMENSIONS: "3072",
    EMBED_QUEUE_BATCH_SIZE: "10000",
    EMBED_QUEUE_CONCURRENCY: " 8 ",
    EMBED_QUEUE_TIME_BUDGET_MS: "50000",
    EMBED_QUEUE_LEASE_SECONDS: "5",
    EMBED_QUEUE_REQUEST_TIMEOUT_MS: "1000",
    EMBED_QUEUE_MAX_REQUEST_RETRIES: "0",
    EMBED_QUEUE_MAX_INPUTS_PER_REQUEST: "16",
    EMBED_QUEUE_TIME_BUDGET: "ignored: not a known variable",
  });
  assert.equal(c.openaiBaseUrl, "http://127.0.0.1:9999/v1");
  assert.equal(c.model, "text-embedding-3-large");
  assert.equal(c.usdPerMillionTokens, 0.13);
  assert.deepEqual(
    [
      c.dimensions,
      c.batchSize,
      c.concurrency,
      c.timeBudgetMs,
      c.leaseSeconds,
      c.requestTimeoutMs,
      c.maxRequestRetries,
    ],
    [3072, 10_000, 8, 50_000, 5, 1000, 0],
  );
  assert.equal(c.maxInputsPerRequest, 16);
  assert.equal(
    loadConfig({ OPENAI_API_KEY: "k", EMBEDDING_MODEL: "text-embedding-ada-002" }).usdPerMillionTokens,
    0.1,
  );
  assert.equal(
    loadConfig({ OPENAI_API_KEY: "k", EMBEDDING_USD_PER_MILLION_TOKENS: "0.5" }).usdPerMillionTokens,
    0.5,
  );
  assert.equal(loadConfig({ EMBEDDING_PROVIDER: "local", OPENAI_API_KEY: "k" }).provider, "local");
  assert.equal(loadConfig({ EMBED_QUEUE_BATCH_SIZE: "" }).batchSize, 1000, "empty means unset");
});

Deno.test("loadConfig: bad values throw a ConfigError naming the variable and the range", () => {
  const table: Array<[Record<string, string>, RegExp]> = [
    [{ EMBED_QUEUE_BATCH_SIZE: "0" }, /EMBED_QUEUE_BATCH_SIZE.*1 to 10000/],
    [{ EMBED_QUEUE_BATCH_SIZE: "10001" }, /EMBED_QUEUE_BATCH_SIZE.*1 to 10000/],
    [{ EMBED_QUEUE_BATCH_SIZE: "abc" }, /EMBED_QUEUE_BATCH_SIZE/],
    [{ EMBED_QUEUE_CONCURRENCY: "1.5" }, /EMBED_QUEUE_CONCURRENCY.*1 to 64/],
    [{ EMBED_QUEUE_CONCURRENCY: "-1" }, /EMBED_QUEUE_CONCURRENCY/],
    [{ EMBED_QUEUE_TIME_BUDGET_MS: "1e5" }, /EMBED_QUEUE_TIME_BUDGET_MS/],
    [{ EMBED_QUEUE_TIME_BUDGET_MS: "60001" }, /EMBED_QUEUE_TIME_BUDGET_MS.*1000 to 60000/],
    [
      { EMBED_QUEUE_WALL_CLOCK_MS: "400000", EMBED_QUEUE_TIME_BUDGET_MS: "185001" },
      /EMBED_QUEUE_TIME_BUDGET_MS.*1000 to 185000/,
    ],
    [{ EMBED_QUEUE_WALL_CLOCK_MS: "100000" }, /EMBED_QUEUE_WALL_CLOCK_MS.*150000 to 400000/],
    [{ EMBED_QUEUE_LEASE_SECONDS: "0" }, /EMBED_QUEUE_LEASE_SECONDS.*1 to 3600/],
    [{ EMBED_QUEUE_REQUEST_TIMEOUT_MS: "10" }, /EMBED_QUEUE_REQUEST_TIMEOUT_MS.*100 to 600000/],
    [{ EMBED_QUEUE_MAX_REQUEST_RETRIES: "11" }, /EMBED_QUEUE_MAX_REQUEST_RETRIES.*0 to 10/],
    [{ EMBED_QUEUE_MAX_INPUTS_PER_REQUEST: "4096" }, /EMBED_QUEUE_MAX_INPUTS_PER_REQUEST.*1 to 2048/],
    [{ EMBED_QUEUE_MAX_TOKENS_PER_INPUT: "8192" }, /EMBED_QUEUE_MAX_TOKENS_PER_INPUT.*1 to 8191/],
    [{ EMBEDDING_DIMENSIONS: "0" }, /EMBEDDING_DIMENSIONS/],
    [{ OPENAI_API_KEY: "k", EMBEDDING_DIMENSIONS: "2000" }, /EMBEDDING_DIMENSIONS.*1 to 1536/],
    [{ OPENAI_API_KEY: "k", EMBEDDING_MODEL: "text-embedding-ada-002", EMBEDDING_DIMENSIONS: "512" }, /1536/],
    [{ EMBEDDING_USD_PER_MILLION_TOKENS: "-1" }, /EMBEDDING_USD_PER_MILLION_TOKENS/],
    [{ EMBEDDING_PROVIDER: "cohere" }, /EMBEDDING_PROVIDER/],
    [{ EMBEDDING_PROVIDER: "openai" }, /OPENAI_API_KEY/],
    [{ EMBEDDING_MODEL: "text-embedding-3-small" }, /EMBEDDING_MODEL.*OPENAI_API_KEY/],
    [{ OPENAI_API_KEY: "k", OPENAI_BASE_URL: "not a url" }, /OPENAI_BASE_URL/],
  ];
  for (const [env, pattern] of table) {
    assert.throws(() => loadConfig(env), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${JSON.stringify(env)}: ${e}`);
      assert.match((e as Error).message, pattern);
      return true;
    });
  }
});

Deno.test("loadConfig: a ConfigError never echoes the API key", () => {
  try {
    loadConfig({ OPENAI_API_KEY: "sk-secret-value-123", EMBED_QUEUE_CONCURRENCY: "many" });
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.ok(!e.message.includes("sk-secret"));
  }
});

Deno.test("loadConfig: the new secret keys: SUPABASE_SECRET_KEYS (JSON name → key), then SUPABASE_SECRET_KEY", () => {
  assert.deepEqual(loadConfig({}).secretKeys, []);
  const cases: Array<[Record<string, string>, string[]]> = [
    [{ SUPABASE_SECRET_KEYS: '{"default":"sb_secret_a"}' }, ["sb_secret_a"]],
    [{ SUPABASE_SECRET_KEYS: '{"default":"sb_secret_a","ci":"sb_secret_b"}' }, [
      "sb_secret_a",
      "sb_secret_b",
    ]],
    [{ SUPABASE_SECRET_KEYS: "{}" }, []],
    [{ SUPABASE_SECRET_KEYS: '{"default":"","old":"  "}' }, []],
    [{ SUPABASE_SECRET_KEY: " sb_secret_c " }, ["sb_secret_c"]],
    [{ SUPABASE_SECRET_KEYS: '{"default":"sb_secret_a"}', SUPABASE_SECRET_KEY: "sb_secret_a" }, [
      "sb_secret_a",
    ]],
    [{ SUPABASE_SECRET_KEYS: '{"default":"sb_secret_a"}', SUPABASE_SECRET_KEY: "sb_secret_c" }, [
      "sb_secret_a",
      "sb_secret_c",
    ]],
    [{ SUPABASE_PUBLISHABLE_KEYS: '{"default":"sb_publishable_x"}' }, []],
  ];
  for (const [env, want] of cases) {
    assert.deepEqual(readSecretKeys(env), want, JSON.stringify(env));
    assert.deepEqual(loadConfig(env).secretKeys, want);
  }
});

Deno.test("loadConfig: a malformed SUPABASE_SECRET_KEYS fails fast without showing its value", () => {
  for (const raw of ["sb_secret_plain", '["sb_secret_a"]', "null", '{"default":42}', "{not json"]) {
    assert.throws(
      () => loadConfig({ SUPABASE_SECRET_KEYS: raw }),
      (e: unknown) =>
        e instanceof ConfigError && /^SUPABASE_SECRET_KEYS/.test(e.message) && !e.message.includes(raw) &&
        !e.message.includes("sb_secret_a"),
      raw,
    );
  }
});

Deno.test("config: a paid plan's wall clock allows a longer time budget", () => {
  const c = loadConfig({ EMBED_QUEUE_WALL_CLOCK_MS: "400000", EMBED_QUEUE_TIME_BUDGET_MS: "185000" });
  assert.equal(c.wallClockMs, 400_000);
  assert.equal(c.timeBudgetMs, 185_000);
  assert.equal(
    loadConfig({ EMBED_QUEUE_WALL_CLOCK_MS: "400000" }).timeBudgetMs,
    60_000,
    "the default stays 60 s",
  );
});
