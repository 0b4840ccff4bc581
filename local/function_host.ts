/**
 * Runs one Edge Function in its own Deno process the way Supabase's edge runtime runs a user
 * worker, for the local gateway (local only; never imported by deployable code). The gateway
 * (local/gateway.ts) supervises it: CPU, memory and wall clock limits, retirement, restarts.
 *
 *   deno run -A --no-lock --node-modules-dir=none (--config <fn>/deno.json | --no-config
 *     [--import-map <map>]) --v8-flags=--max-heap-size=<MB> local/function_host.ts \
 *     --entry <fn>/index.ts --port-file <file> --mem-file <file> --memory-limit-bytes N
 *
 * It listens on a port the system picks and writes that port to --port-file once it listens. (A
 * port picked by the gateway and bound later, once Deno has started, could meanwhile be taken by
 * any other socket on the machine.)
 *
 * This file imports nothing bare (only `node:` modules), so the function's module graph is
 * resolved with the function's own import map and nothing else.
 *
 * What it mimics, from supabase/edge-runtime (tag v1.74.0, commit b1edf453b6ab):
 * - `EdgeRuntime.waitUntil(promise)` keeps background work alive after the response.
 * - `Deno.env`: `set` throws NotSupported, `delete` does nothing (ext/env/lib.rs: op_set_env,
 *   op_delete_env). Variables that Deno itself needs here (DENO_DIR, DENO_NO_PACKAGE_JSON,
 *   NO_COLOR) are removed before the function is loaded, so it sees only what the gateway
 *   hands it.
 * - `beforeunload` is a cancelable CustomEvent with `detail: { reason }`
 *   (ext/runtime/js/bootstrap.js: dispatchBeforeUnloadEvent). A worker the supervisor drops
 *   (retired at the soft CPU limit or half the wall clock, memory past half the limit, or the
 *   server shutting down) gets it only once every request has been answered and every pending
 *   promise has settled, with reason "early_drop" (crates/base/src/worker/supervisor/
 *   strategy_per_worker.rs: can_early_drop, v8_handler.rs: v8_handle_early_drop_beforeunload);
 *   then the worker ends without waiting for what the listener starts. The gateway asks for that
 *   with SIGTERM once it has no request in flight to this process.
 * - A handler that throws: the gateway answers 500 WORKER_ERROR (marked by a header only the
 *   gateway sees, which it strips).
 * - Memory as the runtime measures it: V8 used heap + external memory (array buffers), sampled
 *   every --mem-interval-ms (the runtime checks after each event-loop turn: crates/base/src/
 *   runtime/mod.rs MemCheck::check) and written to --mem-file for the gateway; at
 *   --memory-limit-bytes the process kills itself and leaves "<bytes> limit" there, which the
 *   gateway reports as the memory limit (546). A synchronous heap spike is stopped by V8 itself
 *   (--max-heap-size, as the runtime's heap_limits in CreateParams).
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

function arg(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(name);
  const v = i >= 0 ? Deno.args[i + 1] : fallback;
  if (v === undefined) {
    console.error(`function_host: ${name} is required`);
    Deno.exit(2);
  }
  return v;
}

const entry = arg("--entry");
const portFile = arg("--port-file");
const memFile = arg("--mem-file", "");
const memEveryMs = Number(arg("--mem-interval-ms", "50"));
/** The header by which the gateway learns that the handler threw (gateway.ts strips it). */
const ERROR_HEADER = "x-local-function-error";

// --- environment: only what the gateway passed, minus what Deno itself needed to start ---
for (const k of ["DENO_DIR", "DENO_NO_PACKAGE_JSON", "NO_COLOR", "DENO_NODE_SHIM_ACTIVE", "PATH"]) {
  Deno.env.delete(k);
}
const env = Deno.env;
const realGet = env.get.bind(env);
const realToObject = env.toObject.bind(env);
const realHas = env.has.bind(env);
Object.defineProperty(Deno, "env", {
  value: {
    get: (k: string) => realGet(k),
    has: (k: string) => realHas(k),
    toObject: () => realToObject(),
    set: () => {
      throw new Deno.errors.NotSupported("The operation is not supported");
    },
    delete: () => {},
  },
  configurable: true,
});

