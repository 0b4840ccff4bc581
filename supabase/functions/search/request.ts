/** The search request's body: parsed and checked, with defaults in one place. */

export type Table = "sessions" | "summaries";
export type Mode = "hybrid" | "semantic" | "chunks";

export interface SearchRequest {
  /** The text to look for (1 to MAX_QUERY_CHARS characters). */
  query: string;
  /** Which tables to search; default both. */
  tables: Table[];
  /**
   * "hybrid" (full text and vector, fused by reciprocal rank; default), "semantic" (vector only), or
   * "chunks" (vector only; summaries ranked by their best chunk, with it: needs chunking enabled).
   */
  mode: Mode;
  /** Rows per table, 1 to 50; default 10. */
  matchCount: number;
  /** Semantic and chunks modes: the least cosine similarity, -1 to 1; default 0. */
  matchThreshold: number;
  /** Only this session's summaries (and no sessions). */
  sessionId: string | null;
}

export const REQUEST_DEFAULTS = {
  tables: ["sessions", "summaries"] as Table[],
  mode: "hybrid" as Mode,
  matchCount: 10,
  matchThreshold: 0,
};
export const MAX_QUERY_CHARS = 2000;
export const MAX_MATCH_COUNT = 50;

export class BadRequest extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Throws BadRequest naming the field that is wrong (never echoing the query). */
export function parseRequest(body: unknown): SearchRequest {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new BadRequest(
      'the body must be a JSON object with a query, e.g. {"query": "..."}',
    );
  }
  const b = body as Record<string, unknown>;
  const known = [
    "query",
    "tables",
    "mode",
    "match_count",
    "match_threshold",
    "session_id",
  ];
  const unknown = Object.keys(b).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new BadRequest(
      `unknown field ${unknown[0]}; known: ${known.join(", ")}`,
    );
  }

  if (typeof b.query !== "string" || !/\S/.test(b.query)) {
    throw new BadRequest("query must be a non-empty string");
  }
  if (b.query.length > MAX_QUERY_CHARS) {
    throw new BadRequest(
      `query may have at most ${MAX_QUERY_CHARS} characters`,
    );
  }

  let tables = REQUEST_DEFAULTS.tables;
  if (b.tables !== undefined) {
    if (
      !Array.isArray(b.tables) || b.tables.length === 0 ||
      !b.tables.every((t) => t === "sessions" || t === "summaries")
    ) {
      throw new BadRequest(
        'tables must be a non-empty list of "sessions" and "summaries"',
      );
    }
    tables = [...new Set(b.tables as Table[])];
  }

  let mode = REQUEST_DEFAULTS.mode;
  if (b.mode !== undefined) {
    if (b.mode !== "hybrid" && b.mode !== "semantic" && b.mode !== "chunks") {
      throw new BadRequest('mode must be "hybrid", "semantic" or "chunks"');
    }
    mode = b.mode;
  }

  let matchCount = REQUEST_DEFAULTS.matchCount;
  if (b.match_count !== undefined) {
    if (
      !Number.isInteger(b.match_count) || (b.match_count as number) < 1 ||
      (b.match_count as number) > MAX_MATCH_COUNT
    ) {
      throw new BadRequest(
        `match_count must be a whole number from 1 to ${MAX_MATCH_COUNT}`,
      );
    }
    matchCount = b.match_count as number;
  }

  let matchThreshold = REQUEST_DEFAULTS.matchThreshold;
  if (b.match_threshold !== undefined) {
    const t = b.match_threshold;
    if (typeof t !== "number" || !Number.isFinite(t) || t < -1 || t > 1) {
      throw new BadRequest("match_threshold must be a number from -1 to 1");
    }
    matchThreshold = t;
  }

  let sessionId: string | null = null;
  if (b.session_id !== undefined && b.session_id !== null) {
    if (typeof b.session_id !== "string" || !UUID.test(b.session_id)) {
      throw new BadRequest("session_id must be a uuid");
    }
    sessionId = b.session_id;
    tables = ["summaries"];
  }

  return {
    query: b.query,
    tables,
    mode,
    matchCount,
    matchThreshold,
    sessionId,
  };
}
