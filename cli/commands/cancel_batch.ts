/** `cancel-batch <id>`: embed_queue.cancel_batch(), with its answer in words. */
import { connect, type Ctx, withDb } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";

export async function cancelBatch(ctx: Ctx): Promise<number> {
  const [raw] = ctx.args.positionals;
  const id = /^\d{1,15}$/.test(raw ?? "") ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id)) {
    throw new UsageError("cancel-batch: the batch id is a whole number (status lists them)");
  }
  const conn = await connect(ctx);
  return await withDb(conn, "cancel-batch", async (db) => {
    let answer: string;
    try {
      answer = await db.cancelBatch(id);
    } catch (e) {
      if ((e as { code?: string }).code === "P0002") {
        throw new CliError(`no batch ${id}: \`status\` lists the batches`);
      }
      throw e;
    }
    console.log(`Batch ${id}: ${answer}.`);
    return 0;
  });
}
