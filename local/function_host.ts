/**
 * Runs one Edge Function the way Supabase's edge runtime does, for the local gateway
 * (local only; never imported by deployable code).
 *
 *   deno run -A local/function_host.ts --entry supabase/functions/NAME/index.ts --port P
 *
 * - the function's own `Deno.serve(handler)` is bound to 127.0.0.1:P;
 * - `EdgeRuntime.waitUntil(promise)` keeps background work alive after the response;
 * - on SIGTERM a `beforeunload` event is dispatched (the function may release what it holds),
 *   pending waitUntil work gets a short grace period, then the process exits.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

function arg(name: string): string {
  const i = Deno.args.indexOf(name);
  if (i < 0 || !Deno.args[i + 1]) {
    console.error(`function_host: ${name} is required`);
    Deno.exit(2);
  }
  return Deno.args[i + 1];
}

const entry = arg("--entry");
const port = Number(arg("--port"));
const GRACE_MS = 5000;

const pending = new Set<Promise<unknown>>();
(globalThis as unknown as { EdgeRuntime: unknown }).EdgeRuntime = {
  waitUntil(p: Promise<unknown>) {
    const tracked = Promise.resolve(p).catch((e) => {
      console.error(
        JSON.stringify({ event: "edge_runtime.wait_until_rejected", error: (e as Error)?.name ?? "Error" }),
      );
    }).finally(() => pending.delete(tracked));
    pending.add(tracked);
    return p;
  },
};

// Bind whatever the function serves to our port, whichever Deno.serve overload it uses.
const realServe = Deno.serve.bind(Deno) as (...a: unknown[]) => Deno.HttpServer;
(Deno as unknown as { serve: unknown }).serve = (...args: unknown[]) => {
  const handler = args.find((a) => typeof a === "function");
  const given = args.find((a) => typeof a === "object" && a !== null) as Record<string, unknown> | undefined;
  const h = (handler ?? given?.handler) as Deno.ServeHandler;
  return realServe({ ...given, port, hostname: "127.0.0.1", onListen() {} }, h);
};

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  globalThis.dispatchEvent(new Event("beforeunload"));
  const timer = new Promise((r) => setTimeout(r, GRACE_MS));
  await Promise.race([Promise.allSettled([...pending]), timer]);
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);

await import(pathToFileURL(resolve(entry)).href);
