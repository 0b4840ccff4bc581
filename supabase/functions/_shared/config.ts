/**
 * The function's settings, read once from the environment. Every option is documented here,
 * once, with its variable and default; bad values fail fast with a ConfigError that names the
 * variable and the accepted range.
 */

export interface Config {
  /** EMBEDDING_PROVIDER: "openai" or "local"; default "openai" when OPENAI_API_KEY is set, else "local". */
  provider: "openai" | "local";
  /** OPENAI_API_KEY. */
  openaiApiKey?: string;
  /** OPENAI_BASE_URL: another OpenAI-compatible endpoint (Azure, Ollama, vLLM, the test server). */
  openaiBaseUrl?: string;
  /** EMBEDDING_MODEL: default "text-embedding-3-small" ("local-hash-v1" for the local provider). */
  model: string;
  /** EMBEDDING_DIMENSIONS: default 1536; must fit the model (3-small ≤ 1536, 3-large ≤ 3072, ada-002 = 1536). */
  dimensions: number;
  /** EMBED_QUEUE_BATCH_SIZE: jobs claimed per cycle, default 1000, 1..10000. */
  batchSize: number;
  /** EMBED_QUEUE_MAX_INPUTS_PER_REQUEST: default 2048 (OpenAI's cap), 1..2048. */
  maxInputsPerRequest: number;
  /** EMBED_QUEUE_MAX_TOKENS_PER_REQUEST: default 300 000, 1..300 000; bounds both the real count and bytes/4. */
  maxTokensPerRequest: number;
  /** EMBED_QUEUE_MAX_TOKENS_PER_INPUT: longer texts are truncated to this; default 8191, 1..8191. */
  maxTokensPerInput: number;
  /** EMBED_QUEUE_CONCURRENCY: provider requests in flight, default 4, 1..64. */
  concurrency: number;
  /**
   * EMBED_QUEUE_WALL_CLOCK_MS: the plan's wall clock per worker, 150 000 (400 000 on paid plans),
   * 150 000..400 000. It bounds the time budget (maxTimeBudgetMs).
   */
  wallClockMs: number;
  /**
   * The edge runtime's per-worker limits, which the run keeps under (budget.ts): CPU soft
   * (EMBED_QUEUE_CPU_SOFT_MS, 1000: the worker is retired) and hard (EMBED_QUEUE_CPU_HARD_MS,
   * 2000: it is killed), and memory (EMBED_QUEUE_MEMORY_MB, 256). Hosted's values; change them
   * only where the host's differ. The local stack enforces whatever the function is given.
   */
  cpuSoftMs: number;
  cpuHardMs: number;
  memoryMb: number;
  /**
   * EMBED_QUEUE_TIME_BUDGET_MS: stop claiming after this, default 60 000, 1000..maxTimeBudgetMs
   * (60 000 on a 150 s plan, 185 000 on a 400 s one).
   */
  timeBudgetMs: number;
  /** EMBED_QUEUE_LINGER_MS: a cron or webhook run claims once more this long after the queue first comes up empty, default 2500, 0..60 000 (see worker.ts). */
  lingerMs: number;
  /** EMBED_QUEUE_LEASE_SECONDS: how long a claim holds a job, default 120, 1..3600. */
  leaseSeconds: number;
  /** EMBED_QUEUE_REQUEST_TIMEOUT_MS: one provider request, default 60 000, 100..600 000. */
  requestTimeoutMs: number;
  /** EMBED_QUEUE_MAX_REQUEST_RETRIES: in-run retries of a request on 5xx/timeout before its jobs go back to the queue, default 2, 0..10. */
  maxRequestRetries: number;
  /** EMBEDDING_USD_PER_MILLION_TOKENS: default from PRICES by model (0 when unknown). */
  usdPerMillionTokens: number;
  /** SUPABASE_DB_URL. */
  dbUrl?: string;
  /** SUPABASE_URL: the project's API URL; the function reaches itself at <url>/functions/v1/<name>. */
  supabaseUrl?: string;
  /** SUPABASE_SERVICE_ROLE_KEY: the legacy service role key (a JWT). */
  serviceRoleKey?: string;
  /**
   * The project's secret API keys (`sb_secret_...`), each as good as the service role key:
   * the values of SUPABASE_SECRET_KEYS, a JSON object of name → key that Supabase gives every
   * function on projects with the new API keys (e.g. `{"default":"sb_secret_..."}`), then
   * SUPABASE_SECRET_KEY, a single key (the fallback a self-hosted stack may export). Empty when
   * neither is set. Publishable keys (SUPABASE_PUBLISHABLE_KEYS) are never read: they are public.
   */
  secretKeys: string[];
}

