/**
 * Command-line parsing for the operator CLI: one spec per subcommand (flags, positionals, help),
 * a parser that turns argv into typed values or a UsageError, and the help texts. Pure: no I/O.
 */
import { UsageError } from "./errors.ts";

export type FlagSpec =
  | { kind: "bool"; help: string }
  | { kind: "string"; value: string; help: string }
  | { kind: "int"; value: string; help: string; min: number; max: number };

export interface PositionalSpec {
  name: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  positionals: PositionalSpec[];
  flags: Record<string, FlagSpec>;
  /** Extra paragraphs for `<command> --help`. */
  details?: string;
}

export type FlagValue = string | number | boolean;

export interface Parsed {
  command: string;
  positionals: string[];
  flags: Record<string, FlagValue>;
  help: boolean;
}

/** Flags every subcommand accepts. */
export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  stack: {
    kind: "string",
    value: "NAME",
    help:
      'the local stack to talk to (default "dev"); without it, SUPABASE_URL / SUPABASE_DB_URL select a project',
  },
  help: { kind: "bool", help: "show this help" },
};

const PORT = { min: 1024, max: 65535 };

export const COMMANDS: Record<string, CommandSpec> = {
  start: {
    name: "start",
    summary:
      "bring up the local stack, watch the hands-off path embed the backlog, keep serving until Ctrl-C",
    positionals: [],
    flags: {
      "exit-after-drain": {
        kind: "bool",
        help: "stop the stack and exit once the backlog is drained (exit 1 if a job failed)",
      },
      "db-port": { kind: "int", value: "N", help: "PostgreSQL port of a new stack (default 54322)", ...PORT },
      "api-port": {
        kind: "int",
        value: "N",
        help: "functions gateway port of a new stack (default 54321)",
        ...PORT,
      },
      "stall-timeout": {
        kind: "int",
        value: "SECONDS",
        help: "give up when jobs are pending and none finished for this long (default 600)",
        min: 10,
        max: 86_400,
      },
    },
    details: `The CLI makes no call to the function itself: pg_cron and the database webhook call it through
pg_net. The display shows, per target, the jobs pending, processing, completed and failed.
Ctrl-C stops the whole stack (PostgreSQL, gateway, pg_net worker).`,
  },
  drain: {
    name: "drain",
    summary: "call the function until nothing is pending (the guide's processor), then print the summary",
    positionals: [],
    flags: {
      "batch-size": {
        kind: "int",
        value: "N",
        help: "jobs a call claims per lane (default: the function's own)",
        min: 1,
        max: 10_000,
      },
      "delay-ms": {
        kind: "int",
        value: "M",
        help: "pause between calls in milliseconds (default 0)",
        min: 0,
        max: 600_000,
      },
      table: { kind: "string", value: "T", help: "only jobs of this table" },
    },
    details: `The guide's processor sent one request per row, so it needed small batches and a pause
(5 rows, 1000 ms). One call here packs up to batch-size rows into few provider requests and
paces itself by the provider's rate-limit headers, so the defaults are the function's batch size
and no pause. \`--batch-size 5 --delay-ms 1000\` reproduces the guide's pacing.`,
  },
  status: {
    name: "status",
    summary: "queue by target and status, coverage, lag, failures, tokens and cost, last runs",
    positionals: [],
    flags: {
      json: { kind: "bool", help: "one JSON object with stable keys (for scripts)" },
      runs: { kind: "int", value: "N", help: "how many recent runs to show (default 5)", min: 0, max: 1000 },
    },
  },
  "cancel-batch": {
    name: "cancel-batch",
    summary: "cancel a Batch API batch: its jobs go back to the synchronous path, what it finished is written",
    positionals: [{ name: "id", help: "the batch's id (status lists them; embed_queue.batches)" }],
    flags: {},
    details: `A batch not yet submitted ends at once and its jobs are released. A submitted one is cancelled at
the provider by the next run of the function, which writes back the lines it finished and releases
the rest (attempt refunded). Same as: select embed_queue.cancel_batch(<id>);`,
  },
  retry: {
    name: "retry",
    summary: "set failed jobs back to pending (the guide's retry), optionally for one table or one row",
    positionals: [],
    flags: {
      table: { kind: "string", value: "T", help: "only jobs of this table" },
      id: { kind: "string", value: "ID", help: "only the job of this row id" },
    },
  },
  requeue: {
    name: "requeue",
    summary: "queue one row again, whatever its state (the guide's manual requeue)",
    positionals: [{ name: "table", help: "a target table, e.g. sessions" }, {
      name: "id",
      help: "the row's primary key",
    }],
    flags: {},
  },
  backfill: {
    name: "backfill",
    summary: "queue every live row whose embedding is missing, page by page",
    positionals: [],
    flags: {
      table: { kind: "string", value: "T", help: "only this table" },
      "page-size": { kind: "int", value: "N", help: "rows per page (default 1000)", min: 1, max: 100_000 },
    },
  },
  estimate: {
    name: "estimate",
    summary: "tokens and dollars the pending jobs will cost, counted before anything is sent",
    positionals: [],
    flags: {
      table: { kind: "string", value: "T", help: "only jobs of this table" },
      json: { kind: "bool", help: "one JSON object with stable keys" },
    },
    details: `Tokens are counted exactly with the cl100k tokenizer (the one OpenAI's embedding models use),
over the content each pending job would send, cut at the per-input limit as the function cuts it.`,
  },
  search: {
    name: "search",
    summary: "embed a text and list the most similar rows of a table (cosine similarity)",
    positionals: [{ name: "table", help: "a target table, e.g. sessions" }, {
      name: "text",
      help: "what to look for",
    }],
    flags: {
      limit: { kind: "int", value: "N", help: "how many rows (default 5)", min: 1, max: 1000 },
      as: {
        kind: "string",
        value: "USER_ID",
        help: "what that user would get from the search function (sessions or summaries; RLS applies)",
      },
    },
    details: `The text is embedded with the same provider settings the function uses (OPENAI_API_KEY,
OPENAI_BASE_URL, EMBEDDING_MODEL, EMBEDDING_DIMENSIONS), so query and rows share one vector space.
Creates the table's HNSW index first if it is missing.

With --as USER_ID it runs what the search function runs for that signed-in user: the hybrid
search (public.hybrid_search_<table>) as role authenticated with that user's claims, inside one
transaction (set_config(..., true), so it works through a transaction pooler too). Row-level
security, soft deletes and the model in use decide what is listed, as for the user.`,
  },
  reembed: {
    name: "reembed",
    summary:
      "change the model: embed every row again with a new model, switch search over when it covers them",
    positionals: [],
    flags: {
      model: {
        kind: "string",
        value: "M",
        help: "the new model, e.g. text-embedding-3-large (starts a change)",
      },
      dimensions: { kind: "int", value: "N", help: "its vector size (default 1536)", min: 1, max: 16_000 },
      table: { kind: "string", value: "T", help: "only this table (default: every target table)" },
      column: { kind: "string", value: "C", help: "only this embedding column of the table" },
      status: { kind: "bool", help: "show the changes under way and the old vectors kept" },
      switch: {
        kind: "bool",
        help: "switch search to the new model now (refused until it covers every row)",
      },
      force: { kind: "bool", help: "with --switch: even if some rows have no new vector yet" },
      rollback: {
        kind: "bool",
        help: "switch back to the previous model's vectors (until they are dropped)",
      },
      "drop-old": { kind: "bool", help: "drop the previous model's vectors: no roll-back after this" },
      cancel: { kind: "bool", help: "drop a change under way (the new model's vectors so far)" },
      "page-size": {
        kind: "int",
        value: "N",
        help: "rows queued per page (default 1000)",
        min: 1,
        max: 100_000,
      },
    },
    details: `With --model, each target column C gets a shadow column C_next of the new size, and
every live row is queued for it as bulk work (behind rows users write, at the batch price where
the Batch API path applies). Search keeps answering from C with the old model meanwhile. When the
new model covers every live row, the next tick switches them in one transaction: C holds the new
vectors under its own name, the old ones stay as C_prev (still kept up to date) until --drop-old;
--rollback switches back until then. Nothing ever ranks vectors of two models together.
The same in SQL: embed_queue.reembed(), switch_model(), rollback_model(), drop_old_vectors(),
cancel_reembed(), and the view embed_queue.model_changes.`,
  },
  doctor: {
    name: "doctor",
    summary: "what to do after adopting the guide's install: old triggers, vectors of unknown origin",
    positionals: [],
    flags: {
      json: { kind: "bool", help: "one JSON object with stable keys" },
    },
    details: `Lists triggers of your own that also write into embedding_queue (exit 1 while any remain)
and the one statement that drops them, and how many vectors were written before embed_queue.`,
  },
};

