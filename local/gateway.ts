/**
 * The local Edge Functions gateway (local only: Supabase's API gateway and edge runtime do
 * this on a hosted project and under `supabase start`).
 *
 *   deno run -A --config deno.json local/gateway.ts --port 54321 \
 *     --functions-dir supabase/functions --config supabase/config.toml --state-dir .stack/dev \
 *     [--env-file F]... [--import-map M] [--cpu-soft-ms 1000] [--cpu-hard-ms 2000] \
 *     [--memory-mb 256] [--wall-clock-sec 150 | --wall-clock-ms N] [--poll-ms 50]
 *
 * Environment the gateway reads (by these exact names, nothing else reaches a function):
 * SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_DB_URL,
 * SUPABASE_SECRET_KEYS, SUPABASE_PUBLISHABLE_KEYS (handed to functions); JWT_SECRET (verifies
 * tokens, never handed on); DENO_DIR, or XDG_CACHE_HOME / HOME to find Deno's cache.
 *
 * Serves every folder of the functions directory at /functions/v1/<name>; each function runs in
 * its own Deno process (local/function_host.ts), started on first use and again after it ends,
 * so a function that throws, crashes or hits a limit never takes the gateway down. Its pid is
 * kept in <state-dir>/functions/<name>.pid. One JSON line per event on stderr.
 *
 * Rules followed, with their sources: supabase/edge-runtime at tag v1.74.0 (commit
 * b1edf453b6ab52eba0cf8c495ed1881001d51c88) and the Supabase CLI (supabase/cli:
 * internal/functions/serve/serve.go, internal/functions/serve/templates/main.ts,
 * internal/functions/deploy GetFunctionConfig).
 *
 * 1. Import map, as `supabase functions serve/deploy` pick it (deploy GetFunctionConfig):
 *    --import-map, else `[functions.<name>] import_map` (relative to the folder of config.toml),
 *    else the function's deno.json, deno.jsonc or import_map.json, else
 *    <functions-dir>/import_map.json; never the repository's root deno.json. A deno.json(c) is
 *    given to Deno as --config, any other map as --import-map with --no-config; no map at all is
 *    --no-config, so a bare specifier fails to boot: 503 BOOT_ERROR. Always --no-lock and
 *    --node-modules-dir=none --vendor=false (nothing is written into the function's folder; npm
 *    packages come from Deno's cache or the npm registry), and DENO_NO_PACKAGE_JSON=1 (the CLI
 *    uses a package.json only when a function has one and no import map; not supported here).
 *    `[functions.<name>] entrypoint` and `enabled = false` are honoured too.
 * 2. Environment (serve.go ServeFunctions + main.ts): the env files (--env-file, repeatable,
 *    later wins; names starting SUPABASE_ are refused by the CLI and skipped here), then the
 *    platform variables above, plus SB_EXECUTION_ID = the worker's id (crates/base/src/runtime/
 *    mod.rs sets it for every user worker). Nothing of the caller's shell: no PATH, HOME,
 *    OPENAI_*. Deno itself needs DENO_DIR (and gets DENO_NO_PACKAGE_JSON, NO_COLOR); the host
 *    removes them before the function loads. SB_REGION and the like are set by the hosted
 *    platform, not by the runtime or the CLI, so they are absent locally as under the CLI.
 * 3. Limits, per worker, as the per_worker supervisor policy enforces them (crates/base/src/
 *    worker/supervisor/strategy_per_worker.rs; what `[edge_runtime] policy = "per_worker"` in
 *    config.toml selects under the CLI, and how a hosted worker serves many requests; values
 *    from main.ts): CPU soft 1 s / hard 2 s accumulated over all the
 *    requests a worker serves; memory 256 MB measured as V8 used heap + external memory
 *    (crates/base/src/runtime/mod.rs MemCheck::check; the V8 heap itself capped at the same size,
 *    heap_limits in CreateParams); wall clock from the worker's start (150 s hosted free plan;
 *    the CLI defaults to 400 s). At the soft CPU limit or half the wall clock the worker is
 *    retired: new requests go to a new worker, in-flight requests and EdgeRuntime.waitUntil work
 *    finish, then `beforeunload` (detail.reason "early_drop") and the worker ends. Past half the
 *    memory limit it is dropped the same way once idle. At the hard CPU limit, the memory limit
 *    or the whole wall clock it is terminated and each in-flight request is answered 546
 *    {"code":"WORKER_LIMIT","message":"Worker failed to respond due to a resource limit (please
 *    check logs)"}. Boot failure: 503 BOOT_ERROR; a handler that throws or a worker that dies
 *    with the request: 500 WORKER_ERROR (main.ts SB_SPECIFIC_ERROR_*).
 *
 * What differs, and why:
 * - CPU is sampled from /proc (main thread, every --poll-ms, 10 ms ticks), so a worker may run
 *   up to one sample past a limit. The runtime also checks at each event-loop turn, and arms a
 *   per-poll CPU timer: one uninterrupted synchronous run is retired at 1 s and terminated only
 *   at 1 s + 2 s; here it is terminated at 2 s (stricter).
 * - CPU spent before the worker listens (Deno loading and transpiling the function's modules)
 *   is not counted: the platform boots a pre-bundled eszip, which costs far less.
 * - Memory is sampled inside the worker every 20 ms, not after every event-loop turn, and the
 *   worker ends itself at the limit (a blocked event loop is caught by the V8 heap cap, which
 *   ends the process: still 546). An ArrayBuffer allocation past the limit is refused by the runtime's allocator (ext/runtime/external_memory.rs) with a RangeError the
 *   function could catch; here it succeeds and the worker is terminated (stricter).
 * - The runtime may be started with --dispatch-beforeunload-{cpu,memory,wall-clock}-ratio
 *   (cli/src/flags.rs) to send an early `beforeunload` with reason "cpu" / "memory" /
 *   "wall_clock" (crates/base/src/runtime/mod.rs, WillTerminateReason); the CLI passes none, nor
 *   does this gateway, so the only reason seen here is "early_drop".
 * - The CLI's main.ts lets OPTIONS requests through without a JWT; this gateway checks them
 *   like any other method (stricter; no function here answers CORS preflights).
 * - A wall clock of 150 s counts from the worker's start, not the request's: a request that
 *   reaches a worker 70 s old has at most 80 s left. Functions must budget for that.
 * - Deno.exit, Deno.kill and signal listeners are mocked in a user worker; here Deno.exit still
 *   ends the process (the gateway starts a new one), which tests use to simulate a crash.
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { JWT_SECRET, verifyJwt } from "./keys.ts";
import { createDataApi } from "./data_api.ts";
import { parseEnvFile } from "../cli/env_file.ts";
import {
  type EdgeLimits,
  failureResponse,
  HOSTED_LIMITS,
  judge,
  type LimitKind,
  mainThreadCpuMs,
} from "./edge_limits.ts";

export interface GatewayArgs {
  port: number;
  functionsDir: string;
  config: string;
  stateDir: string;
  envFiles: string[];
  importMap?: string;
  limits: EdgeLimits;
  /** --data-api-db-url: serve /rest/v1/rpc/* (local/data_api.ts) through this `authenticator` connection. */
  dataApiDbUrl?: string;
}