type Derived =
  | "provider"
  | "openaiApiKey"
  | "openaiBaseUrl"
  | "usdPerMillionTokens"
  | "dbUrl"
  | "supabaseUrl"
  | "serviceRoleKey"
  | "secretKeys";

/** Defaults in one place. The local provider's model is LOCAL_MODEL instead of DEFAULTS.model. */
export const DEFAULTS: Omit<Config, Derived> = {
  model: "text-embedding-3-small",
  dimensions: 1536,
  batchSize: 1000,
  maxInputsPerRequest: 2048,
  maxTokensPerRequest: 300_000,
  maxTokensPerInput: 8191,
  concurrency: 4,
  wallClockMs: 150_000,
  cpuSoftMs: 1000,
  cpuHardMs: 2000,
  memoryMb: 256,
  timeBudgetMs: 60_000,
  lingerMs: 2500,
  leaseSeconds: 120,
  requestTimeoutMs: 60_000,
  maxRequestRetries: 2,
};

/**
 * The longest time budget a run may have on a plan with this wall clock. The edge runtime counts
 * the wall clock per worker from its start and retires a worker at half of it (edge-runtime's
 * supervisor: no new request after that), so a run may start on a worker with only half left;
 * 15 s of that half are kept for the requests in flight and the write-back after the budget.
 */
export function maxTimeBudgetMs(wallClockMs: number): number {
  return Math.floor(wallClockMs / 2) - 15_000;
}

/** The offline provider's only model (see provider.ts: lexical feature hashing, not semantic). */
export const LOCAL_MODEL = "local-hash-v1";

/** USD per million input tokens, by model. */
export const PRICES: Record<string, number> = {
  "text-embedding-3-small": 0.02,
  "text-embedding-3-large": 0.13,
  "text-embedding-ada-002": 0.10,
  [LOCAL_MODEL]: 0,
};

/** Largest output size each known model allows (text-embedding-3 models shorten on request; ada-002 cannot). */
export const MODEL_DIMENSIONS: Record<string, { max: number; fixed?: boolean }> = {
  "text-embedding-3-small": { max: 1536 },
  "text-embedding-3-large": { max: 3072 },
  "text-embedding-ada-002": { max: 1536, fixed: true },
};

/** pgvector's `vector` type holds at most 16 000 dimensions. */
const MAX_DIMENSIONS = 16_000;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === "" ? undefined : v;
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return def;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw.slice(0, 40)}")`);
  }
  return n;
}

/**
 * SUPABASE_SECRET_KEYS (a JSON object of name → key) and SUPABASE_SECRET_KEY (one key), in that
 * order, without duplicates. A malformed SUPABASE_SECRET_KEYS fails fast; the message never
 * shows the value (it holds secrets).
 */
export function readSecretKeys(env: Env): string[] {
  const keys: string[] = [];
  const raw = read(env, "SUPABASE_SECRET_KEYS");
  if (raw !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ConfigError(
        'SUPABASE_SECRET_KEYS must be a JSON object of name to secret key, e.g. {"default":"sb_secret_..."}',
      );
    }
    for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof v !== "string") {
        throw new ConfigError(`SUPABASE_SECRET_KEYS: the key named "${name.slice(0, 40)}" must be a string`);
      }
      if (v.trim() !== "") keys.push(v.trim());
    }
  }
  const single = read(env, "SUPABASE_SECRET_KEY");
  if (single !== undefined) keys.push(single);
  return [...new Set(keys)];
}

