/**
 * `npm run bench:search`: latency of the search Edge Function as an app sees it, on a local stack
 * of its own (stack "bench-search", ports 27622/27621 + EQ_PORT_OFFSET, a fresh ephemeral
 * cluster) with the fake OpenAI server. One signed-in user with N rows of their own (default
 * 10,000, 40 % summaries) beside another user's N/10; Q queries (default 100) one after
 * another, each a different text, through gateway → function → provider → Data API → SQL.
 *
 *   deno run -A bench/search.ts [--rows N] [--queries Q] [--latencies 0,150] [--out FILE]
 *
 * For each provider latency (the fake server's delay before answering) it reports p50 and p99
 * of the whole call as the client measures it, and apart from it the provider's part
 * (timing.embed_ms) and the database's part (timing.search_ms, both Data API calls in
 * parallel), as the function reports them. The per-user rate limit is raised for the run
 * (embed_search.settings) so it does not throttle the measurement.
 */
import { SignJWT } from "jose";
import * as h from "./lib/harness.ts";
import { log } from "./lib/harness.ts";
import { rows as makeRows } from "./lib/texts.ts";
import { JWT_SECRET } from "../local/keys.ts";
import { portOffset } from "../tests/lib/env.ts";

function arg(name: string, d: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : d;
}
const ROWS = Number(arg("rows", "10000"));
const QUERIES = Number(arg("queries", "100"));
const LATENCIES = arg("latencies", "0,150").split(",").map(Number);
const OUT = arg("out", "");

const b = await h.startBench({
  name: "bench-search",
  dbPort: 27622 + portOffset,
  apiPort: 27621 + portOffset,
});
const report: Record<string, unknown> = {
  machine: await h.machine(b.info.dbUrl),
  rows: ROWS,
  queries: QUERIES,
};
try {
  const rows = makeRows(ROWS, { seed: 7 });
  log(`inserting ${ROWS} rows for the searching user`);
  await h.insertRows(b, rows);
  const other = crypto.randomUUID();
  await b.sql`insert into auth.users (id, email) values (${other}, ${`bench-${other}@example.test`})`;
  await b.sql`insert into public.sessions (user_id, title)
    select ${other}, 'another user''s session ' || g from generate_series(1, ${Math.ceil(ROWS / 10)}) g`;
  await h.waitFor(
    "every row embedded",
    async () => {
      const [{ n }] = await b.sql`select count(*)::int as n from public.embedding_queue
      where status in ('pending', 'processing')`;
      return n === 0;
    },
    1_800_000,
    1000,
  );
  await b.sql`analyze public.sessions`;
  await b.sql`analyze public.summaries`;
  await b.sql`update embed_search.settings set burst = 1000000, rate_per_minute = 1000000`;

  const token = await new SignJWT({ sub: b.user, role: "authenticated", aud: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt().setExpirationTime("2h")
    .sign(new TextEncoder().encode(JWT_SECRET));
  const queries = makeRows(QUERIES + 10, { seed: 99, summaryShare: 0 }).map((r) => r.text);

  async function call(query: string) {
    const t0 = performance.now();
    const res = await fetch(`${b.info.functionsUrl}/search`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        apikey: b.info.anonKey,
        "content-type": "application/json",
      },
      body: JSON.stringify({ query }),
    });
    const body = await res.json();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`search answered ${res.status}: ${JSON.stringify(body)}`);
    const n = (body.results.sessions?.length ?? 0) + (body.results.summaries?.length ?? 0);
    return { ms, embed: body.timing.embed_ms as number, search: body.timing.search_ms as number, n };
  }

  const results: Record<string, unknown>[] = [];
  for (const latency of LATENCIES) {
    await h.fakeScript(b, { latency_ms: latency });
    for (const q of queries.slice(QUERIES)) await call(q); // warm-up: worker boot, plans, caches
    const m = [];
    for (const q of queries.slice(0, QUERIES)) m.push(await call(q));
    const stat = (xs: number[]) => ({
      p50: Math.round(h.percentile(xs, 50) * 10) / 10,
      p99: Math.round(h.percentile(xs, 99) * 10) / 10,
    });
    const r = {
      provider_latency_ms: latency,
      total_ms: stat(m.map((x) => x.ms)),
      provider_ms: stat(m.map((x) => x.embed)),
      database_ms: stat(m.map((x) => x.search)),
      rest_ms: stat(m.map((x) => x.ms - x.embed - x.search)),
      rows_per_answer: h.median(m.map((x) => x.n)),
    };
    log(JSON.stringify(r));
    results.push(r);
  }
  report.results = results;
} finally {
  await b.close();
}
console.log(JSON.stringify(report, null, 2));
if (OUT) Deno.writeTextFileSync(OUT, JSON.stringify(report, null, 2) + "\n");
