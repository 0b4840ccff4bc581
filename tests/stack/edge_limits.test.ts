/**
 * The gateway enforces the edge runtime's per-worker limits (local/edge_limits.ts): the real
 * defaults for CPU (retired at 1 s, terminated past 2 s) and memory (256 MB of V8 heap +
 * external memory), the wall clock with a small setting. Statuses, bodies and the order of
 * events are asserted, never how long anything took.
 */
import assert from "node:assert/strict";
import { HOSTED_LIMITS, judge } from "../../local/edge_limits.ts";
import { startGateway } from "../fixtures/gateway_process.ts";

const MB = 1024 * 1024;
const LIMIT_BODY = {
  code: "WORKER_LIMIT",
  message: "Worker failed to respond due to a resource limit (please check logs)",
};

Deno.test("edge limits: what the supervisor does with one sample", () => {
  const fresh = { cpuSoftReached: false, wallClockRetired: false };
  const cases: [string, { cpuMs: number; memBytes: number; wallMs: number }, typeof fresh, string][] = [
    ["idle", { cpuMs: 0, memBytes: 10 * MB, wallMs: 10 }, fresh, "none"],
    ["soft CPU", { cpuMs: 1000, memBytes: 0, wallMs: 10 }, fresh, "retire:cpu"],
    [
      "soft CPU already seen",
      { cpuMs: 1500, memBytes: 0, wallMs: 10 },
      { ...fresh, cpuSoftReached: true },
      "none",
    ],
    [
      "hard CPU",
      { cpuMs: 2000, memBytes: 0, wallMs: 10 },
      { ...fresh, cpuSoftReached: true },
      "terminate:cpu",
    ],
    ["half the memory", { cpuMs: 0, memBytes: 128 * MB, wallMs: 10 }, fresh, "drop_when_idle:memory"],
    ["memory", { cpuMs: 0, memBytes: 256 * MB, wallMs: 10 }, fresh, "terminate:memory"],
    ["half the wall clock", { cpuMs: 0, memBytes: 0, wallMs: 75_000 }, fresh, "retire:wall_clock"],
    [
      "wall clock",
      { cpuMs: 0, memBytes: 0, wallMs: 150_000 },
      { ...fresh, wallClockRetired: true },
      "terminate:wall_clock",
    ],
  ];
  for (const [name, m, marks, want] of cases) {
    const v = judge(HOSTED_LIMITS, m, marks);
    const got = v.action === "none" ? "none" : `${v.action}:${"limit" in v ? v.limit : v.reason}`;
    assert.equal(got, want, name);
  }
  const off = { ...HOSTED_LIMITS, cpuSoftMs: 0, cpuHardMs: 0, wallClockMs: 0 };
  assert.equal(
    judge(off, { cpuMs: 1e6, memBytes: 0, wallMs: 1e9 }, fresh).action,
    "none",
    "0 turns limits off",
  );
});

Deno.test("edge limits: CPU soft limit retires the worker, with the hosted defaults", async () => {
  const gw = await startGateway();
  try {
    const url = `${gw.base}/functions/v1/cpu-burn`;
    // One request to the worker that answers at once and keeps 2 s of waitUntil work running.
    let r = await fetch(`${url}/later?ms=2000`);
    const { pid: first } = await r.json();
    // Past the soft limit (1 s): answered, and the worker is retired.
    r = await fetch(`${url}?ms=1100`);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).pid, first);
    const retired = await gw.waitEvent((e) => e.event === "gateway.worker_retired" && e.pid === first);
    assert.equal(retired.reason, "cpu_soft_limit");
    // New requests go to a new worker while the retired one finishes its background work.
    r = await fetch(`${url}?ms=1`);
    assert.notEqual((await r.json()).pid, first, "a new process after the soft limit");
    const unload = await gw.waitEvent((e) => e.event === "fixture.beforeunload" && e.pid === first);
    assert.deepEqual(unload.detail, { reason: "early_drop" }, "beforeunload carries the reason");
    const lines = gw.events();
    const doneAt = lines.findIndex((e) => e.event === "fixture.wait_until_done" && e.pid === first);
    const unloadAt = lines.findIndex((e) => e.event === "fixture.beforeunload" && e.pid === first);
    assert.ok(doneAt >= 0 && doneAt < unloadAt, "waitUntil work finishes before beforeunload");
  } finally {
    await gw.close();
  }
});

