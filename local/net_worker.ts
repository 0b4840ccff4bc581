/**
 * The pg_net stand-in's worker (local only; Supabase's Postgres runs pg_net's own background
 * worker). Follows pg_net 0.19.5 (supabase/pg_net, tag v0.19.5, src/worker.c and src/core.c):
 *
 *   deno run -A local/net_worker.ts --db-url postgresql://supabase_admin@.../postgres
 *
 * Each round, as pg_net's worker does: deletes up to pg_net.batch_size responses older than
 * pg_net.ttl; then, in one transaction, takes up to pg_net.batch_size queued requests (only
 * committed rows are visible, so a rolled-back transaction sends nothing), sends them all
 * concurrently, waits for every one, records each outcome in net._http_response and commits
 * (if the worker dies first, the requests stay queued and go out again, as with pg_net). It
 * then waits up to a second, or until net.wake()'s NOTIFY arrives.
 *
 * Outcomes as pg_net records them: a response gives status_code, headers, content_type,
 * content (null when empty) and timed_out = false; a failure gives only error_msg, in
 * libcurl's words (curl_easy_strerror, and pg_net's detailed "Timeout of N ms reached. ..."),
 * with status_code and timed_out null: pg_net 0.19.5 never sets timed_out to true.
 *
 * The settings are pg_net's GUCs, read each round with current_setting (set them in
 * postgresql.conf as on a server with pg_net; placeholders need no library): pg_net.ttl
 * (default 6 hours) and pg_net.batch_size (default 200). net.worker_restart() asks this worker
 * to reload the server configuration, which is why it connects as a superuser.
 */
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import postgres from "postgres";

export const PG_NET_VERSION = "0.19.5";
/** pg_net's GUC defaults (src/worker.c, _PG_init). */
export const GUC_DEFAULTS = { ttl: "6 hours", batchSize: 200 } as const;
/** pg_net waits up to a second between rounds (WORKER_WAIT_ONE_SECOND); here also when idle. */
const ROUND_WAIT_MS = 1000;
/** libcurl's default CURLOPT_MAXREDIRS since 8.3; pg_net sets CURLOPT_FOLLOWLOCATION. */
const MAX_REDIRECTS = 30;
/** How the SQL side finds this worker (net.check_worker_is_up, net.wait_until_running). */
export const APPLICATION_NAME = `pg_net ${PG_NET_VERSION} worker (local stand-in)`;

/** libcurl's messages (curl_easy_strerror, libcurl 7.88 as in Debian 12) for the failures we map. */
export const CURL_ERRORS = {
  couldntConnect: "Couldn't connect to server",
  couldntResolveHost: "Couldn't resolve host name",
  unsupportedProtocol: "Unsupported protocol",
  urlMalformat: "URL using bad/illegal format or missing URL",
  badFunctionArgument: "A libcurl function was given a bad argument",
  gotNothing: "Server returned nothing (no headers, no data)",
  recvError: "Failure when receiving data from the peer",
  sendError: "Failed sending data to the peer",
  weirdServerReply: "Weird server reply",
  peerFailedVerification: "SSL peer certificate or SSH remote key was not OK",
  sslConnectError: "SSL connect error",
  tooManyRedirects: "Number of redirects hit maximum amount",
} as const;

export interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string> | null;
  body: Uint8Array | null;
  timeout_milliseconds: number;
}

export interface Outcome {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean | null;
  error_msg: string | null;
}

const failure = (id: string, error_msg: string): Outcome => ({
  id,
  status_code: null,
  content_type: null,
  headers: null,
  content: null,
  timed_out: null,
  error_msg,
});

/** Milliseconds since the request started at which each phase ended (as curl's time_* values). */
interface Timings {
  lookup?: number;
  connect?: number;
  tls?: number;
}

/** pg_net's detailed timeout message (src/errors.c, detailed_timeout_strerror). */
export function timeoutMessage(timeoutMs: number, total: number, t: Timings): string {
  const pretransfer = t.tls ?? t.connect;
  const namelookup = t.lookup ?? 0;
  const atDns = t.lookup === undefined && t.connect === undefined;
  const dns = atDns ? total : namelookup;
  const handshake = atDns
    ? 0
    : pretransfer === undefined
    ? total - namelookup
    : (t.connect ?? namelookup) - namelookup + (t.tls !== undefined ? t.tls - (t.connect ?? 0) : 0);
  const httpTime = pretransfer === undefined ? 0 : total - pretransfer;
  const f = (n: number) => Math.max(0, n).toFixed(6);
  return `Timeout of ${timeoutMs} ms reached. Total time: ${f(total)} ms (DNS time: ${f(dns)} ms, ` +
    `TCP/SSL handshake time: ${f(handshake)} ms, HTTP Request/Response time: ${f(httpTime)} ms)`;
}

