/**
 * The local stack as npm test brings it up: what Supabase's image provides exists, and the
 * Supabase CLI recorded every migration. Runs against the stack given by EQ_TEST_DB_URL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { ROOT } from "../../local/stack.ts";

const DB_URL = Deno.env.get("EQ_TEST_DB_URL");
const ignore = !DB_URL;
if (ignore) console.error("stack tests skipped: EQ_TEST_DB_URL is not set (run them through npm test)");

function db() {
  return postgres(DB_URL!, { max: 1, onnotice: () => {} });
}

Deno.test({ name: "stack: roles of Supabase's image exist, service_role bypasses RLS", ignore }, async () => {
  const sql = db();
  try {
    const rows = await sql<{ rolname: string; rolbypassrls: boolean }[]>`
      select rolname, rolbypassrls from pg_roles
      where rolname in ('anon', 'authenticated', 'service_role', 'authenticator') order by rolname`;
    assert.deepEqual(rows.map((r) => r.rolname), ["anon", "authenticated", "authenticator", "service_role"]);
    assert.equal(rows.find((r) => r.rolname === "service_role")!.rolbypassrls, true);
    assert.equal(rows.find((r) => r.rolname === "anon")!.rolbypassrls, false);
  } finally {
    await sql.end();
  }
});

Deno.test(
  { name: "stack: extensions and schemas are installed where Supabase puts them", ignore },
  async () => {
    const sql = db();
    try {
      const ext = await sql<{ extname: string }[]>`select extname from pg_extension order by extname`;
      const names = ext.map((e) => e.extname);
      for (const want of ["pg_cron", "pg_net", "pgtap", "supabase_vault", "vector"]) {
        assert.ok(names.includes(want), `extension ${want} missing (have ${names.join(", ")})`);
      }
      const schemas = await sql<{ nspname: string }[]>`
      select nspname from pg_namespace where nspname in ('auth', 'extensions', 'net', 'cron', 'vault') order by 1`;
      assert.deepEqual(schemas.map((s) => s.nspname), ["auth", "cron", "extensions", "net", "vault"]);
      const [{ preload }] = await sql`select current_setting('shared_preload_libraries') as preload`;
      assert.match(preload, /pg_cron/);
    } finally {
      await sql.end();
    }
  },
);

Deno.test({ name: "stack: auth.uid() and auth.jwt() read request.jwt.claims", ignore }, async () => {
  const sql = db();
  try {
    const id = crypto.randomUUID();
    const rows = await sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${
        JSON.stringify({ sub: id, role: "authenticated" })
      }, true)`;
      return await tx`select auth.uid() as uid, auth.jwt() ->> 'role' as role, auth.role() as r`;
    });
    assert.equal(rows[0].uid, id);
    assert.equal(rows[0].role, "authenticated");
    assert.equal(rows[0].r, "authenticated");
    const [none] = await sql`select auth.uid() as uid`;
    assert.equal(none.uid, null);
  } finally {
    await sql.end();
  }
});

Deno.test({ name: "stack: vault round trip; secrets are stored encrypted", ignore }, async () => {
  const sql = db();
  const name = `test-secret-${crypto.randomUUID()}`;
  try {
    const [{ id }] = await sql`select vault.create_secret('s3cr3t-value', ${name}, 'test') as id`;
    const [row] = await sql`select decrypted_secret, secret from vault.decrypted_secrets where id = ${id}`;
    assert.equal(row.decrypted_secret, "s3cr3t-value");
    assert.notEqual(row.secret, "s3cr3t-value");
    await sql`select vault.update_secret(${id}, 'rotated')`;
    const [row2] = await sql`select decrypted_secret from vault.decrypted_secrets where name = ${name}`;
    assert.equal(row2.decrypted_secret, "rotated");
    // The API roles cannot read secrets.
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`set local role anon`;
        await tx`select * from vault.decrypted_secrets`;
      }),
      (e: { code?: string }) => e.code === "42501",
    );
  } finally {
    await sql`delete from vault.secrets where name = ${name}`;
    await sql.end();
  }
});

Deno.test({ name: "stack: every migration file was applied by the Supabase CLI", ignore }, async () => {
  const sql = db();
  try {
    const files = [...Deno.readDirSync(join(ROOT, "supabase/migrations"))]
      .filter((f) => f.name.endsWith(".sql")).map((f) => f.name.split("_")[0]).sort();
    assert.ok(files.length > 0);
    const rows = await sql<
      { version: string }[]
    >`select version from supabase_migrations.schema_migrations order by version`;
    assert.deepEqual(rows.map((r) => r.version), files);
  } finally {
    await sql.end();
  }
});
