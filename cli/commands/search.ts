/**
 * `search`: embeds the text with the function's provider, makes sure the table has its HNSW
 * index, and lists the nearest rows by cosine similarity. The text is never printed or logged.
 */
import { int } from "../args.ts";
import { checkTable, connect, type Ctx, withDb } from "../context.ts";
import { CliError } from "../errors.ts";
import { searchText } from "../format.ts";
import { cliConfig, embedQuery } from "../provider.ts";

export async function search(ctx: Ctx): Promise<number> {
  const [table, text] = ctx.args.positionals;
  const limit = int(ctx.args, "limit") ?? 5;
  if (!/\S/.test(text)) throw new CliError("the search text is empty: give some words to look for", 2);
  const conn = await connect(ctx);
  const config = cliConfig(conn.local);
  return await withDb(conn, "search", async (db) => {
    const targets = await checkTable(db, table);
    const want = targets[0].dimensions;
    if (want && want !== config.dimensions) {
      throw new CliError(
        `${table}.${
          targets[0].embedding_column
        } holds ${want} dimensions but the provider is set to ${config.dimensions}: set EMBEDDING_DIMENSIONS=${want}`,
      );
    }
    const models = await db.modelsOf(table);
    const q = await embedQuery(config, text, ctx.signal);
    if (want && q.dimensions !== want) {
      throw new CliError(
        `the provider returned ${q.dimensions} dimensions, ${table} holds ${want}: check EMBEDDING_MODEL and EMBEDDING_DIMENSIONS`,
      );
    }
    const created = await db.ensureSearchIndex(table);
    if (created > 0) console.log(`(created the HNSW index of ${table} for cosine similarity)`);
    const other = models.filter((m) => m.model !== config.model);
    if (other.length > 0) {
      console.error(
        `warning: ${other.reduce((n, m) => n + m.count, 0)} row(s) of ${table} were embedded with ${
          other.map((m) => m.model).join(", ")
        }, this search uses ${config.model}: scores across models mean little (set the variables the function has)`,
      );
    }
    const rows = await db.search(table, q.vector, limit);
    console.log(searchText(table, rows, config.model));
    return 0;
  });
}
