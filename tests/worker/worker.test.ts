/**
 * The run loop with fakes (in-memory queue, scripted provider, fake clock): packing, failure
 * kinds, bisection of a bad input, auth stop, time budget, release on shutdown.
 */
import assert from "node:assert/strict";
import { type RunDeps, type RunOptions, runQueue } from "../../supabase/functions/embed-queue/worker.ts";
import { ProviderError } from "../../supabase/functions/_shared/errors.ts";
import type { EmbeddingProvider, EmbedResult } from "../../supabase/functions/_shared/provider.ts";
import { loadConfig } from "../../supabase/functions/_shared/config.ts";
import { toPgvector } from "../../supabase/functions/_shared/vectors.ts";
import { countTokens } from "../../supabase/functions/_shared/tokens.ts";
import { paceKey } from "../../supabase/functions/_shared/limiter.ts";
import { FakeDb } from "./fake_db.ts";
import { type Budget, UNLIMITED } from "../../supabase/functions/embed-queue/budget.ts";

const DIMS = 8;
const config = {
  ...loadConfig({}),
  dimensions: DIMS,
  concurrency: 2,
  maxRequestRetries: 2,
};

type Script = (
  inputs: string[],
  call: number,
) => EmbedResult | Error | Promise<EmbedResult | Error>;

function vectorOf(text: string): Float32Array {
  const v = new Float32Array(DIMS);
  for (let i = 0; i < text.length; i++) {
    v[i % DIMS] += text.charCodeAt(i) / 1000;
  }
  return v;
}

function provider(
  script: Script = () => ({ vectors: [], promptTokens: 0, rate: {} }),
) {
  const calls: string[][] = [];
  const p: EmbeddingProvider = {
    name: "scripted",
    model: "test-model",
    dimensions: DIMS,
    async embed(inputs: string[]) {
      calls.push(inputs);
      const r = await script(inputs, calls.length);
      if (r instanceof Error) throw r;
      return r.vectors.length ? r : {
        vectors: inputs.map(vectorOf),
        promptTokens: inputs.length * 3,
        rate: r.rate,
      };
    },
  };
  return { p, calls };
}

const ok = () => ({ vectors: [], promptTokens: 0, rate: {} });

function clock() {
  let t = 1_000_000;
  return { now: () => t, sleep: (ms: number) => (t += ms, Promise.resolve()) };
}

const opts = (o: Partial<RunOptions> = {}): RunOptions => ({
  trigger: "manual",
  batchSize: 100,
  timeBudgetMs: 60_000,
  dryRun: false,
  ...o,
});

const quiet = () => {};

/** A cron run in one lane of requests of up to 10 jobs, claiming `batchSize`, over `budget`. */
function runInWorker(
  db: FakeDb,
  p: EmbeddingProvider,
  budget: Budget,
  deps: Partial<RunDeps> = {},
  batchSize = 30,
) {
  return runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 1, maxInputsPerRequest: 10 },
      ...clock(),
      log: quiet,
      budget,
      ...deps,
    },
    opts({ batchSize, trigger: "cron" }),
  );
}

Deno.test("run: packs many jobs into few requests, identical texts sent once, all completed", async () => {
  const texts = Array.from(
    { length: 250 },
    (_, i) => (i % 50 === 0 ? "same text" : `row ${i}`),
  );
  const db = new FakeDb(texts, DIMS);
  const { p, calls } = provider(ok);
  const c = clock();
  const s = await runQueue(
    { db, provider: p, config, ...c, log: quiet },
    opts({ batchSize: 100 }),
  );
  assert.equal(s.completed, 250);
  assert.equal(s.failed, 0);
  assert.equal(s.claimed, 250);
  assert.equal(calls.length, 3, "one request per claimed batch of 100");
  assert.equal(
    calls.flat().filter((t) => t === "same text").length,
    3,
    "duplicates in a request sent once",
  );
  for (const j of db.jobs.values()) {
    assert.equal(
      j.embedding,
      toPgvector(vectorOf(j.content)),
      "each job got its own text's vector",
    );
  }
  assert.equal(db.byStatus("completed").length, 250);
  assert.equal(s.pending, 0);
  assert.equal(s.stopped, "empty");
  assert.equal(db.runs[0].stats?.completed, 250, "the run is recorded");
});

