/**
 * The local functions gateway, started as its own process on fixture functions: verify_jwt
 * enforced from config.toml, the function's environment, EdgeRuntime.waitUntil, a throwing
 * handler gives 500 and a crashed function process is started again.
 */
import assert from "node:assert/strict";
import { waitDead } from "../lib/process.ts";
import { join } from "node:path";
import { SignJWT } from "jose";
import { anonKey, JWT_SECRET, serviceRoleKey } from "../../local/keys.ts";
import { parseEnvFile, verifyJwtSetting } from "../../local/gateway.ts";
import { ROOT } from "../../local/stack.ts";

const FIXTURES = join(ROOT, "tests/fixtures");

async function startGateway() {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const stateDir = await Deno.makeTempDir({ prefix: "eq-gw-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "local/gateway.ts"),
      "--port",
      String(port),
      "--functions-dir",
      join(FIXTURES, "functions"),
      "--config",
      join(FIXTURES, "config.toml"),
      "--state-dir",
      stateDir,
      "--env-file",
      join(FIXTURES, "functions.env"),
    ],
    env: {
      SUPABASE_URL: `http://127.0.0.1:${port}`,
      SUPABASE_DB_URL: "postgresql://example/db",
      SUPABASE_ANON_KEY: await anonKey(),
      SUPABASE_SERVICE_ROLE_KEY: await serviceRoleKey(),
      JWT_SECRET,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    try {
      const r = await fetch(`${base}/health`);
      await r.body?.cancel();
      if (r.ok) break;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    stateDir,
    pid: child.pid,
    async close() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test("gateway: env file and verify_jwt parsing", () => {
  assert.deepEqual(parseEnvFile("A=1\n# c\nexport B='x y'\nC=\"q\" # note\nD=v # note\n\nbad line"), {
    A: "1",
    B: "x y",
    C: "q",
    D: "v",
  });
  const toml = Deno.readTextFileSync(join(FIXTURES, "config.toml"));
  assert.equal(verifyJwtSetting(toml, "open"), false);
  assert.equal(verifyJwtSetting(toml, "hello"), true, "Supabase's default is on");
  const ours = Deno.readTextFileSync(join(ROOT, "supabase/config.toml"));
  assert.equal(verifyJwtSetting(ours, "embed-queue"), false, "embed-queue checks its own credential");
});

Deno.test("gateway: JWT enforced, env passed, waitUntil, errors contained", async () => {
  const gw = await startGateway();
  try {
    const url = `${gw.base}/functions/v1/hello`;
    let r = await fetch(url, { method: "POST", body: "{}" });
    assert.equal(r.status, 401, "no token");
    await r.body?.cancel();
    r = await fetch(url, { method: "POST", headers: { authorization: "Bearer not-a-jwt" } });
    assert.equal(r.status, 401, "garbage token");
    await r.body?.cancel();
    const forged = await new SignJWT({ role: "service_role" }).setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode("another-secret-of-at-least-32-characters!!"));
    r = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${forged}` } });
    assert.equal(r.status, 401, "token signed with another secret");
    await r.body?.cancel();

    r = await fetch(`${url}/sub?x=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${await anonKey()}` },
      body: "hi",
    });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.method, "POST");
    assert.equal(body.path, "/sub");
    assert.equal(body.body, "hi");
    assert.equal(body.env.SUPABASE_URL, gw.base);
    assert.equal(body.env.SUPABASE_DB_URL, "postgresql://example/db");
    assert.equal(body.env.SUPABASE_ANON_KEY, true);
    assert.equal(body.env.SUPABASE_SERVICE_ROLE_KEY, true);
    assert.equal(body.env.FROM_ENV_FILE, "yes", "supabase/functions/.env reaches the function");
    assert.equal(body.env.JWT_SECRET, null, "the JWT secret is not handed to functions");
    assert.equal(body.waitUntil, true);

    r = await fetch(`${gw.base}/functions/v1/open`);
    assert.equal(r.status, 200, "verify_jwt = false needs no token");
    const [word, openPid] = (await r.text()).split(" ");
    assert.equal(word, "open");

    r = await fetch(`${gw.base}/functions/v1/missing`);
    assert.equal(r.status, 404);
    await r.body?.cancel();

    r = await fetch(`${gw.base}/functions/v1/throws`, {
      headers: { authorization: `Bearer ${await anonKey()}` },
    });
    assert.equal(r.status, 500, "a throwing handler gives 500");
    await r.body?.cancel();

    // A function process that dies is started again on the next request.
    const pid1 = body.pid;
    r = await fetch(`${url}/exit`, { headers: { authorization: `Bearer ${await anonKey()}` } });
    await r.body?.cancel();
    await new Promise((res) => setTimeout(res, 300));
    r = await fetch(url, { headers: { authorization: `Bearer ${await anonKey()}` } });
    assert.equal(r.status, 200, "gateway still serves after the function exited");
    const again = await r.json();
    assert.notEqual(again.pid, pid1, "a new function process");
    // A request that arrives after the process died but before the gateway has seen the exit
    // must reach a new process, not get 502. The gateway is paused so it cannot reap the
    // process; the request is sent while it is paused and it is resumed with both pending.
    // (The function without JWT checking: the gateway forwards it with no pause of its own.
    // A request that races the kill itself may get 502: it may have been delivered.)
    Deno.kill(gw.pid, "SIGSTOP");
    try {
      Deno.kill(Number(openPid), "SIGKILL");
      await waitDead(Number(openPid));
    } finally {
      setTimeout(() => Deno.kill(gw.pid, "SIGCONT"), 50);
    }
    r = await fetch(`${gw.base}/functions/v1/open`, { method: "POST", body: "x" });
    assert.equal(
      r.status,
      200,
      "a request after a hard kill, before the exit is seen, reaches a new process",
    );
    const [, pid2, sent] = (await r.text()).split(" ");
    assert.notEqual(pid2, openPid);
    assert.equal(sent, "x", "the body is sent again intact");
    r = await fetch(`${gw.base}/health`);
    assert.equal(r.status, 200);
    await r.body?.cancel();
  } finally {
    await gw.close();
  }
});
