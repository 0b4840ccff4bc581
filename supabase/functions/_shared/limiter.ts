/**
 * Paces provider requests by the provider's own signals: a cap on requests in flight, the
 * `x-ratelimit-*` headers of the last response (wait for the reset when what remains cannot
 * cover the next request), and a global pause after a 429. Written here because the pacing
 * follows OpenAI's headers, which general-purpose limiters do not read.
 */
import { parseResetDuration } from "./backoff.ts";

export interface RateLimitInfo {
  limitRequests?: number;
  limitTokens?: number;
  remainingRequests?: number;
  remainingTokens?: number;
  resetRequestsMs?: number;
  resetTokensMs?: number;
}

function num(h: Headers, name: string): number | undefined {
  const v = h.get(name);
  if (v === null || !/^\s*\d+(?:\.\d+)?\s*$/.test(v)) return undefined;
  return Number(v);
}

/** Reads `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; absent or unreadable headers are left out. */
export function parseRateLimitHeaders(h: Headers): RateLimitInfo {
  const info: RateLimitInfo = {};
  const set = <K extends keyof RateLimitInfo>(k: K, v: number | null | undefined) => {
    if (v !== undefined && v !== null) info[k] = v;
  };
  set("limitRequests", num(h, "x-ratelimit-limit-requests"));
  set("limitTokens", num(h, "x-ratelimit-limit-tokens"));
  set("remainingRequests", num(h, "x-ratelimit-remaining-requests"));
  set("remainingTokens", num(h, "x-ratelimit-remaining-tokens"));
  set("resetRequestsMs", parseResetDuration(h.get("x-ratelimit-reset-requests")));
  set("resetTokensMs", parseResetDuration(h.get("x-ratelimit-reset-tokens")));
  return info;
}

/** When a response says what remains but not when it resets, wait this long before trying again. */
const UNKNOWN_RESET_MS = 1000;

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export interface RateLimiterOptions {
  /** Requests in flight at most. */
  concurrency: number;
  /** Clock in ms; inject in tests. */
  now?: () => number;
  /** Waits `ms`; may end early when `signal` aborts. Inject in tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export class RateLimiter {
  readonly #concurrency: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #active = 0;
  readonly #waiters: Array<() => void> = [];
  #pausedUntil = 0;
  #remainingRequests?: number;
  #requestsResetAt?: number;
  #remainingTokens?: number;
  #tokensResetAt?: number;

  constructor(opts: RateLimiterOptions) {
    if (!(opts.concurrency >= 1)) throw new RangeError("RateLimiter: concurrency must be at least 1");
    this.#concurrency = Math.floor(opts.concurrency);
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? defaultSleep;
  }

  /** Requests holding a slot now. */
  get active(): number {
    return this.#active;
  }

  /**
   * Waits for a free slot and then, while paused or while the last seen remaining requests or
   * tokens cannot cover a request of `tokens`, until the reset. Returns release(), to call
   * once the response (or error) is in; calling it again does nothing. Rejects with the
   * signal's reason when `signal` aborts, holding nothing.
   */
  async acquire(tokens: number, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    await this.#takeSlot(signal);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#waiters.shift()?.();
    };
    try {
      for (let wait = this.#waitMs(tokens); wait > 0; wait = this.#waitMs(tokens)) {
        await this.#sleepUnlessAborted(wait, signal);
      }
    } catch (e) {
      release();
      throw e;
    }
    // Count this request against what remains until the next response says otherwise.
    if (this.#remainingRequests !== undefined) this.#remainingRequests -= 1;
    if (this.#remainingTokens !== undefined) this.#remainingTokens -= tokens;
    return release;
  }

  /** Takes in what a response's headers said (after each response, success or not). */
  observe(info: RateLimitInfo): void {
    const now = this.#now();
    if (info.remainingRequests !== undefined) {
      this.#remainingRequests = info.remainingRequests;
      this.#requestsResetAt = now + (info.resetRequestsMs ?? UNKNOWN_RESET_MS);
    }
    if (info.remainingTokens !== undefined) {
      this.#remainingTokens = info.remainingTokens;
      this.#tokensResetAt = now + (info.resetTokensMs ?? UNKNOWN_RESET_MS);
    }
  }

  /** After a 429 with retry-after: no request starts for `ms`. */
  pauseFor(ms: number): void {
    if (!(ms > 0)) return;
    this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + ms);
  }

  #waitMs(tokens: number): number {
    const now = this.#now();
    // Past a reset, the old numbers say nothing: forget them until the next response.
    if (this.#requestsResetAt !== undefined && now >= this.#requestsResetAt) {
      this.#remainingRequests = this.#requestsResetAt = undefined;
    }
    if (this.#tokensResetAt !== undefined && now >= this.#tokensResetAt) {
      this.#remainingTokens = this.#tokensResetAt = undefined;
    }
    let until = this.#pausedUntil;
    if (this.#remainingRequests !== undefined && this.#remainingRequests < 1) {
      until = Math.max(until, this.#requestsResetAt!);
    }
    if (this.#remainingTokens !== undefined && this.#remainingTokens < tokens) {
      until = Math.max(until, this.#tokensResetAt!);
    }
    return until - now;
  }

  #takeSlot(signal?: AbortSignal): Promise<void> {
    if (this.#active < this.#concurrency && this.#waiters.length === 0) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal!.reason);
      };
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#active++;
        resolve();
      };
      this.#waiters.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  async #sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
    if (!signal) return await this.#sleep(ms);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([this.#sleep(ms, signal), aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
    signal.throwIfAborted();
  }
}