Deno.test("run: a bad input is bisected out and fails alone", async () => {
  const texts = Array.from(
    { length: 37 },
    (_, i) => (i === 23 ? "poison" : `row ${i}`),
  );
  const db = new FakeDb(texts, DIMS);
  const { p, calls } = provider((inputs) =>
    inputs.includes("poison") ? new ProviderError("bad_request", "invalid input", { status: 400 }) : ok()
  );
  const s = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet },
    opts(),
  );
  assert.equal(s.completed, 36);
  assert.equal(s.failed, 1);
  const failed = db.byStatus("failed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0].content, "poison");
  assert.ok(
    !failed[0].error!.includes("poison"),
    "error message holds no user text",
  );
  assert.ok(
    calls.length <= 2 * Math.ceil(Math.log2(37)) + 2,
    `bisection, not one request per row (${calls.length})`,
  );
});

Deno.test("run: the provider naming the bad input isolates it in three requests", async () => {
  const texts = Array.from({ length: 20 }, (_, i) => `row ${i}`);
  const db = new FakeDb(texts, DIMS);
  const { p, calls } = provider((inputs) => {
    const i = inputs.indexOf("row 13");
    return i >= 0 && inputs.length > 1
      ? new ProviderError("bad_request", `Invalid 'input[${i}]'`, {
        status: 400,
        badInputIndex: i,
      })
      : inputs.length === 1 && inputs[0] === "row 13"
      ? new ProviderError("bad_request", "invalid", { status: 400 })
      : ok();
  });
  const s = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet },
    opts(),
  );
  assert.equal(s.completed, 19);
  assert.equal(s.failed, 1);
  assert.equal(calls.length, 4, "the batch, then before / the bad one / after");
});

Deno.test("run: 429s pause and resend without spending attempts; nothing fails", async () => {
  const db = new FakeDb(Array.from({ length: 30 }, (_, i) => `row ${i}`), DIMS);
  const c = clock();
  const { p, calls } = provider((_inputs, call) =>
    call <= 3
      ? new ProviderError("rate_limited", "slow down", {
        status: 429,
        retryAfterMs: 2000,
      })
      : ok()
  );
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 1 },
      ...c,
      log: quiet,
    },
    opts(),
  );
  assert.equal(s.completed, 30);
  assert.equal(s.failed, 0);
  assert.equal(s.rate_limited, 3);
  assert.equal(calls.length, 4);
  for (const j of db.jobs.values()) {
    assert.equal(j.attempts, 1, "one attempt each: the claim");
  }
});

Deno.test("run: 5xx retried in the run, then failed back to the queue with backoff", async () => {
  const db = new FakeDb(["a", "b"], DIMS);
  const { p, calls } = provider(() => new ProviderError("retryable", "server error", { status: 500 }));
  const s = await runQueue({
    db,
    provider: p,
    config,
    ...clock(),
    random: () => 0.5,
    log: quiet,
  }, opts());
  assert.equal(calls.length, 1 + config.maxRequestRetries);
  assert.equal(s.completed, 0);
  assert.equal(s.retried_later, 2, "back to pending for a later attempt");
  assert.equal(db.byStatus("pending").length, 2);
  assert.ok(
    db.failures.every((f) => f.kind === "retryable" && /500/.test(f.error)),
  );
});

Deno.test("run: an authentication error stops the run and refunds every attempt", async () => {
  const db = new FakeDb(Array.from({ length: 10 }, (_, i) => `row ${i}`), DIMS);
  const { p, calls } = provider(() =>
    new ProviderError("auth", "Incorrect API key provided: sk-proj-abc123", {
      status: 401,
    })
  );
  const s = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet },
    opts(),
  );
  assert.equal(s.stopped, "auth");
  assert.match(String(s.error), /401|auth/i);
  assert.ok(!String(s.error).includes("sk-proj-abc123"), "no key in the error");
  assert.equal(calls.length, 1, "no more requests after the auth failure");
  assert.equal(db.byStatus("pending").length, 10);
  for (const j of db.jobs.values()) {
    assert.equal(j.attempts, 0, "attempt refunded");
  }
  assert.equal(s.released, 10);
});

Deno.test("run: a vector size that does not match the column fails the jobs, writes nothing", async () => {
  const db = new FakeDb(["a", "b", "c"], 1536);
  const { p, calls } = provider(ok);
  const s = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet },
    opts(),
  );
  assert.equal(calls.length, 0);
  assert.equal(s.failed, 3);
  assert.match(db.failures[0].error, /1536 dimensions.*EMBEDDING_DIMENSIONS/);
});