/** The variables of the hosted platform a function sees; read from the gateway's own env. */
export const PLATFORM_VARIABLES = [
  "SUPABASE_URL",
  "SUPABASE_ANON_KEY",
  "SUPABASE_SERVICE_ROLE_KEY",
  "SUPABASE_DB_URL",
  "SUPABASE_SECRET_KEYS",
  "SUPABASE_PUBLISHABLE_KEYS",
] as const;

/** The header function_host.ts sets when the handler threw. */
const ERROR_HEADER = "x-local-function-error";

export function parseArgs(a: string[]): GatewayArgs {
  const all = (n: string) => a.flatMap((v, i) => (v === n && a[i + 1] !== undefined ? [a[i + 1]] : []));
  const get = (n: string) => all(n).at(-1);
  const num = (n: string, d: number) => {
    const v = get(n);
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new Error(`gateway: ${n} must be a number >= 0`);
    return x;
  };
  const functionsDir = get("--functions-dir");
  const config = get("--config");
  const stateDir = get("--state-dir");
  if (!functionsDir || !config || !stateDir) {
    throw new Error("gateway: --functions-dir, --config and --state-dir are required");
  }
  const wallSec = get("--wall-clock-sec");
  return {
    port: num("--port", 54321),
    functionsDir,
    config,
    stateDir,
    envFiles: all("--env-file"),
    importMap: get("--import-map"),
    dataApiDbUrl: get("--data-api-db-url"),
    limits: {
      cpuSoftMs: num("--cpu-soft-ms", HOSTED_LIMITS.cpuSoftMs),
      cpuHardMs: num("--cpu-hard-ms", HOSTED_LIMITS.cpuHardMs),
      memoryMb: num("--memory-mb", HOSTED_LIMITS.memoryMb),
      wallClockMs: wallSec !== undefined
        ? num("--wall-clock-sec", 0) * 1000
        : num("--wall-clock-ms", HOSTED_LIMITS.wallClockMs),
      pollMs: Math.max(10, num("--poll-ms", HOSTED_LIMITS.pollMs)),
    },
  };
}

