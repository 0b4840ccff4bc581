// embed-queue: keeps vector embeddings in step with table rows. Wiring only; see handler.ts.
import { loadConfig } from "../_shared/config.ts";
import { createDb } from "./db.ts";
import { createProvider } from "../_shared/provider.ts";
import { adminKeys, createAuthenticator } from "./auth.ts";
import { createHandler } from "./handler.ts";
import { createBudget } from "./budget.ts";
import { batchClient, createBatchRunner } from "./batch.ts";
import { connectBatchDb } from "./batch_db.ts";
import { log } from "./log.ts";

declare const EdgeRuntime: { waitUntil(p: Promise<unknown>): void } | undefined;

const config = loadConfig(Deno.env.toObject());
if (!config.dbUrl) throw new Error("SUPABASE_DB_URL is not set");
const db = createDb(config.dbUrl);
const shutdown = new AbortController();
addEventListener("beforeunload", () => shutdown.abort());

// A run reaches its own worker through the platform's gateway to learn whether it still serves it
// (budget.ts); the function's name is this folder's.
const selfKey = adminKeys(config)[0];
const self = config.supabaseUrl && selfKey
  ? { url: `${config.supabaseUrl.replace(/\/+$/, "")}/functions/v1/embed-queue`, key: selfKey }
  : undefined;
const budget = createBudget({
  cpuSoftMs: config.cpuSoftMs,
  cpuHardMs: config.cpuHardMs,
  memoryBytes: config.memoryMb * 2 ** 20,
});
// The Batch API is OpenAI's: the offline local provider has none and stays synchronous.
const batches = config.provider === "openai"
  ? createBatchRunner({
    db: connectBatchDb(config.dbUrl),
    client: batchClient(config),
    maxTokensPerInput: config.maxTokensPerInput,
    model: config.model,
    dimensions: config.dimensions,
    budget,
    log,
  })
  : undefined;

Deno.serve(createHandler({
  config,
  db,
  provider: createProvider(config),
  auth: createAuthenticator(adminKeys(config), () => db.queueSecret()),
  self,
  waitUntil: (p) => typeof EdgeRuntime !== "undefined" ? EdgeRuntime.waitUntil(p) : void p,
  shutdown: shutdown.signal,
  budget,
  batches,
}));