Deno.test("run: stops at the time budget and releases what it did not send", async () => {
  const db = new FakeDb(Array.from({ length: 40 }, (_, i) => `row ${i}`), DIMS);
  const c = clock();
  const { p } = provider(async () => {
    await c.sleep(4000); // each request takes 4 s of the fake clock
    return ok();
  });
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 1, maxInputsPerRequest: 5 },
      ...c,
      log: quiet,
    },
    opts({ batchSize: 40, timeBudgetMs: 10_000 }),
  );
  assert.equal(s.stopped, "budget");
  assert.ok(
    s.completed > 0 && s.completed < 40,
    `some but not all (${s.completed})`,
  );
  assert.equal(db.handOvers, 0, "a manual run leaves the rest to its caller");
  assert.equal(s.released, 40 - s.completed);
  assert.equal(db.byStatus("processing").length, 0, "nothing left held");
  assert.equal(db.byStatus("pending").length, 40 - s.completed);
});

Deno.test("run: shutdown (beforeunload) releases the claimed but unsent jobs", async () => {
  const db = new FakeDb(Array.from({ length: 20 }, (_, i) => `row ${i}`), DIMS);
  const ac = new AbortController();
  const { p } = provider((_inputs, call) => {
    if (call === 1) ac.abort();
    return ok();
  });
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 1, maxInputsPerRequest: 5 },
      ...clock(),
      signal: ac.signal,
      log: quiet,
    },
    opts({ batchSize: 20 }),
  );
  assert.equal(s.stopped, "aborted");
  assert.equal(s.completed, 5, "the answered request is written");
  assert.equal(s.released, 15);
  assert.equal(db.byStatus("processing").length, 0);
});

Deno.test("run: dry run plans requests and tokens, changes nothing", async () => {
  const db = new FakeDb(
    Array.from({ length: 12 }, (_, i) => `row number ${i}`),
    DIMS,
  );
  const { p, calls } = provider(ok);
  const s = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet },
    opts({ dryRun: true }),
  );
  assert.equal(calls.length, 0);
  assert.equal(s.requests, 1);
  assert.ok(s.tokens > 12);
  assert.equal(db.byStatus("pending").length, 12);
  for (const j of db.jobs.values()) assert.equal(j.attempts, 0);
  assert.equal(db.runs.length, 0, "a dry run leaves no run record");
});

Deno.test("run: a webhook run lingers once after the queue empties and takes late work", async () => {
  const db = new FakeDb(["first"], DIMS);
  const c = clock();
  const { p, calls } = provider(ok);
  let late = false;
  const sleep = (ms: number) => {
    if (!late) {
      // A row committed while the run lingers (its webhook call was suppressed).
      late = true;
      db.jobs.set(2, {
        ...db.jobs.get(1)!,
        id: 2,
        content: "late",
        status: "pending",
        attempts: 0,
        lockedBy: null,
        embedding: null,
      });
    }
    return c.sleep(ms);
  };
  const s = await runQueue(
    { db, provider: p, config, now: c.now, sleep, log: quiet },
    opts({ trigger: "webhook", lingerMs: 2500 }),
  );
  assert.equal(s.completed, 2);
  assert.deepEqual(calls, [["first"], ["late"]]);
  const manual = new FakeDb(["only"], DIMS);
  let slept = 0;
  await runQueue({
    db: manual,
    provider: provider(ok).p,
    config,
    now: c.now,
    sleep: (ms) => (slept += ms, c.sleep(ms)),
    log: quiet,
  }, opts({ lingerMs: 0 }));
  assert.equal(slept, 0, "a manual run answers as soon as the queue is empty");
});

Deno.test("run: max_jobs stops claiming after that many (a paced drain)", async () => {
  const db = new FakeDb(Array.from({ length: 23 }, (_, i) => `row ${i}`), DIMS);
  const { p, calls } = provider(ok);
  const s = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet },
    opts({ batchSize: 5, maxJobs: 5 }),
  );
  assert.equal(s.claimed, 5);
  assert.equal(s.completed, 5);
  assert.equal(s.stopped, "max_jobs");
  assert.equal(calls.length, 1);
  assert.equal(s.pending, 18);
  const s2 = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet },
    opts({ batchSize: 4, maxJobs: 10 }),
  );
  assert.equal(
    s2.claimed,
    10,
    "several lanes never claim past max_jobs together",
  );
});

