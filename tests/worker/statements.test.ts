/**
 * Every statement the function sends outside a transaction takes a parameter, so that postgres.js
 * pipelines nothing behind it (db.ts, the note above createDb): behind a transaction pooler a
 * statement pipelined after another's end can lose its answer and never settle.
 */
import assert from "node:assert/strict";

const FILES = ["supabase/functions/embed-queue/db.ts", "supabase/functions/embed-queue/batch_db.ts"];

Deno.test("statements: every sql`` statement of the function's database layer takes a parameter", () => {
  let seen = 0;
  const bare: string[] = [];
  for (const file of FILES) {
    const text = Deno.readTextFileSync(new URL(`../../${file}`, import.meta.url));
    // sql`...` only: tx`...` runs inside sql.begin, on a connection of its own.
    for (const m of text.matchAll(/\bsql`((?:[^`\\]|\\.)*)`/g)) {
      seen++;
      if (!m[1].includes("${")) {
        bare.push(`${file}:${text.slice(0, m.index).split("\n").length}: ${m[1].replace(/\s+/g, " ").trim()}`);
      }
    }
  }
  assert.ok(seen >= 15, `found the statements (${seen})`);
  assert.deepEqual(bare, [], "statements without a parameter");
});
