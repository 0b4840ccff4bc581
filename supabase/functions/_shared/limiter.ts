/**
 * Paces provider requests by the provider's own signals: a cap on requests in flight in this
 * run (lanes), and a pace shared by every run (PaceStore): a token bucket per dimension that
 * refills at the `x-ratelimit-limit-*` per minute, is lowered to what `x-ratelimit-remaining-*`
 * says, and pauses everyone after a 429. On Supabase the store is the table embed_queue.pace
 * (db.ts), so overlapping invocations keep one pace instead of each learning the limits alone;
 * MemoryPace is the same algorithm in memory, for tests and for tools with no database.
 * Written here because the pacing follows OpenAI's headers, which general-purpose limiters do
 * not read.
 */
import { parseResetDuration } from "./backoff.ts";
import { sleep } from "./sleep.ts";

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
  const set = <K extends keyof RateLimitInfo>(
    k: K,
    v: number | null | undefined,
  ) => {
    if (v !== undefined && v !== null) info[k] = v;
  };
  set("limitRequests", num(h, "x-ratelimit-limit-requests"));
  set("limitTokens", num(h, "x-ratelimit-limit-tokens"));
  set("remainingRequests", num(h, "x-ratelimit-remaining-requests"));
  set("remainingTokens", num(h, "x-ratelimit-remaining-tokens"));
  set(
    "resetRequestsMs",
    parseResetDuration(h.get("x-ratelimit-reset-requests")),
  );
  set("resetTokensMs", parseResetDuration(h.get("x-ratelimit-reset-tokens")));
  return info;
}

/**
 * Where a reservation stands among every run's (pace_take's tokens_mark, requests_mark): passed
 * back with the response, so the level becomes what the provider says remains less what was
 * reserved after this request.
 */
export interface PaceMark {
  tokens: number;
  requests: number;
}

/** Answer of PaceStore.take. */
export interface PaceGrant {
  /** true: one request and its tokens are reserved; send after waitMs. false: nothing reserved; ask again after waitMs. */
  granted: boolean;
  waitMs: number;
  limitRequests?: number;
  limitTokens?: number;
  /** Granted with the limits known: this reservation's mark, for observe(). */
  mark?: PaceMark;
}

/** The provider's pace as every run sees it (embed_queue.pace through db.ts; MemoryPace in tests). */
export interface PaceStore {
  /** Reserves one request of `tokens`; not granted when the wait would pass `maxWaitMs` (or a probe is out). */
  take(tokens: number, maxWaitMs?: number): Promise<PaceGrant>;
  /**
   * Takes in a response's x-ratelimit-* headers; null: an answer without them (an error), which
   * only ends a probe. With the request's `mark` a level becomes what remains less what was
   * reserved after it, up or down; without, it is only lowered to what remains.
   */
  observe(info: RateLimitInfo | null, mark?: PaceMark): Promise<void>;
  /**
   * After a 429: nobody sends for `ms` (null: the settings' default), and the refused request's
   * reservation (`refundTokens` and its request) is given back: it is taken again when it is
   * sent again. Resolves to the pause applied.
   */
  pause(ms: number | null, refundTokens?: number): Promise<number>;
  /** The limits per minute last seen by any run (undefined: not known yet); changes nothing. */
  limits(): Promise<{ limitRequests?: number; limitTokens?: number }>;
}

/** Limits not known yet: the one request out to learn them counts as answered after this long (as in SQL). */
const PROBE_MS = 5000;
/** With a probe out, ask again after at most this long (as in SQL). */
const PROBE_POLL_MS = 200;

/**
 * The pace in memory: the algorithm of embed_queue.pace_take / pace_observe / pace_pause
 * (supabase/migrations/20261124001000_pace.sql), for unit tests and single-process tools.
 */
export class MemoryPace implements PaceStore {
  readonly #now: () => number;
  readonly #defaultPauseMs: number;
  limitRequests?: number;
  limitTokens?: number;
  requestsLevel = 0;
  tokensLevel = 0;
  levelAt: number;
  pausedUntil = 0;
  probeUntil = 0;
  observed = false;
  tokensTaken = 0;
  requestsTaken = 0;
  /** Calls, for tests. */
  takes = 0;

  constructor(opts: { now?: () => number; defaultPauseMs?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#defaultPauseMs = opts.defaultPauseMs ?? 10_000;
    this.levelAt = this.#now();
  }

  #levels(now: number): [number, number] {
    const dt = Math.max(0, now - this.levelAt);
    const r = this.limitRequests === undefined ? this.requestsLevel : Math.min(
      this.limitRequests,
      this.requestsLevel + this.limitRequests * dt / 60_000,
    );
    const t = this.limitTokens === undefined ? this.tokensLevel : Math.min(
      this.limitTokens,
      this.tokensLevel + this.limitTokens * dt / 60_000,
    );
    return [r, t];
  }

