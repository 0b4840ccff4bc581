/**
 * The pg_net and Vault stand-ins (local/extensions) against the real extensions' interfaces.
 * The expected data below is recorded by hand from the real install scripts; the test compares
 * it with what the running test stack's catalog reports, so a stand-in that drifts (an argument
 * renamed, a default changed, a column added, a table made logged) fails here.
 *
 * pg_net: repository supabase/pg_net, tag v0.19.5 (commit a7792bfd913c7859e14025d606624982706c2a7f),
 *   sql/pg_net.sql (installed as pg_net--0.19.5.sql by its Makefile) and pg_net.control.in.
 * Vault: repository supabase/vault, tag v0.3.1 (commit 6e0cd916242d922a646e4d611cc215e09dd429f4),
 *   sql/supabase_vault--0.3.0.sql and sql/supabase_vault--0.3.0--0.3.1.sql ("no SQL changes").
 * Hosted changes after the install script: supabase/postgres,
 *   migrations/db/init-scripts/00000000000003-post-setup.sql (event trigger issue_pg_net_access,
 *   function extensions.grant_pg_net_access): http_get and http_post become security definer
 *   with search_path = net, and lose PUBLIC's EXECUTE.
 *
 * Types are written as format_type prints them with search_path = pg_catalog; defaults as
 * pg_get_expr prints them (a bytea constant in hex).
 */
import assert from "node:assert/strict";
import postgres from "postgres";

const DB_URL = Deno.env.get("EQ_TEST_DB_URL");
const ignore = !DB_URL;

interface Arg {
  name: string;
  type: string;
  default?: string;
}
interface Fn {
  args: Arg[];
  returns: string;
  volatility: "volatile" | "stable" | "immutable";
  security: "invoker" | "definer";
  /** proconfig, e.g. ['search_path=""']; [] when the function sets nothing. */
  config: string[];
  /** Whether PUBLIC may execute it. */
  publicExecute: boolean;
}
interface Column {
  name: string;
  type: string;
  notNull?: boolean;
  default?: string;
}
interface Relation {
  kind: "table" | "view";
  /** relpersistence: u = unlogged, p = permanent. */
  persistence: "u" | "p";
  columns: Column[];
  /** Whether PUBLIC may select, insert, update and delete (pg_net's script grants all). */
  publicAll: boolean;
}
interface ExtensionSpec {
  name: string;
  version: string;
  schemas: string[];
  functions: Record<string, Fn>;
  relations: Record<string, Relation>;
  indexes: string[];
  types: Record<string, string>;
}

const J = "jsonb";
type Attrs = Pick<Fn, "volatility" | "security" | "config" | "publicExecute">;
const volatileInvoker: Attrs = {
  volatility: "volatile",
  security: "invoker",
  config: [],
  publicExecute: true,
};

