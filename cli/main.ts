/**
 * embed-queue's operator CLI.
 *
 *   deno run -A cli/main.ts <start|drain|status|retry|requeue|backfill|estimate|search|doctor|reembed> [options]
 *   npm run <command> -- [options]          (npm start = start)
 *
 * Expected errors are one line on stderr, exit code 2 for usage errors and 1 otherwise; no
 * stack traces (EQ_DEBUG=1 shows them for unexpected ones).
 */
import { commandHelp, COMMANDS, mainHelp, parseArgs } from "./args.ts";
import type { Ctx } from "./context.ts";
import { CliError, describeUnexpected, redact, UsageError } from "./errors.ts";

type Command = (ctx: Ctx) => Promise<number>;

/** Loaded on use, so `status` does not load the provider and `search` does not load the stack. */
const RUN: Record<string, () => Promise<Command>> = {
  start: async () => (await import("./commands/start.ts")).start,
  drain: async () => (await import("./commands/drain.ts")).drain,
  status: async () => (await import("./commands/status.ts")).status,
  retry: async () => (await import("./commands/retry.ts")).retry,
  requeue: async () => (await import("./commands/retry.ts")).requeue,
  backfill: async () => (await import("./commands/backfill.ts")).backfill,
  estimate: async () => (await import("./commands/estimate.ts")).estimate,
  search: async () => (await import("./commands/search.ts")).search,
  doctor: async () => (await import("./commands/doctor.ts")).doctor,
  reembed: async () => (await import("./commands/reembed.ts")).reembed,
  "cancel-batch": async () => (await import("./commands/cancel_batch.ts")).cancelBatch,
};

/** Commands that stop cleanly on Ctrl-C instead of dying at once. */
const INTERRUPTIBLE = new Set(["start", "drain", "backfill", "reembed"]);

function onSignals(command: string, controller: AbortController): () => void {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  let count = 0;
  const handler = () => {
    count++;
    if (count === 1) {
      controller.abort();
      return;
    }
    // npm forwards the terminal's Ctrl-C too, so a second signal is normal: stopping the stack
    // must finish, or processes would be left behind.
    if (command === "start") {
      if (count === 3) console.error("still stopping the stack…");
      return;
    }
    Deno.exit(130);
  };
  for (const s of signals) Deno.addSignalListener(s, handler);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, handler);
  };
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (!parsed.command) {
    if (parsed.help) {
      console.log(mainHelp());
      return 0;
    }
    console.error(`error: no command given (commands: ${Object.keys(COMMANDS).join(", ")}); see '--help'`);
    return 2;
  }
  if (parsed.help) {
    console.log(commandHelp(COMMANDS[parsed.command]));
    return 0;
  }
  const controller = new AbortController();
  const unlisten = INTERRUPTIBLE.has(parsed.command) ? onSignals(parsed.command, controller) : () => {};
  try {
    const run = await RUN[parsed.command]();
    return await run({ args: parsed, signal: controller.signal });
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`error: ${redact(e.message)}`);
      return e.exitCode;
    }
    console.error(`error: ${describeUnexpected(e)}`);
    if (Deno.env.get("EQ_DEBUG")) console.error(redact((e as Error)?.stack ?? String(e)));
    return 1;
  } finally {
    unlisten();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