Deno.test("run: a background run out of time with work left calls the next run itself", async () => {
  const db = new FakeDb(Array.from({ length: 40 }, (_, i) => `row ${i}`), DIMS);
  const c = clock();
  const { p } = provider(async () => {
    await c.sleep(4000);
    return ok();
  });
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 1, maxInputsPerRequest: 5 },
      ...c,
      log: quiet,
    },
    opts({ trigger: "cron", batchSize: 40, timeBudgetMs: 10_000 }),
  );
  assert.equal(s.stopped, "budget");
  assert.equal(db.handOvers, 1);
  const empty = new FakeDb(["one"], DIMS);
  await runQueue(
    { db: empty, provider: provider(ok).p, config, ...clock(), log: quiet },
    opts({ trigger: "cron" }),
  );
  assert.equal(empty.handOvers, 0, "no successor when the queue is empty");
});

Deno.test("run: a 429 whose retry-after outlasts the budget snoozes its jobs, releases the rest and hands over", async () => {
  const db = new FakeDb(Array.from({ length: 10 }, (_, i) => `row ${i}`), DIMS);
  const { p, calls } = provider((inputs) =>
    inputs.includes("row 0")
      ? new ProviderError("rate_limited", "slow down", {
        status: 429,
        retryAfterMs: 30_000,
      })
      : ok()
  );
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 1, maxInputsPerRequest: 5 },
      ...clock(),
      log: quiet,
    },
    opts({ trigger: "webhook", timeBudgetMs: 10_000 }),
  );
  assert.equal(calls.length, 1);
  assert.equal(s.stopped, "budget");
  assert.equal(s.rate_limited, 1);
  assert.equal(s.failed, 0, "no job is failed for a rate limit");
  assert.equal(
    s.retried_later,
    5,
    "the rate-limited request's jobs are snoozed",
  );
  assert.deepEqual(
    db.failures.map((f) => [f.kind, f.retry_after_ms]),
    Array(5).fill(["rate_limited", 30_000]),
    "through the SQL snooze with the provider's retry-after",
  );
  assert.equal(s.released, 5, "the unsent request's jobs are released");
  for (const j of db.jobs.values()) {
    assert.equal(j.status, "pending");
    assert.equal(j.attempts, 0, "attempt refunded");
    assert.equal(
      j.delayed,
      j.content <= "row 4",
      "snoozed jobs wait for the retry-after, released ones do not",
    );
  }
  assert.equal(db.handOvers, 1, "the next run is called");
});

Deno.test("run: a worker out of CPU stops claiming, releases nothing it did not hold, and hands over", async () => {
  const db = new FakeDb(Array.from({ length: 300 }, (_, i) => `row ${i}`), DIMS);
  const { p } = provider(ok);
  const c = clock();
  let claims = 0;
  const budget: Budget = {
    ...UNLIMITED,
    exhausted: () => (claims >= 2 ? "cpu" as const : null),
    allow: (want: number) => (claims >= 2 ? 0 : (claims++, want)),
  };
  const s = await runQueue(
    { db, provider: p, config: { ...config, concurrency: 1 }, ...c, log: quiet, budget },
    opts({ batchSize: 100, trigger: "cron" }),
  );
  assert.equal(s.claimed, 200, "two batches, then no more");
  assert.equal(s.completed, 200);
  assert.equal(s.stopped, "cpu");
  assert.equal(s.released, 0);
  assert.equal(db.byStatus("pending").length, 100, "the rest waits, untouched");
  assert.equal(db.handOvers, 1, "and the next run is called, to land on a fresh worker");
});

Deno.test("run: when the room since the last proof is used up, a proven worker goes on sending", async () => {
  const db = new FakeDb(Array.from({ length: 30 }, (_, i) => `row ${i}`), DIMS);
  const { p, calls } = provider(ok);
  let proofs = 0;
  let fresh = true; // room until the next request
  const budget: Budget = {
    ...UNLIMITED,
    admit: () => (fresh ? (fresh = false, "send") : "prove"),
  };
  const s = await runInWorker(db, p, budget, {
    prove: () => (proofs++, fresh = true, Promise.resolve(true)),
  });
  assert.equal(calls.length, 3);
  assert.equal(s.completed, 30);
  assert.equal(proofs, 2, "a proof before each request after the first");
  assert.equal(s.stopped, "empty");
});

