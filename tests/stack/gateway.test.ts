/**
 * The local functions gateway, started as its own process on fixture functions: verify_jwt
 * enforced from config.toml, the function's environment exactly as the CLI builds it, import
 * maps only from where the CLI reads them, EdgeRuntime.waitUntil, a throwing handler gives
 * 500 WORKER_ERROR and a crashed function process is started again. (Limits:
 * edge_limits.test.ts.)
 */
import assert from "node:assert/strict";
import { waitDead } from "../lib/process.ts";
import { join } from "node:path";
import { SignJWT } from "jose";
import { anonKey } from "../../local/keys.ts";
import { importMapFor, moduleFlags, parseArgs, verifyJwtSetting } from "../../local/gateway.ts";
import { parseEnvFile } from "../../cli/env_file.ts";
import { HOSTED_LIMITS } from "../../local/edge_limits.ts";
import { ROOT } from "../../local/stack.ts";
import { FIXTURES, startGateway } from "../fixtures/gateway_process.ts";

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

Deno.test("gateway: command line, import map choice, Deno flags", async () => {
  const a = parseArgs([
    "--functions-dir",
    "f",
    "--config",
    "c.toml",
    "--state-dir",
    "s",
    "--env-file",
    "one.env",
    "--env-file",
    "two.env",
    "--wall-clock-sec",
    "400",
  ]);
  assert.deepEqual(a.envFiles, ["one.env", "two.env"], "--env-file more than once, in order");
  assert.equal(a.limits.wallClockMs, 400_000);
  assert.deepEqual({ ...a.limits, wallClockMs: HOSTED_LIMITS.wallClockMs }, HOSTED_LIMITS, "hosted defaults");
  assert.throws(() => parseArgs(["--config", "c.toml"]), /required/);

  // The CLI's order: flag > config.toml import_map (relative to the supabase folder) > the
  // function's deno.json / deno.jsonc / import_map.json > functions/import_map.json.
  const root = await Deno.makeTempDir({ prefix: "eq-gw-map-" });
  try {
    const fdir = join(root, "supabase/functions");
    const config = join(root, "supabase/config.toml");
    await Deno.mkdir(join(fdir, "a"), { recursive: true });
    await Deno.mkdir(join(fdir, "b"), { recursive: true });
    await Deno.writeTextFile(join(root, "deno.json"), "{}");
    const o = { functionsDir: fdir, config };
    assert.equal(importMapFor(o, "a", {}), undefined, "never the repository root deno.json");
    await Deno.writeTextFile(join(fdir, "import_map.json"), "{}");
    assert.equal(importMapFor(o, "a", {}), join(fdir, "import_map.json"));
    await Deno.writeTextFile(join(fdir, "a/import_map.json"), "{}");
    assert.equal(importMapFor(o, "a", {}), join(fdir, "a/import_map.json"));
    await Deno.writeTextFile(join(fdir, "a/deno.jsonc"), "{}");
    assert.equal(importMapFor(o, "a", {}), join(fdir, "a/deno.jsonc"));
    await Deno.writeTextFile(join(fdir, "a/deno.json"), "{}");
    assert.equal(importMapFor(o, "a", {}), join(fdir, "a/deno.json"));
    assert.equal(importMapFor(o, "a", { import_map: "./functions/b/m.json" }), join(fdir, "b/m.json"));
    assert.equal(
      importMapFor({ ...o, importMap: join(root, "x.json") }, "a", { import_map: "y" }),
      join(root, "x.json"),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  assert.deepEqual(moduleFlags(undefined).slice(0, 1), ["--no-config"]);
  assert.deepEqual(moduleFlags("/f/deno.json").slice(0, 2), ["--config", "/f/deno.json"]);
  assert.deepEqual(moduleFlags("/f/import_map.json").slice(0, 3), [
    "--no-config",
    "--import-map",
    "/f/import_map.json",
  ]);
  for (const m of [undefined, "/f/deno.json"]) {
    assert.ok(moduleFlags(m).includes("--no-lock"), "no lock file written next to the function");
    assert.ok(moduleFlags(m).includes("--node-modules-dir=none"), "no node_modules in the function folder");
  }
});

Deno.test("gateway: a function's import map is its own, never the root deno.json", async () => {
  const gw = await startGateway();
  try {
    // bare-import imports "smol-toml", which the root deno.json maps; it has no map of its own.
    let r = await fetch(`${gw.base}/functions/v1/bare-import`);
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), {
      code: "BOOT_ERROR",
      message: "Worker failed to boot (please check logs)",
    });
    r = await fetch(`${gw.base}/functions/v1/own-map`);
    assert.equal(r.status, 200, "the same import through the function's own deno.json");
    assert.deepEqual(await r.json(), { a: "b" });
    const left = [...Deno.readDirSync(join(FIXTURES, "functions/own-map"))].map((e) => e.name).sort();
    assert.deepEqual(left, ["deno.json", "index.ts"], "no lock file or node_modules written there");
    r = await fetch(`${gw.base}/functions/v1/disabled`);
    assert.equal(r.status, 404, "enabled = false is not served");
    await r.body?.cancel();
  } finally {
    await gw.close();
  }
});

Deno.test("gateway: a function sees the env files and the platform's variables, nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "eq-gw-env-" });
  const second = join(dir, "generated.env");
  await Deno.writeTextFile(second, "QUOTED=later wins\nSECOND_FILE=1\nSUPABASE_SNEAKY=x\n");
  const gw = await startGateway({
    envFiles: [join(FIXTURES, "functions.env"), second],
    env: {
      // What a developer's shell or the stack's own environment may hold: none of it may leak.
      PATH: "/usr/bin:/bin",
      OPENAI_API_KEY: "sk-from-the-shell",
      EMBED_QUEUE_BATCH_SIZE: "7",
      EMBEDDING_MODEL: "m",
      SUPABASE_SECRET_KEYS: '{"default":"sb_secret_x"}',
      SUPABASE_PUBLISHABLE_KEYS: '{"default":"sb_publishable_x"}',
    },
  });
  try {
    const r = await fetch(`${gw.base}/functions/v1/env-names`);
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.deepEqual(body.names, [
      "FROM_ENV_FILE",
      "QUOTED",
      "SB_EXECUTION_ID",
      "SECOND_FILE",
      "SUPABASE_ANON_KEY",
      "SUPABASE_DB_URL",
      "SUPABASE_PUBLISHABLE_KEYS",
      "SUPABASE_SECRET_KEYS",
      "SUPABASE_SERVICE_ROLE_KEY",
      "SUPABASE_URL",
    ]);
    assert.equal(body.quoted, "later wins", "a later --env-file wins");
    assert.match(body.executionId, /^[0-9a-f-]{36}$/, "SB_EXECUTION_ID is the worker's id");
    assert.equal(body.set, "NotSupported", "Deno.env.set is refused, as in the edge runtime");
    assert.ok(
      gw.events().some((e) => e.event === "gateway.env_skipped" && e.name === "SUPABASE_SNEAKY"),
      "env-file names starting SUPABASE_ are skipped",
    );
  } finally {
    await gw.close();
    await Deno.remove(dir, { recursive: true });
  }
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
    assert.deepEqual(await r.json(), {
      code: "WORKER_ERROR",
      message: "Function exited due to an error (please check logs)",
    });

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
