/**
 * Structured logs: one JSON line per event on stdout, `{ts, event, ...fields}`.
 *
 * Never pass user text (row content, inputs), keys, tokens or vectors in `fields`: logs leave
 * the database and are read by people who may not see the rows. Pass counts, ids, durations,
 * statuses, and messages that went through `sanitize`/`operatorMessage` (errors.ts).
 */
export function log(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ ts: new Date().toISOString(), event, ...fields }, replacer));
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}
