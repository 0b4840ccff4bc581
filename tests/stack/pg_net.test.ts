/**
 * The pg_net stand-in on the running test stack: pg_net 0.19.5's SQL interface (supabase/pg_net,
 * tag v0.19.5, sql/pg_net.sql), requests sent by the worker only after the calling transaction
 * commits, responses recorded in net._http_response as pg_net's worker records them
 * (src/core.c): a failure leaves status_code and timed_out null and says what happened in
 * error_msg, in libcurl's words.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { send, timeoutMessage } from "../../local/net_worker.ts";
import { waitFor as waitUntil } from "../lib/wait.ts";

const DB_URL = Deno.env.get("EQ_TEST_DB_URL");
const ignore = !DB_URL;

interface Seen {
  method: string;
  path: string;
  body: string;
  auth: string | null;
  userAgent: string | null;
}

function startServer() {
  const seen: Seen[] = [];
  const hung: Array<() => void> = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/hang") {
      await new Promise<void>((r) => hung.push(r));
      return new Response("late");
    }
    seen.push({
      method: req.method,
      path: url.pathname + url.search,
      body: await req.text(),
      auth: req.headers.get("authorization"),
      userAgent: req.headers.get("user-agent"),
    });
    return new Response(JSON.stringify({ ok: true }), {
      status: 201,
      headers: { "content-type": "application/json" },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    async close() {
      hung.forEach((r) => r());
      await server.shutdown();
    },
  };
}

const waitFor = <T>(what: string, f: () => Promise<T | undefined>) => waitUntil(what, f, 15_000, 50);

Deno.test(
  { name: "pg_net: sent after commit, never after rollback; response recorded", ignore },
  async () => {
    const sql = postgres(DB_URL!, { max: 1, onnotice: () => {} });
    const srv = startServer();
    try {
      const marker = crypto.randomUUID();
      await sql.begin(async (tx) => {
        await tx`select net.http_post(${srv.url + "/rolled-back"}, ${sql.json({ marker })})`;
        await tx`select 1/0`; // the transaction fails and rolls back
      }).catch(() => {});
      const [{ id }] = await sql`
      select net.http_post(
        url := ${srv.url + "/hook"}, body := ${sql.json({ marker })}, params := '{"a": "1 2"}',
        headers := '{"Content-Type": "application/json", "Authorization": "Bearer s3"}'
      ) as id`;
      const row = await waitFor("response", async () => {
        const r =
          await sql`select status_code, content, timed_out, error_msg, content_type from net._http_response where id = ${id}`;
        return r[0];
      });
      assert.equal(row.status_code, 201);
      assert.equal(row.timed_out, false);
      assert.equal(row.error_msg, null);
      assert.deepEqual(JSON.parse(row.content), { ok: true });
      assert.match(row.content_type, /application\/json/);
      const hit = srv.seen.find((s) => s.path.startsWith("/hook"));
      assert.ok(hit, "request arrived");
      assert.equal(hit.method, "POST");
      assert.equal(hit.path, "/hook?a=1%202");
      assert.equal(hit.auth, "Bearer s3");
      assert.equal(hit.userAgent, "pg_net/0.19.5");
      assert.deepEqual(JSON.parse(hit.body), { marker });
      // The rolled-back request was never queued, so it can never be sent.
      await sql`select pg_sleep(0.3)`;
      assert.equal(srv.seen.filter((s) => s.path === "/rolled-back").length, 0);

      // A request made inside an open transaction is not sent before it commits.
      let early = false;
      await sql.begin(async (tx) => {
        await tx`select net.http_get(${srv.url + "/later"})`;
        await tx`select pg_sleep(1.2)`; // longer than the worker's poll
        early = srv.seen.some((s) => s.path === "/later");
      });
      assert.equal(early, false, "sent before commit");
      await waitFor(
        "delivery after commit",
        () => Promise.resolve(srv.seen.some((s) => s.path === "/later") || undefined),
      );
    } finally {
      await srv.close();
      await sql.end();
    }
  },
);

Deno.test({ name: "pg_net: a hung server times out, a refused connection is an error", ignore }, async () => {
  const sql = postgres(DB_URL!, { max: 1, onnotice: () => {} });
  const srv = startServer();
  try {
    const [{ id }] = await sql`select net.http_post(${
      srv.url + "/hang"
    }, '{}'::jsonb, timeout_milliseconds := 300) as id`;
    const row = await waitFor("timeout", async () => {
      const r = await sql`select status_code, timed_out, error_msg from net._http_response where id = ${id}`;
      return r[0];
    });
    // pg_net 0.19.5 records a failure with error_msg only: timed_out stays null, never true.
    assert.equal(row.timed_out, null);
    assert.equal(row.status_code, null);
    assert.match(
      row.error_msg,
      /^Timeout of 300 ms reached\. Total time: [\d.]+ ms \(DNS time: [\d.]+ ms, TCP\/SSL handshake time: [\d.]+ ms, HTTP Request\/Response time: [\d.]+ ms\)$/,
    );
    // A refused connection is an error, not a timeout (libcurl's CURLE_COULDNT_CONNECT text).
    const [{ id: id2 }] = await sql`select net.http_get('http://127.0.0.1:9/none') as id`;
    const row2 = await waitFor(
      "refused",
      async () =>
        (await sql`select status_code, timed_out, error_msg from net._http_response where id = ${id2}`)[0],
    );
    assert.equal(row2.status_code, null);
    assert.equal(row2.timed_out, null);
    assert.equal(row2.error_msg, "Couldn't connect to server");
    const [collected] = await sql`select status::text, message from net._http_collect_response(${id2})`;
    assert.deepEqual({ ...collected }, { status: "ERROR", message: "Couldn't connect to server" });
  } finally {
    await srv.close();
    await sql.end();
  }
});

Deno.test({ name: "pg_net: http_post takes only Content-Type application/json", ignore }, async () => {
  const sql = postgres(DB_URL!, { max: 1, onnotice: () => {} });
  try {
    for (const type of ["text/plain", "application/json; charset=utf-8"]) {
      await assert.rejects(
        sql`select net.http_post('http://127.0.0.1:9/x', '{}', '{}', ${sql.json({ "Content-Type": type })})`,
        /Content-Type header must be "application\/json"/,
        type,
      );
    }
    // A URL curl cannot parse is refused when the request is made, not later.
    await assert.rejects(sql`select net.http_get('localhost:9')`, /URL/);
  } finally {
    await sql.end();
  }
});

Deno.test({ name: "pg_net: http_delete sends its body; the worker reports itself up", ignore }, async () => {
  const sql = postgres(DB_URL!, { max: 1, onnotice: () => {} });
  const srv = startServer();
  try {
    await sql`select net.wait_until_running()`;
    await sql`select net.check_worker_is_up()`;
    const [{ id }] = await sql`select net.http_delete(${
      srv.url + "/gone"
    }, '{"v": "1"}', body := '{"why": "test"}') as id`;
    await waitFor("delete", async () => (await sql`select 1 from net._http_response where id = ${id}`)[0]);
    const hit = srv.seen.find((s) => s.path.startsWith("/gone"));
    assert.ok(hit);
    assert.equal(hit.method, "DELETE");
    assert.equal(hit.path, "/gone?v=1");
    assert.deepEqual(JSON.parse(hit.body), { why: "test" });
  } finally {
    await srv.close();
    await sql.end();
  }
});

Deno.test({ name: "pg_net: responses older than pg_net.ttl (6 hours) are deleted", ignore }, async () => {
  const sql = postgres(DB_URL!, { max: 1, onnotice: () => {} });
  try {
    // Backdated rows instead of a six-hour wait; negative ids never collide with requests.
    await sql`delete from net._http_response where id in (-7, -5)`;
    await sql`
      insert into net._http_response (id, status_code, created)
      values (-7, 200, now() - interval '6 hours 1 minute'), (-5, 200, now() - interval '5 hours 59 minutes')`;
    await sql`select net.wake()`; // a round of the worker, which deletes expired rows first
    await waitFor(
      "expiry",
      async () => (await sql`select 1 from net._http_response where id = -7`).length === 0 ? true : undefined,
    );
    const kept = await sql`select id from net._http_response where id = -5`;
    assert.equal(kept.length, 1, "a response younger than the ttl is kept");
    await sql`delete from net._http_response where id = -5`;
  } finally {
    await sql.end();
  }
});

// The worker's request handling without the database: pg_net's curl options (src/core.c).
Deno.test("pg_net worker: curl's redirects, headers and refusals", async () => {
  const seen: Array<
    { method: string; path: string; body: string; ua: string | null; accept: string | null }
  > = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    seen.push({
      method: req.method,
      path: url.pathname,
      body: await req.text(),
      ua: req.headers.get("user-agent"),
      accept: req.headers.get("accept"),
    });
    const to = url.searchParams.get("to");
    if (to) {
      return new Response(null, {
        status: Number(url.searchParams.get("status")),
        headers: { location: to },
      });
    }
    return new Response("", { status: 200 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const body = new TextEncoder().encode('{"a": 1}');
  const post = (id: string, url: string, headers: Record<string, string> | null = {}) =>
    send({ id, method: "POST", url, headers, body, timeout_milliseconds: 5000 });
  try {
    // 303 turns POST into GET without a body; 307 keeps both (CURLOPT_FOLLOWLOCATION).
    const r303 = await post("1", `${base}/a?status=303&to=/after303`);
    assert.equal(r303.status_code, 200);
    assert.equal(r303.content, null, "an empty body is recorded as null");
    assert.deepEqual(seen.find((s) => s.path === "/after303")?.method, "GET");
    await post("2", `${base}/a?status=307&to=/after307`);
    const after307 = seen.find((s) => s.path === "/after307");
    assert.equal(after307?.method, "POST");
    assert.equal(after307?.body, '{"a": 1}');
    assert.equal(after307?.ua, "pg_net/0.19.5");
    // Null headers: no header list, so no pg_net User-Agent; curl's Accept still goes out.
    await post("3", `${base}/bare`, null);
    const bare = seen.find((s) => s.path === "/bare");
    assert.notEqual(bare?.ua, "pg_net/0.19.5");
    assert.equal(bare?.accept, "*/*");
    // Only http and https (CURLOPT_PROTOCOLS_STR).
    const file = await post("4", "file:///etc/hostname");
    assert.deepEqual([file.status_code, file.timed_out, file.error_msg], [
      null,
      null,
      "Unsupported protocol",
    ]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("pg_net worker: the timeout message names the step it happened in, as pg_net's", () => {
  assert.equal(
    timeoutMessage(800, 801.5, {}),
    "Timeout of 800 ms reached. Total time: 801.500000 ms (DNS time: 801.500000 ms, " +
      "TCP/SSL handshake time: 0.000000 ms, HTTP Request/Response time: 0.000000 ms)",
  );
  assert.equal(
    timeoutMessage(800, 801, { lookup: 1 }),
    "Timeout of 800 ms reached. Total time: 801.000000 ms (DNS time: 1.000000 ms, " +
      "TCP/SSL handshake time: 800.000000 ms, HTTP Request/Response time: 0.000000 ms)",
  );
  assert.equal(
    timeoutMessage(800, 801, { lookup: 1, connect: 3, tls: 11 }),
    "Timeout of 800 ms reached. Total time: 801.000000 ms (DNS time: 1.000000 ms, " +
      "TCP/SSL handshake time: 10.000000 ms, HTTP Request/Response time: 790.000000 ms)",
  );
});
