/**
 * How the function's CPU estimate (budget.ts) compares with the CPU the local host charges its
 * worker (the main thread's utime + stime from /proc, as local/gateway.ts counts it).
 *
 *   deno run -A bench/cpu_budget.ts [--rows 3000] [--provider local|openai]
 *
 * On a stack of its own (stack "cpu-budget", ports 27922/27921 + EQ_PORT_OFFSET) with limits
 * raised out of the way (CPU 60 s), one manual run drains the rows; the run's log line carries the
 * estimate, /proc the charge. Prints both and their ratio.
 */
import { join } from "node:path";
import postgres from "postgres";
import * as stack from "../local/stack.ts";
import { startFakeOpenAIProcess } from "../tests/fakes/openai_process.ts";
import { portOffset } from "../tests/lib/env.ts";
import { rows as makeRows } from "./lib/texts.ts";

const arg = (n: string, d: string) => {
  const i = Deno.args.indexOf(n);
  return i >= 0 ? Deno.args[i + 1] : d;
};
const N = Number(arg("--rows", "3000"));
const useFake = arg("--provider", "openai") === "openai";
const name = "cpu-budget";
const TICKS = 100; // USER_HZ on Linux

function mainThreadCpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 1000 / TICKS;
}

const fake = useFake ? await startFakeOpenAIProcess() : null;
await stack.destroy({ name, quiet: true });
const info = await stack.up({
  name,
  dbPort: 27922 + portOffset,
  apiPort: 27921 + portOffset,
  ephemeral: true,
  quiet: true,
  functionEnv: {
    ...(fake ? { OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.baseUrl } : {}),
    EMBED_QUEUE_CPU_SOFT_MS: "60000",
    EMBED_QUEUE_CPU_HARD_MS: "60000",
  },
});
const sql = postgres(info.dbUrl, { max: 2, onnotice: () => {} });
try {
  await sql`select cron.alter_job(jobid, active := false) from cron.job where jobname = 'embed-queue-tick'`;
  const call = (body: Record<string, unknown>) =>
    fetch(`${info.functionsUrl}/embed-queue`, {
      method: "POST",
      headers: { authorization: `Bearer ${info.serviceRoleKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.json());
  await call({ dry_run: true }); // the worker is up
  while ((await sql`select count(*)::int as n from embedding_queue where status <> 'completed'`)[0].n > 0) {
    await call({});
  }
  await sql`update embed_queue.webhook_state set last_poke_at = now() + interval '1 hour'`;
  const [{ id: user }] = await sql`select id from auth.users limit 1`;
  const texts = makeRows(N, { seed: 77 }).map((r) => r.text);
  await sql`insert into public.sessions (user_id, title) select ${user}, unnest(${sql.array(texts)}::text[])`;
  const pid = Number(Deno.readTextFileSync(join(info.stateDir, "functions/embed-queue.pid")).trim());
  const before = mainThreadCpuMs(pid);
  const summary = await call({ time_budget_ms: 60_000 });
  const charged = mainThreadCpuMs(pid) - before;
  const logText = Deno.readTextFileSync(join(info.stateDir, "logs/gateway.log"));
  const finishes = logText.split("\n").filter((l) => l.includes('"run.finish"') && l.includes('"manual"'));
  const last = JSON.parse(finishes.at(-1)!.slice(finishes.at(-1)!.indexOf("{")));
  const prev = finishes.length > 1 ? JSON.parse(finishes.at(-2)!.slice(finishes.at(-2)!.indexOf("{"))) : null;
  const estimate = last.worker_cpu_ms_estimate - (prev?.worker_cpu_ms_estimate ?? 0);
  console.log(JSON.stringify({
    rows: N,
    provider: useFake ? "openai (test server)" : "local",
    completed: summary.completed,
    charged_main_thread_ms: Math.round(charged),
    worker_cpu_before_run_ms: Math.round(before),
    estimate_ms: estimate,
    estimate_over_charged: Number((estimate / charged).toFixed(2)),
    charged_ms_per_1000_rows: Math.round(charged / N * 1000),
  }));
} finally {
  await sql.end();
  await stack.destroy({ name, quiet: true });
  await fake?.close();
}
