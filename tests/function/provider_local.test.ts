import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/config.ts";
import { createProvider, localEmbedding } from "../../supabase/functions/_shared/provider.ts";
import { countTokens } from "../../supabase/functions/_shared/tokens.ts";

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}

function norm(a: Float32Array): number {
  return Math.sqrt(cosine(a, a));
}

Deno.test("local provider: right model, dimensions and token count; deterministic; normalized", async () => {
  const cfg = loadConfig({ EMBEDDING_DIMENSIONS: "384" });
  const p = createProvider(cfg);
  assert.equal(p.name, "local");
  assert.equal(p.model, "local-hash-v1");
  assert.equal(p.dimensions, 384);
  const inputs = ["The cat sat on the mat.", "日本語のテキスト", "!!!", "a"];
  const r1 = await p.embed(inputs);
  const r2 = await createProvider(cfg).embed(inputs);
  assert.equal(r1.vectors.length, inputs.length);
  assert.equal(r1.promptTokens, inputs.reduce((n, s) => n + countTokens(s), 0));
  assert.deepEqual(r1.rate, {});
  for (let i = 0; i < inputs.length; i++) {
    assert.equal(r1.vectors[i].length, 384);
    assert.ok(Math.abs(norm(r1.vectors[i]) - 1) < 1e-5, `norm of ${i}`);
    assert.deepEqual(Array.from(r1.vectors[i]), Array.from(r2.vectors[i]), "same text, same vector");
  }
});

Deno.test("local provider: lexical similarity (shared words score higher than unrelated text)", () => {
  const dims = 1536;
  const base = localEmbedding("how to reset my account password", dims);
  const same = localEmbedding("how to reset my account password", dims);
  const shared = localEmbedding("forgot password, need to reset it", dims);
  const unrelated = localEmbedding("banana smoothie recipe with oat milk", dims);
  assert.ok(Math.abs(cosine(base, same) - 1) < 1e-5);
  assert.ok(cosine(base, shared) > 0.2, `shared ${cosine(base, shared)}`);
  assert.ok(cosine(base, shared) > cosine(base, unrelated) + 0.1);
  // Case and punctuation do not matter: words are lower-cased.
  assert.ok(cosine(base, localEmbedding("HOW TO RESET MY ACCOUNT PASSWORD!", dims)) > 0.999);
  // Different texts give different vectors.
  assert.notDeepEqual(Array.from(base), Array.from(unrelated));
});

Deno.test("local provider: an aborted signal rejects with a retryable ProviderError", async () => {
  const p = createProvider(loadConfig({}));
  await assert.rejects(p.embed(["x"], AbortSignal.abort()), (e: unknown) => {
    assert.equal((e as { kind?: string }).kind, "retryable");
    return true;
  });
});
