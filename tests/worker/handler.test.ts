/** The HTTP handler, called directly (no server): auth, body validation, 202 for cron/webhook. */
import assert from "node:assert/strict";
import { createHandler, parseBody } from "../../supabase/functions/embed-queue/handler.ts";
import {
  adminKeys,
  createAuthenticator,
  MIN_QUEUE_SECRET_CHARS,
  usableQueueSecret,
} from "../../supabase/functions/embed-queue/auth.ts";
import { loadConfig } from "../../supabase/functions/_shared/config.ts";
import type { EmbeddingProvider } from "../../supabase/functions/_shared/provider.ts";
import { FakeDb, QUEUE_SECRET } from "./fake_db.ts";
import { UNLIMITED } from "../../supabase/functions/embed-queue/budget.ts";

const config = { ...loadConfig({}), dimensions: 4, lingerMs: 0 };
const provider: EmbeddingProvider = {
  name: "fixed",
  model: "m",
  dimensions: 4,
  embed: (inputs) =>
    Promise.resolve({ vectors: inputs.map(() => new Float32Array([1, 0, 0, 0])), promptTokens: 1, rate: {} }),
};

function setup(contents = ["a", "b"]) {
  const db = new FakeDb(contents, 4);
  const background: Promise<unknown>[] = [];
  const handler = createHandler({
    config,
    db,
    provider,
    auth: createAuthenticator(["service-key"], () => db.queueSecret()),
    waitUntil: (p) => background.push(p),
    log: () => {},
  });
  const call = (body: unknown, key: string | null = "service-key", method = "POST") =>
    handler(
      new Request("http://fn/embed-queue", {
        method,
        headers: key ? { authorization: `Bearer ${key}` } : {},
        body: method === "POST" ? (typeof body === "string" ? body : JSON.stringify(body)) : undefined,
      }),
    );
  return { db, background, call };
}

Deno.test("handler: credentials: service role key or the Vault queue secret, nothing else", async () => {
  const { db, call } = setup();
  for (const key of [null, "wrong", "service-key2", QUEUE_SECRET.slice(0, -1), QUEUE_SECRET + "x"]) {
    const r = await call({}, key);
    assert.equal(r.status, 401, `key ${key}`);
    await r.body?.cancel();
  }
  assert.equal(db.claims.length, 0, "nothing claimed without a credential");
  assert.equal((await call({}, QUEUE_SECRET)).status, 200);
});

Deno.test("auth: any of the project's secret keys is accepted like the service role key; publishable keys are not", async () => {
  // The environment a new project's function gets: SUPABASE_SECRET_KEYS / SUPABASE_PUBLISHABLE_KEYS
  // are JSON objects of name → key; the legacy service role key may be there too.
  const env = {
    SUPABASE_SERVICE_ROLE_KEY: "legacy-service-role-jwt",
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: "sb_secret_aaaa", ops: "sb_secret_bbbb" }),
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: "sb_publishable_cccc" }),
  };
  const keys = adminKeys(loadConfig(env));
  assert.deepEqual(keys, ["legacy-service-role-jwt", "sb_secret_aaaa", "sb_secret_bbbb"]);
  const auth = createAuthenticator(keys, () => Promise.resolve(QUEUE_SECRET));
  const req = (k: string) => new Request("http://x", { headers: { authorization: `Bearer ${k}` } });
  for (const k of ["legacy-service-role-jwt", "sb_secret_aaaa", "sb_secret_bbbb", QUEUE_SECRET]) {
    assert.equal(await auth.check(req(k)), true, `accepted: ${k}`);
  }
  for (
    const k of ["sb_publishable_cccc", "sb_secret_aaa", "sb_secret_aaaab", "sb_secret_", "SB_SECRET_AAAA"]
  ) {
    assert.equal(await auth.check(req(k)), false, `refused: ${k}`);
  }

  // A project with only the new keys (the legacy ones disabled): the secret key alone works.
  const onlyNew = createAuthenticator(
    adminKeys(loadConfig({ SUPABASE_SECRET_KEYS: '{"default":"sb_secret_only"}' })),
    () => Promise.resolve(null),
  );
  assert.equal(await onlyNew.check(req("sb_secret_only")), true);
  assert.equal(await onlyNew.check(req("legacy-service-role-jwt")), false);
});

