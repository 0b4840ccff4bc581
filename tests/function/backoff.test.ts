import assert from "node:assert/strict";
import { backoffMs, parseResetDuration, retryAfterMs } from "../../supabase/functions/_shared/backoff.ts";

Deno.test("parseResetDuration: OpenAI's reset values", () => {
  const table: Array<[string | null | undefined, number | null]> = [
    ["1s", 1000],
    ["6m0s", 360_000],
    ["9ms", 9],
    ["0.5s", 500],
    ["1h2m3.5s", 3_723_500],
    ["20ms", 20],
    ["59.999s", 59_999],
    ["1m30s", 90_000],
    ["250us", 1],
    ["0s", 0],
    ["2", 2000],
    [" 1s ", 1000],
    ["", null],
    [null, null],
    [undefined, null],
    ["soon", null],
    ["1x", null],
    ["-1s", null],
    ["1s2", null],
  ];
  for (const [input, want] of table) assert.equal(parseResetDuration(input), want, JSON.stringify(input));
});

Deno.test("retryAfterMs: retry-after-ms, then retry-after in seconds or as an HTTP date", () => {
  const now = () => Date.parse("2026-11-24T12:00:00Z");
  const table: Array<[Record<string, string>, number | null]> = [
    [{ "retry-after-ms": "500" }, 500],
    [{ "retry-after-ms": "20.4" }, 21],
    [{ "retry-after": "2" }, 2000],
    [{ "retry-after-ms": "250", "retry-after": "2" }, 250],
    [{ "retry-after": "Tue, 24 Nov 2026 12:00:30 GMT" }, 30_000],
    [{ "retry-after": "Tue, 24 Nov 2026 11:59:00 GMT" }, 0],
    [{ "retry-after-ms": "nope", "retry-after": "3" }, 3000],
    [{ "retry-after": "later" }, null],
    [{}, null],
  ];
  for (const [h, want] of table) assert.equal(retryAfterMs(new Headers(h), now), want, JSON.stringify(h));
});

Deno.test("backoffMs: jitter stays within [half, all] of the capped delay", () => {
  const table: Array<[number, number, number]> = [
    // attempt, random, expected with baseMs 1000 maxMs 60000
    [1, 0, 500],
    [1, 0.5, 750],
    [1, 0.999999, 1000],
    [2, 0, 1000],
    [3, 0.5, 3000],
    [7, 0, 30_000],
    [7, 0.999999, 60_000],
    [100, 0.5, 45_000],
  ];
  for (const [attempt, r, want] of table) {
    assert.equal(backoffMs(attempt, {}, () => r), want, `attempt ${attempt} random ${r}`);
  }
});

Deno.test("backoffMs: never above maxMs, never below half of it once capped", () => {
  for (let attempt = 1; attempt <= 200; attempt++) {
    for (const r of [0, 0.25, 0.75, 0.9999]) {
      const ms = backoffMs(attempt, { baseMs: 200, maxMs: 10_000 }, () => r);
      assert.ok(ms <= 10_000, `attempt ${attempt}: ${ms}`);
      assert.ok(ms >= 100, `attempt ${attempt}: ${ms}`);
      if (attempt >= 7) assert.ok(ms >= 5000, `attempt ${attempt}: ${ms}`);
    }
  }
});

Deno.test("backoffMs: grows with each attempt until the cap (fixed random)", () => {
  const opts = { baseMs: 100, maxMs: 60_000 };
  let prev = 0;
  for (let attempt = 1; attempt <= 10; attempt++) {
    const ms = backoffMs(attempt, opts, () => 0.5);
    assert.ok(ms > prev, `attempt ${attempt}: ${ms} <= ${prev}`);
    prev = ms;
  }
  assert.equal(backoffMs(30, opts, () => 0.5), backoffMs(40, opts, () => 0.5));
});

Deno.test("backoffMs: different random values spread the delay (jitter is applied)", () => {
  const values = new Set([0, 0.2, 0.4, 0.6, 0.8].map((r) => backoffMs(4, {}, () => r)));
  assert.equal(values.size, 5);
  assert.equal(backoffMs(0, {}, () => 0), backoffMs(1, {}, () => 0)); // attempt 0 reads as the first retry
});
