/**
 * Waiting rules, all pure: the provider's reset durations, `retry-after` headers, and
 * exponential backoff with jitter. Small enough that a dependency would cost more than it saves.
 */

const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 1e-3,
  "µs": 1e-3,
  ns: 1e-6,
};
const DURATION = /^(?:(\d+(?:\.\d+)?|\.\d+)(h|ms|m|s|us|µs|ns))+$/;
const PART = /(\d+(?:\.\d+)?|\.\d+)(h|ms|m|s|us|µs|ns)/g;

/**
 * Parses OpenAI's `x-ratelimit-reset-*` values, Go durations such as "1s", "6m0s", "9ms",
 * "0.5s", "1h2m3.5s", into whole milliseconds (rounded up). A bare number is read as seconds.
 * Returns null for anything else.
 */
export function parseResetDuration(s: string | null | undefined): number | null {
  if (s == null) return null;
  const t = s.trim();
  if (t === "") return null;
  if (/^\d+(?:\.\d+)?$/.test(t)) return Math.ceil(Number(t) * 1000);
  if (!DURATION.test(t)) return null;
  let ms = 0;
  for (const m of t.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return Math.ceil(ms);
}

/**
 * How long the provider asks us to wait: `retry-after-ms` first, then `retry-after` as seconds
 * or as an HTTP date (relative to `now`). Null when neither is present or readable; never negative.
 */
export function retryAfterMs(headers: Headers, now: () => number = Date.now): number | null {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && /^\s*\d+(?:\.\d+)?\s*$/.test(ms)) return Math.ceil(Number(ms));
  const ra = headers.get("retry-after");
  if (ra === null || ra.trim() === "") return null;
  if (/^\s*\d+(?:\.\d+)?\s*$/.test(ra)) return Math.ceil(Number(ra) * 1000);
  const at = Date.parse(ra);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now());
}

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 1000 ms. */
  baseMs?: number;
  /** Cap on the delay, before jitter. Default 60 000 ms. */
  maxMs?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = { baseMs: 1000, maxMs: 60_000 };

/**
 * Delay before retry number `attempt` (1 = first retry): `min(maxMs, baseMs * 2^(attempt-1))`,
 * then "equal jitter": a uniform value in [half of that, all of it], so waits grow and callers
 * that failed together spread out. `random` returns [0, 1); inject it in tests.
 */
export function backoffMs(
  attempt: number,
  opts: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { baseMs, maxMs } = { ...BACKOFF_DEFAULTS, ...opts };
  const n = Math.max(1, Math.floor(attempt));
  const capped = Math.min(maxMs, baseMs * 2 ** Math.min(n - 1, 52));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(capped / 2 + (capped / 2) * r);
}
