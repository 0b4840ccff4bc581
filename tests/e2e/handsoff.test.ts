/**
 * The hands-off path, first thing after the test stack's services start: the seeded backlog
 * (55 jobs) is drained by the database alone (webhook and pg_cron → pg_net → gateway →
 * function), with no manual call, and every live row ends with the vector of its content.
 * tests/run.ts runs this file before any other Deno test.
 */
import assert from "node:assert/strict";
import { db, ignore, isVectorOf, waitFor } from "../integration/helpers.ts";

Deno.test({ name: "hands-off: the seeded backlog drains with no manual call", ignore }, async () => {
  const sql = db();
  try {
    const [{ n: seeded }] = await sql`select count(*)::int as n from public.embedding_queue`;
    assert.equal(seeded, 55, "the seed queued 33 sessions and 22 summaries");
    await waitFor("the seeded backlog to drain", async () => {
      const [{ open }] = await sql`
        select count(*)::int as open from public.embedding_queue where status in ('pending', 'processing')`;
      return open === 0;
    }, 120_000);
    const status = await sql`
      SELECT table_name, status, COUNT(*)::int as count FROM embedding_queue
      GROUP BY table_name, status ORDER BY table_name, status`;
    assert.deepEqual(status.map((r) => [r.table_name, r.status, r.count]), [
      ["sessions", "completed", 33],
      ["summaries", "completed", 22],
    ]);
    const runs = await sql`select distinct trigger from embed_queue.runs`;
    assert.ok(runs.length > 0, "a run was recorded");
    for (const r of runs) assert.ok(["webhook", "cron"].includes(r.trigger), `run triggered by ${r.trigger}`);

    const sessions =
      await sql`select title, title_embedding::text as v from public.sessions where deleted_at is null`;
    const summaries =
      await sql`select content, content_embedding::text as v from public.summaries where deleted_at is null`;
    assert.equal(sessions.length, 33);
    assert.equal(summaries.length, 22);
    for (const s of sessions) assert.ok(isVectorOf(s.v, s.title), "session vector");
    for (const s of summaries) assert.ok(isVectorOf(s.v, s.content), "summary vector");
    const [{ n: deletedWithVectors }] = await sql`
      select count(*)::int as n from public.sessions where deleted_at is not null and title_embedding is not null`;
    assert.equal(deletedWithVectors, 0, "soft-deleted rows were not embedded");
  } finally {
    await sql.end();
  }
});
