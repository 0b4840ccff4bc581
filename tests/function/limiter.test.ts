import assert from "node:assert/strict";
import {
  MemoryPace,
  type PaceStore,
  PaceTooSlow,
  parseRateLimitHeaders,
  RateLimiter,
} from "../../supabase/functions/_shared/limiter.ts";

/** A fake clock whose sleep advances time at once and records what was slept. */
function fakeClock() {
  const c = {
    t: 0,
    slept: [] as number[],
    now: () => c.t,
    sleep: (ms: number) => {
      c.slept.push(ms);
      c.t += ms;
      return Promise.resolve();
    },
  };
  return c;
}

/** A pace that has seen answers without x-ratelimit headers: it paces nothing but pauses. */
function unlimited(clock: { now: () => number }): MemoryPace {
  const pace = new MemoryPace({ now: clock.now });
  pace.observe({});
  return pace;
}

/** Lets pending promise callbacks run. */
async function settle() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

Deno.test("parseRateLimitHeaders reads OpenAI's headers", () => {
  const info = parseRateLimitHeaders(
    new Headers({
      "x-ratelimit-limit-requests": "3000",
      "x-ratelimit-limit-tokens": "1000000",
      "x-ratelimit-remaining-requests": "2999",
      "x-ratelimit-remaining-tokens": "999000",
      "x-ratelimit-reset-requests": "20ms",
      "x-ratelimit-reset-tokens": "6m0s",
    }),
  );
  assert.deepEqual(info, {
    limitRequests: 3000,
    limitTokens: 1_000_000,
    remainingRequests: 2999,
    remainingTokens: 999_000,
    resetRequestsMs: 20,
    resetTokensMs: 360_000,
  });
  assert.deepEqual(
    parseRateLimitHeaders(
      new Headers({ "x-ratelimit-remaining-tokens": "lots" }),
    ),
    {},
  );
});

Deno.test("RateLimiter: never more than `concurrency` requests hold a slot", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({
    concurrency: 2,
    store: unlimited(clock),
    now: clock.now,
    sleep: clock.sleep,
  });
  const got: number[] = [];
  const releases: Array<() => void> = [];
  for (let i = 0; i < 5; i++) {
    lim.acquire(10).then((r) => {
      got.push(i);
      releases.push(r);
    });
  }
  await settle();
  assert.deepEqual(got, [0, 1]);
  assert.equal(lim.active, 2);
  releases[0]();
  releases[0](); // a second release does nothing
  await settle();
  assert.deepEqual(got, [0, 1, 2], "first come, first served");
  assert.equal(lim.active, 2);
  releases[1]();
  releases[2]();
  await settle();
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  releases[3]();
  releases[4]();
  assert.equal(lim.active, 0);
  assert.deepEqual(clock.slept, [], "no waiting without rate-limit signals");
});

Deno.test("MemoryPace: reserves tokens and requests from buckets that refill at the limit per minute", async () => {
  const clock = fakeClock();
  const pace = new MemoryPace({ now: clock.now });
  await pace.observe({
    limitTokens: 60_000,
    limitRequests: 60,
    remainingTokens: 10_000,
    remainingRequests: 60,
  });
  assert.deepEqual(await pace.take(8000), {
    granted: true,
    waitMs: 0,
    limitTokens: 60_000,
    limitRequests: 60,
    mark: { tokens: 8000, requests: 1 },
  });
  // 2,000 left; 5,000 more come back after 5 s (1,000 a second): reserved ahead, told to wait.
  const g = await pace.take(5000);
  assert.equal(g.granted, true);
  assert.equal(g.waitMs, 3000);
  // The next one queues behind it.
  assert.equal((await pace.take(1000)).waitMs, 4000);
  clock.t += 4000;
  assert.equal((await pace.take(1000)).waitMs, 1000);
});

Deno.test("MemoryPace: a wait past maxWaitMs reserves nothing", async () => {
  const clock = fakeClock();
  const pace = new MemoryPace({ now: clock.now });
  await pace.observe({ limitTokens: 60_000, remainingTokens: 0 });
  assert.deepEqual(await pace.take(6000, 5000), {
    granted: false,
    waitMs: 6000,
    limitTokens: 60_000,
    limitRequests: undefined,
  });
  assert.equal(
    (await pace.take(6000, 6000)).waitMs,
    6000,
    "the refused take left the level as it was",
  );
});

Deno.test("MemoryPace: without a mark, the provider's remaining lowers the level, never raises it", async () => {
  const clock = fakeClock();
  const pace = new MemoryPace({ now: clock.now });
  await pace.observe({ limitTokens: 60_000, remainingTokens: 60_000 });
  await pace.take(50_000); // 10,000 left by our count
  await pace.observe({ limitTokens: 60_000, remainingTokens: 59_000 }); // not admitted yet at the provider
  assert.equal(
    (await pace.take(20_000)).waitMs,
    10_000,
    "our own count stands",
  );
  const other = new MemoryPace({ now: clock.now });
  await other.observe({ limitTokens: 60_000, remainingTokens: 60_000 });
  await other.observe({ limitTokens: 60_000, remainingTokens: 0 }); // another client used it all
  assert.equal((await other.take(1000)).waitMs, 1000);
});

