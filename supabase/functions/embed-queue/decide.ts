/**
 * What to do after a provider request failed: a pure function of the error's kind, the tries
 * spent on the request and the time left, so the run loop only carries decisions out.
 * (River's job executor and graphile-worker keep the work apart from reporting its result in the
 * same way: execute, then decide, then report.)
 */
import type { ProviderError } from "../_shared/errors.ts";
import { backoffMs } from "../_shared/backoff.ts";

export type Decision =
  /** Send the same request again after `waitMs`; `pauseAll`: every lane waits too (rate limit). */
  | { do: "retry"; waitMs: number; pauseAll: boolean }
  /** Send the inputs again in parts, around the input the provider named (`at`) or in halves. */
  | { do: "split"; at?: number }
  /** Give the request's jobs back to the queue as failed (`retryable`: with backoff, while attempts last). */
  | { do: "fail"; kind: "retryable" | "permanent" }
  /**
   * Rate limited past the time left: the request's jobs go back as `rate_limited` (the SQL
   * snooze: attempt refunded, runnable after `retryAfterMs`, or settings.rate_limited_default_seconds
   * when the provider named none), and the run stops on its budget.
   */
  | { do: "snooze"; retryAfterMs?: number }
  /** Stop the run: no job can succeed. */
  | { do: "stop"; reason: "auth" };

export interface DecideInput {
  error: Pick<ProviderError, "kind" | "retryAfterMs" | "badInputIndex">;
  /** Times this request was already sent again after a retryable error. */
  tries: number;
  /** Inputs in the request. */
  inputs: number;
  /** Milliseconds left before the run must stop sending (budget or lease, less the margin). */
  msLeft: number;
  maxRetries: number;
  /**
   * Wait after a 429 that names no retry-after: settings.rate_limited_default_seconds, the one
   * owner of that number (the run reads it at start, embed_queue.begin_run).
   */
  rateLimitedDefaultMs: number;
  random?: () => number;
}
/** In-run backoff between tries of a request after a retryable error. */
export const REQUEST_RETRY_BACKOFF = { baseMs: 500, maxMs: 10_000 };

export function decide(i: DecideInput): Decision {
  switch (i.error.kind) {
    case "rate_limited": {
      const wait = i.error.retryAfterMs ?? i.rateLimitedDefaultMs;
      // Out of time before the provider takes more: this request's jobs are snoozed for the
      // retry-after (attempt refunded), the rest of the run's jobs are released, and the next
      // run sends them when the shared pace allows.
      if (wait >= i.msLeft) {
        return { do: "snooze", retryAfterMs: i.error.retryAfterMs };
      }
      return { do: "retry", waitMs: wait, pauseAll: true };
    }
    case "retryable": {
      const wait = backoffMs(i.tries + 1, REQUEST_RETRY_BACKOFF, i.random);
      if (i.tries < i.maxRetries && wait < i.msLeft) {
        return { do: "retry", waitMs: wait, pauseAll: false };
      }
      return { do: "fail", kind: "retryable" };
    }
    case "bad_request":
      return i.inputs === 1 ? { do: "fail", kind: "permanent" } : { do: "split", at: i.error.badInputIndex };
    case "auth":
      return { do: "stop", reason: "auth" };
    default:
      return { do: "fail", kind: "permanent" };
  }
}
