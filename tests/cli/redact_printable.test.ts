/** Credentials never reach the terminal, nor do control characters from the database. Pure. */
import assert from "node:assert/strict";
import { describeUnexpected, redact } from "../../cli/errors.ts";
import { chooseConnection } from "../../cli/connection.ts";
import { jsonText, oneLine, printable, searchText, statusText } from "../../cli/format.ts";
import { UsageError } from "../../cli/errors.ts";

Deno.test("redact: the database password goes, whether or not SUPABASE_DB_URL parses", () => {
  const cases: Array<[string, string]> = [
    ["postgresql://postgres:pa ss wo%rd@db.abc.supabase.co:5432/postgres", "pa ss wo%rd"],
    ["postgresql://postgres:s3cr3t-Pw@db.abc.supabase.co:5432/postgres", "s3cr3t-Pw"],
    ["postgres://postgres.abc:hunter2[x@aws-0.pooler.supabase.com:6543/postgres", "hunter2[x"],
  ];
  for (const [url, pw] of cases) {
    const env = { SUPABASE_DB_URL: url };
    for (
      const msg of [
        `Invalid URL: '${url}'`,
        `cannot parse ${pw} near position 3`,
        `connect failed for ${url}`,
      ]
    ) {
      const line = describeUnexpected(new TypeError(msg), env);
      assert.ok(!line.includes(pw), `password shown in: ${line}`);
      assert.match(line, /^unexpected TypeError: /);
    }
  }
  assert.equal(
    redact("see postgresql://me:topsecret@host:5432/db and https://u:p@h/x", {}),
    "see postgresql://me:***@host:5432/db and https://u:***@h/x",
  );
  assert.equal(
    redact("key sb_secret_abcdef refused", { SUPABASE_SECRET_KEY: "sb_secret_abcdef" }),
    "key *** refused",
  );
});

Deno.test("connection: a SUPABASE_DB_URL that does not parse is a usage error that does not show it", () => {
  const url = "postgresql://postgres:my pass#1@db.abc.supabase.co:5432/postgres";
  assert.throws(
    () =>
      chooseConnection(
        { SUPABASE_DB_URL: url },
        undefined,
        () => ({ apiUrl: "", dbUrl: "", serviceRoleKey: "" }),
      ),
    (e: unknown) =>
      e instanceof UsageError && /SUPABASE_DB_URL is not a valid/.test(e.message) &&
      !e.message.includes("my pass"),
  );
});

Deno.test("printable: escape codes, C1 controls and bidi overrides from the database are shown inert", () => {
  const cases: Array<[string, string]> = [
    ["\u001b[2J\u001b]0;pwned\u0007title", "\\x1b[2J\\x1b]0;pwned\\x07title"],
    ["a\u009b31mb", "a\\x9b31mb"],
    ["evil\u202egnp.exe", "evil\\u202egnp.exe"],
    ["del\u007f", "del\\x7f"],
    ["plain text, ünïcödé and 日本語", "plain text, ünïcödé and 日本語"],
  ];
  for (const [input, want] of cases) assert.equal(printable(input), want);
  assert.equal(oneLine("x\u001b[31m\nred", 40), "x\\x1b[31m red");

  const rows = [{ record_id: "id\u001b[1A", content: "row \u001b]8;;http://x\u0007link", similarity: 0.5 }];
  const text = searchText("sessions", rows, "m");
  assert.ok(
    !/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text),
    "no control character but newlines in search output",
  );
  assert.match(text, /id\\x1b\[1A/);

  const status = statusText({
    queue: [],
    coverage: [],
    lag: [],
    failures: [{
      table_name: "sessions",
      error_message: "boom \u001b[2J",
      count: 1,
      record_ids: ["r\u009b1"],
    }],
    usage: [],
    runs: [],
  });
  assert.ok(
    !/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(status),
    "no control character but newlines in status output",
  );

  const json = jsonText({ id: "a\u009b\u202e\u001b" });
  assert.deepEqual(JSON.parse(json), { id: "a\u009b\u202e\u001b" }, "still the same JSON");
  assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/.test(json));
});
