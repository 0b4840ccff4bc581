/**
 * A 20 MB row, hands-off, beside ordinary rows of the same user: it never reaches the function
 * whole (claim hands out a bounded prefix), costs no other job an attempt, and ends completed
 * and marked truncated. The ordinary rows are embedded on their first attempt.
 */
import assert from "node:assert/strict";
import { ignore, scenario, waitFor } from "./helpers.ts";

const MB = 2 ** 20;

Deno.test(
  { name: "huge row: 20 MB of text is embedded truncated and costs no other job an attempt", ignore },
  () =>
    scenario(async ({ sql, user, tag }) => {
      const huge = `${tag} ` + "planning notes and minutes ".repeat(Math.ceil((20 * MB) / 27));
      assert.ok(huge.length >= 20 * MB);
      const [{ id: hugeId }] = await sql`
      insert into public.sessions (user_id, title) values (${user}, ${huge}) returning id::text`;
      const small = await sql`
      insert into public.sessions (user_id, title)
      select ${user}, ${tag} || ' ordinary row ' || g from generate_series(1, 5) g returning id::text`;
      const jobs = async () =>
        await sql`
        select q.record_id, q.status, q.attempts, q.truncated, length(q.content) as stored
        from public.embedding_queue q join public.sessions s on q.record_id = s.id::text
        where s.user_id = ${user} and q.table_name = 'sessions'`;
      await waitFor("the rows to be embedded", async () => {
        const rows = await jobs();
        return rows.length === 6 && rows.every((r) => r.status === "completed");
      }, 120_000);
      const rows = await jobs();
      const big = rows.find((r) => r.record_id === hugeId)!;
      assert.equal(big.truncated, true, "marked truncated");
      assert.ok(big.stored < MB, `the queue keeps a bounded prefix, not the row (${big.stored} characters)`);
      for (const r of rows.filter((r) => r.record_id !== hugeId)) {
        assert.equal(r.attempts, 1, "every ordinary row on its first attempt");
        assert.ok(small.some((s) => s.id === r.record_id));
      }
      const [{ has }] =
        await sql`select title_embedding is not null as has from public.sessions where id = ${hugeId}`;
      assert.equal(has, true, "the huge row holds a vector");
    }),
);
