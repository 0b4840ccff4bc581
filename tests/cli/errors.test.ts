/** How expected errors read, and where the CLI talks to: table-driven, pure. */
import assert from "node:assert/strict";
import {
  CliError,
  dbAddress,
  describeDbError,
  describeFunctionStatus,
  describeFunctionUnreachable,
  describeUnexpected,
  UsageError,
} from "../../cli/errors.ts";
import { chooseConnection, dbPlace, needDb, needFunction } from "../../cli/connection.ts";

const local = { label: 'the local stack "dev"', address: "127.0.0.1:54322", local: true, stackName: "dev" };
const hosted = { label: "SUPABASE_DB_URL", address: "db.abc.supabase.co:5432", local: false };

Deno.test("errors: database errors by code, each one line saying what to do", () => {
  const cases: Array<[Record<string, unknown>, typeof local | typeof hosted, RegExp | null]> = [
    [
      { code: "ECONNREFUSED" },
      local,
      /^cannot reach the database at 127\.0\.0\.1:54322 \(the local stack "dev"\): start it with `npm start`/,
    ],
    [
      { code: "ECONNREFUSED" },
      hosted,
      /^cannot reach the database at db\.abc\.supabase\.co:5432 \(SUPABASE_DB_URL\): check SUPABASE_DB_URL/,
    ],
    [{ code: "CONNECT_TIMEOUT" }, hosted, /^cannot reach the database/],
    [{ name: "ConnectionRefused" }, local, /^cannot reach the database/],
    [{ code: "08006" }, local, /^cannot reach the database/],
    [{ code: "ENOTFOUND" }, hosted, /does not resolve: check SUPABASE_DB_URL/],
    [{ code: "28P01" }, hosted, /refused the login .*check the user and password/],
    [{ code: "3D000" }, hosted, /does not exist: check SUPABASE_DB_URL/],
    [{ code: "42P01" }, hosted, /embed_queue schema is missing .*supabase db push/],
    [{ code: "42883" }, local, /apply the migrations \(npm run stack -- up\)/],
    [{ code: "42501" }, hosted, /permission denied/],
    [{ code: "23505" }, local, null],
    [{}, local, null],
  ];
  for (const [err, place, re] of cases) {
    const m = describeDbError(err, place);
    if (re === null) assert.equal(m, null, JSON.stringify(err));
    else {
      assert.match(m ?? "", re, JSON.stringify(err));
      assert.ok(!m!.includes("\n"));
    }
  }
  assert.match(
    describeDbError({ code: "ECONNREFUSED" }, { ...local, stackName: "cli" })!,
    /npm run stack -- up --name cli/,
  );
});

