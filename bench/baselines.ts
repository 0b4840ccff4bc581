/**
 * The two ways of embedding the queue that the function is compared with, written as they
 * work, against the same database and the same (fake) provider:
 *
 * - guideScript: the guide's old processor. Fetch pending rows from embedding_queue; for each
 *   batch of 5, embed each row with its own request through the openai SDK (in parallel), write
 *   the vector to the row and mark the job completed; wait 1 s; again. The old script wrote
 *   back through supabase-js (PostgREST); here it writes with plain SQL, which only flatters it.
 * - recipe: Supabase's "automatic embeddings" recipe as its guide writes it
 *   (supabase/supabase, apps/docs/content/guides/ai/automatic-embeddings.mdx at commit
 *   06a2a57a60f774f52898968c8c82efdf016e7c3b). Every 10 s pg_cron runs
 *   `util.process_embeddings(batch_size => 10, max_requests => 10)`: one `pgmq.read` of
 *   max_requests * batch_size = 100 jobs, cut into batches of 10, and one Edge Function
 *   invocation (`net.http_post`, not awaited) per batch. Each invocation works through its jobs
 *   one after another: read the row's content, one `embeddings.create` request with that one
 *   input, write the vector, delete the job (`pgmq.delete`). So up to 10 invocations of 10
 *   jobs each per tick, 100 jobs a tick, the invocations in parallel with each other and with
 *   those of earlier ticks still working (the tick does not wait for them).
 *
 * Both run until `deadlineMs` (a fixed window: the caller reports a rate) or until nothing is
 * pending. They touch only jobs of the two guide targets (sessions.title, summaries.content).
 *
 * Runnable alone against a stack, e.g.:
 *   deno run -A bench/baselines.ts guide --db-url postgresql://... --base-url http://127.0.0.1:PORT/v1 --api-key sk-... --seconds 60
 */
import OpenAI from "openai";
import postgres from "postgres";

export interface BaselineOptions {
  sql: postgres.Sql;
  baseUrl: string;
  apiKey: string;
  model?: string;
  /** Stop starting new work at this time (Date.now() ms). */
  deadlineMs: number;
}

export interface BaselineResult {
  completed: number;
  failed: number;
  requests: number;
  seconds: number;
}

const TARGET_COLUMN: Record<string, { table: string; column: string }> = {
  "sessions.title_embedding": { table: "sessions", column: "title_embedding" },
  "summaries.content_embedding": { table: "summaries", column: "content_embedding" },
};

interface Job {
  id: string;
  table_name: string;
  record_id: string;
  embedding_column: string;
  content: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One job the old way: one request, the vector written as JSON text, the job marked completed. */
async function processOne(sql: postgres.Sql, openai: OpenAI, model: string, job: Job): Promise<boolean> {
  const target = TARGET_COLUMN[`${job.table_name}.${job.embedding_column}`];
  try {
    const res = await openai.embeddings.create({ model, input: job.content });
    const embedding = res.data[0].embedding;
    await sql.unsafe(
      `update public.${target.table} set ${target.column} = $1::extensions.vector where id = $2::uuid`,
      [JSON.stringify(embedding), job.record_id],
    );
    await sql`update public.embedding_queue set status = 'completed', error_message = null, completed_at = now()
              where id = ${job.id}`;
    return true;
  } catch (e) {
    await sql`update public.embedding_queue set status = 'failed', error_message = ${
      (e as Error).message.slice(0, 200)
    }
              where id = ${job.id}`;
    return false;
  }
}

/** Takes up to `n` pending jobs, oldest first, marking them processing (as the old script did). */
async function take(sql: postgres.Sql, n: number): Promise<Job[]> {
  return await sql<Job[]>`
    update public.embedding_queue q set status = 'processing'
    where q.id in (
      select id from public.embedding_queue
      where status = 'pending' and table_name in ('sessions', 'summaries')
      order by created_at, id limit ${n}
    )
    returning q.id::text as id, q.table_name, q.record_id, q.embedding_column, q.content`;
}

function client(o: BaselineOptions) {
  // The SDK's defaults, as the old script had them (2 retries on 429/5xx).
  return new OpenAI({ apiKey: o.apiKey, baseURL: o.baseUrl });
}

/** The guide's script: batches of 5 in parallel, 1 s between batches. */
export async function guideScript(o: BaselineOptions, batch = 5, delayMs = 1000): Promise<BaselineResult> {
  const openai = client(o);
  const model = o.model ?? "text-embedding-3-small";
  const started = Date.now();
  const r: BaselineResult = { completed: 0, failed: 0, requests: 0, seconds: 0 };
  while (Date.now() < o.deadlineMs) {
    const jobs = await take(o.sql, batch);
    if (jobs.length === 0) break;
    const ok = await Promise.all(jobs.map((j) => processOne(o.sql, openai, model, j)));
    r.requests += jobs.length;
    for (const x of ok) x ? r.completed++ : r.failed++;
    await sleep(Math.min(delayMs, Math.max(0, o.deadlineMs - Date.now())));
  }
  r.seconds = (Date.now() - started) / 1000;
  return r;
}

/**
 * The recipe: every `tickMs`, take `maxRequests * batchSize` jobs, start one invocation per batch
 * of `batchSize` (not awaited, as pg_net's call is not), each invocation doing its jobs one after
 * another with one request per job.
 */
export async function recipe(
  o: BaselineOptions,
  batchSize = 10,
  maxRequests = 10,
  tickMs = 10_000,
): Promise<BaselineResult> {
  const openai = client(o);
  const model = o.model ?? "text-embedding-3-small";
  const started = Date.now();
  const r: BaselineResult = { completed: 0, failed: 0, requests: 0, seconds: 0 };
  const invocations: Promise<void>[] = [];
  const invocation = async (jobs: Job[]) => {
    for (const j of jobs) {
      if (Date.now() >= o.deadlineMs) return; // left for a later tick, as a job past its time would be
      r.requests++;
      (await processOne(o.sql, openai, model, j)) ? r.completed++ : r.failed++;
    }
  };
  for (let tick = 0;; tick++) {
    const at = started + tick * tickMs;
    if (at >= o.deadlineMs) break;
    await sleep(Math.max(0, at - Date.now()));
    const jobs = await take(o.sql, batchSize * maxRequests);
    if (jobs.length === 0) break;
    for (let i = 0; i < jobs.length; i += batchSize) {
      invocations.push(invocation(jobs.slice(i, i + batchSize)));
    }
  }
  await Promise.all(invocations);
  r.seconds = (Date.now() - started) / 1000;
  return r;
}

if (import.meta.main) {
  const a = Deno.args;
  const get = (n: string) => {
    const i = a.indexOf(n);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const which = a[0];
  const dbUrl = get("--db-url"), baseUrl = get("--base-url"), apiKey = get("--api-key");
  if (!["guide", "recipe"].includes(which) || !dbUrl || !baseUrl || !apiKey) {
    console.error(
      "usage: baselines.ts guide|recipe --db-url URL --base-url URL --api-key KEY [--seconds 60]",
    );
    Deno.exit(2);
  }
  const sql = postgres(dbUrl, { max: 10, onnotice: () => {} });
  const o = { sql, baseUrl, apiKey, deadlineMs: Date.now() + Number(get("--seconds") ?? 60) * 1000 };
  const r = which === "guide" ? await guideScript(o) : await recipe(o);
  console.log(JSON.stringify(r));
  await sql.end();
}