Deno.test("MemoryPace: with the request's mark, the level becomes what remains less what was reserved after it, up or down", async () => {
  const clock = fakeClock();
  const pace = new MemoryPace({ now: clock.now });
  await pace.observe({ limitTokens: 60_000, remainingTokens: 0 }); // a window full at the start
  const a = await pace.take(6_000); // waits 6 s at the steady rate
  assert.equal(a.waitMs, 6_000);
  const b = await pace.take(6_000); // reserved after a: not in the provider's count with a's answer
  assert.equal(b.waitMs, 12_000);
  // A sliding window frees old requests at once: 30,000 remained when a was admitted.
  await pace.observe({ limitTokens: 60_000, remainingTokens: 30_000 }, a.mark);
  assert.equal((await pace.take(24_000)).waitMs, 0, "30,000 less b's 6,000: raised, no wait");
  // A window fuller than the steady rate says: lowered the same way.
  const c = await pace.take(1_000);
  await pace.observe({ limitTokens: 60_000, remainingTokens: 2_000 }, c.mark);
  assert.equal((await pace.take(3_000)).waitMs, 1_000, "2,000 remain: 1,000 more come back in 1 s");
  assert.ok(a.mark && b.mark && b.mark.tokens - a.mark.tokens === 6_000, "marks count the tokens reserved");
});

Deno.test("MemoryPace: a 429 pauses everyone and gives the refused request's reservation back", async () => {
  const clock = fakeClock();
  const pace = new MemoryPace({ now: clock.now, defaultPauseMs: 7000 });
  await pace.observe({ limitTokens: 60_000, remainingTokens: 10_000 });
  await pace.take(10_000); // sent, refused with a 429
  assert.equal(await pace.pause(2000, 10_000), 2000);
  assert.deepEqual(await pace.take(10_000), {
    granted: true,
    waitMs: 2000,
    limitTokens: 60_000,
    limitRequests: undefined,
    mark: { tokens: 20_000, requests: 2 }, // the refused request's reservation stays counted (the safe side)
  });
  assert.equal(await pace.pause(null), 7000, "no retry-after: the default");
});

Deno.test("MemoryPace: with limits unknown, one request goes to learn them and the others wait for its answer", async () => {
  const clock = fakeClock();
  const pace = new MemoryPace({ now: clock.now });
  assert.equal((await pace.take(100)).granted, true, "the probe");
  const waiting = await pace.take(100);
  assert.equal(waiting.granted, false);
  assert.ok(waiting.waitMs > 0 && waiting.waitMs <= 200);
  await pace.observe(null); // an error answer ends the probe ...
  assert.equal(
    (await pace.take(100)).granted,
    true,
    "... and the next request probes",
  );
  assert.equal((await pace.take(100)).granted, false);
  await pace.observe({}); // answers without x-ratelimit headers: nothing to pace
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await pace.take(100), { granted: true, waitMs: 0 });
  }
});

Deno.test("RateLimiter: two runs sharing one pace together stay within the limit", async () => {
  const clock = fakeClock();
  const shared = new MemoryPace({ now: clock.now });
  const a = new RateLimiter({
    concurrency: 4,
    store: shared,
    now: clock.now,
    sleep: clock.sleep,
  });
  const b = new RateLimiter({
    concurrency: 4,
    store: shared,
    now: clock.now,
    sleep: clock.sleep,
  });
  await a.observe({
    limitTokens: 60_000,
    limitRequests: 1000,
    remainingTokens: 60_000,
    remainingRequests: 1000,
  });
  assert.deepEqual(b.limits, { requests: undefined, tokens: undefined });
  (await a.acquire(60_000))(); // the whole window
  (await b.acquire(30_000))(); // the other run waits for it to come back
  assert.deepEqual(clock.slept, [30_000]);
  assert.deepEqual(
    b.limits,
    { requests: 1000, tokens: 60_000 },
    "and learned the limits from the shared pace",
  );
  b.pauseFor(5000); // a 429 seen by one run ...
  (await a.acquire(1))(); // ... holds the other
  assert.ok(
    clock.slept.slice(1).reduce((x, y) => x + y, 0) >= 5000,
    JSON.stringify(clock.slept),
  );
});

