/**
 * The test server's Files and Batches endpoints (tests/fakes/openai_batches.ts), driven through
 * the official SDK as the function drives them: what it accepts and refuses, the statuses, the
 * output and error files, list and cancel.
 */
import assert from "node:assert/strict";
import OpenAI, { APIError, toFile } from "openai";
import { startFakeOpenAI } from "../fakes/openai_server.ts";

async function withServer(f: (client: OpenAI, admin: (script: Record<string, unknown>) => Promise<void>) => Promise<void>) {
  const fake = await startFakeOpenAI();
  const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseUrl, maxRetries: 0 });
  const admin = async (script: Record<string, unknown>) => {
    const res = await fetch(`${new URL(fake.baseUrl).origin}/_admin/batch_script`, {
      method: "POST",
      body: JSON.stringify(script),
    });
    assert.equal(res.status, 200, await res.text());
  };
  try {
    await f(client, admin);
  } finally {
    await fake.close();
  }
}

const line = (id: string, input: string[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    custom_id: id,
    method: "POST",
    url: "/v1/embeddings",
    body: { model: "text-embedding-3-small", input, encoding_format: "base64", dimensions: 8, ...extra },
  });

const upload = (client: OpenAI, lines: string[], name = "in.jsonl") =>
  client.files.create({ file: new File([lines.join("\n") + "\n"], name), purpose: "batch" });

async function lines(client: OpenAI, fileId: string) {
  const text = await (await client.files.content(fileId)).text();
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("fake batches: a batch of embeddings runs to completed with an output file of OpenAI's shape", () =>
  withServer(async (client) => {
    const file = await upload(client, [line("a", ["one", "two"]), line("b", ["three"])]);
    assert.equal(file.purpose, "batch");
    assert.match(file.id, /^file-/);
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/embeddings",
      completion_window: "24h",
      metadata: { k: "v" },
    });
    const b = await client.batches.retrieve(created.id);
    assert.equal(b.status, "completed");
    assert.deepEqual(b.request_counts, { total: 2, completed: 2, failed: 0 });
    assert.equal(b.error_file_id, null);
    assert.deepEqual(b.metadata, { k: "v" });
    const out = await lines(client, b.output_file_id!);
    assert.deepEqual(out.map((o) => o.custom_id).sort(), ["a", "b"]);
    const a = out.find((o) => o.custom_id === "a");
    assert.equal(a.error, null);
    assert.equal(a.response.status_code, 200);
    assert.equal(a.response.body.data.length, 2);
    assert.equal(typeof a.response.body.data[0].embedding, "string", "base64 as asked");
    assert.ok(a.response.body.usage.prompt_tokens > 0);
    assert.equal(b.usage?.input_tokens, out.reduce((n, o) => n + o.response.body.usage.prompt_tokens, 0));
  }));

Deno.test("fake batches: what OpenAI refuses is refused", () =>
  withServer(async (client) => {
    await assert.rejects(upload(client, [line("a", ["x"])], "in.txt"), (e: APIError) => e.status === 400);
    await assert.rejects(
      client.files.create({ file: await toFile(new Blob(["x"]), "in.jsonl"), purpose: "nope" as "batch" }),
      (e: APIError) => e.status === 400,
    );
    const file = await upload(client, [line("a", ["x"])]);
    await assert.rejects(
      client.batches.create({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "1h" as "24h" }),
      (e: APIError) => e.status === 400 && e.param === "completion_window",
    );
    await assert.rejects(
      client.batches.create({ input_file_id: "file-none", endpoint: "/v1/embeddings", completion_window: "24h" }),
      (e: APIError) => e.status === 400,
    );
    // A repeated custom_id fails validation: status failed, with the line.
    const dup = await upload(client, [line("a", ["x"]), line("a", ["y"])]);
    const b = await client.batches.create({ input_file_id: dup.id, endpoint: "/v1/embeddings", completion_window: "24h" });
    const got = await client.batches.retrieve(b.id);
    assert.equal(got.status, "failed");
    assert.equal(got.errors?.data?.[0].line, 2);
    // More than 50,000 embedding inputs across the batch.
    const big = await upload(client, [line("a", Array(25_001).fill("x")), line("b", Array(25_000).fill("y"))]);
    const b2 = await client.batches.create({ input_file_id: big.id, endpoint: "/v1/embeddings", completion_window: "24h" });
    assert.equal((await client.batches.retrieve(b2.id)).status, "failed");
    await assert.rejects(client.batches.cancel(b2.id), (e: APIError) => e.status === 409);
  }));

