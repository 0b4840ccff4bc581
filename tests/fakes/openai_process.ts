/**
 * Runs the fake OpenAI server (openai_server.ts) as its own Deno process on a free 127.0.0.1
 * port, so a function process started elsewhere can reach it, plus small clients for its
 * admin endpoints.
 */
import { fileURLToPath } from "node:url";
import type { FakeScript, FakeStats } from "./openai_server.ts";
import type { BatchScript, BatchStats } from "./openai_batches.ts";

export type { FailStep, FakeScript, FakeStats } from "./openai_server.ts";
export type { BatchScript, BatchStats } from "./openai_batches.ts";

export interface FakeOpenAIProcess {
  /** `http://127.0.0.1:PORT/v1`, for OPENAI_BASE_URL. */
  baseUrl: string;
  apiKey: string;
  /** `http://127.0.0.1:PORT/_admin`, for adminScript/adminStats/adminReset. */
  adminUrl: string;
  /** Stops the process and waits for it to exit. */
  close(): Promise<void>;
}

const STARTUP_MS = 60_000;

export async function startFakeOpenAIProcess(opts: { apiKey?: string } = {}): Promise<FakeOpenAIProcess> {
  const apiKey = opts.apiKey ?? `sk-fake-${crypto.randomUUID().replaceAll("-", "")}`;
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  const server = fileURLToPath(new URL("./openai_server.ts", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env",
      "--no-prompt",
      "--config",
      config,
      server,
      "--port",
      "0",
    ],
    env: { EQ_FAKE_OPENAI_KEY: apiKey },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();

  // The first stdout line says where it listens; the rest is drained until it exits.
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let drained: Promise<void> = Promise.resolve();
  const kill = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await drained;
  };
  let first: { baseUrl: string } | undefined;
  const timer = setTimeout(() => lines.cancel().catch(() => {}), STARTUP_MS);
  try {
    while (!first) {
      const { value, done } = await lines.read();
      if (done) break;
      buf += value;
      const nl = buf.indexOf("\n");
      if (nl >= 0) first = JSON.parse(buf.slice(0, nl));
    }
  } catch (e) {
    clearTimeout(timer);
    await lines.cancel().catch(() => {});
    await kill();
    throw e;
  }
  clearTimeout(timer);
  if (!first) {
    await lines.cancel().catch(() => {});
    await kill();
    throw new Error("fake OpenAI server exited before it listened");
  }
  drained = (async () => {
    try {
      while (!(await lines.read()).done) { /* discard */ }
    } catch { /* closed */ }
  })();

  const baseUrl = first.baseUrl;
  const adminUrl = new URL("/_admin", baseUrl).href;
  try {
    await waitUntilAnswers(adminUrl);
  } catch (e) {
    await kill();
    throw e;
  }
  let closed: Promise<void> | undefined;
  return { baseUrl, apiKey, adminUrl, close: () => (closed ??= kill()) };
}

async function waitUntilAnswers(adminUrl: string): Promise<void> {
  const until = Date.now() + STARTUP_MS;
  for (;;) {
    try {
      const res = await fetch(`${adminBase(adminUrl)}/stats`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch (e) {
      if (Date.now() > until) throw e;
    }
    if (Date.now() > until) throw new Error("fake OpenAI server did not answer");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Accepts the admin URL, the origin, or the `/v1` base URL. */
function adminBase(url: string): string {
  const u = new URL(url);
  return `${u.origin}/_admin`;
}

async function call<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Sets the given script fields (others keep their values). */
export async function adminScript(adminUrl: string, script: Partial<FakeScript>): Promise<void> {
  await call(`${adminBase(adminUrl)}/script`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(script),
  });
}

export function adminStats(adminUrl: string): Promise<FakeStats> {
  return call<FakeStats>(`${adminBase(adminUrl)}/stats`);
}

/** Sets the given fields of the Batch API's script (openai_batches.ts BatchScript); others keep their values. */
export async function adminBatchScript(adminUrl: string, script: Partial<BatchScript>): Promise<void> {
  await call(`${adminBase(adminUrl)}/batch_script`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(script),
  });
}

export function adminBatchStats(adminUrl: string): Promise<BatchStats> {
  return call<BatchStats>(`${adminBase(adminUrl)}/batch_stats`);
}

/** Clears the script, the stats and the rate-limit windows. */
export async function adminReset(adminUrl: string): Promise<void> {
  await call(`${adminBase(adminUrl)}/reset`, { method: "POST" });
}
