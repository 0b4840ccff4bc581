/** budget.ts: the worker's CPU estimate, the room a proof gives to sends, claims held, memory. */
import assert from "node:assert/strict";
import {
  BASE_MS,
  createBudget,
  DEFAULT_JOB_MS,
  HOLD_SHARE,
  IDLE_MS_PER_S,
  MEMORY_SEND_SHARE,
  MEMORY_STOP_SHARE,
  MIN_REQUEST_JOBS,
  OVERHEAD,
  PROOF_MAX_AGE_MS,
  PROOF_SHARE,
  REQUEST_SHARE,
  YIELD_SHARE,
} from "../../supabase/functions/embed-queue/budget.ts";

const limits = { cpuSoftMs: 1000, cpuHardMs: 2000, memoryBytes: 256 * 2 ** 20 };
/** Estimated CPU a worker may send after a proof. */
const ROOM = (2000 - 1000) * PROOF_SHARE;

/** A clock that moves only inside timed(): `work(ms)` is a timed section that takes `ms`. */
function worker(memory = () => 0) {
  let t = 0;
  const b = createBudget(limits, { now: () => t, memoryBytes: memory });
  const work = (ms: number) => b.timed(() => void (t += ms));
  return { b, work };
}

Deno.test("budget: BASE_MS plus timed work times OVERHEAD plus charges plus the life's own cost is the estimate", () => {
  const { b, work } = worker();
  assert.equal(b.usage().cpuMs, BASE_MS);
  work(100);
  b.charge(25);
  assert.equal(b.usage().cpuMs, Math.round(BASE_MS + 100 * OVERHEAD + 25 + 0.1 * IDLE_MS_PER_S));
});

Deno.test("budget: a worker's life costs IDLE_MS_PER_S a second in the estimate, and a proof older than PROOF_MAX_AGE_MS is asked for again", () => {
  let t = 0;
  const b = createBudget(limits, { now: () => t, memoryBytes: () => 0 });
  b.requestArrived();
  b.requestArrived(); // BASE_MS counted
  t += 10_000;
  assert.equal(b.usage().cpuMs, BASE_MS + 10 * IDLE_MS_PER_S, "ten seconds of waiting");
  b.requestArrived();
  assert.equal(b.proofDue(), false);
  t += PROOF_MAX_AGE_MS - 1;
  assert.equal(b.proofDue(), false, "the room is far from used");
  t += 1;
  assert.equal(b.proofDue(), true, "but the proof is old");
  b.requestArrived();
  assert.equal(b.proofDue(), false);
});

Deno.test("budget: after a proof, requests worth ROOM go out (BASE_MS counted once); then a new proof is due", () => {
  const { b, work } = worker();
  b.requestArrived(); // the first request: the first run's BASE_MS is still to come
  const n = Math.floor((ROOM - BASE_MS) / DEFAULT_JOB_MS);
  assert.equal(b.admit(n), "send");
  assert.equal(b.admit(1), "prove", "full; a proof would make room beside the one in flight");
  b.requestArrived();
  const rest = Math.floor(ROOM / DEFAULT_JOB_MS) - n;
  assert.equal(b.admit(rest), "send");
  assert.equal(b.admit(1), "wait", "those in flight fill the room: no proof helps");
  b.sent(n);
  b.sent(rest);
  work(ROOM / OVERHEAD); // what they cost, as estimated
  assert.equal(b.proofDue(), true);
  assert.equal(b.admit(1), "prove", "the room since the proof is used up");
  b.requestArrived();
  assert.equal(b.proofDue(), false);
  assert.equal(b.admit(1), "send", "a proof renews it");
});

Deno.test("budget: a worker that keeps being proven keeps sending, whatever its whole life's estimate", () => {
  const { b, work } = worker();
  for (let i = 0; i < 20; i++) {
    b.requestArrived();
    assert.equal(b.admit(100), "send", `request ${i}`);
    work(50);
    b.sent(100);
  }
  assert.ok(b.usage().cpuMs > 2000, "an estimate past the hard limit (it errs high on a busy machine)");
});

