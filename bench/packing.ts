/**
 * Packing: 2,000 queued rows (bench/lib/texts.ts, deterministic) drained by manual calls
 * against the test server at 150 ms + 20 µs per token, first with the function's defaults
 * (many inputs per request), then with one input per request (EMBED_QUEUE_MAX_INPUTS_PER_REQUEST=1,
 * still 4 requests in flight). The hands-off path is held during the measurement.
 *
 *   node_modules/.bin/deno run -A bench/packing.ts [--rows 2000] [--reps 3]
 *
 * Prints one JSON line per drain: provider requests, inputs, tokens, wall time.
 */
import postgres from "postgres";
import * as stack from "../local/stack.ts";
import {
  adminReset,
  adminScript,
  adminStats,
  startFakeOpenAIProcess,
} from "../tests/fakes/openai_process.ts";
import { rows } from "./lib/texts.ts";
import { portOffset } from "../tests/lib/env.ts";

const arg = (name: string, dflt: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
};
const N = arg("--rows", 2000);
const REPS = arg("--reps", 3);
const base = {
  name: "packing",
  dbPort: 27722 + portOffset,
  apiPort: 27721 + portOffset,
  ephemeral: true,
  quiet: true,
};

const fake = await startFakeOpenAIProcess();

async function drainOnce(label: string, extraEnv: Record<string, string>) {
  await stack.destroy(base);
  const info = await stack.up({
    ...base,
    functionEnv: { OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.baseUrl, ...extraEnv },
  });
  const sql = postgres(info.dbUrl, { max: 2, onnotice: () => {} });
  try {
    for (let i = 0; i < 600; i++) { // the seed's 55 jobs drain hands-off first
      const [{ n }] =
        await sql`select count(*)::int as n from embedding_queue where status in ('pending', 'processing')`;
      if (n === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await sql`select cron.alter_job(jobid, active := false) from cron.job where jobname = 'embed-queue-tick'`;
    await sql`update embed_queue.webhook_state set last_poke_at = now() + interval '1 hour'`;
    const [{ id: user }] = await sql`select id from auth.users limit 1`;
    const texts = rows(N, { unique: "p" }).map((r) => r.text);
    await sql`insert into public.sessions (user_id, title) select ${user}, unnest(${
      sql.array(texts)
    }::text[])`;
    await adminReset(fake.adminUrl);
    await adminScript(fake.adminUrl, { latency_ms: 150, per_token_latency_us: 20 });
    const t0 = performance.now();
    let calls = 0;
    for (let pending = -1; pending !== 0 && calls < 100; calls++) {
      const r = await fetch(`${info.functionsUrl}/embed-queue`, {
        method: "POST",
        headers: { authorization: `Bearer ${info.serviceRoleKey}`, "content-type": "application/json" },
        body: "{}",
      });
      pending = (await r.json()).pending;
    }
    const wall = (performance.now() - t0) / 1000;
    const st = await adminStats(fake.adminUrl);
    console.log(
      JSON.stringify({
        label,
        rows: N,
        requests: st.requests,
        inputs: st.inputs,
        tokens: st.tokens,
        calls,
        wall_s: +wall.toFixed(2),
      }),
    );
  } finally {
    await sql.end();
    await stack.destroy(base);
  }
}

try {
  for (let rep = 0; rep < REPS; rep++) {
    await drainOnce("packed (defaults)", {});
    await drainOnce("one input per request, 4 in flight", { EMBED_QUEUE_MAX_INPUTS_PER_REQUEST: "1" });
  }
} finally {
  await fake.close();
}
