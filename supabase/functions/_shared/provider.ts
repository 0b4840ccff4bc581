/**
 * Embedding providers: OpenAI (or any OpenAI-compatible server) through the official SDK, and
 * an offline local provider. Both return one Float32Array per input, in input order, and throw
 * ProviderError only.
 */
import OpenAI from "openai";
import type { Config } from "./config.ts";
import { ProviderError, toProviderError } from "./errors.ts";
import { parseRateLimitHeaders, type RateLimitInfo } from "./limiter.ts";
import { countTokens } from "./tokens.ts";
import { decodeBase64Float32 } from "./vectors.ts";

export interface EmbedResult {
  /** vectors[i] embeds inputs[i]. */
  vectors: Float32Array[];
  promptTokens: number;
  rate: RateLimitInfo;
}

/** Runs a synchronous piece of work and counts its time (embed-queue's budget.ts). */
export type Meter = <T>(f: () => T) => T;

export interface EmbeddingProvider {
  readonly name: string;
  readonly model: string;
  readonly dimensions: number;
  /**
   * Throws ProviderError. `meter` times the synchronous work done after the answer arrives
   * (decoding the vectors), which the caller cannot time around an awaited call.
   */
  embed(inputs: string[], signal?: AbortSignal, meter?: Meter): Promise<EmbedResult>;
}

export function createProvider(cfg: Config, opts: { fetch?: typeof fetch } = {}): EmbeddingProvider {
  return cfg.provider === "local"
    ? new LocalProvider(cfg.model, cfg.dimensions)
    : new OpenAIProvider(cfg, opts.fetch);
}

/** Only the text-embedding-3 family accepts a `dimensions` parameter. */
function acceptsDimensions(model: string): boolean {
  return model.startsWith("text-embedding-3");
}

class OpenAIProvider implements EmbeddingProvider {
  readonly name = "openai";
  readonly model: string;
  readonly dimensions: number;
  readonly #client: OpenAI;

  constructor(cfg: Config, fetchImpl?: typeof fetch) {
    this.model = cfg.model;
    this.dimensions = cfg.dimensions;
    this.#client = new OpenAI({
      // A keyless OpenAI-compatible server (Ollama, vLLM) still needs some value for the SDK.
      apiKey: cfg.openaiApiKey ?? "unused",
      baseURL: cfg.openaiBaseUrl,
      // Retries are the worker's, with the queue's accounting; the SDK must not add its own.
      maxRetries: 0,
      timeout: cfg.requestTimeoutMs,
      fetch: fetchImpl,
    });
  }

  async embed(inputs: string[], signal?: AbortSignal, meter: Meter = (f) => f()): Promise<EmbedResult> {
    if (inputs.length === 0) return { vectors: [], promptTokens: 0, rate: {} };
    let data: OpenAI.CreateEmbeddingResponse | {
      data: Array<{ index: number; embedding: unknown }>;
      usage?: unknown;
    };
    let rate: RateLimitInfo;
    try {
      const res = await this.#client.embeddings.create(
        {
          model: this.model,
          input: inputs,
          encoding_format: "base64",
          ...(acceptsDimensions(this.model) ? { dimensions: this.dimensions } : {}),
        },
        { signal },
      ).withResponse();
      data = res.data;
      rate = parseRateLimitHeaders(res.response.headers);
    } catch (e) {
      throw toProviderError(e);
    }
    const items = data.data;
    return {
      vectors: meter(() => this.#vectors(items, inputs.length)),
      promptTokens: promptTokensOf(data.usage, inputs),
      rate,
    };
  }

  #vectors(items: unknown, expected: number): Float32Array[] {
    if (!Array.isArray(items) || items.length !== expected) {
      const got = Array.isArray(items) ? items.length : "no";
      throw new ProviderError("retryable", `provider returned ${got} embeddings for ${expected} inputs`, {
        hint: `provider returned ${got} embeddings for ${expected} inputs`,
      });
    }
    const out = new Array<Float32Array | undefined>(expected);
    for (let k = 0; k < items.length; k++) {
      const item = items[k] as { index?: unknown; embedding?: unknown };
      // Servers that omit `index` answer in input order.
      const i = typeof item.index === "number" ? item.index : k;
      if (!Number.isInteger(i) || i < 0 || i >= expected || out[i] !== undefined) {
        throw new ProviderError(
          "retryable",
          "provider returned embeddings with missing or repeated indexes",
          {
            hint: "provider returned embeddings with missing or repeated indexes",
          },
        );
      }
      const v = toFloat32(item.embedding);
      if (v.length !== this.dimensions) {
        const hint = `provider returned ${v.length} dimensions, expected ${this.dimensions}: ` +
          `check EMBEDDING_MODEL and EMBEDDING_DIMENSIONS`;
        throw new ProviderError("permanent", hint, { hint });
      }
      for (let j = 0; j < v.length; j++) {
        if (!Number.isFinite(v[j])) {
          throw new ProviderError("retryable", "provider returned a vector with a non-finite value", {
            hint: "provider returned a vector with a non-finite value",
          });
        }
      }
      out[i] = v;
    }
    return out as Float32Array[];
  }
}

