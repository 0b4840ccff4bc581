/**
 * `reembed`: change the model with no gap in search (README, "Changing the model").
 *
 *   reembed --model M [--dimensions N]   start: shadow columns, every live row queued (bulk), index built
 *   reembed --status                     the changes under way and the old vectors kept
 *   reembed --switch [--force]           search on the new model now (tick() does it once it covers every row)
 *   reembed --rollback                   back to the previous model's vectors
 *   reembed --drop-old                   drop the previous model's vectors (no roll-back after)
 *   reembed --cancel                     drop a change under way
 *
 * Each is one SQL function of schema embed_queue; this only loops the tables and pages.
 */
import { bool, int, str } from "../args.ts";
import { checkTable, connect, type Ctx, withDb } from "../context.ts";
import type { CliDb, GenerationRow } from "../db.ts";
import { CliError, UsageError } from "../errors.ts";
import { fmtInt, renderTable } from "../format.ts";
import { MODEL_DIMENSIONS } from "../../supabase/functions/_shared/config.ts";

/** SQLSTATEs the generation functions raise for what an operator can fix: said in one line. */
const OPERATOR_CODES = new Set(["55000", "P0002", "22023", "22004"]);

async function explained<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const err = e as { code?: string; message?: string; hint?: string };
    if (err.code && OPERATOR_CODES.has(err.code)) {
      const msg = (err.message ?? "").replace(/^embed_queue\.\w+: /, "");
      const hint = (err.hint ?? "").replace("p_force => true", "--force");
      throw new CliError(hint ? `${msg}. ${hint}` : msg);
    }
    throw e;
  }
}

export async function reembed(ctx: Ctx): Promise<number> {
  const model = str(ctx.args, "model");
  const actions = ["status", "switch", "rollback", "drop-old", "cancel"].filter((a) => bool(ctx.args, a));
  if ((model ? 1 : 0) + actions.length !== 1) {
    throw new UsageError(
      "give exactly one of --model M (start a change), --status, --switch, --rollback, --drop-old, --cancel; see 'reembed --help'",
    );
  }
  if (bool(ctx.args, "force") && !bool(ctx.args, "switch")) {
    throw new UsageError("--force goes with --switch; see 'reembed --help'");
  }
  const dimensions = int(ctx.args, "dimensions") ?? 1536;
  if (model) {
    const known = MODEL_DIMENSIONS[model];
    if (known && (dimensions > known.max || (known.fixed && dimensions !== known.max))) {
      throw new UsageError(
        `${model} makes ${known.fixed ? "exactly" : "at most"} ${known.max} dimensions, not ${dimensions}`,
      );
    }
  } else if (int(ctx.args, "dimensions") !== undefined) {
    throw new UsageError("--dimensions goes with --model; see 'reembed --help'");
  }
  const only = str(ctx.args, "table");
  const column = str(ctx.args, "column") ?? null;
  if (column && !only) throw new UsageError("--column needs --table; see 'reembed --help'");

  const conn = await connect(ctx);
  return await withDb(conn, "reembed", async (db) => {
    if (only) await checkTable(db, only);
    const tables = only ? [only] : await db.activeTables();
    if (actions[0] === "status") return await showStatus(db);
    if (model) return await start(ctx, db, tables, model, dimensions, column, conn.label);

    const done: GenerationRow[] = [];
    for (const table of tables) {
      const rows = await explained(() => {
        switch (actions[0]) {
          case "switch":
            return db.switchModel(table, column, bool(ctx.args, "force"));
          case "rollback":
            return db.rollbackModel(table, column);
          case "drop-old":
            return db.dropOldVectors(table, column);
          default:
            return db.cancelReembed(table, column);
        }
      });
      done.push(...rows);
    }
    for (const r of done) {
      if (r.dropped_column !== undefined) {
        console.log(
          r.dropped_column
            ? `${r.table_name}: dropped column ${r.dropped_column}`
            : `${r.table_name}: nothing to drop`,
        );
      } else {
        console.log(
          `${r.table_name}.${r.embedding_column}: search now answers with ${
            r.model ?? "the configured model"
          } ` +
            `(the ${
              r.previous_model ?? "previous"
            } vectors are kept: --rollback goes back, --drop-old drops them)`,
        );
      }
    }
    return 0;
  });
}

async function start(
  ctx: Ctx,
  db: CliDb,
  tables: string[],
  model: string,
  dimensions: number,
  column: string | null,
  label: string,
): Promise<number> {
  const pageSize = int(ctx.args, "page-size") ?? 1000;
  console.log(`Re-embedding with ${model} (${fmtInt(dimensions)} dimensions) (${label})`);
  for (const table of tables) {
    const started = await explained(() => db.reembed(table, model, dimensions, column));
    for (const r of started) {
      console.log(
        `  ${r.table_name}.${r.embedding_column}: ${
          r.from_model ?? "unrecorded model"
        } → ${r.to_model}, new vectors in ${r.next_column}`,
      );
    }
    // Every live row, page by page (one transaction each), as bulk work.
    let after: string | null = null;
    let queued = 0;
    do {
      if (ctx.signal.aborted) {
        console.log(
          "Stopped while queueing: run `backfill` to queue the rest (search stays on the old model meanwhile).",
        );
        return 130;
      }
      const page = await db.backfillPage(table, after, pageSize);
      queued += page.queued;
      after = page.last_key;
    } while (after !== null);
    console.log(`  ${table}: ${fmtInt(queued)} jobs queued`);
    // The shadow column's HNSW index, built now while it is empty (concurrently).
    try {
      const built = await db.ensureSearchIndex(table);
      if (built > 0) console.log(`  ${table}: built the HNSW index of the new column`);
    } catch (e) {
      console.log(
        `  ${table}: no HNSW index for the new column (${
          (e as Error).message.slice(0, 120)
        }); search works without one, slower`,
      );
    }
  }
  console.log(
    "Search keeps answering with the current model; it switches by itself once the new one covers every live row.\n" +
      "Watch with `reembed --status` (or `status`); `reembed --cancel` gives up.",
  );
  return 0;
}

async function showStatus(db: CliDb): Promise<number> {
  const rows = await db.modelChanges();
  if (rows.length === 0) {
    console.log("No model change under way, and no old vectors kept.");
    return 0;
  }
  console.log("Model changes");
  for (
    const line of renderTable(
      [
        "table",
        "column",
        "search uses",
        "other",
        "its model",
        "role",
        "covered",
        "live rows",
        "open",
        "failed",
      ],
      rows.map((r) => [
        r.table_name,
        r.embedding_column,
        r.active_model ?? "(configured)",
        r.other_column,
        r.other_model ?? "(unrecorded)",
        r.generation === "next"
          ? (r.switch_when_covered ? "next (switches when covered)" : "next")
          : "previous",
        r.covered,
        r.live_rows,
        r.open_jobs,
        r.failed_jobs,
      ]),
    )
  ) console.log(`  ${line}`);
  return 0;
}
