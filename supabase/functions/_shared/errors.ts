/**
 * Provider errors as a small taxonomy, classified by HTTP status or error class, never by
 * message text (the one exception: the index of a rejected input, which OpenAI only reports in
 * the message or `param`, e.g. "Invalid 'input[3]': ...").
 *
 * - retryable:    the same request may succeed later (5xx, 408, 409, timeouts, connection errors)
 * - rate_limited: 429; wait (retryAfterMs when the provider said) and the attempt is refunded
 * - auth:         401/403, or a 429 that says the account's quota is spent (`insufficient_quota`:
 *                 waiting does not help); no job can succeed until the operator fixes the key or
 *                 the account, so the run stops and no attempt is spent
 * - bad_request:  400/404/413/422; the request as sent will never succeed
 * - permanent:    other 4xx, or an answer we must not write (e.g. a vector of the wrong length)
 */
import { APIConnectionError, APIError, APIUserAbortError } from "openai";
import { retryAfterMs as readRetryAfter } from "./backoff.ts";

export type ErrorKind = "retryable" | "permanent" | "rate_limited" | "auth" | "bad_request";

export interface ProviderErrorOptions {
  status?: number;
  retryAfterMs?: number;
  badInputIndex?: number;
  /** Text written by this code (never the provider's or the user's) that operatorMessage may show. */
  hint?: string;
  cause?: unknown;
}

export class ProviderError extends Error {
  readonly kind: ErrorKind;
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly badInputIndex?: number;
  readonly hint?: string;

