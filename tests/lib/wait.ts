/** Waiting in tests and benchmarks: one sleep (the function's own) and one poll. */
import { sleep } from "../../supabase/functions/_shared/sleep.ts";

export { sleep };

/**
 * Polls `f` every `everyMs` until it returns a value other than undefined, null or false, and
 * returns it; throws after `ms`, naming `what` and the last error `f` threw (errors count as
 * "not yet").
 */
export async function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined | null | false>,
  ms = 60_000,
  everyMs = 100,
): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== null && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) {
      throw new Error(
        `timed out after ${ms / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
      );
    }
    await sleep(everyMs);
  }
}
