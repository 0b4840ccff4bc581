/**
 * `status`: the queue by target and status, coverage, lag, failures, usage, the last runs and the
 * size of the tables the tick keeps bounded.
 */
import { bool, int } from "../args.ts";
import { connect, type Ctx, withDb } from "../context.ts";
import { jsonText, statusJson, type StatusReport, statusText } from "../format.ts";

export async function status(ctx: Ctx): Promise<number> {
  const conn = await connect(ctx);
  const report: StatusReport = await withDb(conn, "status", async (db) => ({
    queue: await db.queueStatus(),
    coverage: await db.coverage(),
    lag: await db.lag(),
    failures: await db.failures(),
    spendCaps: await db.spendCaps(),
    warnings: [await db.invokeProblem()].filter((w): w is string => w !== null),
    usage: await db.usage(),
    runs: await db.runs(int(ctx.args, "runs") ?? 5),
    adoption: await db.adoption(),
    housekeeping: await db.housekeeping(),
    modelChanges: await db.modelChanges(),
    batches: await db.batches(10),
  }));
  if (bool(ctx.args, "json")) console.log(jsonText(statusJson(report, new Date())));
  else console.log(`embed-queue status (${conn.label})\n\n${statusText(report)}`);
  return 0;
}