Deno.test("auth: the Vault secret is cached for a minute; a removed secret stops working after that", async () => {
  let t = 0;
  const s1 = "s1-".padEnd(40, "x");
  let secret: string | null = s1;
  let loads = 0;
  const auth = createAuthenticator([], () => (loads++, Promise.resolve(secret)), () => t);
  const req = (k: string) => new Request("http://x", { headers: { authorization: `Bearer ${k}` } });
  assert.equal(await auth.check(req(s1)), true);
  assert.equal(await auth.check(req(s1)), true);
  assert.equal(loads, 1, "one Vault read for both");
  secret = null;
  t += 61_000;
  assert.equal(await auth.check(req(s1)), false);
  assert.equal(await auth.check(req("")), false);
  secret = "";
  t += 61_000;
  assert.equal(await auth.check(req("")), false, "an empty secret never matches");
});

Deno.test("auth: cheap refusal: short tokens read nothing, a cold cache is read once, a failed read is remembered", async () => {
  let t = 0;
  let loads = 0;
  let fail = false;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const auth = createAuthenticator(["service-key"], async () => {
    loads++;
    await gate;
    if (fail) throw new Error("database down");
    return QUEUE_SECRET;
  }, () => t);
  const req = (k: string | null) =>
    new Request("http://x", { headers: k === null ? {} : { authorization: `Bearer ${k}` } });

  for (const k of [null, "", "x", "guess", "a".repeat(MIN_QUEUE_SECRET_CHARS - 1), "service-key"]) {
    await auth.check(req(k));
  }
  assert.equal(loads, 0, "no header, tokens shorter than a queue secret can be, and API keys read nothing");

  // 50 bad tokens at once on a cold cache: one read.
  const many = Array.from({ length: 50 }, (_, i) => auth.check(req(`bad-token-${i}`.padEnd(40, "z"))));
  release();
  assert.deepEqual(new Set(await Promise.all(many)), new Set([false]));
  assert.equal(loads, 1, "concurrent calls share the one read in flight");

  // A failed read: refused, and not read again for a few seconds.
  fail = true;
  t += 61_000;
  assert.equal(await auth.check(req(QUEUE_SECRET)), false);
  assert.equal(await auth.check(req(QUEUE_SECRET)), false);
  assert.equal(loads, 2, "a failed read is remembered");
  fail = false;
  t += 6_000;
  assert.equal(await auth.check(req(QUEUE_SECRET)), true, "and tried again after a few seconds");
  assert.equal(loads, 3);
});

Deno.test("auth: a Vault secret shorter than 32 characters is treated as none", async () => {
  const short = "s".repeat(MIN_QUEUE_SECRET_CHARS - 1);
  const auth = createAuthenticator([], () => Promise.resolve(short));
  const req = (k: string) => new Request("http://x", { headers: { authorization: `Bearer ${k}` } });
  assert.equal(await auth.check(req(short)), false);
  assert.equal(usableQueueSecret(short), false);
  assert.equal(usableQueueSecret(""), false);
  assert.equal(usableQueueSecret(null), false);
  assert.equal(usableQueueSecret(QUEUE_SECRET), true);
});

Deno.test("handler: a manual call waits and returns the summary", async () => {
  const { call } = setup();
  const r = await call({ batch_size: 10 });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.completed, 2);
  assert.equal(body.pending, 0);
  assert.equal(body.trigger, "manual");
});

Deno.test("handler: cron and webhook calls get 202 at once; the run goes on in the background", async () => {
  const { db, background, call } = setup();
  const r = await call({ trigger: "webhook" });
  assert.equal(r.status, 202);
  assert.deepEqual(await r.json(), { accepted: true, trigger: "webhook", started: true });
  assert.equal(background.length, 1);
  await Promise.all(background);
  assert.equal(db.byStatus("completed").length, 2);
  assert.equal(db.runs[0].trigger, "webhook");
});

