/** The CLI's output, from plain data: table-driven, pure. */
import assert from "node:assert/strict";
import {
  describeModels,
  describeProvider,
  displayItems,
  estimateJson,
  estimateText,
  fmtDuration,
  fmtInt,
  fmtRate,
  fmtSuccessRate,
  fmtUsd,
  itemTextCompact,
  oneLine,
  progressLine,
  RateMeter,
  renderTable,
  searchText,
  statusJson,
  type StatusReport,
  statusText,
  summaryBlock,
} from "../../cli/format.ts";
import type { TargetSnapshot } from "../../cli/db.ts";

Deno.test("format: numbers, money, durations, rates", () => {
  const ints: Array<[number, string]> = [[0, "0"], [999, "999"], [1000, "1,000"], [1234567, "1,234,567"], [
    -2500,
    "-2,500",
  ]];
  for (const [n, s] of ints) assert.equal(fmtInt(n), s);
  const usd: Array<[number, string]> = [
    [0, "$0.00"],
    [12.345, "$12.35"],
    [0.0123, "$0.0123"],
    [0.0000503, "$0.0000503"],
    [0.00001234, "$0.0000123"],
    [0.0011, "$0.0011"],
    [Number.NaN, "$0.00"],
  ];
  for (const [x, s] of usd) assert.equal(fmtUsd(x), s, String(x));
  const durations: Array<[number, string]> = [
    [0, "0 ms"],
    [999, "999 ms"],
    [1000, "1.0 s"],
    [12_345, "12.3 s"],
    [65_000, "1 min 05 s"],
    [600_000, "10 min 00 s"],
    [3_726_000, "1 h 02 min"],
    [-1, "-"],
  ];
  for (const [ms, s] of durations) assert.equal(fmtDuration(ms), s, String(ms));
  const rates: Array<[number, string]> = [[0, "0 rows/s"], [-1, "0 rows/s"], [2.345, "2.3 rows/s"], [
    250.4,
    "250 rows/s",
  ]];
  for (const [r, s] of rates) assert.equal(fmtRate(r), s);
});

Deno.test("format: success rate as the guide prints it", () => {
  const cases: Array<[number, number, string]> = [
    [55, 0, "100.0%"],
    [55, 1, "98.2%"],
    [3, 3, "0.0%"],
    [3, 1, "66.7%"],
    [0, 0, "n/a (nothing processed)"],
  ];
  for (const [p, e, s] of cases) assert.equal(fmtSuccessRate(p, e), s);
});

Deno.test("format: the summary block starts with the guide's four lines, exactly", () => {
  const lines = summaryBlock({
    processed: 55,
    errors: 0,
    skipped: 0,
    tokens: 1234,
    costUsd: 0.00002468,
    durationMs: 8_200,
    model: "text-embedding-3-small",
    extra: [["Stack start", "3.0 s"]],
  });
  assert.deepEqual(lines.slice(0, 4), [
    "=== PROCESSING SUMMARY ===",
    "Total records processed: 55",
    "Total errors: 0",
    "Success rate: 100.0%",
  ]);
  assert.deepEqual(lines.slice(4), [
    "Tokens: 1,234",
    "Estimated cost: $0.0000247",
    "Time: 8.2 s",
    "Model: text-embedding-3-small",
    "Stack start: 3.0 s",
  ]);
  const withErrors = summaryBlock({
    processed: 10,
    errors: 2,
    skipped: 1,
    tokens: 0,
    costUsd: 0,
    durationMs: 500,
  });
  assert.equal(withErrors[2], "Total errors: 2");
  assert.equal(withErrors[3], "Success rate: 80.0%");
  assert.equal(withErrors[4], "Skipped (empty content, embedding cleared): 1");
  assert.ok(!withErrors.some((l) => l.startsWith("Model:")), "no model line without a model");
});

