/** `retry` (the guide's retry UPDATE, scoped) and `requeue` (the guide's manual requeue). */
import { str } from "../args.ts";
import { checkTable, connect, type Ctx, withDb } from "../context.ts";
import { CliError } from "../errors.ts";

export async function retry(ctx: Ctx): Promise<number> {
  const table = str(ctx.args, "table") ?? null;
  const id = str(ctx.args, "id") ?? null;
  const conn = await connect(ctx);
  const scope = [table ? `table ${table}` : "", id ? "that row" : ""].filter(Boolean).join(", ");
  return await withDb(conn, "retry", async (db) => {
    if (table) await checkTable(db, table);
    if (id !== null) {
      const statuses = await db.jobStatuses(table, id);
      if (statuses.length === 0) {
        throw new CliError(
          `no job for that id${
            table ? ` in ${table}` : ""
          }: check the id; \`requeue <table> <id>\` queues a row that has no job`,
        );
      }
      if (!statuses.includes("failed")) {
        console.log(`Nothing to retry: that row's job is ${[...new Set(statuses)].join(", ")}, not failed.`);
        return 0;
      }
    }
    const n = await db.retry(table, id);
    console.log(
      n === 0
        ? `No failed jobs to retry${scope ? ` (${scope})` : ""}.`
        : `Retried ${n} failed job${n === 1 ? "" : "s"}${
          scope ? ` (${scope})` : ""
        }: back to pending with fresh attempts. ` +
          "The hands-off path picks them up within a minute; `drain` does it now.",
    );
    return 0;
  });
}

export async function requeue(ctx: Ctx): Promise<number> {
  const [table, id] = ctx.args.positionals;
  const conn = await connect(ctx);
  return await withDb(conn, "requeue", async (db) => {
    const targets = await checkTable(db, table);
    let n: number;
    try {
      n = await db.requeue(table, id);
    } catch (e) {
      // embed_queue.requeue raises P0002 for a row that does not exist (a malformed key names
      // no row) and 55000 for a soft-deleted one.
      const code = (e as { code?: string }).code ?? "";
      if (code === "P0002") throw new CliError(`${table} has no row with that id: check the id`);
      if (code === "55000") {
        throw new CliError(
          `that row of ${table} is soft-deleted, so it is not embedded: undelete it (deleted_at = null) to queue it`,
        );
      }
      throw e;
    }
    const cols = targets.map((t) => t.embedding_column).join(", ");
    console.log(
      `Requeued ${n} job${n === 1 ? "" : "s"} for ${table} ${id} (${cols}): pending now; ` +
        "the hands-off path embeds it within a minute, `drain` does it now.",
    );
    return 0;
  });
}
