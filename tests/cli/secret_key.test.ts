/** The CLI calls a hosted project's function with a new secret key (sb_secret_...) or the legacy service role key. */
import assert from "node:assert/strict";
import { chooseConnection, needFunction, projectKey } from "../../cli/connection.ts";
import { UsageError } from "../../cli/errors.ts";

const noStack = () => ({ apiUrl: "", dbUrl: "", serviceRoleKey: "" });
const URL_ = "https://abc.supabase.co";

Deno.test("connection: SUPABASE_SECRET_KEY (sb_secret_...) is the key, before SUPABASE_SERVICE_ROLE_KEY", () => {
  const cases: Array<[Record<string, string>, string | undefined]> = [
    [{ SUPABASE_SECRET_KEY: "sb_secret_abc" }, "sb_secret_abc"],
    [{ SUPABASE_SECRET_KEY: " sb_secret_abc\n" }, "sb_secret_abc"],
    [{ SUPABASE_SECRET_KEY: "sb_secret_abc", SUPABASE_SERVICE_ROLE_KEY: "legacy-jwt" }, "sb_secret_abc"],
    [{ SUPABASE_SERVICE_ROLE_KEY: "legacy-jwt" }, "legacy-jwt"],
    // A secret key put in the old variable works as well: the function accepts it either way.
    [{ SUPABASE_SERVICE_ROLE_KEY: "sb_secret_xyz" }, "sb_secret_xyz"],
    [{ SUPABASE_SECRET_KEY: "", SUPABASE_SERVICE_ROLE_KEY: "legacy-jwt" }, "legacy-jwt"],
    [{}, undefined],
  ];
  for (const [env, want] of cases) {
    assert.equal(projectKey(env), want, JSON.stringify(Object.keys(env)));
    const c = chooseConnection({ SUPABASE_URL: URL_, ...env }, undefined, noStack);
    assert.equal(c.serviceRoleKey, want);
    if (want) assert.deepEqual(needFunction(c, "drain"), { apiUrl: URL_, key: want });
  }
});

Deno.test("connection: SUPABASE_SECRET_KEY must be a secret key; the message never shows it", () => {
  for (
    const [bad, re] of [
      ["sb_publishable_abc", /not a publishable key/],
      ["eyJhbGciOiJIUzI1NiJ9.e30.sig", /must be one of the project's secret API keys \(sb_secret_\.\.\./],
      ["sb_secret_", /must be one of the project's secret API keys/],
    ] as const
  ) {
    assert.throws(
      () => chooseConnection({ SUPABASE_URL: URL_, SUPABASE_SECRET_KEY: bad }, undefined, noStack),
      (e: unknown) =>
        e instanceof UsageError && re.test(e.message) &&
        (bad === "sb_secret_" || !e.message.includes(bad)),
      bad,
    );
  }
});

Deno.test("connection: without any key, a call names both variables", () => {
  const c = chooseConnection({ SUPABASE_URL: URL_ }, undefined, noStack);
  assert.throws(
    () => needFunction(c, "drain"),
    (e: unknown) =>
      e instanceof UsageError &&
      /drain needs SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SECRET_KEY/.test(e.message),
  );
});