/** Quotes a piece of the user's input for an error message: printable, short. */
export function shown(s: string, max = 32): string {
  // deno-lint-ignore no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return `'${clean.length > max ? clean.slice(0, max - 1) + "…" : clean}'`;
}

function helpHint(command: string): string {
  return command ? `see '${command} --help'` : "see '--help'";
}

function parseInt10(raw: string, flag: string, spec: { min: number; max: number }, command: string): number {
  const n = /^[+]?\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) {
    throw new UsageError(
      `--${flag} needs a whole number from ${spec.min} to ${spec.max}, got ${shown(raw)}; ${
        helpHint(command)
      }`,
    );
  }
  return n;
}

/**
 * Parses `argv` (without the program name). The first word that is not a flag is the
 * subcommand; `--flag value` and `--flag=value` both work; `--` ends the flags.
 */
export function parseArgs(argv: string[], commands: Record<string, CommandSpec> = COMMANDS): Parsed {
  const out: Parsed = { command: "", positionals: [], flags: {}, help: false };
  let i = 0;
  // Flags before the subcommand: only --help.
  while (i < argv.length && argv[i].startsWith("-")) {
    if (argv[i] === "--help" || argv[i] === "-h") {
      out.help = true;
      i++;
      continue;
    }
    throw new UsageError(`unknown option ${shown(argv[i])} before the command; ${helpHint("")}`);
  }
  if (i >= argv.length) return out;
  const name = argv[i++];
  const spec = commands[name];
  if (!spec) {
    throw new UsageError(
      `unknown command ${shown(name)} (commands: ${Object.keys(commands).join(", ")}); ${helpHint("")}`,
    );
  }
  out.command = name;
  const flags: Record<string, FlagSpec> = { ...spec.flags, ...GLOBAL_FLAGS };
  let onlyPositionals = false;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (onlyPositionals || !a.startsWith("-") || a === "-") {
      out.positionals.push(a);
      continue;
    }
    if (a === "--") {
      onlyPositionals = true;
      continue;
    }
    if (a === "-h") {
      out.help = true;
      continue;
    }
    const m = a.match(/^--([a-z][a-z0-9-]*)(?:=(.*))?$/s);
    const f = m ? flags[m[1]] : undefined;
    if (!m || !f) {
      // A negative number where a positional is expected (an id) is not a flag.
      if (/^-\d+$/.test(a)) {
        out.positionals.push(a);
        continue;
      }
      throw new UsageError(`unknown flag ${shown(a.split("=")[0])} for ${name}; ${helpHint(name)}`);
    }
    const key = m[1];
    if (key in out.flags) throw new UsageError(`--${key} is given twice; ${helpHint(name)}`);
    if (f.kind === "bool") {
      if (m[2] !== undefined) throw new UsageError(`--${key} takes no value; ${helpHint(name)}`);
      if (key === "help") out.help = true;
      else out.flags[key] = true;
      continue;
    }
    let raw = m[2];
    if (raw === undefined) {
      if (i + 1 >= argv.length) {
        throw new UsageError(`--${key} needs a value (${f.value}); ${helpHint(name)}`);
      }
      raw = argv[++i];
    }
    if (f.kind === "int") out.flags[key] = parseInt10(raw, key, f, name);
    else {
      if (raw === "") throw new UsageError(`--${key} needs a value (${f.value}); ${helpHint(name)}`);
      out.flags[key] = raw;
    }
  }
  if (out.help) return out;
  const want = spec.positionals;
  if (out.positionals.length < want.length) {
    const missing = want.slice(out.positionals.length).map((p) => `<${p.name}>`).join(" ");
    throw new UsageError(`${name} needs ${missing}; ${helpHint(name)}`);
  }
  if (out.positionals.length > want.length) {
    throw new UsageError(
      `${name} takes ${
        want.length ? want.map((p) => `<${p.name}>`).join(" ") : "no arguments"
      }, got an extra ${shown(out.positionals[want.length])}${
        name === "search" ? ' (quote the text: search sessions "two words")' : ""
      }; ${helpHint(name)}`,
    );
  }
  return out;
}