  /** `message` is sanitized here; it may still hold provider text, so show operatorMessage() to people. */
  constructor(kind: ErrorKind, message: string, opts: ProviderErrorOptions = {}) {
    super(sanitize(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "ProviderError";
    this.kind = kind;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    if (opts.badInputIndex !== undefined) this.badInputIndex = opts.badInputIndex;
    if (opts.hint !== undefined) this.hint = sanitize(opts.hint);
  }
}

/** 429 rate_limited; 401/403 auth; 400/404/413/422 bad_request; 408/409/5xx retryable; other 4xx permanent. */
export function classifyStatus(status: number): ErrorKind {
  if (status === 429) return "rate_limited";
  if (status === 401 || status === 403) return "auth";
  if (status === 400 || status === 404 || status === 413 || status === 422) return "bad_request";
  if (status === 408 || status === 409 || (status >= 500 && status <= 599)) return "retryable";
  if (status >= 400 && status <= 499) return "permanent";
  // 1xx/2xx/3xx reaching an error path means a confused proxy or server: try again later.
  return "retryable";
}

/** OpenAI's 429 for an account out of credit or over its spend limit, by its code or type. */
function isQuotaExhausted(e: APIError): boolean {
  return e.code === "insufficient_quota" || e.type === "insufficient_quota";
}

const INPUT_INDEX = /input\[(\d+)\]/;

function badInputIndexOf(e: APIError): number | undefined {
  for (const s of [e.param, e.message]) {
    const m = typeof s === "string" ? INPUT_INDEX.exec(s) : null;
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** Maps anything thrown while calling the provider (openai SDK errors, fetch errors, aborts) to a ProviderError. */
export function toProviderError(e: unknown): ProviderError {
  if (e instanceof ProviderError) return e;
  // Timeouts and connection failures first: they are APIErrors without a status.
  if (e instanceof APIUserAbortError) return new ProviderError("retryable", "request aborted", { cause: e });
  if (e instanceof APIConnectionError) {
    return new ProviderError("retryable", e.message || "connection error", { cause: e });
  }
  if (e instanceof APIError) {
    if (typeof e.status !== "number") return new ProviderError("retryable", e.message, { cause: e });
    if (e.status === 429 && isQuotaExhausted(e)) {
      return new ProviderError("auth", e.message, { status: 429, cause: e });
    }
    const kind = classifyStatus(e.status);
    const ra = e.headers instanceof Headers ? readRetryAfter(e.headers) : null;
    return new ProviderError(kind, e.message, {
      status: e.status,
      retryAfterMs: ra ?? undefined,
      badInputIndex: kind === "bad_request" ? badInputIndexOf(e) : undefined,
      cause: e,
    });
  }
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")) {
    return new ProviderError(
      "retryable",
      e.name === "TimeoutError" ? "request timed out" : "request aborted",
      {
        cause: e,
      },
    );
  }
  // fetch rejects with TypeError on network failures; anything else unknown is bounded by max_attempts.
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new ProviderError("retryable", message, { cause: e });
}

const MAX_LEN = 300;
const REDACTED = "[redacted]";

/**
 * Makes a message safe for logs and the queue's error column: one line, at most 300 characters,
 * without API keys (`sk-...`), bearer tokens, JWTs, the given secrets, long runs of numbers
 * (vectors) or long base64 blobs.
 */
export function sanitize(message: string, secrets: string[] = []): string {
  let s = String(message);
  for (const secret of secrets) {
    if (secret && secret.length >= 4) s = s.split(secret).join(REDACTED);
  }
  s = s
    .replace(/\bBearer\s+[^\s"',;]+/gi, `Bearer ${REDACTED}`)
    .replace(/\beyJ[\w-]*\.[\w-]+\.[\w-]*/g, "[jwt]")
    .replace(/\bsk-[\w-]{4,}(?:\*+[\w-]*)?/g, `sk-${REDACTED}`)
    .replace(/(?:-?\d+(?:\.\d+)?(?:e[-+]?\d+)?\s*,\s*){7,}-?\d+(?:\.\d+)?(?:e[-+]?\d+)?/gi, "[numbers]")
    .replace(/[A-Za-z0-9+/]{64,}={0,2}/g, "[blob]")
    .replace(/\s+/g, " ")
    .trim();
  if (s.length > MAX_LEN) s = s.slice(0, MAX_LEN - 1) + "…";
  return s;
}

/**
 * A short line for the operator (queue error column, run summary): what failed and what to
 * check. Built from the kind, the status and our own hint only, so it never carries user text,
 * provider text that may echo it, or a vector.
 */
export function operatorMessage(e: ProviderError): string {
  const st = e.status !== undefined ? ` (${e.status})` : "";
  const hint = e.hint ? `: ${e.hint}` : "";
  let msg: string;
  switch (e.kind) {
    case "auth":
      msg = e.status === 403
        ? `access denied${st}: check that OPENAI_API_KEY may use EMBEDDING_MODEL`
        : e.status === 429
        ? `quota exhausted (429 insufficient_quota): check the account's plan, credit and spend limit`
        : `authentication failed${st}: check OPENAI_API_KEY`;
      break;
    case "bad_request":
      if (e.status === 404) {
        msg = `model or endpoint not found${st}: check EMBEDDING_MODEL and OPENAI_BASE_URL`;
      } else if (e.status === 413) msg = `request too large${st}: lower the request size`;
      else msg = `provider rejected the input${st}: check the row's text${hint}`;
      break;
    case "rate_limited": {
      const wait = e.retryAfterMs !== undefined ? `, retry after ${Math.ceil(e.retryAfterMs / 1000)} s` : "";
      msg =
        `rate limited${st}${wait}: will retry; raise the account's limits or lower EMBED_QUEUE_CONCURRENCY`;
      break;
    }
    case "retryable":
      msg = e.status !== undefined
        ? `provider error${st}: will retry${hint}`
        : `provider unreachable or timed out: will retry; check OPENAI_BASE_URL and EMBED_QUEUE_REQUEST_TIMEOUT_MS${hint}`;
      break;
    case "permanent":
      msg = `provider answer unusable${st}${hint || ": check EMBEDDING_MODEL and EMBEDDING_DIMENSIONS"}`;
      break;
  }
  return sanitize(msg);
}