Deno.test("run: a worker found retired when its room is used up sends nothing more, gives back what it holds unsent and hands over", async () => {
  const db = new FakeDb(Array.from({ length: 30 }, (_, i) => `row ${i}`), DIMS);
  const { p, calls } = provider(ok);
  let fresh = true;
  const budget: Budget = {
    ...UNLIMITED,
    admit: () => (fresh ? (fresh = false, "send") : "prove"),
  };
  // Proofs are answered by another worker.
  const s = await runInWorker(db, p, budget, { prove: () => Promise.resolve(false) });
  assert.equal(calls.length, 1, "one request, then it finds its worker retired");
  assert.equal(s.completed, 10);
  assert.equal(s.released, 20, "the unsent 20 go back with their attempt refunded");
  assert.equal(s.stopped, "cpu");
  for (const j of db.byStatus("pending")) assert.equal(j.attempts, 0);
  assert.equal(db.handOvers, 1, "the next run lands on a fresh worker");
});

Deno.test("run: a proof asked for ahead of need that another worker answers calls the next run at once and stops the sends after it", async () => {
  const db = new FakeDb(Array.from({ length: 30 }, (_, i) => `row ${i}`), DIMS);
  let handOversAtAnswer = -1;
  let gate!: () => void;
  const proved = new Promise<void>((r) => (gate = r));
  const { p, calls } = provider(async () => {
    await proved; // answered once the proof has come back
    handOversAtAnswer = db.handOvers;
    return ok();
  });
  let proofs = 0;
  const budget: Budget = { ...UNLIMITED, proofDue: () => true };
  const s = await runInWorker(db, p, budget, { prove: () => (proofs++, gate(), Promise.resolve(false)) });
  assert.equal(proofs, 1, "once found retired, it asks no more");
  assert.equal(handOversAtAnswer, 1, "the next run was called while the request was still in flight");
  assert.equal(calls.length, 1, "the request it went along with, and no other");
  assert.equal(s.completed, 10);
  assert.equal(s.released, 20, "the rest goes back unsent, attempt refunded");
  for (const j of db.byStatus("pending")) assert.equal(j.attempts, 0);
  assert.equal(s.stopped, "cpu");
  assert.equal(db.handOvers, 1, "one call of the next run, not a second at the end");
});

Deno.test("run: a batch that stops sending gives its unsent jobs back at once, while another lane's request is still in flight", async () => {
  const db = new FakeDb(Array.from({ length: 40 }, (_, i) => `row ${i}`), DIMS);
  const c = clock();
  db.paceNow = c.now;
  // The limits are known (no first request alone to learn them), and far away.
  await db.pace(await paceKey("test-model", config.provider, "")).observe({
    limitRequests: 1e6,
    limitTokens: 1e9,
  });
  let pendingWhileInFlight = -1;
  const { p, calls } = provider(async (_inputs, call) => {
    if (call === 1) {
      // The first lane's request is answered only once the other lane has stopped.
      for (let i = 0; i < 100 && db.byStatus("pending").length === 0; i++) {
        await new Promise((r) => setTimeout(r, 1));
      }
      pendingWhileInFlight = db.byStatus("pending").length;
    }
    return ok();
  });
  let sends = 0;
  const budget: Budget = {
    ...UNLIMITED,
    admit: () => (sends < 2 ? (sends++, "send") : "prove"),
  };
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 2, maxInputsPerRequest: 10 },
      ...c,
      log: quiet,
      budget,
      prove: () => Promise.resolve(false),
    },
    opts({ batchSize: 20, trigger: "cron" }),
  );
  assert.equal(calls.length, 2);
  assert.equal(
    pendingWhileInFlight,
    10,
    "the stopped lane's 10 unsent jobs were pending before the run ended",
  );
  assert.equal(s.completed, 20);
  assert.equal(s.released, 20);
  assert.equal(db.handOvers, 1);
});

Deno.test("run: a release that never settles does not hold the run: it ends, and the lease returns those jobs", async () => {
  const db = new FakeDb(Array.from({ length: 30 }, (_, i) => `row ${i}`), DIMS);
  const { p, calls } = provider(ok);
  let sends = 0;
  const budget: Budget = { ...UNLIMITED, admit: () => (sends < 1 ? (sends++, "send") : "prove") };
  let releases = 0;
  db.release = () => (releases++, new Promise<number>(() => {})); // stranded, as postgres.js may leave one
  const s = await runInWorker(db, p, budget, {
    prove: () => Promise.resolve(false),
    bookkeepingTimeoutMs: 20,
  });
  assert.equal(calls.length, 1);
  assert.equal(s.completed, 10);
  assert.equal(releases, 2, "the give-back, then once more at the end of the run");
  assert.equal(s.released, 0);
  assert.equal(db.byStatus("processing").length, 20, "left to their lease");
  assert.equal(db.handOvers, 1);
});