export function str(p: Parsed, key: string): string | undefined {
  const v = p.flags[key];
  return typeof v === "string" ? v : undefined;
}

export function int(p: Parsed, key: string): number | undefined {
  const v = p.flags[key];
  return typeof v === "number" ? v : undefined;
}

export function bool(p: Parsed, key: string): boolean {
  return p.flags[key] === true;
}

function flagLines(flags: Record<string, FlagSpec>): string[] {
  const entries = Object.entries(flags).map((
    [k, f],
  ) => [`--${k}${f.kind === "bool" ? "" : ` ${f.value}`}`, f.help]);
  const w = Math.max(...entries.map(([a]) => a.length));
  return entries.map(([a, h]) => `  ${a.padEnd(w)}  ${h}`);
}

export function usageLine(spec: CommandSpec): string {
  const pos = spec.positionals.map((p) => (p.name === "text" ? `"<${p.name}>"` : `<${p.name}>`));
  const fl = Object.entries(spec.flags).map(([k, f]) => `[--${k}${f.kind === "bool" ? "" : ` ${f.value}`}]`);
  return ["embed-queue", spec.name, ...pos, ...fl].join(" ");
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [`usage: ${usageLine(spec)}`, "", spec.summary];
  if (spec.details) lines.push("", spec.details);
  if (spec.positionals.length) {
    lines.push("", "arguments:");
    const w = Math.max(...spec.positionals.map((p) => p.name.length + 2));
    for (const p of spec.positionals) lines.push(`  ${`<${p.name}>`.padEnd(w)}  ${p.help}`);
  }
  lines.push("", "options:", ...flagLines({ ...spec.flags, ...GLOBAL_FLAGS }));
  lines.push("", `npm alias: ${spec.name === "start" ? "npm start" : `npm run ${spec.name}`} -- [arguments]`);
  return lines.join("\n");
}

export function mainHelp(commands: Record<string, CommandSpec> = COMMANDS): string {
  const w = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    "usage: embed-queue <command> [options]      (npm run <command> -- [options])",
    "",
    "Keeps vector embeddings in step with table rows: queue, triggers, pg_cron, pg_net, Edge Function.",
    "",
    "commands:",
    ...Object.values(commands).map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    "",
    'Where it talks to: the local stack (default "dev", see `npm run stack -- status`), or, when',
    "SUPABASE_URL, SUPABASE_DB_URL and SUPABASE_SECRET_KEY (sb_secret_...) or SUPABASE_SERVICE_ROLE_KEY",
    "are set, that project.",
    "`<command> --help` describes each command.",
  ].join("\n");
}
