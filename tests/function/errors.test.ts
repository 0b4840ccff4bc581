import assert from "node:assert/strict";
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import {
  classifyStatus,
  type ErrorKind,
  operatorMessage,
  ProviderError,
  sanitize,
  toProviderError,
} from "../../supabase/functions/_shared/errors.ts";

Deno.test("classifyStatus table", () => {
  const table: Array<[number, ErrorKind]> = [
    [400, "bad_request"],
    [401, "auth"],
    [402, "permanent"],
    [403, "auth"],
    [404, "bad_request"],
    [405, "permanent"],
    [408, "retryable"],
    [409, "retryable"],
    [413, "bad_request"],
    [418, "permanent"],
    [422, "bad_request"],
    [429, "rate_limited"],
    [500, "retryable"],
    [502, "retryable"],
    [503, "retryable"],
    [504, "retryable"],
    [599, "retryable"],
  ];
  for (const [status, kind] of table) assert.equal(classifyStatus(status), kind, String(status));
});

function apiError(
  status: number,
  message: string,
  headers: Record<string, string> = {},
  param: string | null = null,
  code: string | null = null,
) {
  return APIError.generate(
    status,
    { error: { message, type: code ?? "x", param, code } },
    undefined,
    new Headers(headers),
  );
}

Deno.test("toProviderError maps the openai SDK's errors by status and class", () => {
  const table: Array<[unknown, ErrorKind, Partial<ProviderError>]> = [
    [apiError(429, "Rate limit reached", { "retry-after-ms": "500" }), "rate_limited", {
      status: 429,
      retryAfterMs: 500,
    }],
    [apiError(429, "Rate limit reached", { "retry-after": "3" }), "rate_limited", {
      status: 429,
      retryAfterMs: 3000,
    }],
    [apiError(401, "Incorrect API key provided: sk-abc***wxyz"), "auth", { status: 401 }],
    // Out of credit: a 429 that waiting cannot fix stops the run like a bad key.
    [apiError(429, "You exceeded your current quota", {}, null, "insufficient_quota"), "auth", {
      status: 429,
      retryAfterMs: undefined,
    }],
    [apiError(429, "Rate limit reached", {}, null, "rate_limit_exceeded"), "rate_limited", { status: 429 }],
    [apiError(500, "The server had an error"), "retryable", { status: 500 }],
    [apiError(503, "overloaded"), "retryable", { status: 503 }],
    [apiError(400, "Invalid 'input[3]': rejected"), "bad_request", { status: 400, badInputIndex: 3 }],
    [apiError(400, "something is wrong", {}, "input[7]"), "bad_request", { status: 400, badInputIndex: 7 }],
    [apiError(400, "Requested 310000 tokens, max 300000 tokens per request"), "bad_request", {
      badInputIndex: undefined,
    }],
    [apiError(404, "The model does not exist"), "bad_request", { status: 404 }],
    [apiError(402, "payment required"), "permanent", { status: 402 }],
    [new APIConnectionTimeoutError(), "retryable", { status: undefined }],
    [new APIConnectionError({ message: "Connection error." }), "retryable", { status: undefined }],
    [new APIUserAbortError(), "retryable", { status: undefined }],
    [new DOMException("aborted", "AbortError"), "retryable", {}],
    [new DOMException("timed out", "TimeoutError"), "retryable", {}],
    [new TypeError("fetch failed"), "retryable", {}],
    ["a string", "retryable", {}],
  ];
  for (const [err, kind, fields] of table) {
    const p = toProviderError(err);
    assert.ok(p instanceof ProviderError);
    assert.equal(p.kind, kind, String(err));
    for (const [k, v] of Object.entries(fields)) {
      assert.equal((p as unknown as Record<string, unknown>)[k], v, `${err} ${k}`);
    }
  }
  const same = new ProviderError("permanent", "x");
  assert.equal(toProviderError(same), same);
});

