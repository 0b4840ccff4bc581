/**
 * One JSON line per event on stdout, `{ts, event, ...fields}`. Never pass the query text, keys,
 * tokens or vectors: counts, ids, durations and statuses only.
 */
export type Log = (event: string, fields?: Record<string, unknown>) => void;

export const log: Log = (event, fields = {}) => {
  console.log(
    JSON.stringify({ ts: new Date().toISOString(), event, ...fields }),
  );
};