/** pg_net 0.19.5, sql/pg_net.sql (the objects as the install script leaves them). */
const PG_NET: ExtensionSpec = {
  name: "pg_net",
  version: "0.19.5",
  schemas: ["net"],
  functions: {
    "net.check_worker_is_up": { args: [], returns: "void", ...volatileInvoker },
    "net._await_response": {
      args: [{ name: "request_id", type: "bigint" }],
      returns: "boolean",
      ...volatileInvoker,
    },
    "net._urlencode_string": {
      args: [{ name: "string", type: "character varying" }],
      returns: "text",
      ...volatileInvoker,
      volatility: "immutable",
    },
    "net._encode_url_with_params_array": {
      args: [{ name: "url", type: "text" }, { name: "params_array", type: "text[]" }],
      returns: "text",
      ...volatileInvoker,
      volatility: "immutable",
    },
    "net.worker_restart": { args: [], returns: "boolean", ...volatileInvoker },
    "net.wait_until_running": { args: [], returns: "void", ...volatileInvoker },
    "net.wake": { args: [], returns: "void", ...volatileInvoker },
    "net.http_get": {
      args: [
        { name: "url", type: "text" },
        { name: "params", type: J, default: "'{}'::jsonb" },
        { name: "headers", type: J, default: "'{}'::jsonb" },
        { name: "timeout_milliseconds", type: "integer", default: "5000" },
      ],
      returns: "bigint",
      ...volatileInvoker,
    },
    "net.http_post": {
      args: [
        { name: "url", type: "text" },
        { name: "body", type: J, default: "'{}'::jsonb" },
        { name: "params", type: J, default: "'{}'::jsonb" },
        { name: "headers", type: J, default: `'{"Content-Type": "application/json"}'::jsonb` },
        { name: "timeout_milliseconds", type: "integer", default: "5000" },
      ],
      returns: "bigint",
      ...volatileInvoker,
    },
    "net.http_delete": {
      args: [
        { name: "url", type: "text" },
        { name: "params", type: J, default: "'{}'::jsonb" },
        { name: "headers", type: J, default: "'{}'::jsonb" },
        { name: "timeout_milliseconds", type: "integer", default: "5000" },
        { name: "body", type: J, default: "NULL::jsonb" },
      ],
      returns: "bigint",
      ...volatileInvoker,
    },
    "net._http_collect_response": {
      args: [{ name: "request_id", type: "bigint" }, { name: "async", type: "boolean", default: "true" }],
      returns: "net.http_response_result",
      ...volatileInvoker,
    },
    "net.http_collect_response": {
      args: [{ name: "request_id", type: "bigint" }, { name: "async", type: "boolean", default: "true" }],
      returns: "net.http_response_result",
      ...volatileInvoker,
    },
  },
  relations: {
    "net.http_request_queue": {
      kind: "table",
      persistence: "u",
      publicAll: true,
      columns: [
        {
          name: "id",
          type: "bigint",
          notNull: true,
          default: "nextval('net.http_request_queue_id_seq'::regclass)",
        },
        { name: "method", type: "net.http_method", notNull: true },
        { name: "url", type: "text", notNull: true },
        { name: "headers", type: J },
        { name: "body", type: "bytea" },
        { name: "timeout_milliseconds", type: "integer", notNull: true },
      ],
    },
    "net._http_response": {
      kind: "table",
      persistence: "u",
      publicAll: true,
      columns: [
        { name: "id", type: "bigint" },
        { name: "status_code", type: "integer" },
        { name: "content_type", type: "text" },
        { name: "headers", type: J },
        { name: "content", type: "text" },
        { name: "timed_out", type: "boolean" },
        { name: "error_msg", type: "text" },
        { name: "created", type: "timestamp with time zone", notNull: true, default: "now()" },
      ],
    },
  },
  indexes: ["CREATE INDEX _http_response_created_idx ON net._http_response USING btree (created)"],
  types: {
    "net.http_method":
      "domain text CHECK (((VALUE ~~* 'get'::text) OR (VALUE ~~* 'post'::text) OR (VALUE ~~* 'delete'::text)))",
    "net.request_status": "enum (PENDING, SUCCESS, ERROR)",
    "net.http_response": "composite (status_code integer, headers jsonb, body text)",
    "net.http_response_result":
      "composite (status net.request_status, message text, response net.http_response)",
  },
};

/** Hosted Supabase's event trigger (extensions.grant_pg_net_access) after create extension. */
const HOSTED_PG_NET_CHANGES: Record<string, Partial<Fn>> = {
  "net.http_get": { security: "definer", config: ["search_path=net"], publicExecute: false },
  "net.http_post": { security: "definer", config: ["search_path=net"], publicExecute: false },
};

const revoked: Attrs = { volatility: "volatile", security: "invoker", config: [], publicExecute: false };
const secretArgs = (first: Arg[]): Arg[] => [
  ...first,
  { name: "new_name", type: "text", default: "NULL::text" },
  {
    name: "new_description",
    type: "text",
    default: first[0].name === "new_secret" ? "''::text" : "NULL::text",
  },
  { name: "new_key_id", type: "uuid", default: "NULL::uuid" },
];
const aeadArgs: Arg[] = [
  { name: "message", type: "bytea" },
  { name: "additional", type: "bytea" },
  { name: "key_id", type: "bigint" },
  { name: "context", type: "bytea", default: "'\\x7067736f6469756d'::bytea" }, // 'pgsodium'
  { name: "nonce", type: "bytea", default: "NULL::bytea" },
];