Deno.test("the class decides, not the text: a 500 whose message says 'rate limit' is retryable", () => {
  assert.equal(
    toProviderError(apiError(500, "rate limit exceeded, invalid api key, bad request")).kind,
    "retryable",
  );
  assert.equal(toProviderError(apiError(429, "server error, try again")).kind, "rate_limited");
});

Deno.test("sanitize strips keys, tokens, JWTs, given secrets, vectors; one line; capped", () => {
  const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.abcDEF123_-xyz";
  const cases: Array<[string, string[], string[], string[]]> = [
    // input, secrets, must not contain, must contain
    ["Incorrect API key provided: sk-proj-abc123DEF456ghi789", [], ["sk-proj-abc123", "abc123DEF"], [
      "[redacted]",
    ]],
    ["Incorrect API key provided: sk-proj-********wxyz.", [], ["wxyz"], ["[redacted]"]],
    [`authorization: Bearer ${jwt}`, [], [jwt, "eyJhbGci"], ["Bearer [redacted]"]],
    [`token=${jwt} rest`, [], ["eyJ"], ["[jwt]", "rest"]],
    ["db postgres://u:hunter2pw@host/db failed", ["hunter2pw"], ["hunter2pw"], ["[redacted]"]],
    ["vector [0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1e-3] bad", [], ["0.3, 0.4"], [
      "[numbers]",
      "bad",
    ]],
    ["blob " + "QUJD".repeat(40) + " end", [], ["QUJDQUJD"], ["[blob]", "end"]],
    ["line one\nline two\r\n\tthree", [], ["\n", "\t"], ["line one line two three"]],
  ];
  for (const [input, secrets, absent, present] of cases) {
    const out = sanitize(input, secrets);
    for (const a of absent) assert.ok(!out.includes(a), `${JSON.stringify(out)} contains ${a}`);
    for (const p of present) assert.ok(out.includes(p), `${JSON.stringify(out)} lacks ${p}`);
  }
  const long = sanitize("x ".repeat(1000));
  assert.ok(long.length <= 300);
  assert.ok(!long.includes("\n"));
});

Deno.test("ProviderError sanitizes its own message", () => {
  const e = new ProviderError("auth", "Incorrect API key provided: sk-proj-abcdef123456");
  assert.ok(!e.message.includes("abcdef123456"));
});

Deno.test("operatorMessage: short, says what to check, never carries user or provider text", () => {
  const userText = "my private diary entry";
  const table: Array<[ProviderError, RegExp]> = [
    [
      new ProviderError("bad_request", `Invalid 'input[0]': ${userText}`, { status: 400 }),
      /provider rejected the input \(400\): check the row's text/,
    ],
    [
      new ProviderError("auth", `Incorrect API key ${userText}`, { status: 401 }),
      /authentication failed \(401\): check OPENAI_API_KEY/,
    ],
    [new ProviderError("auth", userText, { status: 403 }), /access denied \(403\)/],
    [new ProviderError("auth", userText, { status: 429 }), /quota exhausted \(429 insufficient_quota\)/],
    [new ProviderError("bad_request", userText, { status: 404 }), /EMBEDDING_MODEL and OPENAI_BASE_URL/],
    [
      new ProviderError("rate_limited", userText, { status: 429, retryAfterMs: 1500 }),
      /rate limited \(429\), retry after 2 s/,
    ],
    [new ProviderError("retryable", userText, { status: 502 }), /provider error \(502\): will retry/],
    [new ProviderError("retryable", userText), /unreachable or timed out/],
    [
      new ProviderError("permanent", userText, { hint: "provider returned 8 dimensions, expected 16" }),
      /8 dimensions, expected 16/,
    ],
  ];
  for (const [e, pattern] of table) {
    const m = operatorMessage(e);
    assert.match(m, pattern);
    assert.ok(!m.includes("diary"), m);
    assert.ok(m.length <= 300);
  }
});
