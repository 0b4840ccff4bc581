/**
 * `search`: embeds the text with the function's provider, makes sure the table has its HNSW
 * index, and lists the nearest rows by cosine similarity. `--as USER_ID` shows instead what the
 * search function gives that user (hybrid, RLS applied). The text is never printed or logged.
 */
import { int, str } from "../args.ts";
import { checkTable, connect, type Ctx, withDb } from "../context.ts";
import { CliError } from "../errors.ts";
import { searchAsText, searchText } from "../format.ts";
import { cliConfig, embedQuery } from "../provider.ts";
import { LOCAL_MODEL } from "../../supabase/functions/_shared/config.ts";

export async function search(ctx: Ctx): Promise<number> {
  const [table, text] = ctx.args.positionals;
  const limit = int(ctx.args, "limit") ?? 5;
  if (!/\S/.test(text)) throw new CliError("the search text is empty: give some words to look for", 2);
  const asUser = str(ctx.args, "as");
  if (asUser !== undefined) {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(asUser)) {
      throw new CliError(`--as needs a user id (a uuid from auth.users), got '${asUser}'`, 2);
    }
    if (table !== "sessions" && table !== "summaries") {
      throw new CliError(
        `--as searches what the search function searches: sessions or summaries, not '${table}'`,
        2,
      );
    }
  }
  const conn = await connect(ctx);
  let config = cliConfig(conn.local);
  return await withDb(conn, "search", async (db) => {
    const targets = await checkTable(db, table);
    // A column pinned to a model (a model change) is searched with that model, as the function does.
    const pinned = await db.pinnedModel(table);
    if (pinned && pinned !== config.model) {
      if (config.provider === "local" && pinned !== LOCAL_MODEL) {
        throw new CliError(
          `${table} holds vectors of ${pinned}, which the local provider cannot make: set OPENAI_API_KEY`,
        );
      }
      config = { ...config, model: pinned, dimensions: targets[0].dimensions || config.dimensions };
    }
    if (asUser !== undefined && !(await db.userExists(asUser))) {
      throw new CliError(`no user has the id ${asUser}: check auth.users`);
    }
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
    if (asUser !== undefined) {
      const rows = await db.searchAs(
        asUser,
        table as "sessions" | "summaries",
        text,
        q.vector,
        limit,
        config.model,
      );
      console.log(searchAsText(table, asUser, rows, config.model));
      return 0;
    }
    const rows = await db.search(table, q.vector, limit);
    console.log(searchText(table, rows, config.model));
    return 0;
  });
}