Deno.test("handler: malformed bodies get 400 with the reason; GET gets 405", async () => {
  const { db, call } = setup();
  const cases: Array<[unknown, RegExp]> = [
    ["{not json", /not valid JSON/],
    [[1, 2], /JSON object/],
    [{ batch_size: 0 }, /batch_size/],
    [{ batch_size: 1.5 }, /batch_size/],
    [{ time_budget_ms: 10 }, /time_budget_ms/],
    [{ tables: "sessions" }, /tables/],
    [{ dry_run: "yes" }, /dry_run/],
    [{ trigger: "hourly" }, /trigger/],
    [{ bach_size: 5 }, /unknown field "bach_size"/],
  ];
  for (const [body, re] of cases) {
    const r = await call(body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match((await r.json()).error, re);
  }
  const g = await call(null, "service-key", "GET");
  assert.equal(g.status, 405);
  await g.body?.cancel();
  assert.equal(db.claims.length, 0);
});

Deno.test("handler: parseBody defaults come from the config; manual runs do not linger", () => {
  const o = parseBody("", { ...config, lingerMs: 2500 });
  assert.equal(o.batchSize, config.batchSize);
  assert.equal(o.timeBudgetMs, config.timeBudgetMs);
  assert.equal(o.trigger, "manual");
  assert.equal(o.wait, true);
  assert.equal(o.lingerMs, 0);
  const w = parseBody('{"trigger":"cron"}', { ...config, lingerMs: 2500 });
  assert.equal(w.wait, false);
  assert.equal(w.lingerMs, 2500);
});

Deno.test("handler: one background run per worker: a call while it works starts nothing; once it stopped, the next call starts one", async () => {
  const { db, background, call } = setup(Array.from({ length: 5 }, (_, i) => `row ${i}`));
  const first = await call({ trigger: "webhook" });
  assert.equal((await first.json()).started, true);
  const second = await call({ trigger: "cron" });
  assert.equal(second.status, 202);
  assert.deepEqual(await second.json(), { accepted: true, trigger: "cron", started: false });
  assert.equal(background.length, 1, "one run in the background");
  await Promise.all(background);
  assert.equal(db.byStatus("completed").length, 5, "that run took the work");
  const third = await call({ trigger: "cron" });
  assert.equal((await third.json()).started, true, "once it stopped, the next call starts a run");
  await Promise.all(background);
  const manual = await call({});
  assert.equal(manual.status, 200, "a manual call is never turned away");
  await manual.body?.cancel();
});

Deno.test("handler: a ping answers this worker's id and runs nothing; a run proves its worker through it", async () => {
  const db = new FakeDb(["a", "b"], 4);
  const events: Array<[string, Record<string, unknown> | undefined]> = [];
  let arrivals = 0;
  let handler!: (req: Request) => Promise<Response>;
  const other = createHandler({
    config,
    db,
    provider,
    auth: createAuthenticator(["service-key"], () => db.queueSecret()),
    waitUntil: () => {},
    log: () => {},
  });
  let routeTo: "self" | "other" = "self";
  handler = createHandler({
    config,
    db,
    provider,
    auth: createAuthenticator(["service-key"], () => db.queueSecret()),
    waitUntil: () => {},
    log: (e, f) => events.push([e, f]),
    budget: {
      ...UNLIMITED,
      requestArrived: () => void arrivals++,
      // A request goes only if a request reached this worker after the run's own.
      admit: () => (arrivals > 1 ? (arrivals = 1, "send") : "prove"),
    },
    self: {
      url: "http://fn/embed-queue",
      key: "service-key",
      // The gateway: to this worker while the runtime serves it, else to a fresh one.
      fetch: (url, init) => (routeTo === "self" ? handler : other)(new Request(url as string, init)),
    },
  });
  const ping = (h: typeof handler) =>
    h(
      new Request("http://fn/embed-queue", {
        method: "POST",
        headers: { authorization: "Bearer service-key" },
        body: '{"ping":true}',
      }),
    ).then((r) => r.json());
  const a = await ping(handler), b = await ping(other);
  assert.match(a.worker, /^[0-9a-f-]{36}$/);
  assert.notEqual(a.worker, b.worker, "each worker has its own id");
  assert.equal(db.claims.length, 0, "a ping claims nothing");

  const run = (body: unknown) =>
    handler(
      new Request("http://fn/embed-queue", {
        method: "POST",
        headers: { authorization: "Bearer service-key" },
        body: JSON.stringify(body),
      }),
    ).then((r) => r.json());
  arrivals = 0;
  const proven = await run({ max_jobs: 1 });
  assert.equal(proven.completed, 1, "proven by its own answer, the run sends");
  assert.deepEqual(events.filter(([e]) => e === "worker.proof").map(([, f]) => f?.same_worker), [true]);

  routeTo = "other";
  arrivals = 0;
  const retired = await run({});
  assert.equal(retired.completed, 0, "answered by another worker: this one is retired and sends nothing");
  assert.equal(retired.stopped, "cpu");
  assert.equal(retired.released, 1, "what it held goes back unsent");
});
