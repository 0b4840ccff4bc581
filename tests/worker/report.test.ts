/**
 * send → decide → report: a database error while writing the outcome retries the write, never
 * the provider request, so nothing is paid for twice. Each test counts provider requests.
 */
import assert from "node:assert/strict";
import { type RunOptions, runQueue } from "../../supabase/functions/embed-queue/worker.ts";
import { ProviderError } from "../../supabase/functions/_shared/errors.ts";
import type { EmbeddingProvider } from "../../supabase/functions/_shared/provider.ts";
import { loadConfig } from "../../supabase/functions/_shared/config.ts";
import { FakeDb } from "./fake_db.ts";

const DIMS = 8;
const config = { ...loadConfig({}), dimensions: DIMS, concurrency: 1, maxRequestRetries: 2 };
const opts: RunOptions = { trigger: "manual", batchSize: 100, timeBudgetMs: 60_000, dryRun: false };
const quiet = () => {};
/** A connection dropped mid-statement (postgres.js gives it no SQLSTATE) and a server shutting down. */
const dropped = Object.assign(new Error("write CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED" });
const shutdown = Object.assign(new Error("terminating connection"), { code: "57P01" });
const badData = Object.assign(new Error("invalid input syntax"), { code: "22P02" });

function counting(fail?: (call: number) => Error | null) {
  let requests = 0;
  const p: EmbeddingProvider = {
    name: "counting",
    model: "test-model",
    dimensions: DIMS,
    embed(inputs: string[]) {
      requests++;
      const e = fail?.(requests);
      if (e) return Promise.reject(e);
      return Promise.resolve({
        vectors: inputs.map(() => new Float32Array(DIMS).fill(0.5)),
        promptTokens: inputs.length,
        rate: {},
      });
    },
  };
  return { p, requests: () => requests };
}

function clock() {
  let t = 1_000_000;
  return { now: () => t, sleep: (ms: number) => (t += ms, Promise.resolve()) };
}

Deno.test("report: a write-back that fails once is written again; the provider is asked once", async () => {
  const db = new FakeDb(["a", "b", "c"], DIMS);
  db.throwNext.complete.push(dropped);
  const { p, requests } = counting();
  const s = await runQueue({ db, provider: p, config, ...clock(), log: quiet }, opts);
  assert.equal(requests(), 1, "one provider request");
  assert.equal(db.calls.complete, 2, "the write was retried");
  assert.equal(s.completed, 3);
  assert.equal(db.byStatus("completed").length, 3);
  assert.equal(s.error, null, "a write that succeeded on retry is no error");
});

Deno.test("report: a write-back that keeps failing drops the vectors and releases the jobs, and says so", async () => {
  const db = new FakeDb(["a", "b", "c"], DIMS);
  db.throwNext.complete.push(shutdown, shutdown, shutdown, shutdown, shutdown);
  const { p, requests } = counting();
  const s = await runQueue({ db, provider: p, config, ...clock(), log: quiet }, opts);
  assert.equal(requests(), 1, "the request is never sent again by this run");
  assert.equal(db.calls.complete, 4, "the first write and three retries");
  assert.equal(s.completed, 0);
  assert.equal(s.dropped, 3);
  assert.equal(s.released, 3);
  assert.deepEqual(
    db.byStatus("pending").map((j) => j.attempts),
    [0, 0, 0],
    "released with the attempt refunded",
  );
  assert.match(
    s.error ?? "",
    /^write-back failed: 3 vectors dropped, 3 jobs released \(write-back failed \(57P01\)\)$/,
  );
  assert.equal(db.runs[0].stats?.error, s.error, "the run's record says so");
});

Deno.test("report: a write-back refused for its data is not retried; jobs are released once", async () => {
  const db = new FakeDb(["a", "b"], DIMS);
  db.throwNext.complete.push(badData);
  const { p, requests } = counting();
  const s = await runQueue({ db, provider: p, config, ...clock(), log: quiet }, { ...opts });
  assert.equal(requests(), 1);
  assert.equal(db.calls.complete, 1, "an error that cannot pass on a retry is not retried");
  assert.equal(s.dropped, 2);
  assert.match(s.error ?? "", /22P02/);
});

Deno.test("report: fail() that errors is retried and the failing request is not sent again", async () => {
  const db = new FakeDb(["a"], DIMS);
  db.throwNext.fail.push(dropped);
  const { p, requests } = counting(() => new ProviderError("permanent", "refused", { status: 418 }));
  const s = await runQueue({ db, provider: p, config, ...clock(), log: quiet }, opts);
  assert.equal(requests(), 1, "one provider request for a permanent error");
  assert.equal(db.calls.fail, 2, "fail() written again after the dropped connection");
  assert.equal(s.failed, 1);
  assert.equal(db.byStatus("failed").length, 1);
});

Deno.test("report: fail() that cannot be written leaves the job to its lease, not to this run", async () => {
  const db = new FakeDb(["a"], DIMS);
  db.throwNext.fail.push(badData);
  const { p, requests } = counting(() => new ProviderError("permanent", "refused", { status: 418 }));
  const s = await runQueue({ db, provider: p, config, ...clock(), log: quiet }, opts);
  assert.equal(requests(), 1);
  assert.equal(db.calls.release, 0, "not released (which would refund the attempt and send it again)");
  assert.equal(
    db.byStatus("processing").length,
    1,
    "still leased: the rescuer takes it back, spending the attempt",
  );
  assert.match(s.error ?? "", /^fail failed \(22P02\)$/);
});

Deno.test("report: a release that fails at the end does not fail the run", async () => {
  const db = new FakeDb(["a", "b"], DIMS);
  db.throwNext.release.push(dropped);
  const { p, requests } = counting(() => new ProviderError("auth", "no", { status: 401 }));
  const s = await runQueue({ db, provider: p, config, ...clock(), log: quiet }, opts);
  assert.equal(requests(), 1);
  assert.equal(s.stopped, "auth");
  assert.equal(s.released, 0);
  assert.equal(db.byStatus("processing").length, 2, "left to the lease");
});