/** A Node/Deno network error code as libcurl would have reported the failure. */
function curlMessage(code: string | undefined, connected: boolean, gotResponse: boolean): string {
  switch (code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return CURL_ERRORS.couldntResolveHost;
    case "ECONNREFUSED":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return CURL_ERRORS.couldntConnect;
    case "EPIPE":
      return CURL_ERRORS.sendError;
    case "CERT_HAS_EXPIRED":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return CURL_ERRORS.peerFailedVerification;
  }
  if (code?.startsWith("HPE_")) return CURL_ERRORS.weirdServerReply;
  if (code?.startsWith("ERR_SSL") || code?.startsWith("ERR_TLS")) return CURL_ERRORS.sslConnectError;
  if (!connected) return CURL_ERRORS.couldntConnect;
  return gotResponse ? CURL_ERRORS.recvError : CURL_ERRORS.gotNothing;
}

const lower = (h: Record<string, string>, name: string) =>
  Object.keys(h).find((k) => k.toLowerCase() === name);

/** Sends one queued request as pg_net's curl handle would (src/core.c, init_curl_handle). */
export async function send(
  req: QueuedRequest,
  now: () => number = () => performance.now(),
): Promise<Outcome> {
  const timeoutMs = Number(req.timeout_milliseconds);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0) return failure(req.id, CURL_ERRORS.badFunctionArgument);
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return failure(req.id, CURL_ERRORS.urlMalformat);
  }
  // CURLOPT_PROTOCOLS_STR "http,https".
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return failure(req.id, CURL_ERRORS.unsupportedProtocol);
  }

  // The queued headers as curl's header list; curl adds "Accept: */*"; pg_net adds its
  // User-Agent only when the request has a header list (headers not null).
  const headers: Record<string, string> = {};
  if (req.headers) {
    Object.assign(headers, req.headers);
    if (!lower(headers, "user-agent")) headers["User-Agent"] = `pg_net/${PG_NET_VERSION}`;
  }
  if (!lower(headers, "accept")) headers["Accept"] = "*/*";
  let method = req.method.toUpperCase();
  let body: Uint8Array | null = req.body ? new Uint8Array(req.body) : null;

  const started = now();
  const deadline = timeoutMs === 0 ? Infinity : started + timeoutMs; // 0: no timeout, as curl

  for (let hop = 0;; hop++) {
    const hopHeaders = { ...headers };
    if (body) {
      // CURLOPT_POSTFIELDS: curl's default content type when none is given.
      if (!lower(hopHeaders, "content-type")) {
        hopHeaders["Content-Type"] = "application/x-www-form-urlencoded";
      }
      hopHeaders["Content-Length"] = String(body.byteLength);
    } else if (method === "POST") hopHeaders["Content-Length"] = "0";

    const r = await once(url, method, hopHeaders, body, deadline, started, now);
    if ("error" in r) {
      return failure(req.id, r.timedOut ? timeoutMessage(timeoutMs, now() - started, r.timings) : r.error);
    }
    const location = r.status >= 300 && r.status < 400 && r.status !== 304
      ? r.headerOf("location")
      : undefined;
    if (location === undefined) {
      return {
        id: req.id,
        status_code: r.status,
        content_type: r.headerOf("content-type") ?? null,
        headers: r.headers,
        content: r.content,
        timed_out: false,
        error_msg: null,
      };
    }
    if (hop + 1 > MAX_REDIRECTS) return failure(req.id, CURL_ERRORS.tooManyRedirects);
    const next = new URL(location, url);
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      return failure(req.id, CURL_ERRORS.unsupportedProtocol);
    }
    // curl: 303 turns any method into GET; 301/302 turn POST into GET; 307/308 keep both.
    if (r.status === 303 || ((r.status === 301 || r.status === 302) && method === "POST")) {
      method = "GET";
      body = null;
      for (const k of Object.keys(headers)) if (k.toLowerCase() === "content-type") delete headers[k];
    }
    // curl does not send credentials to another host after a redirect.
    if (next.host !== url.host) {
      for (const k of Object.keys(headers)) {
        if (["authorization", "cookie"].includes(k.toLowerCase())) delete headers[k];
      }
    }
    url = next;
  }
}

type HopResult =
  | {
    status: number;
    headers: Record<string, string>;
    headerOf: (name: string) => string | undefined;
    content: string | null;
  }
  | { error: string; timedOut: boolean; timings: Timings };