/** Vault 0.3.1, sql/supabase_vault--0.3.0.sql. */
const VAULT: ExtensionSpec = {
  name: "supabase_vault",
  version: "0.3.1",
  schemas: ["vault"],
  functions: {
    "vault._crypto_aead_det_encrypt": {
      args: aeadArgs,
      returns: "bytea",
      ...revoked,
      volatility: "immutable",
    },
    "vault._crypto_aead_det_decrypt": {
      args: aeadArgs,
      returns: "bytea",
      ...revoked,
      volatility: "immutable",
    },
    "vault._crypto_aead_det_noncegen": { args: [], returns: "bytea", ...revoked, volatility: "immutable" },
    "vault.create_secret": {
      args: secretArgs([{ name: "new_secret", type: "text" }]),
      returns: "uuid",
      ...revoked,
      security: "definer",
      config: ['search_path=""'],
    },
    "vault.update_secret": {
      args: secretArgs([
        { name: "secret_id", type: "uuid" },
        { name: "new_secret", type: "text", default: "NULL::text" },
      ]),
      returns: "void",
      ...revoked,
      security: "definer",
      config: ['search_path=""'],
    },
  },
  relations: {
    "vault.secrets": {
      kind: "table",
      persistence: "p",
      publicAll: false,
      columns: [
        { name: "id", type: "uuid", notNull: true, default: "gen_random_uuid()" },
        { name: "name", type: "text" },
        { name: "description", type: "text", notNull: true, default: "''::text" },
        { name: "secret", type: "text", notNull: true },
        { name: "key_id", type: "uuid" },
        { name: "nonce", type: "bytea", default: "vault._crypto_aead_det_noncegen()" },
        { name: "created_at", type: "timestamp with time zone", notNull: true, default: "CURRENT_TIMESTAMP" },
        { name: "updated_at", type: "timestamp with time zone", notNull: true, default: "CURRENT_TIMESTAMP" },
      ],
    },
    "vault.decrypted_secrets": {
      kind: "view",
      persistence: "p",
      publicAll: false,
      columns: [
        { name: "id", type: "uuid" },
        { name: "name", type: "text" },
        { name: "description", type: "text" },
        { name: "secret", type: "text" },
        { name: "decrypted_secret", type: "text" },
        { name: "key_id", type: "uuid" },
        { name: "nonce", type: "bytea" },
        { name: "created_at", type: "timestamp with time zone" },
        { name: "updated_at", type: "timestamp with time zone" },
      ],
    },
  },
  indexes: [
    "CREATE UNIQUE INDEX secrets_pkey ON vault.secrets USING btree (id)",
    "CREATE UNIQUE INDEX secrets_name_idx ON vault.secrets USING btree (name) WHERE (name IS NOT NULL)",
  ],
  types: {},
};

/**
 * Where the stand-ins knowingly differ, and why. The real Vault's encryption is C code holding a
 * key SQL never sees; the stand-in keeps its key in a table only the owner reads, so its two
 * crypto functions are security definer (EXECUTE is still revoked from PUBLIC, as in the real).
 */
const STAND_IN_FUNCTION_CHANGES: Record<string, Partial<Fn>> = {
  "vault._crypto_aead_det_encrypt": { security: "definer", config: ['search_path=""'] },
  "vault._crypto_aead_det_decrypt": { security: "definer", config: ['search_path=""'] },
};
const STAND_IN_ONLY_RELATIONS: Record<string, Relation> = {
  "vault._stand_in_key": {
    kind: "table",
    persistence: "p",
    publicAll: false,
    columns: [{ name: "root", type: "bytea", notNull: true }],
  },
};

const renderArgs = (args: Arg[]) =>
  args.map((a) => `${a.name} ${a.type}${a.default !== undefined ? ` DEFAULT ${a.default}` : ""}`).join(", ");

