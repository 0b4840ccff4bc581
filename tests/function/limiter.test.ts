import assert from "node:assert/strict";
import { parseRateLimitHeaders, RateLimiter } from "../../supabase/functions/_shared/limiter.ts";

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
  assert.deepEqual(parseRateLimitHeaders(new Headers({ "x-ratelimit-remaining-tokens": "lots" })), {});
});

Deno.test("RateLimiter: never more than `concurrency` requests hold a slot", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({ concurrency: 2, now: clock.now, sleep: clock.sleep });
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

Deno.test("RateLimiter: waits for the token reset when what remains cannot cover the request", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({ concurrency: 4, now: clock.now, sleep: clock.sleep });
  lim.observe({ remainingTokens: 1000, resetTokensMs: 5000, remainingRequests: 100, resetRequestsMs: 50 });
  (await lim.acquire(800))(); // fits: 200 left
  assert.deepEqual(clock.slept, []);
  (await lim.acquire(500))(); // does not fit the 200 left: wait for the reset
  assert.deepEqual(clock.slept, [5000]);
  assert.equal(clock.t, 5000);
  (await lim.acquire(500))(); // past the reset the old numbers are forgotten
  assert.deepEqual(clock.slept, [5000]);
});

Deno.test("RateLimiter: waits for the request reset when no requests remain", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({ concurrency: 4, now: clock.now, sleep: clock.sleep });
  lim.observe({ remainingRequests: 1, resetRequestsMs: 250 });
  (await lim.acquire(1))();
  assert.deepEqual(clock.slept, []);
  (await lim.acquire(1))();
  assert.deepEqual(clock.slept, [250]);
});

Deno.test("RateLimiter: pauseFor holds everyone, including requests already waiting", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({ concurrency: 3, now: clock.now, sleep: clock.sleep });
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
  const lim = holder.lim = new RateLimiter({ concurrency: 1, now: clock.now, sleep });
  lim.pauseFor(1000);
  (await lim.acquire(1))();
  assert.ok(clock.t >= 10_000, `t=${clock.t}`);
});

Deno.test("RateLimiter: an aborted wait holds no slot", async () => {
  const clock = fakeClock();
  const lim = new RateLimiter({ concurrency: 1, now: clock.now, sleep: clock.sleep });
  const first = await lim.acquire(1);
  const ac = new AbortController();
  const waiting = lim.acquire(1, ac.signal);
  ac.abort(new Error("budget spent"));
  await assert.rejects(waiting, /budget spent/);
  first();
  assert.equal(lim.active, 0);
  (await lim.acquire(1))();
  await assert.rejects(lim.acquire(1, AbortSignal.abort(new Error("already"))), /already/);
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
