/**
 * A local OpenAI-compatible embeddings server for tests. It speaks the real protocol at
 * `POST {baseUrl}/embeddings` (baseUrl ends with `/v1`): bearer auth, OpenAI's limits and
 * error shapes, `encoding_format` float or base64, `dimensions`, real token counts
 * (cl100k_base), and `x-ratelimit-*` headers on every response. Vectors are fakeVector(text, dimensions, model).
 *
 * Behaviour is injected over HTTP so a test in another process can drive it:
 * - `POST {origin}/_admin/script` sets any of the FakeScript fields below (others are kept);
 * - `GET  {origin}/_admin/stats`  returns FakeStats;
 * - `POST {origin}/_admin/reset`  clears the script, the stats and the rate-limit windows, and
 *   releases hung requests;
 * - `GET  {origin}/_admin/admitted` returns `[[epoch ms, tokens], ...]`: each request let through
 *   the rate limits since the last reset (at most the last 10,000), to see pacing over time;
 * - `POST {origin}/_admin/prefill` `{"share": 1}` fills the rate-limit windows to that share of
 *   rpm and tpm, spread evenly over the last 60 s, as if a client had been sending at that rate
 *   for a minute: from then on capacity comes back at the steady rate, with no first-minute burst.
 *
 * The Files and Batches endpoints (`/v1/files`, `/v1/batches`) are openai_batches.ts; their
 * script and stats are at `POST {origin}/_admin/batch_script` and `GET {origin}/_admin/batch_stats`
 * (reset clears them too).
 *
 * Run on its own: `deno run --allow-net --allow-env tests/fakes/openai_server.ts [--port N]`;
 * it prints one JSON line `{"baseUrl":..., "apiKey":...}` when it listens.
 */
import { createHash } from "node:crypto";
import { countTokens as exactCount } from "gpt-tokenizer/encoding/cl100k_base";
import { fakeVector } from "./fake_vector.ts";
import { mulberry32 } from "../lib/prng.ts";
import { sleep } from "../../supabase/functions/_shared/sleep.ts";
import { FakeBatches } from "./openai_batches.ts";

/** One scripted answer, consumed by the next authenticated embeddings request. */
export type FailStep =
  | { status: number; retry_after_ms?: number; message?: string; code?: string }
  /** No answer until the admin reset or the server closes; the client's timeout ends it. */
  | { hang: true };

export interface FakeScript {
  /** Any input containing this substring gets a 400 naming its index ("Invalid 'input[3]': ..."). */
  poison: string | null;
  /** Answers to give instead of embedding, one per request, in order. */
  fail: FailStep[];
  /** Delay before each successful answer. */
  latency_ms: number;
  /** Extra delay per input token, in microseconds. */
  per_token_latency_us: number;
  /** Requests per minute over a sliding 60 s window (429 beyond it); null: 10 000, not enforced. */
  rpm: number | null;
  /** Tokens per minute over a sliding 60 s window (429 beyond it); null: 10 000 000, not enforced. */
  tpm: number | null;
  /** Answer with vectors of this length whatever was asked (to test a wrong-dimension answer). */
  force_dimensions: number | null;
  /**
   * Chances of a fault for each request that reaches the fail queue and finds it empty, drawn
   * from a seeded PRNG (`seed`): "429" (rate limited, retry-after 1 s), "500", "hang" (no
   * answer for `hang_ms`, then 504; a reset or close ends it sooner). They are shares of all
   * such requests and add up to at most 1; e.g. {"429": 0.2, "500": 0.1, "hang": 0.02}.
   */
  rates: FaultRates;
  /** How long a hang drawn from `rates` lasts before it is answered 504. */
  hang_ms: number;
  /** Seed of the PRNG behind `rates`; setting it (even to the same value) restarts the sequence. */
  seed: number;
}

export interface FaultRates {
  "429"?: number;
  "500"?: number;
  hang?: number;
}

export interface FakeStats {
  /** Every embeddings request, whatever its answer. */
  requests: number;
  /** Inputs embedded (in 200 answers). */
  inputs: number;
  /** Tokens embedded (in 200 answers). */
  tokens: number;
  /** Answers by HTTP status, e.g. {"200": 3, "429": 1}. */
  by_status: Record<string, number>;
  /** Distinct texts embedded. */
  texts_seen: number;
  /** How often each text was embedded, keyed by the sha256 hex of its UTF-8. */
  inputs_by_text_hash: Record<string, number>;
}

export interface FakeOpenAI {
  baseUrl: string;
  apiKey: string;
  close(): Promise<void>;
}