Deno.test("fake batches: statuses over time, expiry, error lines, cancel and list", () =>
  withServer(async (client, admin) => {
    // validating → in_progress → finalizing → completed, by the script's times.
    await admin({ validate_ms: 150, run_ms: 150, finalize_ms: 150 });
    const f1 = await upload(client, [line("a", ["x"])]);
    const b1 = await client.batches.create({ input_file_id: f1.id, endpoint: "/v1/embeddings", completion_window: "24h" });
    assert.equal(b1.status, "validating");
    const seen = new Set<string>();
    for (let i = 0; i < 100 && !seen.has("completed"); i++) {
      seen.add((await client.batches.retrieve(b1.id)).status);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual([...seen].filter((s) => s !== "validating"), ["in_progress", "finalizing", "completed"]);

    // Expired with half the lines done: the rest in the error file as batch_expired.
    await admin({ validate_ms: 0, run_ms: 0, finalize_ms: 0, outcome: "expired", done_share: 0.5 });
    const f2 = await upload(client, [line("a", ["x"]), line("b", ["y"]), line("c", ["z"]), line("d", ["w"])]);
    const b2 = await client.batches.retrieve(
      (await client.batches.create({ input_file_id: f2.id, endpoint: "/v1/embeddings", completion_window: "24h" })).id,
    );
    assert.equal(b2.status, "expired");
    assert.deepEqual(b2.request_counts, { total: 4, completed: 2, failed: 2 });
    const errs = await lines(client, b2.error_file_id!);
    assert.deepEqual(errs.map((e) => [e.response, e.error.code]), [[null, "batch_expired"], [null, "batch_expired"]]);

    // A poisoned input: its line answers 400 naming it, in the error file.
    await admin({ outcome: "completed", poison: "BAD" });
    const f3 = await upload(client, [line("ok", ["fine"]), line("bad", ["fine", "a BAD one"])]);
    const b3 = await client.batches.retrieve(
      (await client.batches.create({ input_file_id: f3.id, endpoint: "/v1/embeddings", completion_window: "24h" })).id,
    );
    const bad = (await lines(client, b3.error_file_id!))[0];
    assert.equal(bad.custom_id, "bad");
    assert.equal(bad.response.status_code, 400);
    assert.equal(bad.response.body.error.param, "input[1]");

    // Cancel while in progress: cancelling, then cancelled, lines not run as batch_cancelled.
    await admin({ poison: null, hold: true, cancel_ms: 100 });
    const f4 = await upload(client, [line("a", ["x"])]);
    const b4 = await client.batches.create({ input_file_id: f4.id, endpoint: "/v1/embeddings", completion_window: "24h" });
    assert.equal((await client.batches.retrieve(b4.id)).status, "in_progress");
    assert.equal((await client.batches.cancel(b4.id)).status, "cancelling");
    await new Promise((r) => setTimeout(r, 150));
    const c = await client.batches.retrieve(b4.id);
    assert.equal(c.status, "cancelled");
    assert.equal((await lines(client, c.error_file_id!))[0].error.code, "batch_cancelled");

    // List: newest first, a page at a time.
    const page = await client.batches.list({ limit: 2 });
    assert.deepEqual(page.data.map((b) => b.id), [b4.id, b3.id]);
    assert.equal(page.has_more, true);
    const next = await client.batches.list({ limit: 2, after: b3.id });
    assert.deepEqual(next.data.map((b) => b.id), [b2.id, b1.id]);
  }));