/** The SDK hands back the base64 string we asked for, a number[] (some servers), or a Float32Array (SDK decoding). */
function toFloat32(e: unknown): Float32Array {
  try {
    if (typeof e === "string") return decodeBase64Float32(e);
    if (e instanceof Float32Array) return e;
    if (Array.isArray(e) && e.every((x) => typeof x === "number")) return Float32Array.from(e);
  } catch {
    // fall through: unreadable
  }
  throw new ProviderError("retryable", "provider returned an embedding in an unknown encoding", {
    hint: "provider returned an embedding in an unknown encoding",
  });
}

function promptTokensOf(usage: unknown, inputs: string[]): number {
  const t = (usage as { prompt_tokens?: unknown } | undefined)?.prompt_tokens;
  if (typeof t === "number" && Number.isFinite(t) && t >= 0) return t;
  // Servers without usage (some OpenAI-compatible ones): count ourselves.
  return inputs.reduce((n, s) => n + countTokens(s), 0);
}

/**
 * Offline provider "local-hash-v1". It is LEXICAL, NOT SEMANTIC: signed feature hashing of the
 * lower-cased words (weight 1) and of each word's character 3-grams (weight 0.5, word padded
 * with spaces) into `dimensions` buckets, L2-normalized. Texts that share words or word parts
 * get a positive cosine similarity and an identical text gives 1.0; synonyms and paraphrases
 * get nothing. It exists so the queue works end to end without a key, and for tests.
 */
class LocalProvider implements EmbeddingProvider {
  readonly name = "local";
  readonly model: string;
  readonly dimensions: number;

  constructor(model: string, dimensions: number) {
    this.model = model;
    this.dimensions = dimensions;
  }

  embed(inputs: string[], signal?: AbortSignal): Promise<EmbedResult> {
    try {
      signal?.throwIfAborted();
    } catch (e) {
      return Promise.reject(toProviderError(e));
    }
    const vectors = inputs.map((t) => localEmbedding(t, this.dimensions));
    const promptTokens = inputs.reduce((n, s) => n + countTokens(s), 0);
    return Promise.resolve({ vectors, promptTokens, rate: {} });
  }
}

const WORD = /[\p{L}\p{N}]+/gu;

/** The local provider's vector for one text (exported for tests). */
export function localEmbedding(text: string, dimensions: number): Float32Array {
  const acc = new Float64Array(dimensions);
  const add = (feature: string, weight: number) => {
    const h = fnv1a(feature);
    const sign = h >>> 31 ? -1 : 1;
    acc[(h & 0x7fffffff) % dimensions] += sign * weight;
  };
  const words = text.toLowerCase().match(WORD) ?? [];
  for (const w of words) {
    add(`w:${w}`, 1);
    const padded = ` ${w} `;
    const chars = Array.from(padded);
    for (let i = 0; i + 3 <= chars.length; i++) add(`g:${chars.slice(i, i + 3).join("")}`, 0.5);
  }
  // Text with no letters or digits (punctuation, emoji) is one feature of its own.
  if (words.length === 0) add(`t:${text.trim()}`, 1);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += acc[i] * acc[i];
  norm = Math.sqrt(norm);
  const out = new Float32Array(dimensions);
  if (norm === 0) {
    // Every feature cancelled out (possible in very few dimensions): any fixed unit vector will do.
    out[0] = 1;
    return out;
  }
  for (let i = 0; i < dimensions; i++) out[i] = acc[i] / norm;
  return out;
}

/** 32-bit FNV-1a over UTF-16 code units: fast, stable, good enough spread for feature hashing. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche so the sign bit does not follow the low bits.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
