/**
 * The local Edge Functions gateway (local only: Supabase's API gateway and edge runtime do
 * this on a hosted project and under `supabase start`).
 *
 *   deno run -A local/gateway.ts --port 54321 --functions-dir supabase/functions \
 *     --config supabase/config.toml --state-dir .stack/dev [--env-file supabase/functions/.env]
 *
 * Serves every folder of the functions directory at /functions/v1/<name>. Where
 * `[functions.<name>] verify_jwt` is true (Supabase's default) a request needs a JWT signed
 * with the local secret, else 401. Each function runs in its own Deno process
 * (local/function_host.ts), started on first use and again after it dies, so a function that
 * throws or crashes never takes the gateway down. Its pid is kept in
 * <state-dir>/functions/<name>.pid.
 */
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { JWT_SECRET, verifyJwt } from "./keys.ts";

interface Args {
  port: number;
  functionsDir: string;
  config: string;
  stateDir: string;
  envFile?: string;
}

function parseArgs(a: string[]): Args {
  const get = (n: string) => {
    const i = a.indexOf(n);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const port = Number(get("--port") ?? 54321);
  const functionsDir = get("--functions-dir");
  const config = get("--config");
  const stateDir = get("--state-dir");
  if (!functionsDir || !config || !stateDir) {
    console.error("gateway: --functions-dir, --config and --state-dir are required");
    Deno.exit(2);
  }
  return { port, functionsDir, config, stateDir, envFile: get("--env-file") };
}

/** `KEY=value` lines, as `supabase functions serve --env-file` reads them. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/);
    if (!m) continue;
    let v = m[2];
    const q = v.match(/^(["'])(.*)\1\s*(?:#.*)?$/);
    if (q) v = q[2];
    else v = v.replace(/\s+#.*$/, "").trim();
    out[m[1]] = v;
  }
  return out;
}

/** verify_jwt per function from config.toml; Supabase's default is true. */
export function verifyJwtSetting(configToml: string, name: string): boolean {
  const cfg = parseToml(configToml) as { functions?: Record<string, { verify_jwt?: boolean }> };
  return cfg.functions?.[name]?.verify_jwt ?? true;
}

interface Running {
  child: Deno.ChildProcess;
  port: number;
  ready: Promise<void>;
  exited: boolean;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

export function startGateway(args: Args) {
  const hostScript = new URL("./function_host.ts", import.meta.url).pathname;
  const denoConfig = new URL("../deno.json", import.meta.url).pathname;
  const running = new Map<string, Running>();
  const pidDir = join(args.stateDir, "functions");
  Deno.mkdirSync(pidDir, { recursive: true });

  function functionEnv(): Record<string, string> {
    const env = Deno.env.toObject();
    if (args.envFile) {
      try {
        Object.assign(env, parseEnvFile(Deno.readTextFileSync(args.envFile)));
      } catch { /* no env file */ }
    }
    delete env.JWT_SECRET;
    return env;
  }

  async function waitListening(port: number, r: Running) {
    const until = Date.now() + 60_000;
    while (Date.now() < until && !r.exited) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        c.close();
        return;
      } catch {
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    throw new Error("boot");
  }

  function ensure(name: string): Running {
    const have = running.get(name);
    if (have && !have.exited) return have;
    const port = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        denoConfig,
        hostScript,
        "--entry",
        join(args.functionsDir, name, "index.ts"),
        "--port",
        String(port),
      ],
      env: functionEnv(),
      clearEnv: true,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const r: Running = { child, port, exited: false, ready: Promise.resolve() };
    r.ready = waitListening(port, r);
    r.ready.catch(() => {});
    const pidFile = join(pidDir, `${name}.pid`);
    Deno.writeTextFileSync(pidFile, `${child.pid}\n`);
    child.status.then((s) => {
      r.exited = true;
      if (running.get(name) === r) running.delete(name);
      try {
        if (Deno.readTextFileSync(pidFile).trim() === String(child.pid)) Deno.removeSync(pidFile);
      } catch { /* gone */ }
      console.error(
        JSON.stringify({ event: "gateway.function_exited", function: name, code: s.code, signal: s.signal }),
      );
    });
    running.set(name, r);
    return r;
  }

  const jwtSecret = Deno.env.get("JWT_SECRET") ?? JWT_SECRET;

  /** Waits up to `ms` for the process to exit; ensure()'s exit handler sets `r.exited`. */
  async function exitedWithin(r: Running, ms: number) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([r.child.status, new Promise((res) => timer = setTimeout(res, ms))]);
    clearTimeout(timer);
  }

  // No pooled connections to function processes: a pooled connection to a process that has just
  // died fails in ways that do not say whether the request was delivered; a new connection to a
  // dead process is refused, which says it was not.
  const upstream = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const refused = (e: unknown) => /Connection refused/i.test(String((e as Error)?.cause ?? e));

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/health") return json(200, { ok: true });
    const m = url.pathname.match(/^\/functions\/v1\/([A-Za-z0-9_-]+)(\/.*)?$/);
    if (!m) return json(404, { message: "no route matched" });
    const name = m[1];
    try {
      if (!Deno.statSync(join(args.functionsDir, name, "index.ts")).isFile) throw new Error();
    } catch {
      return json(404, { code: "NOT_FOUND", message: "Requested function was not found" });
    }
    if (verifyJwtSetting(Deno.readTextFileSync(args.config), name)) {
      const auth = req.headers.get("authorization") ?? "";
      const token = auth.match(/^Bearer\s+(.+)$/i)?.[1];
      if (!token) return json(401, { msg: "Error: Missing authorization header" });
      if (!(await verifyJwt(token, jwtSecret))) return json(401, { msg: "Invalid JWT" });
    }
    // Function requests are small; buffering the body lets a request that never reached a dead
    // process be sent again to its replacement, as the edge runtime boots a new worker.
    const body = req.body ? await req.arrayBuffer() : undefined;
    for (let attempt = 0;; attempt++) {
      const r = ensure(name);
      try {
        await r.ready;
      } catch {
        return json(503, { code: "BOOT_ERROR", message: "Function failed to start (please check logs)" });
      }
      const target = `http://127.0.0.1:${r.port}${m[2] ?? "/"}${url.search}`;
      try {
        const res = await fetch(target, {
          method: req.method,
          headers: req.headers,
          body,
          signal: req.signal,
          client: upstream,
        });
        return new Response(res.body, { status: res.status, headers: res.headers });
      } catch (e) {
        if (req.signal.aborted) return json(499, { message: "client closed request" });
        // The process may have died a moment ago without its exit being seen yet: wait for it,
        // so that this or the next request starts a new one instead of hitting the dead port.
        await exitedWithin(r, 5_000);
        if (attempt === 0 && r.exited && refused(e)) continue;
        return json(502, { code: "WORKER_ERROR", message: "Function exited before responding" });
      }
    }
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: args.port, onListen() {} }, handle);
  const stop = async () => {
    for (const r of running.values()) {
      try {
        r.child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await Promise.allSettled([...running.values()].map((r) => r.child.status));
    await server.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.error(JSON.stringify({ event: "gateway.listening", port: args.port }));
  return server;
}

if (import.meta.main) startGateway(parseArgs(Deno.args));
