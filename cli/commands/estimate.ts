/** `estimate`: tokens (counted exactly, cl100k) and dollars for the pending jobs, before anything is sent. */
import { bool, str } from "../args.ts";
import { checkTable, connect, type Ctx, withDb } from "../context.ts";
import { estimateJson, type EstimateReport, type EstimateRow, estimateText } from "../format.ts";
import { cliConfig, inputTokens, providerInfo } from "../provider.ts";

const PAGE = 1000;
const REFERENCE_MODEL = "text-embedding-3-small";

export async function estimate(ctx: Ctx): Promise<number> {
  const table = str(ctx.args, "table") ?? null;
  const conn = await connect(ctx);
  const config = cliConfig(conn.local);
  const report: EstimateReport = await withDb(conn, "estimate", async (db) => {
    if (table) await checkTable(db, table);
    const rows = new Map<string, EstimateRow>();
    for (const t of await db.targets()) {
      if (!table || t.table_name === table) {
        const label = `${t.table_name}.${t.embedding_column}`;
        rows.set(label, { label, jobs: 0, tokens: 0, largest: 0, truncated: 0, empty: 0 });
      }
    }
    let after = 0;
    for (;;) {
      const page = await db.pendingContents(table, after, PAGE);
      if (page.length === 0) break;
      for (const j of page) {
        const label = `${j.table_name}.${j.embedding_column}`;
        let r = rows.get(label);
        if (!r) rows.set(label, r = { label, jobs: 0, tokens: 0, largest: 0, truncated: 0, empty: 0 });
        r.jobs++;
        if (j.blank || j.content === null) {
          r.empty++;
          continue;
        }
        const t = inputTokens(j.content, config.maxTokensPerInput);
        r.tokens += t.tokens;
        r.largest = Math.max(r.largest, t.tokens);
        if (t.truncated) r.truncated++;
      }
      after = page[page.length - 1].id;
    }
    const info = providerInfo(config);
    const price = await db.modelPrice(config.model);
    if (price !== null && config.provider !== "local") info.usdPerMillionTokens = price;
    const refPrice = config.provider === "local" ? await db.modelPrice(REFERENCE_MODEL) : null;
    const batchPrice = config.provider === "local" ? null : await db.modelBatchPrice(config.model);
    return {
      rows: [...rows.values()],
      maxTokensPerInput: config.maxTokensPerInput,
      provider: info,
      reference: refPrice !== null ? { model: REFERENCE_MODEL, usdPerMillionTokens: refPrice } : undefined,
      batchUsdPerMillionTokens: batchPrice ?? undefined,
    };
  });
  if (bool(ctx.args, "json")) console.log(JSON.stringify(estimateJson(report), null, 2));
  else console.log(estimateText(report));
  return 0;
}