Deno.test("run: a claim of long texts is tokenized a slice at a time, the worker proving itself between slices", async () => {
  const long = (c: string) => c.repeat(300_000); // more than one slice each
  const db = new FakeDb([long("a"), long("b"), long("c")], DIMS);
  const { p, calls } = provider(ok);
  let proofs = 0;
  const budget: Budget = { ...UNLIMITED, proofDue: () => true };
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 1, maxTokensPerInput: 50 },
      ...clock(),
      log: quiet,
      budget,
      prove: () => (proofs++, Promise.resolve(proofs < 2)),
    },
    opts({ batchSize: 3, trigger: "cron" }),
  );
  assert.equal(proofs, 2, "one proof after the first slice (yes), one after the second (another worker)");
  assert.equal(calls.length, 0, "retired before anything was sent");
  assert.equal(s.released, 3, "the whole claim goes back unsent");
  assert.equal(s.stopped, "cpu");
});

Deno.test("run: a request waits while those in flight fill the room, then goes", async () => {
  const db = new FakeDb(Array.from({ length: 20 }, (_, i) => `row ${i}`), DIMS);
  let gate!: () => void;
  const opened = new Promise<void>((r) => (gate = r));
  const { p, calls } = provider(async (_inputs, call) => {
    if (call === 1) await opened;
    return ok();
  });
  let inFlight = 0;
  let waits = 0;
  const budget: Budget = {
    ...UNLIMITED,
    admit: () => (inFlight > 0 ? (waits++, gate(), "wait") : (inFlight++, "send")),
    sent: () => void inFlight--,
  };
  const s = await runQueue(
    {
      db,
      provider: p,
      config: { ...config, concurrency: 2, maxInputsPerRequest: 10 },
      ...clock(),
      log: quiet,
      budget,
    },
    opts({ batchSize: 10 }),
  );
  assert.equal(s.completed, 20);
  assert.equal(calls.length, 2);
  assert.ok(waits >= 1, "the second request waited for the first");
});

Deno.test("run: a run in a worker already over budget that claims nothing does not hand over", async () => {
  const db = new FakeDb(["a", "b"], DIMS);
  const { p, calls } = provider(ok);
  const budget: Budget = {
    ...UNLIMITED,
    exhausted: () => "memory" as const,
    allow: () => 0,
  };
  const s = await runQueue(
    { db, provider: p, config, ...clock(), log: quiet, budget },
    opts({ trigger: "webhook" }),
  );
  assert.equal(s.stopped, "memory");
  assert.equal(s.claimed, 0);
  assert.equal(calls.length, 0);
  assert.equal(db.handOvers, 0, "no call to itself: that could go round without end");
});

Deno.test("run: past the yield point a run sends nothing more and gives back what it holds", async () => {
  const db = new FakeDb(Array.from({ length: 50 }, (_, i) => `row ${i}`), DIMS);
  const { p, calls } = provider(ok);
  let sends = 0;
  const budget: Budget = {
    ...UNLIMITED,
    exhausted: () => null,
    mustYield: () => sends >= 2,
    allow: (want: number) => want,
  };
  const counting = {
    ...p,
    embed: (inputs: string[], signal?: AbortSignal) => (sends++, p.embed(inputs, signal)),
  };
  const s = await runInWorker(db, counting, budget, {}, 50);
  assert.equal(calls.length, 2, "two requests, then it yields");
  assert.equal(s.completed, 20);
  assert.equal(s.released, 30, "the unsent 30 go back with their attempt refunded");
  assert.equal(s.stopped, "cpu");
  assert.equal(db.handOvers, 1, "and a fresh worker is called for them");
});

