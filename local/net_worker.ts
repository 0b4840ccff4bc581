/**
 * The pg_net stand-in's background worker (local only; Supabase's Postgres runs pg_net's own).
 *
 *   deno run -A local/net_worker.ts --db-url postgresql://...
 *
 * As pg_net's worker does: takes queued requests from net.http_request_queue in batches
 * (only committed rows are visible, so a rolled-back transaction sends nothing), sends the
 * batch concurrently, waits for all of it, and records each outcome in net._http_response
 * (status_code, content, timed_out, error_msg). A NOTIFY wakes it at once; a poll every
 * second catches anything a notification missed (for example across a server restart).
 */
import postgres from "postgres";

const BATCH_SIZE = 200; // pg_net's default pg_net.batch_size
const POLL_MS = 1000;
const TTL = "6 hours"; // pg_net's default pg_net.ttl

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
  timeout_milliseconds: number;
}

interface Outcome {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean;
  error_msg: string | null;
}

export async function send(req: QueuedRequest): Promise<Outcome> {
  const base = { id: req.id, status_code: null, content_type: null, headers: null, content: null };
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.method === "POST" && req.body ? new Uint8Array(req.body) : undefined,
      signal: AbortSignal.timeout(req.timeout_milliseconds),
    });
    const content = await res.text();
    return {
      id: req.id,
      status_code: res.status,
      content_type: res.headers.get("content-type"),
      headers: Object.fromEntries(res.headers),
      content,
      timed_out: false,
      error_msg: null,
    };
  } catch (e) {
    const err = e as Error;
    if (err.name === "TimeoutError") {
      return { ...base, timed_out: true, error_msg: `Timeout of ${req.timeout_milliseconds} ms reached` };
    }
    return { ...base, timed_out: false, error_msg: `Couldn't connect to server: ${err.name}` };
  }
}

export async function runWorker(dbUrl: string, signal: AbortSignal) {
  const sql = postgres(dbUrl, {
    max: 2,
    onnotice: () => {},
    connection: { application_name: "pg_net worker (local)" },
  });
  let wake: (() => void) | null = null;
  const nudge = () => wake?.();
  await sql.listen("net_http_request", nudge).catch(() => {});
  signal.addEventListener("abort", nudge);
  let lastSweep = 0;

  while (!signal.aborted) {
    try {
      const batch = await sql<QueuedRequest[]>`
        with next as (
          select id from net.http_request_queue order by id limit ${BATCH_SIZE} for update skip locked
        )
        delete from net.http_request_queue q using next where q.id = next.id
        returning q.id, q.method, q.url, q.headers, q.body, q.timeout_milliseconds`;
      if (batch.length > 0) {
        const outcomes = await Promise.all(batch.map(send));
        await sql`
          insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
          select * from jsonb_to_recordset(${
          sql.json(outcomes as unknown as postgres.JSONValue)
        }::jsonb) as o(
            id bigint, status_code integer, content_type text, headers jsonb, content text, timed_out boolean, error_msg text)`;
        continue; // there may be more
      }
      if (Date.now() - lastSweep > 60_000) {
        await sql`delete from net._http_response where created < now() - ${TTL}::interval`;
        lastSweep = Date.now();
      }
    } catch (e) {
      // The server restarting, or a connection dropped: wait for the next poll.
      console.error(
        JSON.stringify({ event: "net_worker.error", code: (e as { code?: string }).code ?? null }),
      );
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, POLL_MS);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    wake = null;
  }
  await sql.end({ timeout: 2 });
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--db-url");
  const dbUrl = i >= 0 ? Deno.args[i + 1] : Deno.env.get("SUPABASE_DB_URL");
  if (!dbUrl) {
    console.error("net_worker: --db-url is required");
    Deno.exit(2);
  }
  const ac = new AbortController();
  for (const s of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(s, () => ac.abort());
  await runWorker(dbUrl, ac.signal);
  Deno.exit(0);
}
