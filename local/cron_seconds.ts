/**
 * The hosted tick on a pg_cron that has no second schedules (local only).
 *
 *   deno run -A local/cron_seconds.ts --db-url postgresql://postgres:...@127.0.0.1:54322/postgres
 *
 * Hosted Supabase runs pg_cron 1.6, where the job `embed-queue-tick` is scheduled every
 * `embed_queue.settings.tick_seconds` (10 s). Debian 12 has pg_cron 1.4, which takes only cron
 * syntax, so there the migration schedules the job every minute. This process restores the
 * hosted rhythm: while the installed pg_cron is older than 1.5, it runs the job's command every
 * tick_seconds, as the job's own user (postgres, never a superuser), and only while the job is
 * active (`cron.alter_job(..., active := false)` pauses it, as it pauses pg_cron). pg_cron's own
 * minute run still happens too: one extra tick a minute, which the tick tolerates by design
 * (it only calls the function when runnable work exists).
 *
 * With pg_cron 1.5 or later it exits at once: pg_cron itself runs the second schedule.
 */
import postgres from "postgres";

const JOB = "embed-queue-tick";
const POLL_MS = 1000;

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

/** True for pg_cron versions that take "N seconds" schedules (1.5 and later). */
export function hasSecondSchedules(extversion: string): boolean {
  const [major, minor] = extversion.replace(/[^0-9.].*$/, "").split(".").map(Number);
  return major > 1 || (major === 1 && (minor ?? 0) >= 5);
}

interface Job {
  command: string;
  active: boolean;
  username: string;
  tick_seconds: number;
  extversion: string;
  me: string;
}

export interface TickerOptions {
  /** The pg_cron job to run (default embed-queue-tick). */
  job?: string;
  /** Run every this many ms instead of settings.tick_seconds (tests). */
  everyMs?: number;
}

export async function runTicker(dbUrl: string, signal: AbortSignal, opts: TickerOptions = {}) {
  const jobName = opts.job ?? JOB;
  const sql = postgres(dbUrl, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: "pg_cron seconds (local)" },
  });
  let next = 0;
  try {
    while (!signal.aborted) {
      try {
        const [job] = await sql<Job[]>`
          select j.command, j.active, j.username, s.tick_seconds, e.extversion, current_user as me
          from cron.job j, embed_queue.settings s, pg_catalog.pg_extension e
          where j.jobname = ${jobName} and e.extname = 'pg_cron'`;
        if (job && hasSecondSchedules(job.extversion)) {
          console.error(JSON.stringify({ event: "cron_seconds.not_needed", pg_cron: job.extversion }));
          return;
        }
        if (job?.active && job.username === job.me && Date.now() >= next) {
          next = Date.now() + (opts.everyMs ?? job.tick_seconds * 1000);
          await sql.unsafe(job.command);
        }
      } catch (e) {
        // Not migrated yet, or the server restarting: try again at the next poll.
        console.error(
          JSON.stringify({ event: "cron_seconds.error", code: (e as { code?: string }).code ?? null }),
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, opts.everyMs ?? POLL_MS)));
    }
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

if (import.meta.main) {
  const dbUrl = arg("--db-url");
  if (!dbUrl) {
    console.error("cron_seconds: --db-url is required");
    Deno.exit(2);
  }
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => stop.abort());
  await runTicker(dbUrl, stop.signal);
  Deno.exit(0);
}
