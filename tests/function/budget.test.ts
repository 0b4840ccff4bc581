/** budget.ts: the worker's CPU estimate, claim sizing under the hard limit, and memory. */
import assert from "node:assert/strict";
import {
  ALIVE_SHARE,
  BASE_MS,
  createBudget,
  DEFAULT_JOB_MS,
  HARD_SHARE,
  MEMORY_STOP_SHARE,
  MIN_CLAIM,
  OVERHEAD,
  YIELD_SHARE,
} from "../../supabase/functions/embed-queue/budget.ts";

const limits = { cpuSoftMs: 1000, cpuHardMs: 2000, memoryBytes: 256 * 2 ** 20 };

/** A clock that moves only inside timed(): `work(ms)` is a timed section that takes `ms`. */
function worker(memory = () => 0) {
  let t = 0;
  const b = createBudget(limits, { now: () => t, memoryBytes: memory });
  const work = (ms: number) => b.timed(() => void (t += ms));
  return { b, work };
}

Deno.test("budget: BASE_MS plus timed work times OVERHEAD is the estimate; claiming stops at HARD_SHARE of the hard limit", () => {
  const { b, work } = worker();
  assert.equal(b.exhausted(), null);
  assert.equal(b.usage().cpuMs, BASE_MS);
  work(100);
  assert.equal(b.usage().cpuMs, Math.round(BASE_MS + 100 * OVERHEAD));
  work((2000 * HARD_SHARE - BASE_MS) / OVERHEAD - 100 - 1);
  assert.equal(b.exhausted(), null, "just under");
  work(2);
  assert.equal(b.exhausted(), "cpu");
});

Deno.test("budget: claims are sized so the work in flight stays under HARD_SHARE of the hard limit", () => {
  const { b } = worker();
  const room = Math.floor((2000 * HARD_SHARE - BASE_MS) / DEFAULT_JOB_MS);
  assert.equal(b.allow(100_000, true), room, "the first claim gets what fits");
  assert.equal(b.allow(1000, false), 0, "nothing more while that is in flight");
  b.settle(room, 0);
  assert.equal(b.allow(1000, false), 1000, "a finished reservation frees its room");
});

Deno.test("budget: the cost per job is learned once enough jobs are done", () => {
  const { b, work } = worker();
  const n = b.allow(400, true);
  work(40); // 400 jobs for 40 ms of timed work: 60 ms estimated, 0.15 ms a job
  b.settle(n, 400);
  const perJob = (40 * OVERHEAD) / 400;
  const expect = Math.floor((2000 * HARD_SHARE - BASE_MS - 40 * OVERHEAD) / perJob);
  assert.equal(b.allow(1_000_000, false), expect);
});

Deno.test("budget: over budget, a run's first claim still gets MIN_CLAIM jobs, later claims none", () => {
  const { b, work } = worker();
  work(2000);
  assert.equal(b.exhausted(), "cpu");
  assert.equal(b.allow(1000, true), MIN_CLAIM, "a fresh run makes progress");
  assert.equal(b.allow(1000, false), 0);
  assert.equal(b.allow(50, true), 50, "never more than asked");
});

Deno.test("budget: memory past MEMORY_STOP_SHARE of the limit stops claiming", () => {
  let used = 256 * 2 ** 20 * MEMORY_STOP_SHARE - 1;
  const { b } = worker(() => used);
  assert.equal(b.exhausted(), null);
  used += 1;
  assert.equal(b.exhausted(), "memory");
  assert.equal(b.allow(1000, false), 0);
});

Deno.test("budget: charge() adds untimed work, such as a run's fixed costs", () => {
  const { b } = worker();
  b.charge(25);
  b.charge(25);
  assert.equal(b.usage().cpuMs, BASE_MS + 50);
});

Deno.test("budget: past YIELD_SHARE of the hard limit the worker must send nothing more", () => {
  const { b, work } = worker();
  work((2000 * YIELD_SHARE - BASE_MS) / OVERHEAD - 1);
  assert.equal(b.mustYield(), false);
  work(1);
  assert.equal(b.mustYield(), true);
});

Deno.test("budget: a request's arrival brings an estimate above the soft limit down to just under it", () => {
  const { b, work } = worker();
  work(100);
  const before = b.usage().cpuMs;
  b.requestArrived();
  assert.equal(b.usage().cpuMs, before, "an estimate under the soft limit is left alone");
  work(1000);
  assert.equal(b.exhausted(), "cpu");
  b.requestArrived();
  assert.equal(b.usage().cpuMs, Math.round(1000 * ALIVE_SHARE));
  assert.equal(b.exhausted(), null, "the worker takes work again");
  assert.ok(b.allow(1000, true) > 0);
});
