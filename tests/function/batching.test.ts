import assert from "node:assert/strict";
import {
  type BatchItem,
  packRequests,
  type ProviderRequest,
  repack,
  REQUEST_SHARE_OF_TOKEN_LIMIT,
  requestTokenCap,
} from "../../supabase/functions/embed-queue/batching.ts";
import { countTokens, estimateTokens } from "../../supabase/functions/_shared/tokens.ts";

function items(texts: string[], firstId = 1): BatchItem[] {
  return texts.map((text, i) => ({
    id: firstId + i,
    text,
    tokens: countTokens(text),
  }));
}

function checkLimits(
  reqs: ProviderRequest[],
  maxInputs: number,
  maxTokens: number,
) {
  for (const r of reqs) {
    assert.ok(
      r.inputs.length >= 1 && r.inputs.length <= maxInputs,
      `inputs ${r.inputs.length}`,
    );
    assert.ok(r.tokens <= maxTokens, `tokens ${r.tokens}`);
    assert.ok(r.estimate <= maxTokens, `estimate ${r.estimate}`);
    assert.equal(r.tokens, r.inputs.reduce((n, t) => n + countTokens(t), 0));
    assert.equal(
      r.estimate,
      r.inputs.reduce((n, t) => n + estimateTokens(t), 0),
    );
    assert.equal(r.owners.length, r.inputs.length);
  }
}

Deno.test("packRequests: which budget binds depends on the text", () => {
  const table: Array<
    { name: string; text: string; binding: "tokens" | "estimate" }
  > = [
    // English: about 4+ bytes per token, so the bytes/4 estimate is the larger number.
    {
      name: "ASCII prose",
      text: "internationalization considerations",
      binding: "estimate",
    },
    // CJK: 3 bytes per character and about a token per character: the real count is larger.
    { name: "CJK", text: "日本語のテキストです", binding: "tokens" },
    // Emoji: 4 bytes each, one to three tokens each.
    { name: "emoji", text: "😀🎉🚀🌍🔥", binding: "tokens" },
  ];
  for (const { name, text, binding } of table) {
    const tokens = countTokens(text), estimate = estimateTokens(text);
    assert.ok(
      binding === "estimate" ? estimate > tokens : tokens > estimate,
      `${name}: ${tokens} vs ${estimate}`,
    );
    const per = Math.max(tokens, estimate);
    const maxTokens = per * 3 + 1; // room for exactly three by the binding budget
    const texts = Array.from({ length: 10 }, (_, i) => `${text} ${i}`);
    const reqs = packRequests(items(texts), {
      maxInputs: 2048,
      maxTokens: Math.max(maxTokens, 1),
    });
    checkLimits(reqs, 2048, maxTokens);
    const sizes = reqs.map((r) => r.inputs.length);
    // Each request is full by the binding budget: adding the next input would exceed it.
    for (let i = 0; i + 1 < reqs.length; i++) {
      const next = reqs[i + 1].inputs[0];
      const over = reqs[i].tokens + countTokens(next) > maxTokens ||
        reqs[i].estimate + estimateTokens(next) > maxTokens;
      assert.ok(
        over,
        `${name}: request ${i} (${sizes[i]} inputs) could have taken one more`,
      );
    }
    assert.deepEqual(
      reqs.flatMap((r) => r.inputs),
      texts,
      `${name}: order kept`,
    );
  }
});

Deno.test("packRequests: an estimate-bound batch would break the real 300k check if only tokens counted", () => {
  // 3000 inputs of ~400 bytes of ASCII: ~100 estimated tokens each but far fewer real tokens.
  const text = (i: number) => `${i} ` + "internationalization ".repeat(19);
  const texts = Array.from({ length: 3000 }, (_, i) => text(i));
  const all = items(texts);
  const realTotal = all.reduce((n, it) => n + it.tokens, 0);
  const estTotal = all.reduce((n, it) => n + estimateTokens(it.text), 0);
  const maxTokens = Math.floor((realTotal + estTotal) / 2); // fits by real count, not by estimate
  const reqs = packRequests(all, { maxInputs: 5000, maxTokens });
  assert.ok(reqs.length >= 2);
  checkLimits(reqs, 5000, maxTokens);
});

Deno.test("packRequests: at most maxInputs (2048) inputs per request", () => {
  const texts = Array.from({ length: 5000 }, (_, i) => `row ${i}`);
  const reqs = packRequests(items(texts), {
    maxInputs: 2048,
    maxTokens: 300_000,
  });
  assert.deepEqual(reqs.map((r) => r.inputs.length), [2048, 2048, 904]);
  checkLimits(reqs, 2048, 300_000);
  assert.deepEqual(reqs.flatMap((r) => r.inputs), texts);
});