// --- EdgeRuntime.waitUntil ---
const pending = new Set<Promise<unknown>>();
(globalThis as unknown as { EdgeRuntime: unknown }).EdgeRuntime = {
  waitUntil(p: Promise<unknown>) {
    const tracked: Promise<unknown> = Promise.resolve(p).catch((e) => {
      console.error(
        JSON.stringify({ event: "edge_runtime.wait_until_rejected", error: (e as Error)?.name ?? "Error" }),
      );
    }).finally(() => pending.delete(tracked));
    pending.add(tracked);
    return p;
  },
};

// --- memory samples for the gateway; past the limit the worker ends itself at once ---
const memLimit = Number(arg("--memory-limit-bytes", "0"));
if (memFile) {
  // Written only when it moved by a MiB or more: the host's own sampling must not be charged to
  // the worker as CPU (the runtime's supervisor does not charge its checks to the isolate), and a
  // file write every sample cost an idle worker about 2 % of a core.
  // The line is "<now> <peak>[ limit]": the gateway reports the peak when the worker exits.
  let written = -Infinity;
  let peak = 0;
  const sample = () => {
    const m = Deno.memoryUsage();
    const total = m.heapUsed + m.external;
    const over = memLimit > 0 && total >= memLimit;
    peak = Math.max(peak, total);
    if (!over && Math.abs(total - written) < 2 ** 20) return;
    written = total;
    try {
      Deno.writeTextFileSync(memFile, `${total} ${peak}${over ? " limit" : ""}\n`);
    } catch { /* the gateway may have removed it */ }
    // SIGKILL, as the runtime terminates the isolate: no unload event, no grace.
    if (over) Deno.kill(Deno.pid, "SIGKILL");
  };
  sample();
  Deno.unrefTimer(setInterval(sample, memEveryMs));
}

// --- Deno.serve: bind whatever the function serves to our port, whichever overload it uses ---
let inFlight = 0;
const realServe = Deno.serve.bind(Deno) as (...a: unknown[]) => Deno.HttpServer;
(Deno as unknown as { serve: unknown }).serve = (...args: unknown[]) => {
  const handler = args.find((a) => typeof a === "function");
  const given = args.find((a) => typeof a === "object" && a !== null) as Record<string, unknown> | undefined;
  const h = (handler ?? given?.handler) as Deno.ServeHandler;
  const wrapped: Deno.ServeHandler = async (req, info) => {
    inFlight++;
    try {
      return await h(req, info);
    } catch (e) {
      console.error(e);
      return new Response(null, { status: 500, headers: { [ERROR_HEADER]: "1" } });
    } finally {
      inFlight--;
    }
  };
  return realServe({
    ...given,
    port: 0,
    hostname: "127.0.0.1",
    onListen(addr: Deno.NetAddr) {
      // Written whole, then renamed: the gateway never reads half a number.
      Deno.writeTextFileSync(`${portFile}.tmp`, `${addr.port}\n`);
      Deno.renameSync(`${portFile}.tmp`, portFile);
    },
  }, wrapped);
};

// --- early drop: wait for the work in hand, then beforeunload, then end ---
let dropping = false;
async function earlyDrop() {
  if (dropping) return;
  dropping = true;
  while (inFlight > 0 || pending.size > 0) {
    await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 10))]);
  }
  globalThis.dispatchEvent(
    new CustomEvent("beforeunload", { cancelable: true, detail: { reason: "early_drop" } }),
  );
  // The runtime ends the isolate once its event loop has nothing ready: one turn, not a grace period.
  await new Promise((r) => setTimeout(r, 0));
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", earlyDrop);
Deno.addSignalListener("SIGINT", earlyDrop);

await import(pathToFileURL(resolve(entry)).href);
