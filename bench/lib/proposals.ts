/**
 * A proposed change to embed_queue.complete(), applied to the bench cluster only so that the
 * database-bound part can measure the function as shipped and with the change, in the same
 * run. The repository's migrations are not touched: the function's text is read from the
 * migration file and three edits are made to it; if the migration no longer has the expected
 * text, this throws instead of guessing.
 *
 * The problem (see BENCHMARKS.md): complete() joins its input arrays to embedding_queue, and
 * the planner estimates `status = 'processing' and locked_by = <this run>` at about one row (the
 * statistics were gathered while the jobs were pending, and a run id is always rare). It then
 * puts the queue on the outer side of a nested loop and rescans the whole input for every row
 * it holds: the `stale` update compares every job the run holds (batch_size x concurrency, 4,000
 * by default) with every input row (500), about 2 million comparisons per call, to find no row;
 * the `done` update does 500 x 500. The vector write reads every queue row of the target through
 * the (table_name, record_id, embedding_column) index and filters them, which grows with the
 * backlog.
 *
 * The change: the two queue updates use no join at all (rows by primary key, `q.id = any(...)`;
 * the per-row token count, truncation flag and hash picked with array_position), and the vector
 * write gets `q.id = any($1)` so that it can start from the primary key. Same rows, same
 * outcomes; the pgTAP tests of complete() are what would confirm it in the repository.
 */
import postgres from "postgres";
import { join } from "node:path";
import { ROOT } from "../../local/stack.ts";

const MIGRATION = join(ROOT, "supabase/migrations/20261124000500_worker_api.sql");

function replaceOnce(s: string, from: string, to: string): string {
  const n = s.split(from).length - 1;
  if (n !== 1) {
    throw new Error(`proposal: expected the text once in complete(), found it ${n} times:\n${from}`);
  }
  return s.replace(from, to);
}

/** The proposed complete(), as `create or replace function` SQL. */
export function proposedComplete(): string {
  const text = Deno.readTextFileSync(MIGRATION);
  const m = text.match(/^create function embed_queue\.complete\([\s\S]*?^\$\$;/m);
  if (!m) throw new Error(`proposal: embed_queue.complete() not found in ${MIGRATION}`);
  let s = m[0].replace(/^create function/, "create or replace function");
  s = replaceOnce(
    s,
    "        join public.embedding_queue q on q.id = i.id\n        where q.table_name = $4",
    "        join public.embedding_queue q on q.id = i.id\n        where q.id = any ($1) and q.table_name = $4",
  );
  const start = s.indexOf("  return query\n    with input as (");
  const end = s.indexOf("    order by input.ord;");
  if (start < 0 || end < 0) throw new Error("proposal: the final statement of complete() has changed");
  s = s.slice(0, start) + JOIN_FREE + s.slice(end + "    order by input.ord;".length);
  return s;
}

const JOIN_FREE = `  return query
    with done as (
      update public.embedding_queue q set
        status = 'completed',
        completed_at = pg_catalog.now(),
        model = p_model,
        dimensions = p_dimensions,
        tokens = p_tokens[pg_catalog.array_position(p_ids, q.id)],
        truncated = coalesce(p_truncated[pg_catalog.array_position(p_ids, q.id)], false),
        error_message = null,
        locked_by = null,
        locked_until = null
      where q.id = any (v_written)
        and q.status = 'processing' and q.locked_by = p_worker
        and q.content_hash = p_hashes[pg_catalog.array_position(p_ids, q.id)]
      returning q.id
    ),
    stale as (
      -- Held, but the content is no longer what was embedded: again, at once, attempt refunded.
      update public.embedding_queue q set
        status = 'pending',
        attempts = greatest(q.attempts - 1, 0),
        run_at = pg_catalog.now(),
        locked_by = null,
        locked_until = null,
        content_hash = null
      where q.id = any (p_ids) and not (q.id = any (v_written))
        and q.status = 'processing' and q.locked_by = p_worker
      returning q.id
    )
    select i.id,
           case when exists (select 1 from done where done.id = i.id) then 'completed'
                when exists (select 1 from stale where stale.id = i.id) then 'stale'
                else 'lost' end
    from unnest(p_ids) with ordinality as i (id, ord)
    order by i.ord;`;

/** The shipped complete(), to put back. */
export function shippedComplete(): string {
  const text = Deno.readTextFileSync(MIGRATION);
  const m = text.match(/^create function embed_queue\.complete\([\s\S]*?^\$\$;/m);
  if (!m) throw new Error(`embed_queue.complete() not found in ${MIGRATION}`);
  return m[0].replace(/^create function/, "create or replace function");
}

export async function useComplete(sql: postgres.Sql, which: "shipped" | "proposed") {
  await sql.unsafe(which === "shipped" ? shippedComplete() : proposedComplete());
}
