/**
 * The deploy check (scripts/check_deploy.ts) passes for the real function and its migrations,
 * and fails for a function that leans on the root deno.json: proof that the check sees only
 * what `supabase functions deploy` would deploy with.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  API_PORT,
  checkFunction,
  checkMigrations,
  compareImportMaps,
  DB_PORT,
  importMapFor,
  listFunctions,
  ROOT,
} from "../../scripts/check_deploy.ts";
import { portOffset } from "../lib/env.ts";

const ROOT_MAP = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).imports as Record<string, string>;

/**
 * A functions folder inside the repository (under the ignored .cache/), so that Deno's own
 * discovery WOULD find the root deno.json, which maps "jose": only the check's flags keep it out.
 * `files` are paths under the fixture's `functions/` folder; the fixture's folder is removed after.
 */
async function withFixture(files: Record<string, string>, body: (functionsDir: string) => Promise<void>) {
  Deno.mkdirSync(join(ROOT, ".cache"), { recursive: true });
  const dir = await Deno.makeTempDir({ dir: join(ROOT, ".cache"), prefix: "deploy-fixture-" });
  try {
    const functionsDir = join(dir, "functions");
    for (const [path, text] of Object.entries(files)) {
      Deno.mkdirSync(join(functionsDir, path, ".."), { recursive: true });
      Deno.writeTextFileSync(join(functionsDir, path), text);
    }
    await body(functionsDir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const SHARED_JOSE = 'import * as jose from "jose";\nexport const kind = typeof jose.SignJWT;\n';
const INDEX = 'import { kind } from "../_shared/uses_jose.ts";\nDeno.serve(() => new Response(kind));\n';

Deno.test("deploy check: the real functions pass imports, check, graph and bundle", async () => {
  assert.deepEqual(
    listFunctions(join(ROOT, "supabase/functions")),
    ["embed-queue", "search"],
    "_shared is not a function",
  );
  for (const name of ["embed-queue", "search"]) {
    const results = await checkFunction(name);
    assert.deepEqual(results.map((r) => r.step), ["imports", "check", "graph", "bundle"]);
    for (const r of results) assert.ok(r.ok, `${name} ${r.step}: ${r.detail}`);
  }
});

Deno.test("deploy check: a bare name only the root deno.json maps fails the check", async () => {
  assert.ok("jose" in ROOT_MAP, "the fixture relies on the root map having jose");
  await withFixture({
    "broken/index.ts": INDEX,
    "broken/deno.json": JSON.stringify({ imports: { openai: ROOT_MAP.openai } }),
    "_shared/uses_jose.ts": SHARED_JOSE,
  }, async (dir) => {
    // Control: with Deno's own discovery (from the repository) the same code type-checks.
    const control = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--no-lock", join(dir, "broken/index.ts")],
      cwd: ROOT,
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(control.code, 0, "the root deno.json resolves it");

    assert.deepEqual(listFunctions(dir), ["broken"], "_shared is not a function");
    const results = await checkFunction("broken", { functionsDir: dir, bundle: false });
    const check = results.find((r) => r.step === "check")!;
    assert.equal(check.ok, false);
    assert.match(check.detail, /"jose"/);
    assert.match(check.detail, /not in import map/);
    assert.equal(results.find((r) => r.step === "imports")!.ok, true, "what it maps agrees with the root");
    assert.equal(results.some((r) => r.step === "bundle" || r.step === "graph"), false, "stops at the check");
  });
});

Deno.test("deploy check: without its own deno.json a function has no import map (as deployed)", async () => {
  await withFixture({ "bare/index.ts": INDEX, "_shared/uses_jose.ts": SHARED_JOSE }, async (dir) => {
    assert.deepEqual(importMapFor(dir, "bare"), { path: null, kind: null });
    const results = await checkFunction("bare", { functionsDir: dir, bundle: false });
    const check = results.find((r) => r.step === "check")!;
    assert.equal(check.ok, false);
    assert.match(check.detail, /"jose"/);
  });
});

Deno.test("deploy check: a function that reaches outside its folder and _shared fails the graph step", async () => {
  await withFixture({
    "leaky/index.ts": 'import { x } from "../../elsewhere.ts";\nDeno.serve(() => new Response(String(x)));\n',
    "leaky/deno.json": "{}",
    "../elsewhere.ts": "export const x = 1;\n",
  }, async (dir) => {
    const results = await checkFunction("leaky", { functionsDir: dir, bundle: false });
    assert.equal(results.find((r) => r.step === "check")!.ok, true);
    const graph = results.find((r) => r.step === "graph")!;
    assert.equal(graph.ok, false);
    assert.match(graph.detail, /outside leaky\/ and _shared\/.*elsewhere\.ts/);
  });
});

Deno.test("deploy check: the function's map must agree with the root deno.json", () => {
  const root = { openai: "npm:openai@7.55.0", postgres: "npm:postgres@3.4.9" };
  assert.deepEqual(compareImportMaps({ openai: "npm:openai@7.55.0" }, root), []);
  const problems = compareImportMaps({ openai: "npm:openai@7.0.0", zod: "npm:zod@4" }, root);
  assert.equal(problems.length, 2);
  assert.match(problems[0], /"openai" is npm:openai@7\.0\.0 in the function's map but npm:openai@7\.55\.0/);
  assert.match(problems[1], /"zod" is in the function's map but not in the root deno\.json/);
  // And the real one agrees.
  const fnMap =
    JSON.parse(Deno.readTextFileSync(join(ROOT, "supabase/functions/embed-queue/deno.json"))).imports;
  assert.deepEqual(compareImportMaps(fnMap, ROOT_MAP), []);
});

Deno.test("deploy check: every migration and the seed push into a fresh database", async () => {
  const r = await checkMigrations({
    name: "deploy-check-test",
    dbPort: DB_PORT + portOffset,
    apiPort: API_PORT + portOffset,
  });
  assert.ok(r.ok, r.detail);
  assert.match(r.detail, /^\d+ migrations and the seed pushed/);
  assert.equal(Deno.statSync(join(ROOT, ".stack")).isDirectory, true);
  assert.equal(
    [...Deno.readDirSync(join(ROOT, ".stack"))].some((e) => e.name === "deploy-check-test"),
    false,
    "removed",
  );
});
