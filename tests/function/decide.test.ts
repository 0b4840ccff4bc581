/** decide(): what the run does after a failed request, for each kind, tries and time left. */
import assert from "node:assert/strict";
import { decide, type DecideInput } from "../../supabase/functions/embed-queue/decide.ts";

const base: Omit<DecideInput, "error"> = {
  tries: 0,
  inputs: 10,
  msLeft: 60_000,
  maxRetries: 2,
  rateLimitedDefaultMs: 7000,
  random: () => 1,
};
const cases: Array<
  [
    string,
    Partial<DecideInput> & Pick<DecideInput, "error">,
    ReturnType<typeof decide>,
  ]
> = [
  [
    "429 with retry-after inside the time left: everyone waits, then the same request",
    {
      error: { kind: "rate_limited", retryAfterMs: 3000 },
    },
    { do: "retry", waitMs: 3000, pauseAll: true },
  ],
  ["429 without retry-after: the settings' default wait", {
    error: { kind: "rate_limited" },
  }, {
    do: "retry",
    waitMs: 7000,
    pauseAll: true,
  }],
  [
    "429 whose wait outlasts the time left: snooze its jobs for the retry-after",
    {
      error: { kind: "rate_limited", retryAfterMs: 5000 },
      msLeft: 4000,
    },
    { do: "snooze", retryAfterMs: 5000 },
  ],
  [
    "429 without retry-after whose default wait outlasts the time left: snooze with the SQL default",
    {
      error: { kind: "rate_limited" },
      msLeft: 4000,
    },
    { do: "snooze", retryAfterMs: undefined },
  ],
  [
    "5xx, first try: back off and send again",
    { error: { kind: "retryable" } },
    {
      do: "retry",
      waitMs: 500,
      pauseAll: false,
    },
  ],
  ["5xx, retries spent: fail back to the queue", {
    error: { kind: "retryable" },
    tries: 2,
  }, {
    do: "fail",
    kind: "retryable",
  }],
  [
    "5xx with no time for the backoff: fail back to the queue",
    { error: { kind: "retryable" }, msLeft: 100 },
    {
      do: "fail",
      kind: "retryable",
    },
  ],
  ["400 naming an input: split around it", {
    error: { kind: "bad_request", badInputIndex: 4 },
  }, {
    do: "split",
    at: 4,
  }],
  ["400 on a single input: it fails for good", {
    error: { kind: "bad_request" },
    inputs: 1,
  }, {
    do: "fail",
    kind: "permanent",
  }],
  ["401: stop the run", { error: { kind: "auth" } }, {
    do: "stop",
    reason: "auth",
  }],
  ["other 4xx: fail for good", { error: { kind: "permanent" } }, {
    do: "fail",
    kind: "permanent",
  }],
];

for (const [name, input, want] of cases) {
  Deno.test(`decide: ${name}`, () => {
    assert.deepEqual(decide({ ...base, ...input }), want);
  });
}
