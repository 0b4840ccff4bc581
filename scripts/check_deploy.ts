/**
 * Deploy check (`npm run check:deploy`): what `supabase functions deploy` and `supabase db push`
 * meet on hosted Supabase, checked on this machine without Docker or a project.
 *
 * For every function (`supabase/functions/<slug>/index.ts`, slug `^[A-Za-z][A-Za-z0-9_-]*$`, so
 * `_shared` is none):
 *   imports  every entry of the function's own import map is in the root deno.json with the same
 *            target, so a `_shared` module resolves alike for the function and for the CLI/tests;
 *   check    `deno check` of index.ts with ONLY the import map the Supabase CLI would deploy it
 *            with, run from an empty folder: a bare name that only the root deno.json maps fails;
 *   graph    every local module it reaches is inside its own folder or `_shared`;
 *   bundle   `deno bundle` with that same map (one file: what the platform would load).
 * Then once:
 *   migrations  every migration and the seed pushed into a fresh database by the local stack
 *            (`local/stack.ts`, which pushes with the Supabase CLI as `postgres`), then removed.
 *
 * Which import map the CLI deploys a function with, in this order (supabase/cli v2.104.0,
 * apps/cli-go/internal/functions/deploy/deploy.go, GetFunctionSlugs and GetFunctionConfig): the
 * `--import-map` flag, `[functions.<slug>] import_map` in config.toml, the function's own
 * deno.json, deno.jsonc, import_map.json, then supabase/functions/import_map.json; never the
 * repository's root deno.json. This check follows the file order (it sets neither the flag nor
 * config.toml's import_map; the project uses neither).
 *
 *   deno run -A scripts/check_deploy.ts [--functions-dir DIR] [--no-migrations]
 *                                       [--db-port N] [--api-port N]
 */
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const DENO = Deno.execPath();
/** The Supabase CLI's rule for a function's folder name. */
const SLUG = /^[A-Za-z][A-Za-z0-9_-]*$/;
/** Ports of the throwaway database (plus EQ_PORT_OFFSET), apart from every other stack's. */
export const DB_PORT = 28822;
export const API_PORT = 28821;

export type Step = "imports" | "check" | "graph" | "bundle" | "migrations";

export interface StepResult {
  /** The function's slug, or "database" for the migrations. */
  target: string;
  step: Step;
  ok: boolean;
  /** One or a few lines: what failed, or what was checked. Never an environment value. */
  detail: string;
}

/** Function slugs the CLI deploys from `functionsDir`: folders with an index.ts and a valid name. */
export function listFunctions(functionsDir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(functionsDir)) {
    if (!e.isDirectory || !SLUG.test(e.name)) continue;
    try {
      if (Deno.statSync(join(functionsDir, e.name, "index.ts")).isFile) out.push(e.name);
    } catch { /* no index.ts: not a function */ }
  }
  return out.sort();
}

export interface ImportMapChoice {
  /** The file the CLI would deploy with, or null (no import map at all). */
  path: string | null;
  /** deno.json / deno.jsonc are configs (`--config`); import_map.json is a map (`--import-map`). */
  kind: "config" | "import-map" | null;
}

/** The import map `supabase functions deploy` picks for a function (see the header). */
export function importMapFor(functionsDir: string, slug: string): ImportMapChoice {
  const candidates: Array<[string, ImportMapChoice["kind"]]> = [
    [join(functionsDir, slug, "deno.json"), "config"],
    [join(functionsDir, slug, "deno.jsonc"), "config"],
    [join(functionsDir, slug, "import_map.json"), "import-map"],
    [join(functionsDir, "import_map.json"), "import-map"],
  ];
  for (const [path, kind] of candidates) {
    try {
      if (Deno.statSync(path).isFile) return { path, kind };
    } catch { /* next */ }
  }
  return { path: null, kind: null };
}

/** Deno flags that make `choice` the only source of resolution (no config discovery, no lock file). */
function resolutionFlags(choice: ImportMapChoice): string[] {
  if (choice.kind === "config") return ["--config", choice.path!, "--no-lock"];
  if (choice.kind === "import-map") return ["--no-config", "--import-map", choice.path!, "--no-lock"];
  return ["--no-config", "--no-lock"];
}

function readImports(path: string): Record<string, string> {
  // deno.jsonc may carry comments; the project's files are plain JSON.
  const text = Deno.readTextFileSync(path).replace(/^\s*\/\/.*$/gm, "");
  const j = JSON.parse(text) as { imports?: Record<string, string> };
  return j.imports ?? {};
}

