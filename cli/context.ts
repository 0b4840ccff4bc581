/**
 * What every command shares: the parsed command line, where to talk to, a database session
 * whose errors read as one line, and the check that a table is a registered target.
 */
import { type Parsed, shown, str } from "./args.ts";
import { type Connection, dbPlace, needDb, resolveConnection } from "./connection.ts";
import { type CliDb, openDb, type TargetRow } from "./db.ts";
import { CliError, describeDbError } from "./errors.ts";

export interface Ctx {
  args: Parsed;
  /** Aborted on Ctrl-C (SIGINT) or SIGTERM. */
  signal: AbortSignal;
}

export async function connect(ctx: Ctx): Promise<Connection> {
  return await resolveConnection(str(ctx.args, "stack"));
}

/** Maps an expected database error to a one-line CliError; anything else is rethrown as is. */
export function dbError(conn: Connection, e: unknown): unknown {
  if (e instanceof CliError) return e;
  const m = describeDbError(e, dbPlace(conn));
  return m ? new CliError(m) : e;
}

export async function withDb<T>(conn: Connection, command: string, f: (db: CliDb) => Promise<T>): Promise<T> {
  const db = openDb(needDb(conn, command));
  try {
    return await f(db);
  } catch (e) {
    throw dbError(conn, e);
  } finally {
    await db.close().catch(() => {});
  }
}

/** The target rows of `table`, or a CliError naming the tables there are. */
export async function checkTable(db: CliDb, table: string): Promise<TargetRow[]> {
  const targets = await db.targets();
  const mine = targets.filter((t) => t.table_name === table);
  if (mine.length === 0) {
    const known = [...new Set(targets.map((t) => t.table_name))];
    throw new CliError(
      `unknown table ${shown(table)}: ${
        known.length
          ? `the tables kept embedded are ${known.join(", ")}`
          : "no table is registered (embed_queue.register_target)"
      }`,
    );
  }
  return mine;
}

export { sleep } from "../supabase/functions/_shared/sleep.ts";
