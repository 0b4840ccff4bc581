/**
 * The one abortable sleep: waits `ms` (Infinity: until aborted), or less when `signal` aborts.
 * Never rejects. Used by the function's limiter, the CLI, the fake OpenAI server and the tests.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = ms === Infinity ? undefined : setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
