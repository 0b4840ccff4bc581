/** `backfill`: queue every live row whose embedding is missing, one page at a time. */
import { int, str } from "../args.ts";
import { checkTable, connect, type Ctx, withDb } from "../context.ts";
import { fmtInt } from "../format.ts";

export async function backfill(ctx: Ctx): Promise<number> {
  const only = str(ctx.args, "table");
  const pageSize = int(ctx.args, "page-size") ?? 1000;
  const conn = await connect(ctx);
  return await withDb(conn, "backfill", async (db) => {
    const tables = only ? [...new Set((await checkTable(db, only)).map((t) => t.table_name))] : [
      ...new Set((await db.targets()).map((t) => t.table_name)),
    ];
    console.log(
      `Backfill (${conn.label}): queueing live rows without an embedding, ${fmtInt(pageSize)} rows a page`,
    );
    const perTable: string[] = [];
    let total = 0;
    for (const table of tables) {
      let after: string | null = null;
      let queued = 0;
      let pages = 0;
      do {
        if (ctx.signal.aborted) break;
        const page = await db.backfillPage(table, after, pageSize);
        pages++;
        queued += page.queued;
        after = page.last_key;
        console.log(`  ${table}: page ${pages}, ${fmtInt(page.queued)} queued (${fmtInt(queued)} so far)`);
      } while (after !== null);
      perTable.push(`${table} ${fmtInt(queued)}`);
      total += queued;
    }
    if (ctx.signal.aborted) {
      console.log(
        `Stopped after queueing ${
          fmtInt(total)
        } jobs; run backfill again to go on (it skips what is queued).`,
      );
      return 130;
    }
    console.log(
      `Queued ${fmtInt(total)} job${total === 1 ? "" : "s"} (${perTable.join(", ")}).` +
        (total > 0
          ? " The hands-off path embeds them; watch with `status`, or run `drain`."
          : " Nothing was missing."),
    );
    return 0;
  });
}