function expectedFunctions(spec: ExtensionSpec, hosted: boolean) {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, fn] of Object.entries(spec.functions)) {
    const f = { ...fn, ...(hosted ? HOSTED_PG_NET_CHANGES[name] : {}), ...STAND_IN_FUNCTION_CHANGES[name] };
    out[name] = {
      args: renderArgs(f.args),
      returns: f.returns,
      volatility: f.volatility,
      security: f.security,
      config: f.config,
      publicExecute: f.publicExecute,
    };
  }
  return out;
}

function connect() {
  // search_path = pg_catalog: format_type and regclass print every other schema's names qualified.
  return postgres(DB_URL!, { max: 1, onnotice: () => {}, connection: { search_path: "pg_catalog" } });
}

async function catalogFunctions(sql: postgres.Sql, schemas: string[]) {
  const rows = await sql<
    {
      name: string;
      args: string;
      returns: string;
      volatility: string;
      security: string;
      config: string[] | null;
      public_execute: boolean;
    }[]
  >`
    select n.nspname || '.' || p.proname as name,
           pg_get_function_arguments(p.oid) as args,
           pg_get_function_result(p.oid) as returns,
           case p.provolatile when 'v' then 'volatile' when 's' then 'stable' else 'immutable' end as volatility,
           case when p.prosecdef then 'definer' else 'invoker' end as security,
           p.proconfig as config,
           exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                   where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_execute
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = any(${schemas})
    order by 1`;
  return Object.fromEntries(rows.map((r) => [r.name, {
    args: r.args,
    returns: r.returns,
    volatility: r.volatility,
    security: r.security,
    config: r.config ?? [],
    publicExecute: r.public_execute,
  }]));
}

async function catalogRelations(sql: postgres.Sql, schemas: string[]) {
  const rels = await sql<
    { name: string; oid: number; kind: string; persistence: string; public_all: boolean }[]
  >`
    select n.nspname || '.' || c.relname as name, c.oid::int as oid,
           case c.relkind when 'v' then 'view' else 'table' end as kind,
           c.relpersistence as persistence,
           (select count(distinct a.privilege_type) = 4 from aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
            where a.grantee = 0 and a.privilege_type in ('SELECT', 'INSERT', 'UPDATE', 'DELETE')) as public_all
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(${schemas}) and c.relkind in ('r', 'p', 'v', 'm', 'f')
    order by 1`;
  const out: Record<string, Relation> = {};
  for (const r of rels) {
    const cols = await sql<{ name: string; type: string; not_null: boolean; default: string | null }[]>`
      select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
             pg_get_expr(d.adbin, d.adrelid) as default
      from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = ${r.oid} and a.attnum > 0 and not a.attisdropped
      order by a.attnum`;
    out[r.name] = {
      kind: r.kind as Relation["kind"],
      persistence: r.persistence as Relation["persistence"],
      publicAll: r.public_all,
      columns: cols.map((c) => ({
        name: c.name,
        type: c.type,
        ...(c.not_null ? { notNull: true } : {}),
        ...(c.default !== null ? { default: c.default } : {}),
      })),
    };
  }
  return out;
}

async function catalogTypes(sql: postgres.Sql, schemas: string[]) {
  const rows = await sql<{ name: string; def: string }[]>`
    select n.nspname || '.' || t.typname as name,
      case t.typtype
        when 'd' then 'domain ' || format_type(t.typbasetype, t.typtypmod) || coalesce(' ' || (
          select string_agg(pg_get_constraintdef(c.oid), ' ' order by c.conname) from pg_constraint c where c.contypid = t.oid), '')
        when 'e' then 'enum (' || (select string_agg(e.enumlabel, ', ' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid) || ')'
        else 'composite (' || (select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)
                               from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped) || ')'
      end as def
    from pg_type t join pg_namespace n on n.oid = t.typnamespace
    where n.nspname = any(${schemas}) and t.typtype in ('d', 'e', 'c')
      and (t.typtype <> 'c' or (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c')
    order by 1`;
  return Object.fromEntries(rows.map((r) => [r.name, r.def]));
}