  take(tokens: number, maxWaitMs = Infinity): Promise<PaceGrant> {
    this.takes++;
    const now = this.#now();
    let wait = Math.max(0, this.pausedUntil - now);
    const limits = {
      limitRequests: this.limitRequests,
      limitTokens: this.limitTokens,
    };
    if (this.limitRequests === undefined && this.limitTokens === undefined) {
      if (!this.observed) {
        if (this.probeUntil > now) {
          return Promise.resolve({
            granted: false,
            waitMs: Math.ceil(
              Math.max(wait, Math.min(this.probeUntil - now, PROBE_POLL_MS)),
            ),
          });
        }
        if (wait <= maxWaitMs) this.probeUntil = now + wait + PROBE_MS;
      }
      return Promise.resolve({
        granted: wait <= maxWaitMs,
        waitMs: Math.ceil(wait),
      });
    }
    const [r, t] = this.#levels(now);
    const need = Math.min(tokens, this.limitTokens ?? tokens);
    if (this.limitTokens !== undefined && t < need) {
      wait = Math.max(wait, (need - t) * 60_000 / this.limitTokens);
    }
    if (this.limitRequests !== undefined && r < 1) {
      wait = Math.max(wait, (1 - r) * 60_000 / this.limitRequests);
    }
    if (wait > maxWaitMs) {
      return Promise.resolve({
        granted: false,
        waitMs: Math.ceil(wait),
        ...limits,
      });
    }
    this.requestsLevel = r - 1;
    this.tokensLevel = t - need;
    this.levelAt = now;
    this.tokensTaken += Math.ceil(need);
    this.requestsTaken += 1;
    return Promise.resolve({
      granted: true,
      waitMs: Math.ceil(wait),
      ...limits,
      mark: { tokens: this.tokensTaken, requests: this.requestsTaken },
    });
  }

  observe(info: RateLimitInfo | null, mark?: PaceMark): Promise<void> {
    this.probeUntil = 0;
    if (info === null) return Promise.resolve();
    const now = this.#now();
    let [r, t] = this.#levels(now);
    if (this.limitRequests === undefined) {
      r = info.remainingRequests ?? info.limitRequests ?? r;
    }
    if (this.limitTokens === undefined) {
      t = info.remainingTokens ?? info.limitTokens ?? t;
    }
    this.limitRequests = info.limitRequests ?? this.limitRequests;
    this.limitTokens = info.limitTokens ?? this.limitTokens;
    this.requestsLevel = info.remainingRequests === undefined
      ? r
      : mark
      ? info.remainingRequests - Math.max(this.requestsTaken - mark.requests, 0)
      : Math.min(r, info.remainingRequests);
    this.tokensLevel = info.remainingTokens === undefined
      ? t
      : mark
      ? info.remainingTokens - Math.max(this.tokensTaken - mark.tokens, 0)
      : Math.min(t, info.remainingTokens);
    this.levelAt = now;
    this.probeUntil = 0;
    this.observed = true;
    return Promise.resolve();
  }