Deno.test("packRequests: identical texts are sent once, owned by every job that has them", () => {
  const batch: BatchItem[] = [
    { id: 10, text: "alpha", tokens: 1 },
    { id: 11, text: "beta", tokens: 1 },
    { id: 12, text: "alpha", tokens: 1 },
    { id: 13, text: "gamma", tokens: 1 },
    { id: 14, text: "beta", tokens: 1 },
    { id: 15, text: "alpha", tokens: 1 },
  ];
  const reqs = packRequests(batch, { maxInputs: 2, maxTokens: 100 });
  assert.deepEqual(reqs.map((r) => r.inputs), [["alpha", "beta"], ["gamma"]]);
  assert.deepEqual(reqs.map((r) => r.owners), [[[10, 12, 15], [11, 14]], [[
    13,
  ]]]);
  assert.deepEqual(reqs.map((r) => r.tokens), [2, 1]);
  // Every job id appears exactly once.
  assert.deepEqual(reqs.flatMap((r) => r.owners.flat()).sort(), [
    10,
    11,
    12,
    13,
    14,
    15,
  ]);
});

Deno.test("packRequests: edge cases", () => {
  assert.deepEqual(packRequests([], { maxInputs: 10, maxTokens: 10 }), []);
  assert.throws(
    () =>
      packRequests([{ id: 1, text: "", tokens: 0 }], {
        maxInputs: 10,
        maxTokens: 10,
      }),
    RangeError,
  );
  assert.throws(
    () => packRequests([], { maxInputs: 0, maxTokens: 10 }),
    RangeError,
  );
  // An input larger than the request budget goes alone rather than being dropped.
  const big = { id: 2, text: "x ".repeat(50).trim(), tokens: 50 };
  const reqs = packRequests([{ id: 1, text: "a", tokens: 1 }, big, {
    id: 3,
    text: "b",
    tokens: 1,
  }], {
    maxInputs: 10,
    maxTokens: 20,
  });
  assert.deepEqual(reqs.map((r) => r.owners.flat()), [[1], [2], [3]]);
});

Deno.test("requestTokenCap: a small share of the provider's token limit, within OpenAI's cap", () => {
  const cases: Array<
    [string, { tokens?: number; requests?: number }, number, number]
  > = [
    ["limits not known yet: the configured cap", {}, 300_000, 300_000],
    [
      "1M TPM, 3,000 RPM: 5 %",
      { tokens: 1_000_000, requests: 3000 },
      300_000,
      50_000,
    ],
    ["330k TPM: 5 %", { tokens: 330_000, requests: 3000 }, 300_000, 16_500],
    [
      "few requests a minute: large enough to use the tokens in half of them",
      { tokens: 40_000, requests: 3 },
      300_000,
      26_666,
    ],
    [
      "a huge limit: never above OpenAI's 300k",
      { tokens: 100_000_000, requests: 10_000 },
      300_000,
      300_000,
    ],
    ["the configured cap binds", { tokens: 1_000_000 }, 20_000, 20_000],
    ["a tiny limit: at least 1", { tokens: 10 }, 300_000, 1],
  ];
  for (const [name, limits, max, want] of cases) {
    assert.equal(requestTokenCap(limits, max), want, name);
  }
  assert.equal(REQUEST_SHARE_OF_TOKEN_LIMIT, 0.05);
});

Deno.test("repack: cuts a request to smaller limits in order, by each input's real count", () => {
  const items = Array.from(
    { length: 10 },
    (_, i) => ({ id: i + 1, text: `text number ${i}`, tokens: 0 }),
  )
    .map((it) => ({ ...it, tokens: countTokens(it.text) }));
  const [whole] = packRequests(items, { maxInputs: 2048, maxTokens: 300_000 });
  assert.deepEqual(repack(whole, { maxInputs: 2048, maxTokens: 300_000 }), [
    whole,
  ], "within the limits: as it is");
  const per = items[0].tokens;
  const parts = repack(whole, { maxInputs: 2048, maxTokens: per * 3 });
  assert.deepEqual(parts.map((p) => p.inputs.length), [3, 3, 3, 1]);
  assert.deepEqual(
    parts.flatMap((p) => p.owners),
    whole.owners,
    "every job once, in order",
  );
  for (const p of parts) {
    assert.ok(p.tokens <= per * 3);
    assert.equal(p.tokens, p.counts.reduce((a, b) => a + b, 0));
    assert.equal(
      p.estimate,
      p.inputs.reduce((a, t) => a + estimateTokens(t), 0),
    );
  }
  assert.deepEqual(
    repack(whole, { maxInputs: 4, maxTokens: 300_000 }).map((p) => p.inputs.length),
    [4, 4, 2],
  );
  assert.equal(
    repack(whole, { maxInputs: 2048, maxTokens: 1 }).length,
    10,
    "an input over the cap goes alone",
  );
});