Deno.test("RateLimiter: a pace slower than maxWaitMs rejects with PaceTooSlow and holds no slot", async () => {
  const clock = fakeClock();
  const pace = new MemoryPace({ now: clock.now });
  const lim = new RateLimiter({
    concurrency: 1,
    store: pace,
    now: clock.now,
    sleep: clock.sleep,
  });
  await lim.observe({ limitTokens: 60_000, remainingTokens: 0 });
  await assert.rejects(lim.acquire(30_000, undefined, 10_000), PaceTooSlow);
  assert.equal(lim.active, 0);
  assert.deepEqual(clock.slept, [], "nothing waited, nothing reserved");
  (await lim.acquire(30_000, undefined, 30_000))();
  assert.deepEqual(clock.slept, [30_000]);
});

Deno.test("RateLimiter: a shared pace out of reach does not stop requests", async () => {
  const clock = fakeClock();
  const errors: unknown[] = [];
  const broken: PaceStore = {
    take: () => Promise.reject(Object.assign(new Error("down"), { code: "08006" })),
    observe: () => Promise.reject(new Error("down")),
    pause: () => Promise.reject(new Error("down")),
    limits: () => Promise.reject(new Error("down")),
  };
  const lim = new RateLimiter({
    concurrency: 2,
    store: broken,
    now: clock.now,
    sleep: clock.sleep,
    onStoreError: (e) => errors.push(e),
  });
  await lim.learnLimits();
  (await lim.acquire(10))();
  await lim.observe({ limitTokens: 100 });
  assert.equal(await lim.pauseFor(3000), 3000, "the pause holds in this run");
  (await lim.acquire(10))();
  assert.deepEqual(clock.slept, [3000]);
  assert.equal(errors.length, 5);
});

Deno.test("RateLimiter: a new limiter learns the limits another run saw from the shared pace, before its first request", async () => {
  const clock = fakeClock();
  const store = new MemoryPace({ now: clock.now });
  const first = new RateLimiter({ concurrency: 1, store, now: clock.now, sleep: clock.sleep });
  (await first.acquire(10))();
  await first.observe({ limitTokens: 40_000, limitRequests: 500 });
  const second = new RateLimiter({ concurrency: 1, store, now: clock.now, sleep: clock.sleep });
  assert.deepEqual(second.limits, { requests: undefined, tokens: undefined });
  await second.learnLimits();
  assert.deepEqual(second.limits, { requests: 500, tokens: 40_000 });
});

Deno.test("RateLimiter: pauseFor holds everyone, including requests already waiting", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({
    concurrency: 3,
    store: unlimited(clock),
    now: clock.now,
    sleep: clock.sleep,
  });
  lim.pauseFor(2000);
  const [a, b] = await Promise.all([lim.acquire(1), lim.acquire(1)]);
  assert.ok(clock.t >= 2000);
  assert.ok(clock.slept.every((ms) => ms > 0 && ms <= 2000));
  a();
  b();
  const before = clock.slept.length;
  (await lim.acquire(1))();
  assert.equal(clock.slept.length, before, "the pause is over");
  lim.pauseFor(0); // no-op
  lim.pauseFor(-5);
  (await lim.acquire(1))();
  assert.equal(clock.slept.length, before);
});

Deno.test("RateLimiter: a longer pause set while waiting extends the wait", async () => {
  const clock = fakeClock();
  const holder: { lim?: RateLimiter } = {};
  let extended = false;
  const sleep = (ms: number) => {
    if (!extended) {
      extended = true;
      holder.lim!.pauseFor(10_000); // a 429 seen by someone else while we sleep
    }
    return clock.sleep(ms);
  };
  const lim = holder.lim = new RateLimiter({
    concurrency: 1,
    now: clock.now,
    sleep,
  });
  lim.pauseFor(1000);
  (await lim.acquire(1))();
  assert.ok(clock.t >= 10_000, `t=${clock.t}`);
});

Deno.test("RateLimiter: an aborted wait holds no slot", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({
    concurrency: 1,
    now: clock.now,
    sleep: clock.sleep,
  });
  const first = await lim.acquire(1);
  const ac = new AbortController();
  const waiting = lim.acquire(1, ac.signal);
  ac.abort(new Error("budget spent"));
  await assert.rejects(waiting, /budget spent/);
  first();
  assert.equal(lim.active, 0);
  (await lim.acquire(1))();
  await assert.rejects(
    lim.acquire(1, AbortSignal.abort(new Error("already"))),
    /already/,
  );
  assert.equal(lim.active, 0);
});

Deno.test("RateLimiter: an abort during a reset wait releases the slot", async () => {
  let t = 0;
  const ac = new AbortController();
  const lim = new RateLimiter({
    concurrency: 1,
    now: () => t,
    sleep: () => {
      ac.abort(new Error("stop"));
      return new Promise(() => {}); // would sleep forever
    },
  });
  lim.pauseFor(1000);
  await assert.rejects(lim.acquire(1, ac.signal), /stop/);
  assert.equal(lim.active, 0);
  t = 2000;
  (await lim.acquire(1))();
});