/** Reads the settings from an environment (pass `Deno.env.toObject()`); throws ConfigError. */
export function loadConfig(env: Env): Config {
  const openaiApiKey = read(env, "OPENAI_API_KEY");
  const openaiBaseUrl = read(env, "OPENAI_BASE_URL");
  const providerRaw = read(env, "EMBEDDING_PROVIDER")?.toLowerCase();
  if (providerRaw !== undefined && providerRaw !== "openai" && providerRaw !== "local") {
    throw new ConfigError(
      `EMBEDDING_PROVIDER must be "openai" or "local" (got "${providerRaw.slice(0, 40)}")`,
    );
  }
  const provider = (providerRaw ?? (openaiApiKey ? "openai" : "local")) as Config["provider"];
  if (provider === "openai" && !openaiApiKey && !openaiBaseUrl) {
    throw new ConfigError(
      "EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a server without keys)",
    );
  }
  if (openaiBaseUrl !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(openaiBaseUrl);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) {
      throw new ConfigError("OPENAI_BASE_URL must be an http(s) URL, e.g. https://api.openai.com/v1");
    }
  }

  const modelRaw = read(env, "EMBEDDING_MODEL");
  if (provider === "local" && modelRaw !== undefined && modelRaw !== LOCAL_MODEL) {
    throw new ConfigError(
      `EMBEDDING_MODEL=${modelRaw.slice(0, 60)} needs the openai provider (set OPENAI_API_KEY); ` +
        `the local provider only has ${LOCAL_MODEL}`,
    );
  }
  const model = modelRaw ?? (provider === "local" ? LOCAL_MODEL : DEFAULTS.model);

  const known = MODEL_DIMENSIONS[model];
  const dimensions = int(env, "EMBEDDING_DIMENSIONS", DEFAULTS.dimensions, 1, known?.max ?? MAX_DIMENSIONS);
  if (known?.fixed && dimensions !== known.max) {
    throw new ConfigError(`EMBEDDING_DIMENSIONS must be ${known.max} for ${model}`);
  }

  let usdPerMillionTokens = PRICES[model] ?? 0;
  const priceRaw = read(env, "EMBEDDING_USD_PER_MILLION_TOKENS");
  if (priceRaw !== undefined) {
    const p = /^\d+(?:\.\d+)?$/.test(priceRaw) ? Number(priceRaw) : NaN;
    if (!Number.isFinite(p) || p > 1000) {
      throw new ConfigError(
        `EMBEDDING_USD_PER_MILLION_TOKENS must be a number from 0 to 1000 (got "${priceRaw.slice(0, 40)}")`,
      );
    }
    usdPerMillionTokens = p;
  }

  const wallClockMs = int(env, "EMBED_QUEUE_WALL_CLOCK_MS", DEFAULTS.wallClockMs, 150_000, 400_000);
  const cpuSoftMs = int(env, "EMBED_QUEUE_CPU_SOFT_MS", DEFAULTS.cpuSoftMs, 100, 60_000);
  return {
    provider,
    openaiApiKey,
    openaiBaseUrl,
    model,
    dimensions,
    batchSize: int(env, "EMBED_QUEUE_BATCH_SIZE", DEFAULTS.batchSize, 1, 10_000),
    maxInputsPerRequest: int(
      env,
      "EMBED_QUEUE_MAX_INPUTS_PER_REQUEST",
      DEFAULTS.maxInputsPerRequest,
      1,
      2048,
    ),
    maxTokensPerRequest: int(
      env,
      "EMBED_QUEUE_MAX_TOKENS_PER_REQUEST",
      DEFAULTS.maxTokensPerRequest,
      1,
      300_000,
    ),
    maxTokensPerInput: int(env, "EMBED_QUEUE_MAX_TOKENS_PER_INPUT", DEFAULTS.maxTokensPerInput, 1, 8191),
    concurrency: int(env, "EMBED_QUEUE_CONCURRENCY", DEFAULTS.concurrency, 1, 64),
    wallClockMs,
    cpuSoftMs,
    cpuHardMs: int(
      env,
      "EMBED_QUEUE_CPU_HARD_MS",
      Math.max(DEFAULTS.cpuHardMs, cpuSoftMs),
      cpuSoftMs,
      60_000,
    ),
    memoryMb: int(env, "EMBED_QUEUE_MEMORY_MB", DEFAULTS.memoryMb, 64, 4096),
    timeBudgetMs: int(
      env,
      "EMBED_QUEUE_TIME_BUDGET_MS",
      Math.min(DEFAULTS.timeBudgetMs, maxTimeBudgetMs(wallClockMs)),
      1000,
      maxTimeBudgetMs(wallClockMs),
    ),
    lingerMs: int(env, "EMBED_QUEUE_LINGER_MS", DEFAULTS.lingerMs, 0, 60_000),
    leaseSeconds: int(env, "EMBED_QUEUE_LEASE_SECONDS", DEFAULTS.leaseSeconds, 1, 3600),
    requestTimeoutMs: int(env, "EMBED_QUEUE_REQUEST_TIMEOUT_MS", DEFAULTS.requestTimeoutMs, 100, 600_000),
    maxRequestRetries: int(env, "EMBED_QUEUE_MAX_REQUEST_RETRIES", DEFAULTS.maxRequestRetries, 0, 10),
    usdPerMillionTokens,
    dbUrl: read(env, "SUPABASE_DB_URL"),
    supabaseUrl: read(env, "SUPABASE_URL"),
    serviceRoleKey: read(env, "SUPABASE_SERVICE_ROLE_KEY"),
    secretKeys: readSecretKeys(env),
  };
}