Deno.test("run: a background run that finds max_concurrent_runs working ends at once, claiming nothing", async () => {
  const db = new FakeDb(["a", "b"], DIMS);
  db.maxConcurrentRuns = 1;
  db.runs.push({ id: 1, trigger: "cron" }); // unfinished: working
  const { p, calls } = provider(ok);
  for (const trigger of ["cron", "webhook"] as const) {
    const s = await runQueue({
      db,
      provider: p,
      config,
      ...clock(),
      log: quiet,
    }, opts({ trigger }));
    assert.equal(s.stopped, "busy");
    assert.equal(s.run_id, null);
    assert.equal(s.claimed, 0);
  }
  assert.equal(db.claims.length, 0, "no claim");
  assert.equal(calls.length, 0);
  assert.equal(db.handOvers, 0, "and no hand-over");
  const manual = await runQueue({
    db,
    provider: p,
    config,
    ...clock(),
    log: quiet,
  }, opts());
  assert.equal(manual.completed, 2, "a manual run is not refused");
});

/** `count` texts of about ten tokens, and a provider that reports a limit of 4,000 tokens, all left. */
function tokenLimited(count: number) {
  const texts = Array.from({ length: count }, (_, i) => `a text of about ten tokens, number ${i}`);
  const db = new FakeDb(texts, DIMS);
  const c = clock();
  db.paceNow = c.now;
  const rate = {
    limitTokens: 4000,
    limitRequests: 100_000,
    remainingTokens: 4000,
    remainingRequests: 100_000,
  };
  const { p, calls } = provider(() => ({ vectors: [], promptTokens: 0, rate }));
  const tokensOf = (sent: string[][]) => sent.map((inputs) => inputs.reduce((n, t) => n + countTokens(t), 0));
  return { db, c, p, calls, tokensOf };
}

Deno.test("run: requests are cut to 5 % of the provider's x-ratelimit-limit-tokens once it is known", async () => {
  const { db, c, p, calls, tokensOf } = tokenLimited(120);
  const s = await runQueue(
    { db, provider: p, config: { ...config, concurrency: 1 }, ...c, log: quiet },
    opts({ batchSize: 40, timeBudgetMs: 120_000 }),
  );
  assert.equal(s.completed, 120);
  const tokens = tokensOf(calls);
  assert.ok(
    tokens[0] > 200,
    `the first request goes before the limits are known (${tokens[0]} tokens)`,
  );
  assert.ok(
    tokens.slice(1).every((n) => n <= 200),
    `then at most 5 % of 4,000: ${tokens}`,
  );
});

Deno.test("run: a run's first request is already cut to the token limit an earlier run learned (the shared pace)", async () => {
  const { db, c, p, calls, tokensOf } = tokenLimited(240);
  const run = (maxJobs: number) =>
    runQueue(
      { db, provider: p, config: { ...config, concurrency: 1 }, ...c, log: quiet },
      opts({ batchSize: 40, timeBudgetMs: 120_000, maxJobs }),
    );
  await run(40);
  const before = calls.length;
  const s = await run(200);
  assert.equal(s.completed, 200);
  const tokens = tokensOf(calls.slice(before));
  assert.ok(tokens.every((n) => n <= 200), `every request of the second run at most 5 % of 4,000: ${tokens}`);
});

Deno.test("run: two runs share one pace: together they stay within the provider's tokens per minute", async () => {
  // The real clock, and a limit of 3 tokens a millisecond: the drain takes about 400 ms.
  const texts = Array.from(
    { length: 120 },
    (_, i) => `a text of about ten tokens, number ${i}`,
  );
  const db = new FakeDb(texts, DIMS);
  const admitted: Array<[number, number]> = [];
  const rate = { limitTokens: 180_000, limitRequests: 1_000_000 };
  const { p } = provider(async (inputs) => {
    admitted.push([Date.now(), inputs.reduce((n, t) => n + countTokens(t), 0)]);
    await new Promise((r) => setTimeout(r, 1));
    return {
      vectors: [],
      promptTokens: 0,
      rate: { ...rate, remainingTokens: 0 },
    };
  });
  const run = () =>
    runQueue(
      { db, provider: p, config: { ...config, concurrency: 2 }, log: quiet },
      opts({ batchSize: 10, timeBudgetMs: 60_000 }),
    );
  const [a, b] = await Promise.all([run(), run()]);
  assert.equal(a.completed + b.completed, 120);
  assert.ok(a.requests > 0 && b.requests > 0, "both runs sent");
  // After the first answer (remaining 0), tokens are admitted at most at the limit's rate. (Each
  // run with a pace of its own would admit twice as many.)
  const first = admitted[0][0];
  const after = admitted.slice(2); // the probe's answer sets the pace; one request may be out with it
  const total = after.reduce((n, [, k]) => n + k, 0);
  const span = after[after.length - 1][0] - first;
  assert.ok(total <= 3 * span + 200, `${total} tokens in ${span} ms`);
});