Deno.test("errors: function answers by HTTP status", () => {
  const url = "http://127.0.0.1:54321/functions/v1/embed-queue";
  const cases: Array<[number, string | null, boolean, RegExp]> = [
    [
      401,
      null,
      false,
      /^the function refused the key \(HTTP 401\): SUPABASE_SERVICE_ROLE_KEY must be the project's service role key/,
    ],
    [403, null, false, /HTTP 403/],
    [
      404,
      null,
      false,
      /no function at .* \(HTTP 404\): deploy it with `supabase functions deploy embed-queue`/,
    ],
    [
      400,
      "batch_size must be an integer from 1 to 10000",
      true,
      /rejected the request \(HTTP 400\): batch_size must be/,
    ],
    [503, "database unreachable: check SUPABASE_DB_URL", true, /cannot reach its database \(HTTP 503\)/],
    [546, null, false, /out of memory or CPU .* smaller --batch-size/],
    [504, null, false, /timed out/],
    [500, null, true, /failed \(HTTP 500\): see the gateway log/],
    [500, null, false, /failed \(HTTP 500\): see the function's logs in the Dashboard/],
  ];
  for (const [status, body, isLocal, re] of cases) {
    const m = describeFunctionStatus(status, url, body, isLocal);
    assert.match(m, re, String(status));
    assert.ok(!m.includes("\n"));
  }
  assert.match(
    describeFunctionUnreachable(url, true, "dev"),
    /cannot reach the function at .*: start the local stack with `npm start`/,
  );
  assert.match(describeFunctionUnreachable(url, false), /check SUPABASE_URL/);
});

Deno.test("errors: unexpected errors are one line, no stack, no more than the first line", () => {
  const e = Object.assign(new Error("boom\n    at somewhere (file.ts:1:1)"), { code: "XX000" });
  const m = describeUnexpected(e);
  assert.equal(m, "unexpected Error (XX000): boom; set EQ_DEBUG=1 for details");
  assert.equal(new UsageError("x").exitCode, 2);
  assert.equal(new CliError("x").exitCode, 1);
});

Deno.test("connection: the local stack by default, a project when its variables are set", () => {
  const stack = (name: string) => ({
    apiUrl: `http://api/${name}`,
    dbUrl: `postgresql://postgres:pw@127.0.0.1:5/${name}`,
    serviceRoleKey: "k",
  });
  const cases: Array<[Record<string, string>, string | undefined, Record<string, unknown>]> = [
    [{}, undefined, { local: true, stackName: "dev", label: 'local stack "dev"', apiUrl: "http://api/dev" }],
    [{}, "cli", { local: true, stackName: "cli", apiUrl: "http://api/cli" }],
    [
      {
        SUPABASE_URL: "https://abc.supabase.co/",
        SUPABASE_SERVICE_ROLE_KEY: "srk",
        SUPABASE_DB_URL: "postgresql://u:p@db:5432/postgres",
      },
      undefined,
      {
        local: false,
        label: "project abc.supabase.co",
        apiUrl: "https://abc.supabase.co",
        serviceRoleKey: "srk",
        dbUrl: "postgresql://u:p@db:5432/postgres",
      },
    ],
    [{ NEXT_PUBLIC_SUPABASE_URL: "https://xyz.supabase.co", SUPABASE_SERVICE_ROLE_KEY: "k" }, undefined, {
      local: false,
      apiUrl: "https://xyz.supabase.co",
      dbUrl: undefined,
    }],
    [{ SUPABASE_DB_URL: "postgresql://u:p@h:1/db" }, undefined, {
      local: false,
      apiUrl: undefined,
      label: "project h:1",
    }],
    // An explicit --stack wins over the variables.
    [{ SUPABASE_URL: "https://abc.supabase.co" }, "cli", { local: true, stackName: "cli" }],
  ];
  for (const [env, flag, want] of cases) {
    const c = chooseConnection(env, flag, stack);
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual((c as unknown as Record<string, unknown>)[k], v, `${JSON.stringify(env)} ${k}`);
    }
  }
  assert.throws(() => chooseConnection({}, "../etc", stack), UsageError);
});

Deno.test("connection: a command says which variable it misses; places never show a password", () => {
  const c = chooseConnection(
    { SUPABASE_URL: "https://abc.supabase.co" },
    undefined,
    () => ({ apiUrl: "", dbUrl: "", serviceRoleKey: "" }),
  );
  assert.throws(
    () => needDb(c, "status"),
    (e: unknown) => e instanceof UsageError && /status needs SUPABASE_DB_URL/.test(e.message),
  );
  assert.throws(
    () => needFunction(c, "drain"),
    (e: unknown) => e instanceof UsageError && /drain needs SUPABASE_SERVICE_ROLE_KEY/.test(e.message),
  );
  assert.equal(
    dbAddress("postgresql://postgres:secret@db.abc.supabase.co:6543/postgres"),
    "db.abc.supabase.co:6543",
  );
  assert.equal(dbAddress("postgresql://postgres:secret@host/postgres"), "host:5432");
  const p = dbPlace(
    chooseConnection(
      { SUPABASE_DB_URL: "postgresql://postgres:secret@h:7/db" },
      undefined,
      () => ({ apiUrl: "", dbUrl: "", serviceRoleKey: "" }),
    ),
  );
  assert.ok(!JSON.stringify(p).includes("secret"));
});
