/**
 * The search function's handler: a signed-in user's text in, that user's nearest sessions and
 * summaries out, with scores. Order of work: the caller's role, the body, one token of the
 * caller's rate limit, the text embedded with the queue's provider and model, then the match
 * functions called as the caller. The query text never reaches a log or an error message.
 */
import type { EmbeddingProvider } from "../_shared/provider.ts";
import { operatorMessage, toProviderError } from "../_shared/errors.ts";
import { toPgvector } from "../_shared/vectors.ts";
import { ApiError, OTHER_MODEL, type SearchApi, type SearchRow, targetFor } from "./db.ts";
import type { Log } from "./log.ts";
import { BadRequest, parseRequest, type Table } from "./request.ts";

export interface SearchDeps {
  /** The configured provider: its model embeds queries for a column not pinned to a model. */
  provider: EmbeddingProvider;
  /** The provider for a column pinned to another model (a model change); absent: such a search answers 502. */
  providerFor?: (model: string, dimensions: number) => EmbeddingProvider;
  /** A Data API client acting with this Authorization header. */
  api: (authorization: string) => SearchApi;
  log: Log;
  now?: () => number;
}

export const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "authorization, x-client-info, apikey, content-type",
  "access-control-allow-methods": "POST, OPTIONS",
};

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json",
      ...CORS_HEADERS,
      ...headers,
    },
  });
}

/** The claims of a JWT, unverified: the gateway (verify_jwt = true) has verified it already. */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replaceAll("-", "+").replaceAll("_", "/").padEnd(
      Math.ceil(part.length / 4) * 4,
      "=",
    );
    const v = JSON.parse(
      new TextDecoder().decode(
        Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)),
      ),
    );
    return v && typeof v === "object" ? v : null;
  } catch {
    return null;
  }
}

export function createSearchHandler(
  deps: SearchDeps,
): (req: Request) => Promise<Response> {
  const now = deps.now ?? (() => performance.now());
  return async (req) => {
    if (req.method === "OPTIONS") {
      return new Response("ok", { headers: CORS_HEADERS });
    }
    if (req.method !== "POST") {
      return json(405, { error: 'use POST with a JSON body {"query": "..."}' });
    }

    const authorization = req.headers.get("authorization") ?? "";
    const token = authorization.match(/^Bearer\s+(\S+)$/i)?.[1];
    const claims = token ? jwtClaims(token) : null;
    if (
      !claims || claims.role !== "authenticated" ||
      typeof claims.sub !== "string"
    ) {
      deps.log("search.refused", {
        status: 401,
        reason: "not a signed-in user",
      });
      return json(401, {
        error: "sign in first: search needs a signed-in user's access token",
      });
    }
    const user = claims.sub;

    let request;
    try {
      request = parseRequest(await req.json().catch(() => null));
    } catch (e) {
      if (e instanceof BadRequest) {
        deps.log("search.refused", { status: 400, user });
        return json(400, { error: e.message });
      }
      throw e;
    }

    const api = deps.api(authorization);
    const started = now();
    try {
      const token = await api.takeToken();
      if (!token.allowed) {
        const secs = Math.max(1, Math.ceil(token.retryAfterMs / 1000));
        deps.log("search.rate_limited", {
          status: 429,
          user,
          retry_after_ms: token.retryAfterMs,
        });
        return json(
          429,
          { error: `too many searches: try again in ${secs} s` },
          { "retry-after": String(secs) },
        );
      }

      // Each table is searched with a query embedded by the model its column holds now
      // (public.search_models); a column that switched model in between answers EQMOD, and that
      // table is searched once more with the new model. Never one ranking of two models.
      const providers = new Map<string, EmbeddingProvider>();
      const providerOf = (model: string | null, dims: number | null): EmbeddingProvider => {
        const own = deps.provider;
        if (model === null || (model === own.model && (dims ?? own.dimensions) === own.dimensions)) {
          return own;
        }
        const key = `${model}/${dims}`;
        let p = providers.get(key);
        if (!p) {
          if (!deps.providerFor) throw new Error(`no provider for model ${model}`);
          p = deps.providerFor(model, dims ?? own.dimensions);
          providers.set(key, p);
        }
        return p;
      };
      let embedMs = 0;
      const vectors = new Map<EmbeddingProvider, Promise<string>>();
      const embedWith = (p: EmbeddingProvider) => {
        let v = vectors.get(p);
        if (!v) {
          const t0 = now();
          v = p.embed([request.query], req.signal).then((r) => {
            embedMs += now() - t0;
            return toPgvector(r.vectors[0]);
          });
          vectors.set(p, v);
        }
        return v;
      };
      const columnsNow = async () =>
        new Map((api.models ? await api.models() : []).map((m) => [m.table_name, m]));
      let columns = await columnsNow();
      const models: Partial<Record<Table, string>> = {};

      const t1 = now();
      const results: Partial<Record<Table, SearchRow[]>> = {};
      let lists: SearchRow[][];
      try {
        lists = await Promise.all(request.tables.map(async (t) => {
          for (let attempt = 1;; attempt++) {
            const col = columns.get(targetFor(t, request.mode));
            const p = providerOf(col?.model ?? null, col?.dimensions ?? null);
            models[t] = p.model;
            try {
              return await api.search(t, request, await embedWith(p), p.model);
            } catch (e) {
              if (!(e instanceof ApiError) || e.code !== OTHER_MODEL || attempt > 1) throw e;
              columns = await columnsNow();
            }
          }
        }));
      } catch (e) {
        if (e instanceof ApiError) throw e;
        const pe = toProviderError(e);
        deps.log("search.provider_failed", {
          status: 502,
          user,
          kind: pe.kind,
          provider_status: pe.status ?? null,
        });
        return json(502, { error: operatorMessage(pe) });
      }
      request.tables.forEach((t, i) => results[t] = lists[i]);
      const searchMs = Math.max(0, now() - t1 - embedMs);

      deps.log("search", {
        status: 200,
        user,
        mode: request.mode,
        tables: request.tables,
        query_chars: request.query.length,
        rows: lists.reduce((n, l) => n + l.length, 0),
        embed_ms: Math.round(embedMs),
        search_ms: Math.round(searchMs),
        total_ms: Math.round(now() - started),
      });
      return json(200, {
        model: models[request.tables[0]] ?? deps.provider.model,
        models,
        mode: request.mode,
        results,
        timing: {
          embed_ms: Math.round(embedMs),
          search_ms: Math.round(searchMs),
        },
      });
    } catch (e) {
      if (e instanceof ApiError) {
        const status = e.status === 401 || e.status === 403 ? 401 : e.status >= 500 ? 503 : 502;
        deps.log("search.failed", {
          status,
          user,
          api_status: e.status,
          code: e.code,
        });
        return json(status, {
          error: status === 401
            ? "the database refused this user: sign in again"
            : "the search could not be run: try again later",
        });
      }
      deps.log("search.failed", {
        status: 503,
        user,
        error: e instanceof Error ? e.name : "unknown",
      });
      return json(503, {
        error: "the search could not be run: try again later",
      });
    }
  };
}