Deno.test("format: the local provider is named as offline and not semantic", () => {
  assert.match(
    describeModels(["local-hash-v1"])!,
    /^local-hash-v1 \(the offline lexical provider.*NOT semantic/,
  );
  assert.equal(describeModels(["text-embedding-3-small"]), "text-embedding-3-small");
  assert.equal(describeModels([]), undefined);
  assert.match(
    describeProvider({ provider: "local", model: "local-hash-v1", dimensions: 1536, usdPerMillionTokens: 0 }),
    /NOT semantic.*OPENAI_API_KEY/,
  );
  assert.equal(
    describeProvider({
      provider: "openai",
      model: "text-embedding-3-small",
      dimensions: 1536,
      usdPerMillionTokens: 0.02,
    }),
    "OpenAI text-embedding-3-small (1536 dimensions, $0.02 per 1M tokens)",
  );
});

Deno.test("format: tables align columns, numbers to the right", () => {
  assert.deepEqual(
    renderTable(["table", "status", "count"], [["sessions", "completed", 33], ["summaries", "failed", 1200]]),
    [
      "  table      status     count",
      "  sessions   completed     33",
      "  summaries  failed     1,200",
    ],
  );
  assert.deepEqual(renderTable(["a", "b"], []), ["  a  b"]);
  assert.deepEqual(renderTable(["cost"], [["$0.02"], ["$12.50"]]), ["    cost", "   $0.02", "  $12.50"]);
  assert.equal(oneLine("  a\n  b\tc ", 10), "a b c");
  assert.equal(oneLine("abcdefghijkl", 5), "abcd…");
  assert.equal(oneLine(null, 5), "");
});

function snap(over: Partial<TargetSnapshot>): TargetSnapshot {
  return {
    table_name: "sessions",
    embedding_column: "title_embedding",
    pending: 0,
    processing: 0,
    completed: 0,
    failed: 0,
    skipped: 0,
    done_since: 0,
    completed_since: 0,
    failed_since: 0,
    skipped_since: 0,
    tokens_since: 0,
    cost_since: 0,
    ...over,
  };
}

Deno.test("format: display items and the plain progress line", () => {
  const items = displayItems([
    snap({ pending: 10, processing: 5, completed: 18, done_since: 18 }),
    snap({
      table_name: "summaries",
      embedding_column: "content_embedding",
      completed: 22,
      failed: 1,
      done_since: 23,
    }),
  ], new Map([["sessions.title_embedding", 6]]));
  assert.deepEqual(items.map((i) => [i.label, i.done, i.total, i.rate]), [
    ["sessions", 18, 33, 6],
    ["summaries", 23, 23, 0],
  ]);
  assert.equal(
    progressLine(3_400, items),
    "[   3 s] sessions 18/33: pending 10, processing 5, completed 18, failed 0, 6.0 rows/s" +
      " | summaries 23/23: pending 0, processing 0, completed 22, failed 1, 0 rows/s",
  );
  assert.equal(itemTextCompact(items[0]), "pend 10 · proc 5 · done 18 · fail 0 · 6.0/s");
  // Two targets on one table are told apart by their column.
  const two = displayItems([snap({}), snap({ embedding_column: "summary_embedding" })], new Map());
  assert.deepEqual(two.map((i) => i.label), ["sessions.title_embedding", "sessions.summary_embedding"]);
});

Deno.test("format: the rate meter measures over its window", () => {
  const m = new RateMeter(10_000);
  assert.equal(m.rate(), 0);
  m.add(0, 0);
  assert.equal(m.rate(), 0);
  m.add(1_000, 5);
  assert.equal(m.rate(), 5);
  m.add(2_000, 15);
  assert.equal(m.rate(), 7.5);
  for (let t = 3_000; t <= 20_000; t += 1_000) m.add(t, 15);
  assert.equal(m.rate(), 0, "nothing finished in the last window");
  m.add(21_000, 25);
  assert.ok(m.rate() > 0 && m.rate() <= 10, `rate ${m.rate()}`);
});

const report: StatusReport = {
  queue: [
    { table_name: "sessions", status: "completed", count: 32 },
    { table_name: "sessions", status: "failed", count: 1 },
    { table_name: "summaries", status: "pending", count: 22 },
  ],
  coverage: [
    {
      table_name: "sessions",
      embedding_column: "title_embedding",
      total: 33,
      with_embeddings: 32,
      missing: 1,
    },
    {
      table_name: "summaries",
      embedding_column: "content_embedding",
      total: 22,
      with_embeddings: 0,
      missing: 22,
    },
  ],
  lag: [{
    table_name: "summaries",
    embedding_column: "content_embedding",
    pending: 22,
    processing: 0,
    oldest_pending_at: new Date("2026-11-24T20:00:00Z"),
    lag_seconds: 12.3456,
  }],
  failures: [{
    table_name: "sessions",
    error_message: "input too long\nfor the model",
    count: 1,
    record_ids: ["a1"],
  }],
  usage: [
    {
      table_name: "sessions",
      embedding_column: "title_embedding",
      model: "text-embedding-3-small",
      completed: 32,
      tokens: 400,
      cost_usd: 0.000008,
    },
    {
      table_name: "summaries",
      embedding_column: "content_embedding",
      model: "local",
      completed: 0,
      tokens: 0,
      cost_usd: 0,
    },
  ],
  runs: [{
    id: 7,
    worker: "run-x",
    trigger: "webhook",
    started_at: new Date("2026-11-24T20:00:00Z"),
    finished_at: new Date("2026-11-24T20:00:02.5Z"),
    claimed: 33,
    completed: 32,
    failed: 1,
    skipped: 0,
    stale: 0,
    requests: 2,
    rate_limited: 0,
    tokens: 400,
    cost_usd: 0.000008,
    error: null,
  }],
};

Deno.test("format: status --json has stable keys, numbers as numbers, times as ISO", () => {
  const j = statusJson(report, new Date("2026-11-24T20:01:00Z"));
  assert.deepEqual(Object.keys(j), [
    "generated_at",
    "totals",
    "queue",
    "coverage",
    "lag",
    "failures",
    "usage",
    "runs",
  ]);
  assert.deepEqual(j.totals, {
    pending: 22,
    processing: 0,
    completed: 32,
    failed: 1,
    skipped: 0,
    missing: 23,
    tokens: 400,
    cost_usd: 0.000008,
  });
  const lag = (j.lag as Array<Record<string, unknown>>)[0];
  assert.equal(lag.oldest_pending_at, "2026-11-24T20:00:00.000Z");
  assert.equal(lag.lag_seconds, 12.346);
  const run = (j.runs as Array<Record<string, unknown>>)[0];
  assert.deepEqual(Object.keys(run), [
    "id",
    "trigger",
    "started_at",
    "finished_at",
    "claimed",
    "completed",
    "failed",
    "skipped",
    "unchanged",
    "stale",
    "requests",
    "rate_limited",
    "tokens",
    "cost_usd",
    "error",
  ]);
  assert.deepEqual((j.failures as unknown[])[0], {
    table_name: "sessions",
    error_message: "input too long\nfor the model",
    count: 1,
    record_ids: ["a1"],
  });
  // Round-trips through JSON unchanged.
  assert.deepEqual(JSON.parse(JSON.stringify(j)), j);
});

Deno.test("format: status text has every section, failures on one line each", () => {
  const t = statusText(report);
  assert.match(
    t,
    /^Queue: 22 pending, 0 processing, 32 completed, 1 failed, 0 skipped; 23 live rows without an embedding/,
  );
  for (
    const title of [
      "Jobs by target and status",
      "Coverage",
      "Lag",
      "Failures, grouped by error",
      "Tokens and estimated cost",
      "Last runs",
    ]
  ) {
    assert.ok(t.includes(`\n${title}`), title);
  }
  assert.ok(t.includes("input too long for the model"), "error message on one line");
  assert.ok(t.includes("2.5 s"), "run duration");
  assert.match(t, /total\s+32\s+400\s+\$0\.000008/);
  const priced = (model: string) =>
    statusText({
      ...report,
      usage: [{
        table_name: "sessions",
        embedding_column: "title_embedding",
        model,
        completed: 1,
        tokens: 5,
        cost_usd: null,
      }],
    });
  assert.match(priced("local-hash-v1"), /local-hash-v1\s+1\s+5\s+\$0\.00/, "the offline model is free");
  assert.match(priced("some-other-model"), /some-other-model\s+1\s+5\s+unknown price/);
  const empty = statusText({ queue: [], coverage: [], lag: [], failures: [], usage: [], runs: [] });
  assert.ok(empty.includes("  no runs yet") && empty.includes("  none"), empty);
});

Deno.test("format: estimate in text and JSON, local provider priced at zero with OpenAI's price beside", () => {
  const rows = [
    { label: "sessions.title_embedding", jobs: 33, tokens: 400, largest: 20, truncated: 0, empty: 0 },
    { label: "summaries.content_embedding", jobs: 22, tokens: 2100, largest: 9000, truncated: 1, empty: 2 },
  ];
  const openai = {
    rows,
    maxTokensPerInput: 8191,
    provider: {
      provider: "openai",
      model: "text-embedding-3-small",
      dimensions: 1536,
      usdPerMillionTokens: 0.02,
    },
  };
  const j = estimateJson(openai);
  assert.deepEqual(j.totals, { jobs: 55, tokens: 2500, truncated: 1, empty: 2, cost_usd: 0.00005 });
  assert.equal((j.targets as unknown[]).length, 2);
  const t = estimateText(openai);
  assert.match(t, /^Estimate for 55 pending jobs/);
  assert.match(t, /total\s+55\s+2,500\s+9,000\s+1/);
  assert.match(t, /Cost with text-embedding-3-small at \$0\.02 per 1M tokens: \$0\.00005/);
  assert.match(t, /2 job\(s\) have empty content/);
  const local = estimateText({
    ...openai,
    provider: { provider: "local", model: "local", dimensions: 1536, usdPerMillionTokens: 0 },
    reference: { model: "text-embedding-3-small", usdPerMillionTokens: 0.02 },
  });
  assert.match(local, /configured provider \(local, offline\): \$0\.00/);
  assert.match(local, /With OpenAI text-embedding-3-small at \$0\.02 per 1M tokens it would be \$0\.00005\./);
});

Deno.test("format: search results rank by similarity and cut long content", () => {
  const t = searchText("sessions", [
    { record_id: "id-1", content: "Weekly planning", similarity: 1 },
    { record_id: "id-2", content: "x".repeat(100), similarity: 0.12345 },
  ], "text-embedding-3-small");
  const lines = t.split("\n");
  assert.equal(
    lines[0],
    "Top 2 of sessions by cosine similarity to the text (model text-embedding-3-small):",
  );
  assert.match(lines[2], /^\s+1\s+1\.0000\s+id-1\s+Weekly planning$/);
  assert.match(lines[3], /^\s+2\s+0\.1235\s+id-2\s+x{59}…$/);
  assert.match(searchText("sessions", [], "m"), /No rows of sessions have an embedding yet/);
});

Deno.test("format: status shows daily token caps, who is capped, what waits and when it resumes", () => {
  const resumes = new Date("2026-11-25T00:00:00Z");
  const capped: StatusReport = {
    ...report,
    spendCaps: [
      {
        scope: "global",
        fair_key: null,
        tokens: 900,
        daily_tokens: 1000,
        reached: false,
        waiting: 3,
        resumes_at: resumes,
      },
      {
        scope: "user",
        fair_key: "ca900000-0000-4000-8000-00000000000a",
        tokens: 1000,
        daily_tokens: 1000,
        reached: true,
        waiting: 20,
        resumes_at: resumes,
      },
    ],
  };
  const j = statusJson(capped, new Date("2026-11-24T20:01:00Z")) as { spend_caps: Record<string, unknown>[] };
  assert.deepEqual(j.spend_caps[1], {
    scope: "user",
    fair_key: "ca900000-0000-4000-8000-00000000000a",
    tokens: 1000,
    daily_tokens: 1000,
    reached: true,
    waiting: 20,
    resumes_at: "2026-11-25T00:00:00.000Z",
  });
  const text = statusText(capped);
  assert.match(text, /Daily token caps/);
  assert.match(
    text,
    /ca900000-0000-4000-8000-00000000000a .*reached: not sending .*20 .*2026-11-25 00:00:00/,
  );
  assert.match(text, /all users .*under/);
  assert.doesNotMatch(statusText(report), /Daily token caps/, "no section when the report has none");

  const warned: StatusReport = {
    ...report,
    warnings: ["the Vault secret embed_queue_secret is empty: the function is never called"],
  };
  assert.deepEqual((statusJson(warned, new Date()) as { warnings: string[] }).warnings, warned.warnings);
  assert.match(statusText(warned), /^warning: the Vault secret embed_queue_secret is empty/);
});

Deno.test("format: status shows the size of the tables the tick prunes, and how long each keeps rows", () => {
  const kept: StatusReport = {
    ...report,
    housekeeping: [
      {
        table_name: "embed_queue.runs",
        rows: 1234,
        bytes: 1_400_000,
        oldest_at: new Date("2026-11-17T20:00:00Z"),
        kept_for: "7 days (settings.runs_retention)",
      },
      {
        table_name: "net._http_response",
        rows: 0,
        bytes: 8192,
        oldest_at: null,
        kept_for: "6 hours (pg_net.ttl default)",
      },
    ],
  };
  const j = statusJson(kept, new Date("2026-11-24T20:01:00Z")) as { housekeeping: Record<string, unknown>[] };
  assert.deepEqual(j.housekeeping[0], {
    table_name: "embed_queue.runs",
    rows: 1234,
    bytes: 1_400_000,
    oldest_at: "2026-11-17T20:00:00.000Z",
    kept_for: "7 days (settings.runs_retention)",
  });
  const text = statusText(kept);
  assert.match(text, /Housekeeping/);
  assert.match(
    text,
    /embed_queue\.runs +1,?234 +1\.3 MB +2026-11-17 20:00:00 +7 days \(settings\.runs_retention\)/,
  );
  assert.match(text, /net\._http_response +0 +8\.0 kB +- +6 hours/);
  assert.doesNotMatch(statusText(report), /Housekeeping/, "no section when the report has none");
});
