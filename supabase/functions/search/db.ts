/**
 * Every Data API call the search function makes, in one place. Each goes through supabase-js
 * with the caller's own Authorization header, so the database sees the signed-in user (role
 * authenticated, auth.uid() = the token's sub) and row-level security decides: never the
 * service role.
 */
import { createClient } from "@supabase/supabase-js";
import type { Mode, SearchRequest, Table } from "./request.ts";

export interface SearchRow {
  id: string;
  [column: string]: unknown;
}

/** An error from the Data API: its HTTP status and SQLSTATE/PostgREST code (never the query). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** The model a searchable column holds (public.search_models); model null: not pinned. */
export interface ColumnModel {
  table_name: string;
  embedding_column: string;
  model: string | null;
  dimensions: number | null;
}

/** SQLSTATE of a query embedded with another model than the column's (embed_search.model_in_use). */
export const OTHER_MODEL = "EQMOD";

export interface SearchApi {
  /** One token of the caller's rate-limit bucket (public.take_search_token). */
  takeToken(): Promise<{ allowed: boolean; retryAfterMs: number }>;
  /** The model each searchable column holds now (public.search_models); absent: none is pinned. */
  models?(): Promise<ColumnModel[]>;
  search(
    table: Table,
    req: SearchRequest,
    vector: string,
    model: string,
  ): Promise<SearchRow[]>;
}

/** The target (table in embed_queue.targets) a table and mode search: chunks mode searches summary_chunks. */
export function targetFor(table: Table, mode: Mode): string {
  return mode === "chunks" && table === "summaries" ? "summary_chunks" : table;
}

/** The match function a table and mode call. */
export function functionFor(table: Table, mode: Mode): string {
  if (mode === "hybrid") return `hybrid_search_${table}`;
  return mode === "chunks" && table === "summaries" ? "match_summaries_chunked" : `match_${table}`;
}

/** The named arguments of that call (the SQL functions' own parameter names). */
export function argsFor(
  table: Table,
  req: SearchRequest,
  vector: string,
  model: string,
): Record<string, unknown> {
  const args: Record<string, unknown> = {
    query_embedding: vector,
    match_count: req.matchCount,
    query_model: model,
  };
  if (req.mode === "hybrid") args.query_text = req.query;
  else args.match_threshold = req.matchThreshold;
  if (table === "summaries" && req.sessionId) {
    args.filter_session_id = req.sessionId;
  }
  return args;
}

export function createSearchApi(
  url: string,
  anonKey: string,
  authorization: string,
): SearchApi {
  const client = createClient(url, anonKey, {
    global: { headers: { Authorization: authorization } },
    auth: {
      persistSession: false,
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
  });

  async function rpc<T>(fn: string, args: Record<string, unknown>): Promise<T> {
    const { data, error, status } = await client.rpc(fn, args);
    if (error) {
      throw new ApiError(
        status || 500,
        error.code ?? "",
        `${fn} failed (${status}, ${error.code ?? "no code"})`,
      );
    }
    return data as T;
  }

  return {
    async takeToken() {
      const rows = await rpc<{ allowed: boolean; retry_after_ms: number }[]>(
        "take_search_token",
        {},
      );
      const r = rows[0] ?? { allowed: false, retry_after_ms: 1000 };
      return { allowed: r.allowed, retryAfterMs: r.retry_after_ms };
    },
    async models() {
      return await rpc<ColumnModel[]>("search_models", {}) ?? [];
    },
    async search(table, req, vector, model) {
      return await rpc<SearchRow[]>(
        functionFor(table, req.mode),
        argsFor(table, req, vector, model),
      );
    },
  };
}