/**
 * Every entry of the function's map must be in the root map with the same target: the CLI and
 * the tests import `_shared` modules (and the function's own) through the root deno.json.
 */
export function compareImportMaps(
  fn: Record<string, string>,
  root: Record<string, string>,
): string[] {
  const problems: string[] = [];
  for (const [name, target] of Object.entries(fn)) {
    if (!(name in root)) problems.push(`"${name}" is in the function's map but not in the root deno.json`);
    else if (root[name] !== target) {
      problems.push(`"${name}" is ${target} in the function's map but ${root[name]} in the root deno.json`);
    }
  }
  return problems;
}

async function run(args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(DENO, {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** The lines of Deno's output that say what is wrong (its errors, not its progress). */
function errorLines(err: string, max = 8): string {
  const lines = err.split("\n").map((l) => l.trimEnd()).filter((l) =>
    l && !/^(Check|Download|Bundled|Stack backtrace|\s+\d+: <unknown>|⚠️)/.test(l.trim())
  );
  return lines.slice(0, max).join("\n") || "failed without a message";
}

export interface FunctionCheckOptions {
  functionsDir?: string;
  /** Root deno.json whose map the function's must agree with. */
  rootConfig?: string;
  /** Where bundles are written (a new temporary folder by default, removed afterwards). */
  outDir?: string;
  /** Skip the bundle step (the test of a broken fixture needs only the check). */
  bundle?: boolean;
}

/** imports, check, graph and bundle for one function. */
export async function checkFunction(slug: string, opts: FunctionCheckOptions = {}): Promise<StepResult[]> {
  const functionsDir = resolve(opts.functionsDir ?? join(ROOT, "supabase/functions"));
  const rootConfig = opts.rootConfig ?? join(ROOT, "deno.json");
  const entry = join(functionsDir, slug, "index.ts");
  const choice = importMapFor(functionsDir, slug);
  const flags = resolutionFlags(choice);
  const mapName = choice.path ? relative(functionsDir, choice.path) : "no import map";
  const results: StepResult[] = [];
  // An empty folder as the working directory: nothing there for Deno to discover.
  const cwd = await Deno.makeTempDir({ prefix: "deploy-check-" });
  try {
    if (choice.path) {
      const problems = compareImportMaps(readImports(choice.path), readImports(rootConfig));
      results.push({
        target: slug,
        step: "imports",
        ok: problems.length === 0,
        detail: problems.length ? problems.join("\n") : `${mapName} agrees with the root deno.json`,
      });
    } else {
      results.push({
        target: slug,
        step: "imports",
        ok: true,
        detail: "no import map (bare names cannot resolve)",
      });
    }

    const check = await run(["check", "--quiet", ...flags, entry], cwd);
    results.push({
      target: slug,
      step: "check",
      ok: check.code === 0,
      detail: check.code === 0 ? `type-checks with ${mapName} only` : errorLines(check.err),
    });
    if (check.code !== 0) return results;

    const info = await run(["info", "--json", ...flags, entry], cwd);
    if (info.code !== 0) {
      results.push({ target: slug, step: "graph", ok: false, detail: errorLines(info.err) });
    } else {
      const modules = (JSON.parse(info.out) as { modules: Array<{ specifier: string }> }).modules
        .map((m) => m.specifier).filter((s) => s.startsWith("file:")).map((s) => fileURLToPath(s));
      const allowed = [join(functionsDir, slug) + "/", join(functionsDir, "_shared") + "/"];
      const outside = modules.filter((p) => !allowed.some((a) => p.startsWith(a)));
      results.push({
        target: slug,
        step: "graph",
        ok: outside.length === 0,
        detail: outside.length
          ? `imports files outside ${slug}/ and _shared/: ${
            outside.slice(0, 5).map((p) => relative(dirname(functionsDir), p)).join(", ")
          }`
          : `${modules.length} local modules, all in ${slug}/ or _shared/`,
      });
    }

    if (opts.bundle !== false) {
      const outDir = opts.outDir ?? cwd;
      const out = join(outDir, `${slug}.js`);
      const b = await run(["bundle", "--quiet", ...flags, "--platform", "deno", "--output", out, entry], cwd);
      let size = 0;
      try {
        size = Deno.statSync(out).size;
      } catch { /* not written */ }
      results.push({
        target: slug,
        step: "bundle",
        ok: b.code === 0 && size > 0,
        detail: b.code === 0 && size > 0 ? `one file of ${(size / 1e6).toFixed(1)} MB` : errorLines(b.err),
      });
    }
    return results;
  } finally {
    await Deno.remove(cwd, { recursive: true }).catch(() => {});
  }
}

export interface MigrationCheckOptions {
  name?: string;
  dbPort?: number;
  apiPort?: number;
}

/**
 * Every migration and the seed into a fresh throwaway database, pushed by the local stack (the
 * Supabase CLI's `db push` as `postgres`), then the stack removed. Says whether `postgres` was a
 * superuser there: hosted, it is not, and a push that only a superuser can do fails on deploy.
 */
export async function checkMigrations(opts: MigrationCheckOptions = {}): Promise<StepResult> {
  const offset = Number(Deno.env.get("EQ_PORT_OFFSET") ?? 0);
  const name = opts.name ?? "deploy-check";
  const stack = await import("../local/stack.ts");
  const base = { name, quiet: true };
  try {
    await stack.destroy(base);
    const info = await stack.up({
      ...base,
      dbPort: opts.dbPort ?? DB_PORT + offset,
      apiPort: opts.apiPort ?? API_PORT + offset,
      functions: false,
      ephemeral: true,
    });
    const migrations = [...Deno.readDirSync(join(ROOT, "supabase/migrations"))];
    const count = migrations.filter((e) => e.name.endsWith(".sql")).length;
    const applied = await stack.psql(
      info.dbUrl,
      "select count(*) from supabase_migrations.schema_migrations",
    );
    // The role `supabase db push` logs in as, locally and hosted.
    const superuser = await stack.psql(
      info.dbUrl,
      "select rolsuper from pg_roles where rolname = 'postgres'",
    );
    const ok = Number(applied) === count && superuser === "f";
    return {
      target: "database",
      step: "migrations",
      ok,
      detail: superuser !== "f"
        ? "postgres is a superuser on this local stack, which it is not on Supabase: the push proves nothing"
        : ok
        ? `${count} migrations and the seed pushed into a fresh database as the non-superuser postgres`
        : `${applied} of ${count} migrations recorded`,
    };
  } catch (e) {
    return {
      target: "database",
      step: "migrations",
      ok: false,
      detail: (e as Error).message.split("\n").slice(0, 8).join("\n"),
    };
  } finally {
    await stack.destroy(base).catch(() => {});
  }
}

export interface DeployCheckOptions extends FunctionCheckOptions, MigrationCheckOptions {
  migrations?: boolean;
}

/** Every function, then the migrations; prints one line per step as it goes. */
export async function checkDeploy(
  opts: DeployCheckOptions = {},
  print: (r: StepResult) => void = () => {},
): Promise<StepResult[]> {
  const functionsDir = opts.functionsDir ?? join(ROOT, "supabase/functions");
  const results: StepResult[] = [];
  for (const slug of listFunctions(functionsDir)) {
    for (const r of await checkFunction(slug, { ...opts, functionsDir })) {
      results.push(r);
      print(r);
    }
  }
  if (opts.migrations !== false) {
    const r = await checkMigrations(opts);
    results.push(r);
    print(r);
  }
  return results;
}

export function formatResult(r: StepResult): string {
  const [first, ...rest] = r.detail.split("\n");
  return [
    `${r.ok ? "ok  " : "FAIL"} ${r.step.padEnd(10)} ${r.target}: ${first}`,
    ...rest.map((l) => `       ${l}`),
  ]
    .join("\n");
}

if (import.meta.main) {
  const opts: DeployCheckOptions = {};
  const args = [...Deno.args];
  while (args.length) {
    const a = args.shift()!;
    if (a === "--functions-dir") opts.functionsDir = resolve(args.shift() ?? "");
    else if (a === "--no-migrations") opts.migrations = false;
    else if (a === "--db-port") opts.dbPort = Number(args.shift());
    else if (a === "--api-port") opts.apiPort = Number(args.shift());
    else {
      console.error(`unknown argument ${a.slice(0, 40)}; see the header of scripts/check_deploy.ts`);
      Deno.exit(2);
    }
  }
  const results = await checkDeploy(opts, (r) => console.log(formatResult(r)));
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    failed ? `deploy check: ${failed} step(s) failed` : `deploy check: all ${results.length} steps passed`,
  );
  Deno.exit(failed ? 1 : 0);
}