  pause(ms: number | null, refundTokens = 0): Promise<number> {
    const applied = Math.max(0, ms ?? this.#defaultPauseMs);
    if (refundTokens > 0 && (this.limitTokens !== undefined || this.limitRequests !== undefined)) {
      const [r, t] = this.#levels(this.#now());
      this.requestsLevel = r + 1;
      this.tokensLevel = t + Math.min(refundTokens, this.limitTokens ?? refundTokens);
      this.levelAt = this.#now();
    }
    this.pausedUntil = Math.max(this.pausedUntil, this.#now() + applied);
    this.probeUntil = 0;
    return Promise.resolve(applied);
  }

  limits(): Promise<{ limitRequests?: number; limitTokens?: number }> {
    return Promise.resolve({ limitRequests: this.limitRequests, limitTokens: this.limitTokens });
  }
}

/** acquire()'s answer: call it once the response (or error) is in; `mark` goes to observe(). */
export type Release = (() => void) & { mark?: PaceMark };

/** Thrown by acquire() when the shared pace cannot let the request go within `maxWaitMs`. */
export class PaceTooSlow extends Error {
  constructor(readonly waitMs: number) {
    super(
      `the provider's pace allows the next request in ${Math.ceil(waitMs)} ms, past the time left`,
    );
    this.name = "PaceTooSlow";
  }
}

export interface RateLimiterOptions {
  /** Requests in flight at most. */
  concurrency: number;
  /** The pace shared with other runs; default a MemoryPace of this limiter's own. */
  store?: PaceStore;
  /** Clock in ms; inject in tests. */
  now?: () => number;
  /** Waits `ms`; may end early when `signal` aborts. Inject in tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told when the shared store fails (the run then paces by this process alone until it answers). */
  onStoreError?: (e: unknown) => void;
}

export class RateLimiter {
  readonly #concurrency: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #store: PaceStore;
  readonly #onStoreError: (e: unknown) => void;
  #active = 0;
  readonly #waiters: Array<() => void> = [];
  #pausedUntil = 0;
  #limitRequests?: number;
  #limitTokens?: number;

  constructor(opts: RateLimiterOptions) {
    if (!(opts.concurrency >= 1)) {
      throw new RangeError("RateLimiter: concurrency must be at least 1");
    }
    this.#concurrency = Math.floor(opts.concurrency);
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? sleep;
    this.#store = opts.store ?? new MemoryPace({ now: this.#now });
    this.#onStoreError = opts.onStoreError ?? (() => {});
  }

  /** Requests holding a slot now. */
  get active(): number {
    return this.#active;
  }

  /** The provider's limits per minute as last seen (by this run or, through the store, any run). */
  get limits(): { requests?: number; tokens?: number } {
    return { requests: this.#limitRequests, tokens: this.#limitTokens };
  }

  /**
   * Takes in the limits other runs have learned (the shared pace), so that this run's first
   * requests are already cut to them (batching.ts requestTokenCap). Never rejects.
   */
  async learnLimits(): Promise<void> {
    try {
      const known = await this.#store.limits();
      this.#limitTokens ??= known.limitTokens;
      this.#limitRequests ??= known.limitRequests;
    } catch (e) {
      this.#onStoreError(e);
    }
  }

  /**
   * Waits for a free slot, then for the shared pace to let a request of `tokens` go (and for a
   * pause after a 429 to end). Returns release(), to call once the response (or error) is in;
   * calling it again does nothing. Rejects holding nothing: with the signal's reason when
   * `signal` aborts, with PaceTooSlow when the pace cannot let it go within `maxWaitMs`.
   */
  async acquire(
    tokens: number,
    signal?: AbortSignal,
    maxWaitMs = Infinity,
  ): Promise<Release> {
    signal?.throwIfAborted();
    const start = this.#now();
    await this.#takeSlot(signal);
    let released = false;
    const release: Release = () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#waiters.shift()?.();
    };
    try {
      for (;;) {
        const left = maxWaitMs - (this.#now() - start);
        const local = this.#pausedUntil - this.#now();
        if (local > left) throw new PaceTooSlow(local);
        if (local > 0) {
          await this.#sleepUnlessAborted(local, signal);
          continue;
        }
        let grant: PaceGrant;
        try {
          grant = await this.#store.take(
            tokens,
            Number.isFinite(left) ? Math.max(0, Math.floor(left)) : undefined,
          );
        } catch (e) {
          // The shared pace is out of reach: go by this run's own signals (pause, 429s) alone.
          this.#onStoreError(e);
          grant = { granted: true, waitMs: 0 };
        }
        if (grant.limitTokens !== undefined) {
          this.#limitTokens = grant.limitTokens;
        }
        if (grant.limitRequests !== undefined) {
          this.#limitRequests = grant.limitRequests;
        }
        if (!grant.granted && grant.waitMs > left) {
          throw new PaceTooSlow(grant.waitMs);
        }
        if (grant.waitMs > 0) {
          await this.#sleepUnlessAborted(grant.waitMs, signal);
        }
        if (!grant.granted) continue;
        release.mark = grant.mark;
        // Reserved; a 429 seen meanwhile by another lane still holds this one back.
        const paused = this.#pausedUntil - this.#now();
        if (paused > 0) await this.#sleepUnlessAborted(paused, signal);
        break;
      }
    } catch (e) {
      release();
      throw e;
    }
    return release;
  }

  /**
   * Takes in what a response's headers said (after each response); null after an error answer,
   * whose headers are not read (it ends a probe for the limits). Never rejects.
   */
  async observe(info: RateLimitInfo | null, mark?: PaceMark): Promise<void> {
    if (info?.limitTokens !== undefined) this.#limitTokens = info.limitTokens;
    if (info?.limitRequests !== undefined) {
      this.#limitRequests = info.limitRequests;
    }
    try {
      await this.#store.observe(info, mark);
    } catch (e) {
      this.#onStoreError(e);
    }
  }

  /**
   * After a 429: no request starts for `ms` (null: the store's default, settings
   * .rate_limited_default_seconds in SQL) in this run and, through the store, in every run; the
   * refused request's `refundTokens` go back to the shared pace (it takes them again when it is
   * sent again). Never rejects; resolves to the pause applied.
   */
  async pauseFor(ms: number | null, refundTokens = 0): Promise<number> {
    let applied = ms ?? 0;
    if (ms !== null && ms > 0) {
      this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + ms);
    }
    try {
      applied = await this.#store.pause(ms, refundTokens);
    } catch (e) {
      this.#onStoreError(e);
    }
    if (applied > 0) {
      this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + applied);
    }
    return applied;
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

/**
 * The key of a provider's pace: its model and a short hash of its endpoint and API key, so runs
 * with the same account share one pace and the key itself is never stored.
 */
export async function paceKey(
  model: string,
  endpoint: string,
  apiKey: string,
): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${endpoint}\n${apiKey}`),
  );
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${model}:${hex.slice(0, 16)}`;
}
