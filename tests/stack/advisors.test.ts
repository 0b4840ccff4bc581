/**
 * Supabase's own checks on the migrated test database: `supabase db lint` (plpgsql_check over
 * the project's schemas) and `supabase db advisors --type security` find nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../../local/stack.ts";

const DB_URL = Deno.env.get("EQ_TEST_DB_URL");
const ignore = !DB_URL;

async function supabase(args: string[]) {
  const out = await new Deno.Command(join(ROOT, "node_modules/.bin/supabase"), {
    args,
    cwd: ROOT,
    env: { PGSSLMODE: "disable", SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test({ name: "supabase db lint: no schema errors in public and embed_queue", ignore }, async () => {
  const r = await supabase([
    "db",
    "lint",
    "--db-url",
    DB_URL!,
    "--schema",
    "public,embed_queue",
    "--level",
    "warning",
  ]);
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /No schema errors found/);
});

Deno.test(
  { name: "supabase db advisors --type security: no issues at warn level or above", ignore },
  async () => {
    const r = await supabase([
      "db",
      "advisors",
      `--remote=${DB_URL}`,
      "--type",
      "security",
      "--level",
      "warn",
      "--fail-on",
      "warn",
    ]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /No issues found/);
  },
);
