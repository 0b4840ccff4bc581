/**
 * The stack's schema: the bootstrap of roles, schemas and extensions as on hosted Supabase
 * (local/sql/bootstrap.sql, as supabase_admin), the Vault secrets the scheduler uses, and the
 * migrations and seed pushed with the real Supabase CLI as `postgres`.
 */
import { join } from "node:path";
import { ROOT, run, type StackInfo } from "./common.ts";
import { psql, psqlFile } from "./postgres.ts";

const SUPABASE = join(ROOT, "node_modules/.bin/supabase");

/** sha256 of each file in supabase/migrations, by file name. */
export async function migrationHashes(): Promise<Record<string, string>> {
  const dir = join(ROOT, "supabase/migrations");
  const names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".sql")).map((e) =>
    e.name
  )
    .sort();
  const out: Record<string, string> = {};
  for (const name of names) {
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(join(dir, name)));
    out[name] = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return out;
}

/**
 * Bootstraps a new cluster (as supabase_admin); refuses one made when `postgres` was still a
 * superuser. Returns whether it bootstrapped.
 */
export async function bootstrap(inf: StackInfo): Promise<boolean> {
  const bootstrapped = await psql(inf.adminDbUrl, "select to_regclass('auth.users') is not null").catch(() =>
    "f"
  );
  if (bootstrapped !== "t") {
    await psqlFile(inf.adminDbUrl, join(ROOT, "local/sql/bootstrap.sql"));
    return true;
  } else if (await psql(inf.adminDbUrl, "select rolsuper from pg_roles where rolname = 'postgres'") !== "f") {
    // Made before `postgres` lost SUPERUSER (as on hosted Supabase): its migrations ran with powers
    // the platform does not give, so nothing it says about a deploy can be trusted.
    throw new Error(
      "this stack was made when `postgres` was a superuser, which it is not on Supabase: start it " +
        "afresh with `npm run stack -- reset` (its data is lost)",
    );
  }
  return false;
}

/** Applies migrations (and, the first time, the seed) with the real Supabase CLI. */
export async function push(dbUrl: string, withSeed: boolean) {
  const args = ["db", "push", `--remote=${dbUrl}`, "--yes"];
  if (withSeed) args.push("--include-seed");
  const r = await run(SUPABASE, args, {
    env: { SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", PGSSLMODE: "disable" },
  });
  if (r.ok) return;
  if (/Remote migration versions not found/.test(r.text)) {
    throw new Error(
      "this stack's database was migrated with migration files that no longer exist here " +
        "(the migrations changed since it was made): start it afresh with `npm run stack -- reset`",
    );
  }
  throw new Error(`supabase db push failed (exit ${r.code}):\n${r.text.trim()}`);
}

/** Vault secrets the scheduler and the webhook use to call the function on this stack's port. */
export async function setQueueSecrets(dbUrl: string, functionsUrl: string, secret: string) {
  await psql(
    dbUrl,
    `do $$ begin
       if exists (select 1 from vault.secrets where name = 'embed_queue_url') then
         perform vault.update_secret(id, '${functionsUrl}/embed-queue') from vault.secrets where name = 'embed_queue_url';
       else
         perform vault.create_secret('${functionsUrl}/embed-queue', 'embed_queue_url', 'URL of the embed-queue Edge Function');
       end if;
       if not exists (select 1 from vault.secrets where name = 'embed_queue_secret') then
         perform vault.create_secret('${secret}', 'embed_queue_secret', 'Bearer credential pg_cron and the webhook send to embed-queue');
       end if;
     end $$;`,
  );
}
