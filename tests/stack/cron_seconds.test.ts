/**
 * The 10-second tick on a pg_cron without second schedules (local/cron_seconds.ts): it runs the
 * job's command as the job's user while the job is active, and stops when cron.alter_job pauses it.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { hasSecondSchedules, runTicker } from "../../local/cron_seconds.ts";
import { testEnv } from "../lib/env.ts";

const ignore = !testEnv.dbUrl;

Deno.test("cron seconds: pg_cron 1.5 and later schedule seconds themselves", () => {
  assert.deepEqual(
    ["1.4-1", "1.4.2", "1.5", "1.6.4", "2.0"].map(hasSecondSchedules),
    [false, false, true, true, true],
  );
});

Deno.test({
  name: "cron seconds: runs an active job's command as its user, and not once it is paused",
  ignore,
}, async () => {
  const sql = postgres(testEnv.dbUrl, { max: 1, onnotice: () => {} });
  const job = `eq-test-ticker-${crypto.randomUUID().slice(0, 8)}`;
  const table = `public.eq_ticks_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await sql.unsafe(
      `create table ${table} (who text not null, at timestamptz not null default clock_timestamp())`,
    );
    // Once a year: pg_cron itself will not run it during the test.
    await sql`select cron.schedule(${job}, '0 0 1 1 *', ${`insert into ${table} (who) values (current_user)`})`;
    const count = async () => Number((await sql.unsafe(`select count(*) as n from ${table}`))[0].n);

    const stop = new AbortController();
    const ticking = runTicker(testEnv.dbUrl, stop.signal, { job, everyMs: 100 });
    const until = Date.now() + 10_000;
    while (await count() < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(await count() >= 3, "the command ran again and again");
    const [{ who }] = await sql.unsafe(`select distinct who from ${table}`);
    assert.equal(who, "postgres", "as the job's user, not a superuser");

    await sql`select cron.alter_job(jobid, active := false) from cron.job where jobname = ${job}`;
    await new Promise((r) => setTimeout(r, 300)); // a tick already under way may finish
    const paused = await count();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await count(), paused, "nothing runs while the job is paused");
    stop.abort();
    await ticking;
  } finally {
    await sql`select cron.unschedule(jobid) from cron.job where jobname = ${job}`.catch(() => {});
    await sql.unsafe(`drop table if exists ${table}`).catch(() => {});
    await sql.end();
  }
});
