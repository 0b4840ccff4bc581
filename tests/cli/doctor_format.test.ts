/** `doctor` and the adoption part of `status`: pure renderers of embed_queue.old_triggers and legacy_vectors. */
import assert from "node:assert/strict";
import type { AdoptionReport } from "../../cli/db.ts";
import { adoptionJson, adoptionSections, doctorText } from "../../cli/format.ts";

const trigger = {
  schema_name: "public",
  table_name: "sessions",
  trigger_name: "queue_session_embedding",
  function_name: "public.queue_session_embedding",
  enabled: true,
};
const legacy = [
  { table_name: "sessions", embedding_column: "title_embedding", unknown_origin: 6 },
  { table_name: "summaries", embedding_column: "content_embedding", unknown_origin: 4 },
];

Deno.test("doctor: findings, what to run, and a problem count that sets the exit code", () => {
  const cases: [string, AdoptionReport, number, RegExp[]][] = [
    ["clean", { legacyPolicy: "trust", legacy: [], oldTriggers: [] }, 0, [
      /^ok: no trigger but embed_queue's/m,
      /^ok: every vector was written by embed_queue/m,
    ]],
    ["old trigger, trusted vectors", { legacyPolicy: "trust", legacy, oldTriggers: [trigger] }, 1, [
      /public\.sessions: trigger queue_session_embedding \(function public\.queue_session_embedding\)/,
      /select \* from embed_queue\.drop_old_triggers\(\);/,
      /10 vector\(s\) of unknown origin \(sessions\.title_embedding 6, summaries\.content_embedding 4\)/,
      /set legacy_vectors = 'reembed'/,
    ]],
    [
      "disabled trigger, re-embedding",
      {
        legacyPolicy: "reembed",
        legacy,
        oldTriggers: [{ ...trigger, enabled: false }],
      },
      1,
      [/, disabled\)/, /embedded again as bulk work/, /set legacy_vectors = 'trust'/],
    ],
  ];
  for (const [name, report, problems, patterns] of cases) {
    const d = doctorText(report);
    assert.equal(d.problems, problems, name);
    for (const p of patterns) assert.match(d.text, p, name);
  }
});

Deno.test("status: the adoption sections and JSON keys", () => {
  const a: AdoptionReport = { legacyPolicy: "trust", legacy, oldTriggers: [trigger] };
  const j = adoptionJson(a);
  assert.deepEqual(Object.keys(j), ["legacy_vectors", "old_triggers"]);
  assert.deepEqual(j.legacy_vectors, {
    policy: "trust",
    unknown_origin: 10,
    by_target: legacy,
  });
  assert.deepEqual(j.old_triggers, [{
    table_name: "public.sessions",
    trigger_name: "queue_session_embedding",
    function_name: "public.queue_session_embedding",
    enabled: true,
  }]);
  const text = adoptionSections(a).join("\n");
  assert.match(text, /Vectors of unknown origin/);
  assert.match(text, /summaries\s+content_embedding\s+4/);
  assert.match(text, /public\.sessions\s+queue_session_embedding\s+public\.queue_session_embedding\s+yes/);
  const none = adoptionSections({ legacyPolicy: "trust", legacy: [], oldTriggers: [] }).join("\n");
  assert.equal((none.match(/^ {2}none$/gm) ?? []).length, 2);
});
