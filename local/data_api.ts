/**
 * A local stand-in for the Data API's RPC endpoint (PostgREST behind Supabase's API gateway),
 * served by the local gateway at /rest/v1/rpc/<function>. Local only: a hosted project and
 * `supabase start` run PostgREST itself. Only what supabase-js `rpc()` needs is here, with
 * PostgREST's rules (docs.postgrest.org, v12: "Functions as RPC", "Authentication", "Errors"):
 *
 * - The request's role comes from a verified JWT: the `Authorization: Bearer` token, else the
 *   `apikey` header (the key supabase-js always sends, as the API gateway requires). A token
 *   that does not verify (signature, expiry) is 401 PGRST301; no token at all is 401. The
 *   connection is the `authenticator` role (LOGIN NOINHERIT, a member of anon, authenticated
 *   and service_role), which switches to the token's role for one transaction, and the claims
 *   go to `request.jwt.claims`, both with set_config(..., true) as PostgREST does, so RLS and
 *   auth.uid() see the caller.
 * - Only functions in the exposed schemas (config.toml [api] schemas: the first is the default,
 *   another is chosen with the Content-Profile header); the JSON body's keys are the named
 *   arguments; arguments left out take their defaults; the overload is chosen by the names.
 *   None fits: 404 PGRST202.
 * - A set-returning function answers a JSON array of its rows, any other its value.
 * - Errors answer {code, message, details, hint} with PostgREST's statuses: 42501 is 401 for
 *   anon and 403 for any other role, 42883 404, P0001 400, 23xxx 409, 08xxx 503, the rest 400.
 *
 * What differs, and why: GET, filters on the result, Prefer headers, tables and views are not
 * served (nothing of this project needs them); the max_rows limit is applied to set results.
 */
import postgres from "postgres";
import { verifyJwt } from "./keys.ts";

export interface DataApiOptions {
  /** A connection string as `authenticator`. */
  dbUrl: string;
  jwtSecret: string;
  /** The exposed schemas, the first being the default ([api] schemas). */
  schemas: string[];
  /** [api] max_rows. */
  maxRows: number;
}

interface Arg {
  name: string;
  type: string;
  hasDefault: boolean;
}

interface Candidate {
  oid: number;
  args: Arg[];
  retset: boolean;
}

const json = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });

function errorStatus(code: string, role: string): number {
  if (code === "42501") return role === "anon" ? 401 : 403;
  if (code === "42883" || code === "42P01") return 404;
  if (code.startsWith("23")) return 409;
  if (code.startsWith("08")) return 503;
  if (code === "57014") return 500;
  return 400;
}