interface FunctionToml {
  verify_jwt?: boolean;
  enabled?: boolean;
  import_map?: string;
  entrypoint?: string;
}

function functionToml(configToml: string, name: string): FunctionToml {
  const cfg = parseToml(configToml) as { functions?: Record<string, FunctionToml> };
  return cfg.functions?.[name] ?? {};
}

/** verify_jwt per function from config.toml; Supabase's default is true. */
export function verifyJwtSetting(configToml: string, name: string): boolean {
  return functionToml(configToml, name).verify_jwt ?? true;
}

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/**
 * The import map the CLI would use for a function, or undefined (deploy GetFunctionConfig:
 * flag > config.toml > the function's deno.json / deno.jsonc / import_map.json > the functions
 * folder's import_map.json).
 */
export function importMapFor(
  o: { functionsDir: string; config: string; importMap?: string },
  name: string,
  fn: FunctionToml,
): string | undefined {
  if (o.importMap) return resolve(o.importMap);
  if (fn.import_map) {
    return isAbsolute(fn.import_map) ? fn.import_map : resolve(dirname(o.config), fn.import_map);
  }
  const dir = join(o.functionsDir, name);
  for (const f of ["deno.json", "deno.jsonc", "import_map.json"]) {
    if (isFile(join(dir, f))) return resolve(dir, f);
  }
  const fallback = join(o.functionsDir, "import_map.json");
  return isFile(fallback) ? resolve(fallback) : undefined;
}

/** Deno's flags for the module graph of a function with this map. */
export function moduleFlags(map: string | undefined): string[] {
  const common = ["--no-lock", "--node-modules-dir=none", "--vendor=false"];
  if (!map) return ["--no-config", ...common];
  if (/deno\.jsonc?$/.test(map)) return ["--config", map, ...common];
  return ["--no-config", "--import-map", map, ...common];
}

