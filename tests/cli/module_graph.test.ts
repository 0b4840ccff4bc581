/**
 * Nothing remote imports `local/`: what `cli/main.ts` and each remote command load up front
 * (their static imports, followed to the end) holds no module of the local stand-ins. The local
 * stack is reached only by `start` and by a dynamic import when the connection is the local
 * stack's. The graph is Deno's own (`deno info --json`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const LOCAL = new URL("../../local/", import.meta.url).href;

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string }; isDynamic?: boolean }[];
}

/** The modules `file` loads before it runs: its static imports, transitively (dynamic ones too when asked). */
async function staticGraph(file: string, withDynamic = false): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", join(ROOT, file)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { roots: string[]; modules: InfoModule[] };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if ((withDynamic || !d.isDynamic) && d.code) todo.push(d.code.specifier);
    }
  }
  return seen;
}

/** The commands that may talk to a hosted project: every one but `start`. */
const REMOTE = [
  "main.ts",
  ...["backfill", "doctor", "drain", "estimate", "retry", "search", "status"].map((c) => `commands/${c}.ts`),
];

for (const file of REMOTE) {
  Deno.test(`cli/${file} loads nothing from local/`, async () => {
    const graph = await staticGraph(`cli/${file}`);
    assert.ok(graph.size > 1, "the graph was read");
    assert.deepEqual([...graph].filter((s) => s.startsWith(LOCAL)), []);
  });
}

Deno.test("the walk would see a local/ import: with its dynamic imports, the connection reaches the stack", async () => {
  const graph = await staticGraph("cli/connection.ts", true);
  assert.ok([...graph].some((s) => s.startsWith(LOCAL)));
});
