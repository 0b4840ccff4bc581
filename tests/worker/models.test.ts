/**
 * The run loop and the target's model: jobs of a column pinned to another model are embedded by
 * that model's provider and written back with it; jobs whose stored vector already embeds their
 * text (complete_unchanged) are never sent and are counted as unchanged.
 */
import assert from "node:assert/strict";
import { runQueue } from "../../supabase/functions/embed-queue/worker.ts";
import type { EmbeddingProvider } from "../../supabase/functions/_shared/provider.ts";
import { loadConfig } from "../../supabase/functions/_shared/config.ts";
import type { ClaimedJob, CompletedJob, Outcome } from "../../supabase/functions/embed-queue/db.ts";
import { FakeDb } from "./fake_db.ts";

const DIMS = 8;
const config = { ...loadConfig({}), dimensions: DIMS, concurrency: 1 };

function provider(model: string, sent: Array<{ model: string; inputs: string[] }>): EmbeddingProvider {
  return {
    name: "scripted",
    model,
    dimensions: DIMS,
    embed(inputs: string[]) {
      sent.push({ model, inputs });
      return Promise.resolve({
        vectors: inputs.map(() => new Float32Array(DIMS).fill(0.5)),
        promptTokens: inputs.length,
        rate: {},
      });
    },
  };
}

/** Jobs whose text starts with "L:" belong to a column pinned to model "large"; "same:" ones are unchanged. */
class ModelDb extends FakeDb {
  completedWith: Array<{ model: string; ids: number[] }> = [];
  override async claim(worker: string, limit: number): Promise<ClaimedJob[]> {
    const jobs = await super.claim(worker, limit);
    return jobs.map((j) => ({ ...j, model: j.content.startsWith("L:") ? "large" : null }));
  }
  override complete(worker: string, done: CompletedJob[], model = ""): Promise<Map<number, Outcome>> {
    this.completedWith.push({ model, ids: done.map((d) => d.id) });
    return super.complete(worker, done);
  }
  asked: Array<{ model: string; ids: number[] }> = [];
  completeUnchanged(
    worker: string,
    jobs: Array<{ id: number; contentHash: string }>,
    model: string,
  ): Promise<Set<number>> {
    this.asked.push({ model, ids: jobs.map((j) => j.id) });
    const out = new Set<number>();
    for (const { id } of jobs) {
      const j = this.jobs.get(id)!;
      if (j.lockedBy === worker && j.content.includes("same:")) {
        j.status = "completed";
        j.lockedBy = null;
        out.add(id);
      }
    }
    return Promise.resolve(out);
  }
}

Deno.test("run: each job is embedded and written back with its column's model; unchanged ones are not sent", async () => {
  const db = new ModelDb(["a", "L:b", "same:c", "L:same:d", "e"], DIMS);
  const sent: Array<{ model: string; inputs: string[] }> = [];
  const made: string[] = [];
  const s = await runQueue({
    db,
    provider: provider("small", sent),
    providerFor: (model) => {
      made.push(model);
      return provider(model, sent);
    },
    config,
  }, { trigger: "manual", batchSize: 100, timeBudgetMs: 60_000, dryRun: false });

  assert.deepEqual(made, ["large"], "one provider for the pinned model");
  assert.deepEqual(
    sent.map((r) => [r.model, r.inputs.sort()]).sort(),
    [["large", ["L:b"]], ["small", ["a", "e"]]],
    "each text sent once, by its column's model; the unchanged ones never",
  );
  assert.deepEqual(
    db.completedWith.map((c) => [c.model, c.ids.sort()]).sort(),
    [["large", [2]], ["small", [1, 5]]],
    "written back with the model that made them",
  );
  assert.deepEqual(db.asked.map((a) => a.model).sort(), ["large", "small"], "asked per model");
  assert.equal(s.unchanged, 2);
  assert.equal(s.completed, 3);
  assert.equal(s.requests, 2);
  assert.equal(db.byStatus("completed").length, 5);
  assert.equal(db.runs[0].stats?.unchanged, 2, "the run record says so");
});

Deno.test("run: a column pinned to a model the local provider cannot make fails its jobs with a reason", async () => {
  const db = new ModelDb(["a", "L:b"], DIMS);
  const sent: Array<{ model: string; inputs: string[] }> = [];
  const s = await runQueue({
    db,
    provider: provider("local-hash-v1", sent),
    config: { ...config, provider: "local" as const, model: "local-hash-v1" },
  }, { trigger: "manual", batchSize: 100, timeBudgetMs: 60_000, dryRun: false });
  assert.equal(s.failed, 1);
  assert.match(db.failures[0].error, /holds model large .*local provider cannot make/);
  assert.deepEqual(sent.map((r) => r.inputs), [["a"]]);
});