Deno.test("edge limits: CPU hard limit, with the hosted defaults", async () => {
  const gw = await startGateway();
  try {
    const url = `${gw.base}/functions/v1/cpu-burn`;
    let r = await fetch(`${url}?ms=1`);
    const second = (await r.json()).pid;
    // Past the hard limit (2 s accumulated): terminated, the request answered 546.
    r = await fetch(`${url}?ms=3000`);
    assert.equal(r.status, 546);
    assert.deepEqual(await r.json(), LIMIT_BODY);
    const hit = await gw.waitEvent((e) => e.event === "gateway.worker_limit" && e.pid === second);
    assert.equal(hit.limit, "cpu");
    assert.ok((hit.measured as number) >= 2000, "killed past 2 s of CPU");
    // And the function still serves, from a new worker.
    r = await fetch(`${url}?ms=1`);
    assert.equal(r.status, 200);
    assert.notEqual((await r.json()).pid, second);
  } finally {
    await gw.close();
  }
});

Deno.test("edge limits: memory, with the hosted 256 MB", async () => {
  const gw = await startGateway();
  try {
    const url = `${gw.base}/functions/v1/alloc`;
    // Array buffers count (external memory), allocated in steps: the sampled check.
    let r = await fetch(`${url}?mb=1024&kind=buffer`);
    assert.equal(r.status, 546);
    assert.deepEqual(await r.json(), LIMIT_BODY);
    const hit = await gw.waitEvent((e) => e.event === "gateway.worker_limit" && e.limit === "memory");
    assert.ok((hit.measured as number) >= 256 * MB, "killed past 256 MB");
    assert.ok((hit.measured as number) < 1024 * MB, "before the whole allocation");
    // A small request is served by a new worker.
    r = await fetch(`${url}?mb=8&kind=buffer`);
    assert.equal(r.status, 200);
    assert.notEqual((await r.json()).pid, hit.pid);
  } finally {
    await gw.close();
  }
});

Deno.test("edge limits: memory, a synchronous heap spike is stopped too", async () => {
  // The CPU limits are off here so that the heap cap, not CPU, is what stops the spike.
  const gw = await startGateway({ flags: ["--cpu-soft-ms", "0", "--cpu-hard-ms", "0", "--memory-mb", "96"] });
  try {
    const r = await fetch(`${gw.base}/functions/v1/alloc?mb=400&kind=sync`);
    assert.equal(r.status, 546);
    assert.deepEqual(await r.json(), LIMIT_BODY);
    const hit = await gw.waitEvent((e) => e.event === "gateway.worker_limit");
    assert.equal(hit.limit, "memory");
  } finally {
    await gw.close();
  }
});

Deno.test("edge limits: wall clock (set to 2 s here)", async () => {
  const gw = await startGateway({ flags: ["--wall-clock-ms", "2000"] });
  try {
    const url = `${gw.base}/functions/v1/cpu-burn`;
    let r = await fetch(`${url}/wait?ms=10`);
    const first = (await r.json()).pid;
    // A request that outlives the worker: retired at half the wall clock, terminated at all of it.
    r = await fetch(`${url}/wait?ms=6000`);
    assert.equal(r.status, 546);
    assert.deepEqual(await r.json(), LIMIT_BODY);
    const events = gw.events().filter((e) => e.pid === first);
    const retired = events.find((e) => e.event === "gateway.worker_retired");
    assert.equal(retired?.reason, "wall_clock_half");
    const hit = events.find((e) => e.event === "gateway.worker_limit");
    assert.equal(hit?.limit, "wall_clock");
    assert.ok((hit?.measured as number) >= 2000);
    r = await fetch(`${url}/wait?ms=10`);
    assert.equal(r.status, 200, "a new worker serves the next request");
    assert.notEqual((await r.json()).pid, first);
  } finally {
    await gw.close();
  }
});