export function createDataApi(opts: DataApiOptions) {
  const sql = postgres(opts.dbUrl, {
    max: 4,
    prepare: false,
    onnotice: () => {},
    idle_timeout: 30,
  });

  async function candidates(
    schema: string,
    name: string,
  ): Promise<Candidate[]> {
    const rows = await sql<
      {
        oid: number;
        names: string[] | null;
        types: string[];
        modes: string[] | null;
        ndefaults: number;
        retset: boolean;
      }[]
    >`
      select p.oid::int as oid, p.proargnames as names,
             array(select pg_catalog.format_type(t, null) from unnest(p.proargtypes) t) as types,
             p.proargmodes::text[] as modes, p.pronargdefaults as ndefaults, p.proretset as retset
      from pg_catalog.pg_proc p
      where p.pronamespace = ${schema}::regnamespace and p.proname = ${name} and p.prokind = 'f'`;
    return rows.map((r) => {
      // proargtypes lists the input arguments only; proargnames (and proargmodes) list all.
      const names = (r.names ?? []).filter((_, i) => !r.modes || ["i", "b", "v"].includes(r.modes[i]));
      const n = r.types.length;
      return {
        oid: r.oid,
        retset: r.retset,
        args: r.types.map((type, i) => ({
          name: names[i] ?? "",
          type,
          hasDefault: i >= n - r.ndefaults,
        })),
      };
    });
  }

  function pick(cands: Candidate[], keys: string[]): Candidate | undefined {
    return cands.find((c) =>
      keys.every((k) => c.args.some((a) => a.name === k)) &&
      c.args.every((a) => a.hasDefault || keys.includes(a.name))
    );
  }

  async function handle(req: Request, fnName: string): Promise<Response> {
    if (req.method !== "POST") {
      return json(405, {
        code: "PGRST117",
        message: "Only POST is served by the local Data API",
      });
    }
    const bearer = (req.headers.get("authorization") ?? "").match(
      /^Bearer\s+(.+)$/i,
    )?.[1];
    const token = bearer ?? req.headers.get("apikey") ?? undefined;
    if (!token) return json(401, { message: "No API key found in request" });
    const claims = await verifyJwt(token, opts.jwtSecret);
    if (!claims) {
      return json(401, {
        code: "PGRST301",
        message: "JWT could not be verified",
        details: null,
        hint: null,
      });
    }
    const role = typeof claims.role === "string" ? claims.role : "anon";
    if (!["anon", "authenticated", "service_role"].includes(role)) {
      return json(401, {
        code: "PGRST301",
        message: `role "${role}" is not served`,
        details: null,
        hint: null,
      });
    }
    const schema = req.headers.get("content-profile") ?? opts.schemas[0];
    if (!opts.schemas.includes(schema)) {
      return json(406, {
        code: "PGRST106",
        message: `The schema must be one of the following: ${opts.schemas.join(", ")}`,
      });
    }

    let body: Record<string, unknown> = {};
    const text = await req.text();
    if (text.trim()) {
      try {
        const parsed = JSON.parse(text);
        if (
          parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
        ) throw new Error();
        body = parsed;
      } catch {
        return json(400, {
          code: "PGRST102",
          message: "Empty or invalid json",
          details: null,
          hint: null,
        });
      }
    }
    const keys = Object.keys(body);
    const chosen = pick(await candidates(schema, fnName), keys);
    if (!chosen) {
      return json(404, {
        code: "PGRST202",
        message: `Could not find the function ${schema}.${fnName}(${
          keys.sort().join(", ")
        }) in the schema cache`,
        details: null,
        hint: null,
      });
    }
    const used = chosen.args.filter((a) => keys.includes(a.name));
    const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
    const recordDef = used.map((a) => `${ident(a.name)} ${a.type}`).join(", ");
    const call = `${ident(schema)}.${ident(fnName)}(${
      used.map((a) => `${ident(a.name)} => _b.${ident(a.name)}`).join(", ")
    })`;
    const from = used.length ? `from pg_catalog.json_to_record($1::text::json) as _b(${recordDef})` : "";
    const query = chosen.retset
      ? `select coalesce(pg_catalog.json_agg(_r), '[]'::json) as result from (select _f.* from ${
        used.length ? `pg_catalog.json_to_record($1::text::json) as _b(${recordDef}), lateral ` : ""
      }${call} _f limit ${opts.maxRows}) _r`
      : `select pg_catalog.to_json(${call}) as result ${from}`;

    try {
      const result = await sql.begin(async (tx) => {
        await tx`select pg_catalog.set_config('role', ${role}, true),
                        pg_catalog.set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                        pg_catalog.set_config('request.method', 'POST', true)`;
        const rows = await tx.unsafe(
          query,
          used.length ? [JSON.stringify(body)] : [],
        );
        return rows[0]?.result ?? null;
      });
      return json(200, result);
    } catch (e) {
      const err = e as {
        code?: string;
        message?: string;
        detail?: string;
        hint?: string;
      };
      const code = typeof err.code === "string" ? err.code : "XX000";
      return json(errorStatus(code, role), {
        code,
        message: err.message ?? "error",
        details: err.detail ?? null,
        hint: err.hint ?? null,
      });
    }
  }

  return { handle, close: () => sql.end({ timeout: 5 }) };
}