const MAX_INPUTS = 2048;
const MAX_INPUT_TOKENS = 8192;
const MAX_REQUEST_TOKENS = 300_000;
const WINDOW_MS = 60_000;
const DEFAULT_RPM = 10_000;
const DEFAULT_TPM = 10_000_000;
const PLAIN = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };

function emptyScript(): FakeScript {
  return {
    poison: null,
    fail: [],
    latency_ms: 0,
    per_token_latency_us: 0,
    rpm: null,
    tpm: null,
    force_dimensions: null,
    rates: {},
    hang_ms: 30_000,
    seed: 1,
  };
}

function emptyStats(): FakeStats {
  return { requests: 0, inputs: 0, tokens: 0, by_status: {}, texts_seen: 0, inputs_by_text_hash: {} };
}

/** Hex sha256 of the text's UTF-8 bytes: the same value as the database's embed_queue.content_hash(text). */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Go-style durations as OpenAI sends them: "0s", "9ms", "1s", "6m0s", "1h2m3s". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const total = ms / 1000;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = Math.round((total % 60) * 1000) / 1000;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** Little-endian float32 base64, written independently of the function's decoder. */
function toBase64(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i], true);
  // The runtime's own encoder (Uint8Array.prototype.toBase64, in the pinned Deno): building a
  // binary string a byte at a time cost ~100 µs per 1,536-float vector, the fake's largest share
  // of CPU in the benchmarks, which share the machine with the system they measure.
  return (bytes as unknown as { toBase64(): string }).toBase64();
}

function defaultDimensions(model: string): number {
  return model === "text-embedding-3-large" ? 3072 : 1536;
}

/** A sliding 60 s window of (time, amount) entries. */
class Window {
  entries: Array<{ t: number; n: number }> = [];
  used(now: number): number {
    while (this.entries.length && this.entries[0].t <= now - WINDOW_MS) this.entries.shift();
    return this.entries.reduce((a, e) => a + e.n, 0);
  }
  /** Time until `need` more fits under `limit`. */
  waitFor(need: number, limit: number, now: number): number {
    let used = this.used(now);
    if (used + need <= limit) return 0;
    for (const e of this.entries) {
      used -= e.n;
      if (used + need <= limit) return e.t + WINDOW_MS - now;
    }
    return WINDOW_MS;
  }
  /** Time until the oldest entry leaves, when what remains next grows. */
  reset(now: number): number {
    this.used(now);
    return this.entries.length ? this.entries[0].t + WINDOW_MS - now : 0;
  }
}

function checkScript(body: unknown): Partial<FakeScript> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new Error("script must be an object");
  }
  const out: Partial<FakeScript> = {};
  const known = new Set(Object.keys(emptyScript()));
  for (const [k, v] of Object.entries(body)) {
    if (!known.has(k)) throw new Error(`unknown script field "${k}"`);
    const nullableNumber = v === null || (typeof v === "number" && v > 0);
    switch (k) {
      case "poison":
        if (v !== null && (typeof v !== "string" || v === "")) {
          throw new Error("poison: a non-empty string or null");
        }
        out.poison = v as string | null;
        break;
      case "fail":
        if (
          !Array.isArray(v) ||
          !v.every((s) =>
            typeof s === "object" && s !== null &&
            (s.hang === true || (Number.isInteger(s.status) && s.status >= 400 && s.status <= 599))
          )
        ) throw new Error("fail: a list of {status: 400..599, retry_after_ms?} or {hang: true}");
        out.fail = v as FailStep[];
        break;
      case "latency_ms":
      case "per_token_latency_us":
        if (typeof v !== "number" || !(v >= 0)) throw new Error(`${k}: a number >= 0`);
        out[k] = v;
        break;
      case "rates": {
        const keys = ["429", "500", "hang"];
        if (
          typeof v !== "object" || v === null || Array.isArray(v) ||
          !Object.entries(v).every(([rk, rv]) =>
            keys.includes(rk) && typeof rv === "number" && rv >= 0 && rv <= 1
          ) ||
          Object.values(v as Record<string, number>).reduce((a, b) => a + b, 0) > 1
        ) throw new Error('rates: {"429"?, "500"?, "hang"?} with shares from 0 to 1 adding up to at most 1');
        out.rates = v as FaultRates;
        break;
      }
      case "hang_ms":
        if (typeof v !== "number" || !(v >= 0)) throw new Error(`${k}: a number >= 0`);
        out.hang_ms = v;
        break;
      case "seed":
        if (!Number.isInteger(v)) throw new Error("seed: an integer");
        out.seed = v as number;
        break;
      case "rpm":
      case "tpm":
      case "force_dimensions":
        if (!nullableNumber) throw new Error(`${k}: a number > 0 or null`);
        out[k] = v as number | null;
        break;
    }
  }
  return out;
}