interface Worker {
  name: string;
  id: string;
  child: Deno.ChildProcess;
  /** 0 until the process has written the port it listens on to portFile. */
  port: number;
  portFile: string;
  ready: Promise<void>;
  isReady: boolean;
  exited: boolean;
  startedAt: number;
  cpuBase: number | null;
  inFlight: number;
  /** No new requests (retired, or being dropped). */
  retired: boolean;
  dropWhenIdle: boolean;
  dropSent: boolean;
  marks: { cpuSoftReached: boolean; wallClockRetired: boolean };
  limit?: { limit: LimitKind; measured: number };
  memFile: string;
  lastMem: number;
  /** The highest memory sample seen (heap + external), for the exit event. */
  peakMem: number;
  /** CPU ms counted so far (since the worker listened). */
  cpuMs: number;
  timer?: ReturnType<typeof setInterval>;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function logEvent(o: Record<string, unknown>) {
  console.error(JSON.stringify(o));
}

/** Deno's cache folder, as Deno itself would find it from the gateway's environment. */
function denoDir(): string | undefined {
  const e = Deno.env.toObject();
  if (e.DENO_DIR) return e.DENO_DIR;
  if (e.XDG_CACHE_HOME) return join(e.XDG_CACHE_HOME, "deno");
  if (e.HOME) return join(e.HOME, ".cache", "deno");
  return undefined;
}

/** A body that calls `done` once when it ends, fails or is cancelled. */
function tracked(
  body: ReadableStream<Uint8Array> | null,
  done: () => void,
): ReadableStream<Uint8Array> | null {
  let called = false;
  const once = () => {
    if (!called) {
      called = true;
      done();
    }
  };
  if (!body) {
    once();
    return null;
  }
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const { value, done: end } = await reader.read();
        if (end) {
          c.close();
          once();
        } else c.enqueue(value);
      } catch (e) {
        once();
        c.error(e);
      }
    },
    cancel(reason) {
      once();
      return reader.cancel(reason);
    },
  });
}

