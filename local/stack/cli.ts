/** The stack's command line: `deno run -A local/stack.ts <up|down|status|reset|env>`. */
import { type StackInfo, type StackOptions, stateDir } from "./common.ts";

/** What the command line drives: local/stack.ts hands its own functions in (no import cycle). */
export interface StackCommands<S> {
  up(o: Partial<StackOptions>): Promise<StackInfo>;
  down(o: Partial<StackOptions>): Promise<void>;
  reset(o: Partial<StackOptions>): Promise<StackInfo>;
  status(o: Partial<StackOptions>): Promise<S>;
  describe(s: S): string;
  info(o: Partial<StackOptions>): Promise<StackInfo>;
}

function parseArgs(args: string[]): { cmd: string; o: Partial<StackOptions>; json: boolean } {
  const o: Partial<StackOptions> = {};
  let cmd = "";
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const num = (flag: string) => {
      const n = Number(args[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 65535) {
        throw new Error(`${flag} needs a port number, got '${args[i] ?? ""}'`);
      }
      return n;
    };
    if (a === "--name") stateDir(o.name = args[++i] ?? "");
    else if (a === "--db-port") o.dbPort = num(a);
    else if (a === "--api-port") o.apiPort = num(a);
    else if (a === "--no-functions") o.functions = false;
    else if (a === "--json") json = true;
    else if (a === "--quiet") o.quiet = true;
    else if (!a.startsWith("-") && !cmd) cmd = a;
    else throw new Error(`unknown argument '${a}'`);
  }
  return { cmd, o, json };
}

const USAGE =
  `usage: stack <up|down|status|reset|env> [--name dev] [--db-port 54322] [--api-port 54321] [--no-functions] [--json]
  up      start PostgreSQL, apply migrations and seed with the Supabase CLI, start the functions gateway and the pg_net worker
  down    stop everything this stack started (no process is left)
  status  what is running, with URLs and keys
  reset   a new cluster: bootstrap, migrations, seed
  env     the stack's URLs and keys as shell variables`;

/** Runs one command line; returns the exit code. */
export async function main<S>(argv: string[], stack: StackCommands<S>): Promise<number> {
  const { describe, down, info, reset, status, up } = stack;
  try {
    const { cmd, o, json } = parseArgs(argv);
    if (cmd === "up") {
      await up(o);
      console.log(describe(await status(o)));
    } else if (cmd === "down") {
      await down(o);
    } else if (cmd === "status") {
      const s = await status(o);
      console.log(json ? JSON.stringify(s, null, 2) : describe(s));
    } else if (cmd === "reset") {
      await reset(o);
      console.log(describe(await status(o)));
    } else if (cmd === "env") {
      const i = await info(o);
      console.log(
        [
          `SUPABASE_URL=${i.apiUrl}`,
          `SUPABASE_DB_URL=${i.dbUrl}`,
          `SUPABASE_POOLER_URL=${i.poolerUrl}`,
          `SUPABASE_ANON_KEY=${i.anonKey}`,
          `SUPABASE_SERVICE_ROLE_KEY=${i.serviceRoleKey}`,
          `SUPABASE_SECRET_KEY=${i.secretKey}`,
        ].join("\n"),
      );
    } else {
      console.error(USAGE);
      return cmd ? 2 : 0;
    }
    return 0;
  } catch (e) {
    console.error(`stack: ${(e as Error).message}`);
    return 1;
  }
}
