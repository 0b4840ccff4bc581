/** The CLI's command-line parser: table-driven, pure. */
import assert from "node:assert/strict";
import { commandHelp, COMMANDS, mainHelp, parseArgs, shown } from "../../cli/args.ts";
import { UsageError } from "../../cli/errors.ts";

Deno.test("args: valid command lines parse into command, positionals and typed flags", () => {
  const cases: Array<
    [string[], { command: string; positionals: string[]; flags: Record<string, unknown>; help?: boolean }]
  > = [
    [["status"], { command: "status", positionals: [], flags: {} }],
    [["status", "--json"], { command: "status", positionals: [], flags: { json: true } }],
    [["status", "--runs", "3"], { command: "status", positionals: [], flags: { runs: 3 } }],
    [["drain", "--batch-size", "5", "--delay-ms=1000"], {
      command: "drain",
      positionals: [],
      flags: { "batch-size": 5, "delay-ms": 1000 },
    }],
    [["drain", "--delay-ms", "0"], { command: "drain", positionals: [], flags: { "delay-ms": 0 } }],
    [["retry", "--table", "sessions", "--id", "abc"], {
      command: "retry",
      positionals: [],
      flags: { table: "sessions", id: "abc" },
    }],
    [["requeue", "sessions", "42"], { command: "requeue", positionals: ["sessions", "42"], flags: {} }],
    [["requeue", "sessions", "-7"], { command: "requeue", positionals: ["sessions", "-7"], flags: {} }],
    [["search", "sessions", "weekly planning", "--limit", "3"], {
      command: "search",
      positionals: ["sessions", "weekly planning"],
      flags: { limit: 3 },
    }],
    [["search", "sessions", "--", "--not a flag"], {
      command: "search",
      positionals: ["sessions", "--not a flag"],
      flags: {},
    }],
    [["start", "--stack", "cli-start", "--db-port", "25522", "--api-port", "25521", "--exit-after-drain"], {
      command: "start",
      positionals: [],
      flags: { stack: "cli-start", "db-port": 25522, "api-port": 25521, "exit-after-drain": true },
    }],
    [["backfill", "--page-size", "+10"], {
      command: "backfill",
      positionals: [],
      flags: { "page-size": 10 },
    }],
    [["drain", "--help"], { command: "drain", positionals: [], flags: {}, help: true }],
    [["requeue", "-h"], { command: "requeue", positionals: [], flags: {}, help: true }],
    [["--help"], { command: "", positionals: [], flags: {}, help: true }],
    [[], { command: "", positionals: [], flags: {} }],
  ];
  for (const [argv, want] of cases) {
    const p = parseArgs(argv);
    assert.equal(p.command, want.command, argv.join(" "));
    assert.deepEqual(p.positionals, want.positionals, argv.join(" "));
    assert.deepEqual(p.flags, want.flags, argv.join(" "));
    assert.equal(p.help, want.help ?? false, argv.join(" "));
  }
});

Deno.test("args: bad command lines are usage errors with one line that says what to do", () => {
  const cases: Array<[string[], RegExp]> = [
    [["frobnicate"], /^unknown command 'frobnicate' \(commands: start, drain, status, .*\); see '--help'$/],
    [["status", "--bogus"], /^unknown flag '--bogus' for status; see 'status --help'$/],
    [["status", "--bogus=1"], /^unknown flag '--bogus' for status/],
    [["drain", "--json"], /^unknown flag '--json' for drain/],
    [
      ["drain", "--batch-size", "abc"],
      /^--batch-size needs a whole number from 1 to 10000, got 'abc'; see 'drain --help'$/,
    ],
    [["drain", "--batch-size", "0"], /^--batch-size needs a whole number from 1 to 10000, got '0'/],
    [["drain", "--batch-size", "1.5"], /whole number/],
    [["drain", "--batch-size", "-3"], /whole number/],
    [["drain", "--batch-size", "99999999999999999999"], /whole number/],
    [["drain", "--delay-ms"], /^--delay-ms needs a value \(M\)/],
    [["drain", "--delay-ms", "5", "--delay-ms", "6"], /given twice/],
    [["status", "--json=yes"], /--json takes no value/],
    [["requeue", "sessions"], /^requeue needs <id>; see 'requeue --help'$/],
    [["requeue"], /^requeue needs <table> <id>/],
    [["search", "sessions", "two", "words"], /extra 'words' \(quote the text/],
    [["status", "extra"], /^status takes no arguments, got an extra 'extra'/],
    [["--verbose", "status"], /^unknown option '--verbose' before the command/],
    [["retry", "--table", ""], /--table needs a value/],
    [["start", "--db-port", "80"], /--db-port needs a whole number from 1024 to 65535/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseArgs(argv), (e: unknown) => {
      assert.ok(e instanceof UsageError, `${argv.join(" ")}: ${e}`);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, re, argv.join(" "));
      assert.ok(!e.message.includes("\n"), "one line");
      return true;
    });
  }
});

Deno.test("args: shown() keeps echoed input printable and short", () => {
  const cases: Array<[string, string]> = [
    ["abc", "'abc'"],
    ["a\nb\u001b[31m", "'a?b?[31m'"],
    ["x".repeat(100), `'${"x".repeat(31)}…'`],
  ];
  for (const [input, want] of cases) assert.equal(shown(input), want);
});

Deno.test("args: every command has help naming its flags, and the main help lists every command", () => {
  const main = mainHelp();
  for (const spec of Object.values(COMMANDS)) {
    assert.ok(main.includes(`  ${spec.name}`), `main help lists ${spec.name}`);
    const h = commandHelp(spec);
    assert.match(h, new RegExp(`^usage: embed-queue ${spec.name}`));
    for (const flag of Object.keys(spec.flags)) {
      assert.ok(h.includes(`--${flag}`), `${spec.name} help names --${flag}`);
    }
    assert.ok(h.includes("--stack NAME"), "global flag");
    assert.ok(h.includes(spec.name === "start" ? "npm start --" : `npm run ${spec.name} --`), "npm alias");
  }
  assert.match(commandHelp(COMMANDS.drain), /--batch-size 5 --delay-ms 1000/);
});
