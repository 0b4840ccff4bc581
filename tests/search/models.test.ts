/**
 * The search function and the model each column holds (public.search_models): each table's query
 * is embedded by its column's model, and a column that switched model between the look-up and
 * the search (EQMOD) is searched once more with the new model.
 */
import assert from "node:assert/strict";
import { createSearchHandler } from "../../supabase/functions/search/handler.ts";
import { ApiError, type ColumnModel, type SearchApi } from "../../supabase/functions/search/db.ts";
import type { EmbeddingProvider } from "../../supabase/functions/_shared/provider.ts";

const b64 = (o: unknown) =>
  btoa(JSON.stringify(o)).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
const jwt = `${b64({ alg: "HS256" })}.${
  b64({ sub: "c0ffee00-0000-4000-8000-00000000000a", role: "authenticated" })
}.s`;

function provider(model: string, embedded: string[]): EmbeddingProvider {
  return {
    name: "fake",
    model,
    dimensions: 3,
    embed(texts: string[]) {
      embedded.push(model);
      const x = model === "m-old" ? 1 : 0;
      return Promise.resolve({
        vectors: texts.map(() => new Float32Array([x, 1 - x, 0])),
        promptTokens: 1,
        rate: {},
      });
    },
  };
}

function call(columns: () => ColumnModel[], searches: Array<[string, string, string]>, refuse: Set<string>) {
  const embedded: string[] = [];
  const api = (): SearchApi => ({
    takeToken: () => Promise.resolve({ allowed: true, retryAfterMs: 0 }),
    models: () => Promise.resolve(columns()),
    search: (table, _req, vector, model) => {
      searches.push([table, model, vector]);
      if (refuse.has(`${table}/${model}`)) {
        return Promise.reject(new ApiError(400, "EQMOD", "refused"));
      }
      return Promise.resolve([{ id: `${table}-1`, similarity: 1 }]);
    },
  });
  const handler = createSearchHandler({
    provider: provider("m-old", embedded),
    providerFor: (model) => provider(model, embedded),
    api,
    log: () => {},
  });
  return {
    embedded,
    response: handler(
      new Request("http://x/search", {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
        body: JSON.stringify({ query: "q" }),
      }),
    ),
  };
}

const col = (table: string, model: string | null): ColumnModel => ({
  table_name: table,
  embedding_column: "e",
  model,
  dimensions: 3,
});

Deno.test("search: each table's query is embedded with the model its column holds", async () => {
  const searches: Array<[string, string, string]> = [];
  const r = call(() => [col("sessions", "m-new"), col("summaries", null)], searches, new Set());
  const res = await r.response;
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body.models, { sessions: "m-new", summaries: "m-old" });
  assert.deepEqual(
    searches.map(([t, m, v]) => [t, m, v]).sort(),
    [["sessions", "m-new", "[0,1,0]"], ["summaries", "m-old", "[1,0,0]"]],
  );
  assert.deepEqual(r.embedded.sort(), ["m-new", "m-old"], "one embedding per model");
});

Deno.test("search: a column that switched model meanwhile is searched again with the new model", async () => {
  const searches: Array<[string, string, string]> = [];
  let lookups = 0;
  const r = call(
    () => (lookups++ === 0 ? [col("sessions", "m-old")] : [col("sessions", "m-new")]),
    searches,
    new Set(["sessions/m-old"]),
  );
  const res = await r.response;
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.models.sessions, "m-new");
  assert.deepEqual(searches.filter(([t]) => t === "sessions").map(([, m]) => m), ["m-old", "m-new"]);
});