export function startFakeOpenAI(opts: { port?: number; apiKey?: string } = {}): Promise<FakeOpenAI> {
  const apiKey = opts.apiKey ?? `sk-fake-${crypto.randomUUID().replaceAll("-", "")}`;
  let script = emptyScript();
  let random = mulberry32(script.seed);
  let stats = emptyStats();
  let admitted: Array<[number, number]> = [];
  let requestsWindow = new Window();
  let tokensWindow = new Window();
  const closing = new AbortController();
  /** Aborted by reset: hung requests then get their (504) answer. */
  let hangs = new AbortController();
  const batches = new FakeBatches(sha256Hex, toBase64);

  const bump = (status: number) => {
    stats.by_status[String(status)] = (stats.by_status[String(status)] ?? 0) + 1;
  };

  const rateHeaders = (): Record<string, string> => {
    const now = Date.now();
    const rpm = script.rpm ?? DEFAULT_RPM;
    const tpm = script.tpm ?? DEFAULT_TPM;
    return {
      "x-ratelimit-limit-requests": String(rpm),
      "x-ratelimit-limit-tokens": String(tpm),
      "x-ratelimit-remaining-requests": String(Math.max(0, rpm - requestsWindow.used(now))),
      "x-ratelimit-remaining-tokens": String(Math.max(0, tpm - tokensWindow.used(now))),
      "x-ratelimit-reset-requests": formatDuration(requestsWindow.reset(now)),
      "x-ratelimit-reset-tokens": formatDuration(tokensWindow.reset(now)),
    };
  };

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    bump(status);
    return new Response(JSON.stringify(body), {
      status,
      headers: {
        "content-type": "application/json",
        "x-request-id": `req_${crypto.randomUUID().replaceAll("-", "")}`,
        ...rateHeaders(),
        ...headers,
      },
    });
  };

  const apiError = (
    status: number,
    message: string,
    extra: { type?: string; param?: string | null; code?: string | null; headers?: Record<string, string> } =
      {},
  ) =>
    json(status, {
      error: {
        message,
        type: extra.type ??
          (status === 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error"),
        param: extra.param ?? null,
        code: extra.code ?? null,
      },
    }, extra.headers);

  const retryHeaders = (ms: number): Record<string, string> => ({
    "retry-after-ms": String(Math.ceil(ms)),
    "retry-after": String(Math.max(1, Math.ceil(ms / 1000))),
  });

  /**
   * Waits `ms`, or less when the server closes. (It cannot see a client that went away:
   * reading `request.signal` makes Deno warn about its legacy abort behaviour.)
   */
  const pause = (ms: number, signal: AbortSignal = closing.signal) => sleep(ms, signal);

  async function embeddings(req: Request): Promise<Response> {
    stats.requests++;
    const auth = req.headers.get("authorization") ?? "";
    if (auth !== `Bearer ${apiKey}`) {
      const shown = auth.startsWith("Bearer ") ? `${auth.slice(7, 10)}***${auth.slice(-4)}` : "";
      return apiError(
        401,
        shown
          ? `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`
          : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        { code: "invalid_api_key" },
      );
    }
    let body: Record<string, unknown>;
    try {
      body = await req.json();
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error();
    } catch {
      return apiError(400, "We could not parse the JSON body of your request.");
    }

    const step = script.fail.shift();
    if (step && "hang" in step) {
      await pause(Infinity, AbortSignal.any([closing.signal, hangs.signal]));
      return apiError(504, "hung request released");
    }
    if (!step) {
      const x = random();
      const r429 = script.rates["429"] ?? 0, r500 = script.rates["500"] ?? 0, rHang = script.rates.hang ?? 0;
      if (x < r429) {
        return apiError(429, "Rate limit reached (drawn). Please try again later.", {
          type: "requests",
          code: "rate_limit_exceeded",
          headers: retryHeaders(1000),
        });
      }
      if (x < r429 + r500) {
        return apiError(500, "The server had an error while processing your request. Sorry about that!");
      }
      if (x < r429 + r500 + rHang) {
        await pause(script.hang_ms, AbortSignal.any([closing.signal, hangs.signal]));
        return apiError(504, "hung request released");
      }
    }
    if (step) {
      if (step.status === 429 && step.code === "insufficient_quota") {
        // OpenAI's answer for an account out of credit: a 429 with no retry-after.
        return apiError(
          429,
          "You exceeded your current quota, please check your plan and billing details.",
          { type: "insufficient_quota", code: "insufficient_quota" },
        );
      }
      const headers = step.status === 429 ? retryHeaders(step.retry_after_ms ?? 1000) : {};
      const message = step.message ??
        (step.status === 429
          ? "Rate limit reached (scripted). Please try again later."
          : step.status >= 500
          ? "The server had an error while processing your request. Sorry about that!"
          : "Scripted failure.");
      return apiError(step.status, message, { headers });
    }

    const model = body.model;
    if (typeof model !== "string" || model === "") {
      return apiError(400, "you must provide a model parameter", { param: "model" });
    }
    const rawInput = body.input;
    const inputs: unknown[] = typeof rawInput === "string"
      ? [rawInput]
      : Array.isArray(rawInput)
      ? rawInput
      : [];
    if (
      (typeof rawInput !== "string" && !Array.isArray(rawInput)) || inputs.length === 0 ||
      !inputs.every((s) => typeof s === "string")
    ) {
      return apiError(
        400,
        "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        {
          param: "input",
        },
      );
    }
    const texts = inputs as string[];
    if (texts.length > MAX_INPUTS) {
      return apiError(
        400,
        `'$.input' is too long: ${texts.length} inputs, at most ${MAX_INPUTS} per request.`,
        {
          param: "input",
        },
      );
    }
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") {
      return apiError(400, `Invalid value for 'encoding_format': must be 'float' or 'base64'.`, {
        param: "encoding_format",
      });
    }
    let dims = defaultDimensions(model);
    if (body.dimensions !== undefined && body.dimensions !== null) {
      if (!model.startsWith("text-embedding-3")) {
        return apiError(400, "This model does not support specifying dimensions.", { param: "dimensions" });
      }
      const d = body.dimensions;
      if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > dims) {
        return apiError(400, `Invalid 'dimensions': must be an integer from 1 to ${dims}.`, {
          param: "dimensions",
        });
      }
      dims = d;
    }
    const estimate = texts.reduce((n, t) => n + Math.ceil(utf8Bytes(t) / 4), 0);
    if (estimate > MAX_REQUEST_TOKENS) {
      return apiError(
        400,
        `Requested ${estimate} tokens, max ${MAX_REQUEST_TOKENS} tokens per request`,
        { param: "input", code: "max_tokens_per_request" },
      );
    }
    const counts: number[] = [];
    for (let i = 0; i < texts.length; i++) {
      if (texts[i] === "") {
        return apiError(400, `Invalid 'input[${i}]': empty string.`, { param: `input[${i}]` });
      }
      const n = exactCount(texts[i], PLAIN);
      if (n > MAX_INPUT_TOKENS) {
        return apiError(
          400,
          `Invalid 'input[${i}]': maximum input length is ${MAX_INPUT_TOKENS} tokens, however you requested ${n} tokens.`,
          { param: `input[${i}]` },
        );
      }
      counts.push(n);
    }
    if (script.poison !== null) {
      const i = texts.findIndex((t) => t.includes(script.poison!));
      if (i >= 0) {
        return apiError(
          400,
          `Invalid 'input[${i}]': the input was rejected by the server's content checks.`,
          {
            param: `input[${i}]`,
          },
        );
      }
    }
    const tokens = counts.reduce((a, b) => a + b, 0);

    const now = Date.now();
    const waits: number[] = [];
    if (script.rpm !== null) waits.push(requestsWindow.waitFor(1, script.rpm, now));
    if (script.tpm !== null) waits.push(tokensWindow.waitFor(tokens, script.tpm, now));
    const wait = Math.max(0, ...waits);
    if (wait > 0) {
      const which = script.rpm !== null && waits[0] > 0 ? "requests" : "tokens";
      return apiError(
        429,
        `Rate limit reached for ${model} on ${which} per min (RPM/TPM): Please try again in ${
          formatDuration(wait)
        }.`,
        { type: which, code: "rate_limit_exceeded", headers: retryHeaders(wait) },
      );
    }
    requestsWindow.entries.push({ t: now, n: 1 });
    tokensWindow.entries.push({ t: now, n: tokens });
    admitted.push([now, tokens]);
    if (admitted.length > 10_000) admitted.shift();

    const delay = script.latency_ms + (tokens * script.per_token_latency_us) / 1000;
    if (delay > 0) await pause(delay);

    const outDims = script.force_dimensions ?? dims;
    const data = texts.map((t, index) => {
      const v = fakeVector(t, outDims, model);
      return { object: "embedding", index, embedding: format === "base64" ? toBase64(v) : Array.from(v) };
    });
    stats.inputs += texts.length;
    stats.tokens += tokens;
    for (const t of texts) {
      const h = sha256Hex(t);
      if (stats.inputs_by_text_hash[h] === undefined) stats.texts_seen++;
      stats.inputs_by_text_hash[h] = (stats.inputs_by_text_hash[h] ?? 0) + 1;
    }
    return json(200, { object: "list", data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const plain = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
    if (url.pathname === "/_admin/stats" && req.method === "GET") return plain(200, stats);
    if (url.pathname === "/_admin/admitted" && req.method === "GET") return plain(200, admitted);
    if (url.pathname === "/_admin/batch_stats" && req.method === "GET") return plain(200, batches.stats);
    if (url.pathname === "/_admin/batch_script" && req.method === "POST") {
      try {
        return plain(200, { ok: true, script: batches.setScript(await req.json()) });
      } catch (e) {
        return plain(400, { error: (e as Error).message });
      }
    }
    if (url.pathname === "/_admin/reset" && req.method === "POST") {
      await req.body?.cancel();
      batches.reset();
      hangs.abort();
      hangs = new AbortController();
      script = emptyScript();
      random = mulberry32(script.seed);
      stats = emptyStats();
      admitted = [];
      requestsWindow = new Window();
      tokensWindow = new Window();
      return plain(200, { ok: true });
    }
    if (url.pathname === "/_admin/script" && req.method === "POST") {
      try {
        const change = checkScript(await req.json());
        script = { ...script, ...change };
        if (change.seed !== undefined) random = mulberry32(change.seed);
      } catch (e) {
        return plain(400, { error: (e as Error).message });
      }
      return plain(200, { ok: true, script });
    }
    if (url.pathname === "/_admin/prefill" && req.method === "POST") {
      let share: unknown;
      try {
        share = (await req.json())?.share;
      } catch { /* checked below */ }
      if (typeof share !== "number" || !(share >= 0 && share <= 1)) {
        return plain(400, { error: 'prefill: {"share": a number from 0 to 1}' });
      }
      // Evenly spread entries over the last window, oldest first: SLICES per window, so the
      // capacity comes back in steps of 1/SLICES of a minute (100 ms).
      const SLICES = 600;
      const now = Date.now();
      requestsWindow = new Window();
      tokensWindow = new Window();
      const rpm = script.rpm ?? DEFAULT_RPM, tpm = script.tpm ?? DEFAULT_TPM;
      for (let i = 0; i < SLICES; i++) {
        const t = now - WINDOW_MS + ((i + 1) * WINDOW_MS) / SLICES;
        const part = (total: number) =>
          Math.floor((total * share * (i + 1)) / SLICES) - Math.floor((total * share * i) / SLICES);
        requestsWindow.entries.push({ t, n: part(rpm) });
        tokensWindow.entries.push({ t, n: part(tpm) });
      }
      return plain(200, { ok: true, requests: requestsWindow.used(now), tokens: tokensWindow.used(now) });
    }
    if (url.pathname === "/v1/embeddings" && req.method === "POST") return await embeddings(req);
    if (url.pathname.startsWith("/v1/files") || url.pathname.startsWith("/v1/batches")) {
      if (req.headers.get("authorization") !== `Bearer ${apiKey}`) {
        await req.body?.cancel();
        return apiError(401, "Incorrect API key provided.", { code: "invalid_api_key" });
      }
      const answer = await batches.handle(req, url, apiError, json);
      if (answer) return answer;
    }
    await req.body?.cancel();
    return plain(404, {
      error: {
        message: `Invalid URL (${req.method} ${url.pathname})`,
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    });
  }

  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: "127.0.0.1",
        port: opts.port ?? 0,
        onListen: ({ port }) => {
          resolve({
            baseUrl: `http://127.0.0.1:${port}/v1`,
            apiKey,
            close: async () => {
              closing.abort();
              await server.shutdown();
            },
          });
        },
      }, handle);
    } catch (e) {
      reject(e);
    }
  });
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--port");
  const port = i >= 0 ? Number(Deno.args[i + 1]) : 0;
  const apiKey = Deno.env.get("EQ_FAKE_OPENAI_KEY") || undefined;
  const fake = await startFakeOpenAI({ port, apiKey });
  const stop = async () => {
    await fake.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(JSON.stringify({ baseUrl: fake.baseUrl, apiKey: fake.apiKey }));
}
