/** A manual call of the embed-queue function, as pg_cron and the webhook make it. */

export interface InvokeResult {
  status: number;
  /** The answer's JSON, or {} when it was not JSON. */
  body: Record<string, unknown>;
}

/**
 * POSTs `body` to `<functionsUrl>/embed-queue` with `key` as Bearer credential (none when null)
 * and waits for the run's answer, at most `timeoutMs` when given.
 */
export async function invokeFunction(
  functionsUrl: string,
  key: string | null,
  body: Record<string, unknown> = {},
  timeoutMs?: number,
): Promise<InvokeResult> {
  const res = await fetch(`${functionsUrl}/embed-queue`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
    ...(timeoutMs !== undefined ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body: json };
}