export function startGateway(args: GatewayArgs) {
  const hostScript = new URL("./function_host.ts", import.meta.url).pathname;
  const limits = args.limits;
  const current = new Map<string, Worker>();
  const all = new Set<Worker>();
  const pidDir = join(args.stateDir, "functions");
  Deno.mkdirSync(pidDir, { recursive: true });

  const platform: Record<string, string> = {};
  for (const k of PLATFORM_VARIABLES) {
    const v = Deno.env.get(k);
    if (v !== undefined) platform[k] = v;
  }
  const cache = denoDir();

  function functionEnv(executionId: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const f of args.envFiles) {
      for (const [k, v] of Object.entries(parseEnvFile(Deno.readTextFileSync(f)))) {
        if (k.startsWith("SUPABASE_")) {
          logEvent({
            event: "gateway.env_skipped",
            name: k,
            reason: "names starting SUPABASE_ are reserved",
          });
          continue;
        }
        env[k] = v;
      }
    }
    Object.assign(env, platform, { SB_EXECUTION_ID: executionId, DENO_NO_PACKAGE_JSON: "1", NO_COLOR: "1" });
    if (cache) env.DENO_DIR = cache;
    return env;
  }

  async function waitListening(w: Worker) {
    const until = Date.now() + 60_000;
    while (Date.now() < until && !w.exited) {
      try {
        w.port ||= Number(Deno.readTextFileSync(w.portFile).trim()) || 0;
        if (!w.port) throw new Error("not listening yet");
        const c = await Deno.connect({ hostname: "127.0.0.1", port: w.port });
        c.close();
        return;
      } catch {
        await new Promise((res) => setTimeout(res, 25));
      }
    }
    throw new Error("boot");
  }

  /** Ends a worker at a hard limit; its in-flight requests are answered 546. */
  function terminate(w: Worker, limit: LimitKind, measured: number, limitValue: number) {
    if (w.limit || w.exited) return;
    w.limit = { limit, measured };
    logEvent({
      event: "gateway.worker_limit",
      function: w.name,
      pid: w.child.pid,
      limit,
      measured: Math.round(measured),
      limit_value: limitValue,
      unit: limit === "memory" ? "bytes" : "ms",
      in_flight: w.inFlight,
    });
    try {
      w.child.kill("SIGKILL");
    } catch { /* gone */ }
  }

  function retire(w: Worker, reason: string, measured?: number) {
    if (!w.retired) {
      w.retired = true;
      if (current.get(w.name) === w) current.delete(w.name);
      logEvent({
        event: "gateway.worker_retired",
        function: w.name,
        pid: w.child.pid,
        reason,
        ...(measured !== undefined ? { measured: Math.round(measured) } : {}),
      });
    }
    maybeDrop(w);
  }

  /** Once a retired (or memory-heavy) worker has nothing in flight: beforeunload, then it ends. */
  function maybeDrop(w: Worker) {
    if (w.exited || w.dropSent || w.inFlight > 0 || !(w.retired || w.dropWhenIdle)) return;
    w.dropSent = true;
    w.retired = true;
    if (current.get(w.name) === w) current.delete(w.name);
    try {
      w.child.kill("SIGTERM");
    } catch { /* gone */ }
  }

  /** The worker's last memory sample; true when it ended itself at the memory limit. */
  function readMem(w: Worker): boolean {
    try {
      const [n, top, flag] = Deno.readTextFileSync(w.memFile).trim().split(" ");
      const mem = Number(n);
      if (Number.isFinite(mem) && n !== "") {
        w.lastMem = mem;
        w.peakMem = Math.max(w.peakMem, mem, Number(top) || 0);
      }
      return flag === "limit";
    } catch {
      return false; // not written yet, or gone
    }
  }

  function tick(w: Worker) {
    if (w.exited || w.limit) return;
    let cpuMs = 0;
    if (w.isReady) {
      const cpu = mainThreadCpuMs(w.child.pid);
      if (cpu === null) return;
      w.cpuBase ??= cpu;
      cpuMs = cpu - w.cpuBase;
      w.cpuMs = cpuMs;
    }
    readMem(w);
    const v = judge(limits, { cpuMs, memBytes: w.lastMem, wallMs: Date.now() - w.startedAt }, w.marks);
    if (v.action === "terminate") terminate(w, v.limit, v.measured, v.limitValue);
    else if (v.action === "retire") {
      if (v.reason === "cpu") w.marks.cpuSoftReached = true;
      else w.marks.wallClockRetired = true;
      retire(w, v.reason === "cpu" ? "cpu_soft_limit" : "wall_clock_half", v.measured);
    } else if (v.action === "drop_when_idle" && !w.dropWhenIdle) {
      w.dropWhenIdle = true;
      logEvent({
        event: "gateway.worker_memory_half",
        function: w.name,
        pid: w.child.pid,
        measured: v.measured,
      });
      maybeDrop(w);
    }
  }

  function spawn(name: string, entry: string, map: string | undefined): Worker {
    const id = crypto.randomUUID();
    const portFile = join(pidDir, `${name}.${id}.port`);
    const memFile = join(pidDir, `${name}.${id}.mem`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        ...moduleFlags(map),
        `--v8-flags=--max-heap-size=${limits.memoryMb}`,
        hostScript,
        "--entry",
        entry,
        "--port-file",
        portFile,
        "--mem-file",
        memFile,
        "--mem-interval-ms",
        String(limits.pollMs),
        "--memory-limit-bytes",
        String(limits.memoryMb * 1024 * 1024),
      ],
      env: functionEnv(id),
      clearEnv: true,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const w: Worker = {
      name,
      id,
      child,
      port: 0,
      portFile,
      ready: Promise.resolve(),
      isReady: false,
      exited: false,
      startedAt: Date.now(),
      cpuBase: null,
      inFlight: 0,
      retired: false,
      dropWhenIdle: false,
      dropSent: false,
      marks: { cpuSoftReached: false, wallClockRetired: false },
      memFile,
      lastMem: 0,
      peakMem: 0,
      cpuMs: 0,
    };
    w.ready = waitListening(w).then(() => {
      w.isReady = true;
      // CPU counts from here: what the function's own code spends serving.
      w.cpuBase = mainThreadCpuMs(child.pid);
    });
    w.ready.catch(() => {});
    w.timer = setInterval(() => tick(w), limits.pollMs);
    const pidFile = join(pidDir, `${name}.pid`);
    Deno.writeTextFileSync(pidFile, `${child.pid}\n`);
    child.status.then((s) => {
      w.exited = true;
      clearInterval(w.timer);
      all.delete(w);
      if (current.get(name) === w) current.delete(name);
      // The worker ended itself at the memory limit (function_host.ts), or V8 ended the process
      // with a trap at the heap cap: the memory limit either way.
      const heapCap = s.signal === "SIGTRAP";
      if ((readMem(w) || heapCap) && !w.limit) {
        w.limit = { limit: "memory", measured: w.lastMem };
        logEvent({
          event: "gateway.worker_limit",
          function: name,
          pid: child.pid,
          limit: "memory",
          measured: w.lastMem,
          limit_value: limits.memoryMb * 1024 * 1024,
          unit: "bytes",
          in_flight: w.inFlight,
          ...(heapCap ? { detail: "V8 heap limit reached (measured is the last sample before it)" } : {}),
        });
      }
      for (const f of [memFile, portFile, `${portFile}.tmp`]) {
        try {
          Deno.removeSync(f);
        } catch { /* none */ }
      }
      try {
        if (Deno.readTextFileSync(pidFile).trim() === String(child.pid)) Deno.removeSync(pidFile);
      } catch { /* gone */ }
      logEvent({
        event: "gateway.function_exited",
        function: name,
        pid: child.pid,
        code: s.code,
        signal: s.signal,
        cpu_ms: Math.round(w.cpuMs),
        mem_bytes: w.lastMem,
        peak_mem_bytes: w.peakMem,
        lived_ms: Date.now() - w.startedAt,
      });
    });
    all.add(w);
    current.set(name, w);
    return w;
  }

  /**
   * Why a request was answered WORKER_ERROR, for whoever reads the log: the worker's state and
   * the error's class and message from the connection (never the request or its body).
   */
  function failed(w: Worker, reason: "unreachable" | "handler_threw", e?: unknown) {
    logEvent({
      event: "gateway.request_failed",
      function: w.name,
      pid: w.child.pid,
      reason,
      exited: w.exited,
      retired: w.retired,
      drop_sent: w.dropSent,
      in_flight: w.inFlight,
      lived_ms: Date.now() - w.startedAt,
      ...(e !== undefined ? { error: String((e as Error)?.cause ?? e).slice(0, 200) } : {}),
    });
  }

  function ensure(name: string, entry: string, map: string | undefined): Worker {
    const have = current.get(name);
    if (have && !have.exited && !have.retired && !have.limit) return have;
    return spawn(name, entry, map);
  }

  const jwtSecret = Deno.env.get("JWT_SECRET") ?? JWT_SECRET;

  /** Waits up to `ms` for the process to exit; spawn()'s exit handler sets `w.exited`. */
  async function exitedWithin(w: Worker, ms: number) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([w.child.status, new Promise((res) => timer = setTimeout(res, ms))]);
    clearTimeout(timer);
  }

  // No pooled connections to function processes: a pooled connection to a process that has just
  // died fails in ways that do not say whether the request was delivered; a new connection to a
  // dead process is refused, which says it was not.
  const upstream = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const refused = (e: unknown) => /Connection refused/i.test(String((e as Error)?.cause ?? e));

  // The Data API's RPC endpoint, as PostgREST serves it behind the API gateway (data_api.ts).
  const api = (() => {
    if (!args.dataApiDbUrl) return null;
    const conf = parseToml(Deno.readTextFileSync(args.config)) as {
      api?: { schemas?: string[]; max_rows?: number };
    };
    return createDataApi({
      dbUrl: args.dataApiDbUrl,
      jwtSecret,
      schemas: conf.api?.schemas ?? ["public", "graphql_public"],
      maxRows: conf.api?.max_rows ?? 1000,
    });
  })();

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/health") return json(200, { ok: true });
    const rpc = url.pathname.match(/^\/rest\/v1\/rpc\/([A-Za-z0-9_]+)$/);
    if (rpc) {
      if (!api) {
        return json(503, { message: "the Data API is not served by this gateway (no --data-api-db-url)" });
      }
      return await api.handle(req, rpc[1]);
    }
    const m = url.pathname.match(/^\/functions\/v1\/([A-Za-z0-9_-]+)(\/.*)?$/);
    if (!m) return json(404, { message: "no route matched" });
    const name = m[1];
    const configToml = Deno.readTextFileSync(args.config);
    const fn = functionToml(configToml, name);
    const entry = fn.entrypoint
      ? resolve(dirname(args.config), fn.entrypoint)
      : resolve(args.functionsDir, name, "index.ts");
    if (fn.enabled === false || !isFile(entry)) {
      return json(404, { code: "NOT_FOUND", message: "Requested function was not found" });
    }
    if (fn.verify_jwt ?? true) {
      const auth = req.headers.get("authorization") ?? "";
      const token = auth.match(/^Bearer\s+(.+)$/i)?.[1];
      if (!token) return json(401, { msg: "Error: Missing authorization header" });
      if (!(await verifyJwt(token, jwtSecret))) return json(401, { msg: "Invalid JWT" });
    }
    const map = importMapFor(args, name, fn);
    // Function requests are small; buffering the body lets a request that never reached a dead
    // process be sent again to its replacement, as the edge runtime boots a new worker.
    const body = req.body ? await req.arrayBuffer() : undefined;
    for (let attempt = 0;; attempt++) {
      const w = ensure(name, entry, map);
      try {
        await w.ready;
      } catch {
        return failureResponse(w.limit ? "WORKER_LIMIT" : "BOOT_ERROR");
      }
      const target = `http://127.0.0.1:${w.port}${m[2] ?? "/"}${url.search}`;
      w.inFlight++;
      const done = () => {
        w.inFlight--;
        maybeDrop(w);
      };
      let res: Response;
      try {
        res = await fetch(target, {
          method: req.method,
          headers: req.headers,
          body,
          signal: req.signal,
          client: upstream,
        });
      } catch (e) {
        done();
        if (req.signal.aborted) return json(499, { message: "client closed request" });
        // The process may have died a moment ago without its exit being seen yet: wait for it,
        // so that this or the next request starts a new one instead of hitting the dead port.
        await exitedWithin(w, 5_000);
        if (w.limit) return failureResponse("WORKER_LIMIT");
        if (attempt === 0 && w.exited && refused(e)) continue;
        failed(w, "unreachable", e);
        return failureResponse("WORKER_ERROR");
      }
      if (res.headers.has(ERROR_HEADER)) {
        await res.body?.cancel();
        done();
        failed(w, "handler_threw");
        return failureResponse("WORKER_ERROR");
      }
      return new Response(tracked(res.body, done), { status: res.status, headers: res.headers });
    }
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: args.port, onListen() {} }, handle);
  const stop = async () => {
    const workers = [...all];
    for (const w of workers) {
      try {
        w.child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    const grace = new Promise((r) => setTimeout(r, 5_000));
    await Promise.race([Promise.allSettled(workers.map((w) => w.child.status)), grace]);
    for (const w of workers) {
      try {
        if (!w.exited) w.child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await server.shutdown();
    await api?.close().catch(() => {});
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  logEvent({ event: "gateway.listening", port: args.port, limits });
  return server;
}

if (import.meta.main) {
  let parsed: GatewayArgs;
  try {
    parsed = parseArgs(Deno.args);
    for (const f of parsed.envFiles) {
      if (!isFile(f)) throw new Error(`gateway: env file not found: ${f}`);
    }
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  startGateway(parsed);
}