Deno.test("budget: right after a proof with nothing in flight, a request bigger than the room still goes", () => {
  const { b } = worker();
  b.requestArrived();
  b.requestArrived();
  assert.equal(b.admit(100_000), "send");
});

Deno.test("budget: a request carries at most REQUEST_SHARE of the room at the cost per job, MIN_REQUEST_JOBS at least", () => {
  const { b, work } = worker();
  assert.equal(
    b.maxJobsPerRequest(),
    Math.max(MIN_REQUEST_JOBS, Math.floor((ROOM * REQUEST_SHARE) / DEFAULT_JOB_MS)),
  );
  const n = b.allow(200);
  work(1000); // 10 ms a job, as a busy machine may make it look
  b.settle(n, 200);
  assert.equal(b.maxJobsPerRequest(), MIN_REQUEST_JOBS);
});

Deno.test("budget: claims hold at most HOLD_SHARE of the margin; a finished claim frees its room", () => {
  const { b } = worker();
  const hold = Math.floor(((2000 - 1000) * HOLD_SHARE) / DEFAULT_JOB_MS);
  assert.equal(b.allow(100_000), hold);
  assert.equal(b.allow(10), 0);
  assert.equal(b.exhausted(), "cpu");
  b.settle(hold, hold);
  assert.equal(b.exhausted(), null);
  assert.equal(b.allow(10), 10, "never more than asked");
});

Deno.test("budget: the cost per job is learned once enough jobs are done", () => {
  const { b, work } = worker();
  const n = b.allow(200);
  work(20); // 200 jobs for 20 ms of timed work: 40 ms estimated, 0.2 ms a job
  b.settle(n, 200);
  const perJob = (20 * OVERHEAD) / 200;
  assert.equal(
    b.maxJobsPerRequest(),
    Math.max(MIN_REQUEST_JOBS, Math.floor((ROOM * REQUEST_SHARE) / perJob)),
  );
});

Deno.test("budget: memory past MEMORY_STOP_SHARE of the limit stops claiming", () => {
  let used = 256 * 2 ** 20 * MEMORY_STOP_SHARE - 1;
  const { b } = worker(() => used);
  assert.equal(b.exhausted(), null);
  used += 1;
  assert.equal(b.exhausted(), "memory");
  assert.equal(b.allow(1000), 0);
});

Deno.test("budget: past YIELD_SHARE of the margin since the last proof the worker must send nothing more", () => {
  const { b, work } = worker();
  b.requestArrived();
  work(((2000 - 1000) * YIELD_SHARE - BASE_MS) / (OVERHEAD + IDLE_MS_PER_S / 1000) - 1);
  assert.equal(b.mustYield(), false);
  work(1);
  assert.equal(b.mustYield(), true);
  b.requestArrived();
  assert.equal(b.mustYield(), false, "a proof: the worker was under the soft limit just now");
});

Deno.test("budget: past MEMORY_SEND_SHARE a request waits for those in flight; alone it still goes", () => {
  let used = 0;
  const { b } = worker(() => used);
  b.requestArrived();
  b.requestArrived();
  assert.equal(b.admit(10), "send");
  used = 256 * 2 ** 20 * MEMORY_SEND_SHARE;
  assert.equal(b.admit(10), "wait");
  b.sent(10);
  assert.equal(b.admit(10), "send", "nothing in flight: one goes, so the run makes progress");
});

Deno.test("budget: with the soft limit equal to the hard one, half the hard limit is the margin (sends still go)", () => {
  let t = 0;
  const b = createBudget({ cpuSoftMs: 60_000, cpuHardMs: 60_000, memoryBytes: 256 * 2 ** 20 }, {
    now: () => t,
    memoryBytes: () => 0,
  });
  b.requestArrived();
  assert.equal(b.admit(1000), "send");
  assert.equal(b.maxJobsPerRequest(), Math.floor((30_000 * PROOF_SHARE * REQUEST_SHARE) / DEFAULT_JOB_MS));
});