Deno.test("run: jobs the shared pace cannot send in time are released at once, not at the end of the run", async () => {
  const texts = Array.from({ length: 20 }, (_, i) => `row ${i}`);
  const db = new FakeDb(texts, DIMS);
  const c = clock();
  db.paceNow = c.now;
  // Another run has reserved the next 5 minutes of this provider's tokens.
  const pace = db.pace(await paceKey("test-model", config.provider, ""));
  await pace.observe({ limitTokens: 6000, remainingTokens: 0 });
  await pace.take(6000 * 5);
  const { p, calls } = provider(ok);
  const releases: number[] = [];
  const release = db.release.bind(db);
  db.release = (w, ids) => (releases.push(ids?.length ?? -1), release(w, ids));
  const s = await runQueue(
    { db, provider: p, config: { ...config, concurrency: 2 }, ...c, log: quiet },
    opts({ trigger: "cron", batchSize: 10, timeBudgetMs: 60_000 }),
  );
  assert.equal(calls.length, 0, "nothing sent");
  assert.equal(s.stopped, "budget");
  assert.equal(s.claimed, 20);
  assert.equal(s.released, 20);
  assert.deepEqual(releases, [10, 10], "each lane gives its batch back as soon as it knows");
  for (const j of db.jobs.values()) assert.equal(j.attempts, 0, "attempt refunded");
  assert.equal(db.handOvers, 1, "and the next run is called");
});

/** A FakeDb whose jobs 1..n are in "sessions" and the rest in "summaries", as a backfill queues them. */
function twoTables(sessions: number, summaries: number) {
  const texts = Array.from(
    { length: sessions + summaries },
    (_, i) => `row ${i}`,
  );
  const db = new FakeDb(texts, DIMS);
  for (let id = sessions + 1; id <= sessions + summaries; id++) {
    db.tableOf.set(id, "summaries");
  }
  const tablesAsked: Array<string[] | undefined> = [];
  db.queueTables = (tables?: string[]) => {
    tablesAsked.push(tables);
    return Promise.resolve(
      ["sessions", "summaries"].filter((t) => !tables || tables.includes(t)),
    );
  };
  return { db, tablesAsked };
}

Deno.test("run: the lanes take turns between the queue tables, and take from all once one has nothing", async () => {
  // Queued sessions first: in the fair order alone every claim would be sessions until they ran out.
  const { db } = twoTables(30, 10);
  const { p } = provider(ok);
  const s = await runQueue(
    { db, provider: p, config: { ...config, concurrency: 1 }, log: quiet },
    opts({ trigger: "cron", batchSize: 5 }),
  );
  assert.equal(s.completed, 40);
  const tableOf = (id: number) => db.tableOf.get(id) ?? "sessions";
  const claimed = db.claims.filter((ids) => ids.length > 0).map((ids) =>
    [...new Set(ids.map(tableOf))].join("+")
  );
  assert.deepEqual(
    claimed.slice(0, 4),
    ["sessions", "summaries", "sessions", "summaries"],
    "turns while both have jobs",
  );
  // summaries ran dry after two claims of 5: its next turn came back empty and took from all.
  const emptyTurn = db.claimTables.findIndex((t, i) => t?.[0] === "summaries" && db.claims[i].length === 0);
  assert.ok(emptyTurn > 0, "an empty turn");
  assert.equal(
    db.claimTables[emptyTurn + 1],
    null,
    "followed by a claim from all tables",
  );
  assert.ok(db.claims[emptyTurn + 1].length > 0);
  for (const j of db.jobs.values()) {
    assert.equal(j.attempts, 1, "each job claimed once");
  }
});

Deno.test("run: a run asked for one table claims only from it, with no turns", async () => {
  const { db, tablesAsked } = twoTables(6, 6);
  const { p } = provider(ok);
  const s = await runQueue(
    { db, provider: p, config: { ...config, concurrency: 2 }, log: quiet },
    opts({ batchSize: 4, tables: ["summaries"] }),
  );
  assert.deepEqual(tablesAsked, [["summaries"]]);
  assert.equal(s.completed, 6);
  assert.ok(
    db.claimTables.every((t) => t?.join() === "summaries"),
    "every claim as asked",
  );
  for (const j of db.jobs.values()) {
    assert.equal(
      j.status,
      db.tableOf.get(j.id) === "summaries" ? "completed" : "pending",
    );
  }
});