/** One HTTP exchange, ended by the shared deadline. */
function once(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array | null,
  deadline: number,
  started: number,
  now: () => number,
): Promise<HopResult> {
  return new Promise((resolve) => {
    const timings: Timings = {};
    if (isIP(url.hostname.replace(/^\[|\]$/g, ""))) timings.lookup = 0;
    let connected = false;
    let gotResponse = false;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (r: HopResult) => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      resolve(r);
    };
    let request: http.ClientRequest;
    try {
      request = (url.protocol === "https:" ? https : http).request(url, { method, headers, agent: false });
    } catch (e) {
      const code = (e as { code?: string }).code;
      done({
        error: code === "ERR_INVALID_CHAR" || code === "ERR_INVALID_HTTP_TOKEN"
          ? CURL_ERRORS.badFunctionArgument
          : CURL_ERRORS.urlMalformat,
        timedOut: false,
        timings,
      });
      return;
    }
    if (deadline !== Infinity) {
      timer = setTimeout(() => {
        done({ error: "", timedOut: true, timings });
        request.destroy();
      }, Math.max(0, deadline - now()));
    }
    request.on("socket", (socket) => {
      socket.on("lookup", () => timings.lookup = now() - started);
      socket.on("connect", () => {
        connected = true;
        timings.connect = now() - started;
      });
      socket.on("secureConnect", () => timings.tls = now() - started);
    });
    request.on("response", (res) => {
      gotResponse = true;
      connected = true;
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on(
        "error",
        (e: Error & { code?: string }) =>
          done({ error: curlMessage(e.code, connected, gotResponse), timedOut: false, timings }),
      );
      res.on("end", () => {
        // As curl's header iteration into a jsonb object: names as received, a repeated
        // name keeps its last value.
        const out: Record<string, string> = {};
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) out[res.rawHeaders[i]] = res.rawHeaders[i + 1];
        const bytes = concat(chunks);
        // pg_net stores the body as a C string: it ends at the first NUL byte.
        const nul = bytes.indexOf(0);
        const text = new TextDecoder().decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
        done({
          status: res.statusCode ?? 0,
          headers: out,
          headerOf: (name) => {
            const v = res.headers[name];
            return Array.isArray(v) ? v[v.length - 1] : v;
          },
          content: text === "" ? null : text,
        });
      });
    });
    request.on(
      "error",
      (e: Error & { code?: string }) =>
        done({ error: curlMessage(e.code, connected, gotResponse), timedOut: false, timings }),
    );
    request.end(body ?? undefined);
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** pg_net.ttl and pg_net.batch_size as this session sees them (postgresql.conf), or the defaults. */
async function readSettings(sql: postgres.Sql): Promise<{ ttl: string; batchSize: number }> {
  const [s] = await sql<{ ttl: string | null; batch_size: string | null }[]>`
    select nullif(current_setting('pg_net.ttl', true), '') as ttl,
           nullif(current_setting('pg_net.batch_size', true), '') as batch_size`;
  const n = s.batch_size === null ? GUC_DEFAULTS.batchSize : Number(s.batch_size);
  // PostgreSQL refuses an out-of-range pg_net.batch_size (0 .. 32767) and keeps the default.
  const batchSize = Number.isInteger(n) && n >= 0 && n <= 32767 ? n : GUC_DEFAULTS.batchSize;
  return { ttl: s.ttl ?? GUC_DEFAULTS.ttl, batchSize };
}

export async function runWorker(dbUrl: string, signal: AbortSignal) {
  const sql = postgres(dbUrl, {
    max: 3,
    onnotice: () => {},
    connection: { application_name: APPLICATION_NAME },
  });
  let wake: (() => void) | null = null;
  const nudge = () => wake?.();
  await sql.listen("pg_net_wake", nudge).catch(() => {});
  await sql.listen("pg_net_worker_restart", () => {
    // net.worker_restart(): pg_net reloads the configuration and restarts its worker.
    sql`select pg_reload_conf()`.catch(() => {});
    nudge();
  }).catch(() => {});
  signal.addEventListener("abort", nudge);

  while (!signal.aborted) {
    try {
      const { ttl, batchSize } = await readSettings(sql);
      // src/core.c, delete_expired_responses.
      await sql`
        with rows as (
          select ctid from net._http_response
          where created < now() - ${ttl}::interval
          order by created limit ${batchSize}
        )
        delete from net._http_response r using rows where r.ctid = rows.ctid`;
      // src/core.c, consume_request_queue, then insert_curl_responses in the same transaction.
      await sql.begin(async (tx) => {
        const batch = await tx<QueuedRequest[]>`
          with rows as (select id from net.http_request_queue order by id limit ${batchSize})
          delete from net.http_request_queue q using rows where q.id = rows.id
          returning q.id, q.method, q.url, q.timeout_milliseconds, q.headers, q.body`;
        if (batch.length === 0) return;
        const outcomes = await Promise.all(batch.map((r) => send(r)));
        await tx`
          insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
          select * from jsonb_to_recordset(${tx.json(outcomes as unknown as postgres.JSONValue)}::jsonb) as o(
            id bigint, status_code integer, content_type text, headers jsonb, content text, timed_out boolean, error_msg text)`;
      });
    } catch (e) {
      // The server restarting, a connection dropped, a bad pg_net.ttl: try again next round.
      console.error(
        JSON.stringify({ event: "net_worker.error", code: (e as { code?: string }).code ?? null }),
      );
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ROUND_WAIT_MS);
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