for (const spec of [PG_NET, VAULT]) {
  Deno.test({ name: `${spec.name} stand-in: the real ${spec.version} interface`, ignore }, async () => {
    const sql = connect();
    try {
      const [ext] = await sql<{ version: string; relocatable: boolean }[]>`
        select e.extversion as version, e.extrelocatable as relocatable
        from pg_extension e where e.extname = ${spec.name}`;
      assert.ok(ext, `${spec.name} is installed`);
      assert.equal(ext.version, spec.version);
      assert.equal(ext.relocatable, false);

      // On hosted Supabase the event trigger changes pg_net's two entry points; the local
      // bootstrap reproduces it, and without it the functions stay as the script leaves them.
      const [{ hosted }] = await sql<{ hosted: boolean }[]>`
        select exists (select 1 from pg_event_trigger where evtname = 'issue_pg_net_access' and evtenabled <> 'D') as hosted`;

      assert.deepEqual(await catalogFunctions(sql, spec.schemas), expectedFunctions(spec, hosted));

      const expectedRelations = { ...spec.relations };
      for (const [name, rel] of Object.entries(STAND_IN_ONLY_RELATIONS)) {
        if (spec.schemas.includes(name.split(".")[0])) expectedRelations[name] = rel;
      }
      assert.deepEqual(await catalogRelations(sql, spec.schemas), expectedRelations);

      const indexes = await sql<{ def: string }[]>`
        select indexdef as def from pg_indexes where schemaname = any(${spec.schemas})`;
      assert.deepEqual(indexes.map((i) => i.def).sort(), [...spec.indexes].sort());
      assert.deepEqual(await catalogTypes(sql, spec.schemas), spec.types);

      // The install script runs as the superuser (supabase_admin on hosted Supabase), whoever
      // asks for the extension: everything it creates belongs to a superuser.
      const notSuper = await sql<{ name: string }[]>`
        select p.proname as name from pg_proc p join pg_roles r on r.oid = p.proowner
        where p.pronamespace::regnamespace::text = any(${spec.schemas}) and not r.rolsuper
        union all
        select c.relname from pg_class c join pg_roles r on r.oid = c.relowner
        where c.relnamespace::regnamespace::text = any(${spec.schemas}) and not r.rolsuper`;
      assert.deepEqual(notSuper.map((r) => r.name), [], "objects owned by a superuser");
    } finally {
      await sql.end();
    }
  });
}

Deno.test({
  name: "pg_net and Vault stand-ins: the installed versions are the defaults, and trusted",
  ignore,
}, async () => {
  const sql = connect();
  try {
    // The control files as PostgreSQL reads them now (the extension folder is the machine's).
    const rows = await sql<{ name: string; default_version: string; trusted: boolean; superuser: boolean }[]>`
      select a.name, a.default_version, v.trusted, v.superuser
      from pg_available_extensions a
      join pg_available_extension_versions v on v.name = a.name and v.version = a.default_version
      where a.name in ('pg_net', 'supabase_vault') order by a.name`;
    // Hosted Supabase lets the non-superuser `postgres` create both (supautils' privileged
    // extensions, the script run as supabase_admin); locally PostgreSQL's trusted extensions do.
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { name: "pg_net", default_version: PG_NET.version, trusted: true, superuser: true },
      { name: "supabase_vault", default_version: VAULT.version, trusted: true, superuser: true },
    ]);
  } finally {
    await sql.end();
  }
});

Deno.test({ name: "pg_net stand-in: both tables are UNLOGGED, as in pg_net 0.19.5", ignore }, async () => {
  const sql = connect();
  try {
    const rows = await sql<{ relname: string; relpersistence: string }[]>`
      select relname, relpersistence from pg_class
      where oid in ('net.http_request_queue'::regclass, 'net._http_response'::regclass) order by relname`;
    assert.deepEqual(rows.map((r) => [r.relname, r.relpersistence]), [["_http_response", "u"], [
      "http_request_queue",
      "u",
    ]]);
  } finally {
    await sql.end();
  }
});
