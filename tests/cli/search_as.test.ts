/**
 * `search --as USER_ID`: what the search function gives that user (hybrid search as role
 * authenticated with the user's claims, one transaction), direct and through the transaction
 * pooler: their own rows, never another user's, never a soft-deleted one.
 */
import assert from "node:assert/strict";
import {
  cli,
  db,
  ignore,
  makeSession,
  makeUser,
  oneErrorLine,
  viaEnd,
  viaEnv,
  viaLabel,
  VIAS,
  waitCompleted,
} from "./helpers.ts";

for (const via of VIAS) {
  Deno.test(
    { name: `cli search --as: that user's rows only, soft-deleted left out${viaLabel(via)}`, ignore },
    async () => {
      const sql = db();
      try {
        const dbEnv = await viaEnv(via);
        const [a, b] = [await makeUser(sql), await makeUser(sql)];
        const title = `${crypto.randomUUID()} lighthouse keeper logbook`;
        const mine = await makeSession(sql, a, title);
        const gone = await makeSession(sql, a, `${title} draft`);
        const theirs = await makeSession(sql, b, title);
        for (const id of [mine, gone, theirs]) await waitCompleted(sql, "sessions", id);
        await sql`update public.sessions set deleted_at = now() where id = ${gone}`;

        const r = await cli(["search", "sessions", title, "--as", a, "--limit", "10"], { env: dbEnv });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`What user ${a} gets from the search function`));
        const ids = r.stdout.split("\n").map((l) =>
          l.match(/^\s+\d+\s+-?\d\.\d{4}\s+-?\d\.\d{4}\s+([0-9a-f-]{36})\s/)?.[1]
        ).filter(Boolean);
        assert.equal(ids[0], mine, r.stdout);
        assert.ok(!ids.includes(theirs), "never the other user's row");
        assert.ok(!ids.includes(gone), "never a soft-deleted row");

        // The same search without --as (the operator's view) does see B's row.
        const all = await cli(["search", "sessions", title, "--limit", "10"], { env: dbEnv });
        assert.equal(all.code, 0, all.stderr);
        assert.ok(all.stdout.includes(theirs));
      } finally {
        await sql.end();
        await viaEnd(via);
      }
    },
  );
}

Deno.test({
  name: "cli search --as: a bad id, an unknown user or another table is one line on stderr",
  ignore,
}, async () => {
  let r = await cli(["search", "sessions", "x", "--as", "alice"]);
  assert.equal(r.code, 2);
  assert.match(oneErrorLine(r), /^error: --as needs a user id/);
  r = await cli(["search", "embedding_queue", "x", "--as", crypto.randomUUID()]);
  assert.equal(r.code, 2);
  assert.match(oneErrorLine(r), /sessions or summaries/);
  r = await cli(["search", "sessions", "x", "--as", crypto.randomUUID()]);
  assert.equal(r.code, 1);
  assert.match(oneErrorLine(r), /^error: no user has the id/);
});
