/**
 * Each subcommand run as a subprocess against the test stack: its effect on the database and
 * its output, asserted on rows of our own (own user, unique titles), never on global counts.
 */
import assert from "node:assert/strict";
import { Tiktoken } from "js-tiktoken/lite";
import cl100k from "js-tiktoken/ranks/cl100k_base";
import {
  cli,
  db,
  ignore,
  jobOf,
  makeSession,
  makeUser,
  oneErrorLine,
  unthrottleWebhook,
  viaEnd,
  viaEnv,
  viaLabel,
  VIAS,
  waitCompleted,
  waitFor,
  withHandsOffPaused,
} from "./helpers.ts";

const tag = () => `cli-test ${crypto.randomUUID()}`;

for (const via of VIAS) {
  Deno.test(
    {
      name: `cli status: --json has stable keys and counts our failed job under its error${viaLabel(via)}`,
      ignore,
    },
    async () => {
      const sql = db();
      try {
        const dbEnv = await viaEnv(via);
        const user = await makeUser(sql);
        const id = await makeSession(sql, user, `${tag()} status probe`);
        await waitCompleted(sql, "sessions", id);
        const error = `${tag()} simulated provider error`;
        await sql`update public.embedding_queue set status = 'failed', error_message = ${error}
              where table_name = 'sessions' and record_id = ${id}`;

        const r = await cli(["status", "--json"], { env: dbEnv });
        assert.equal(r.code, 0, r.stderr);
        const j = JSON.parse(r.stdout);
        assert.deepEqual(Object.keys(j), [
          "generated_at",
          "totals",
          "queue",
          "coverage",
          "lag",
          "failures",
          "usage",
          "runs",
          "spend_caps",
          "warnings",
          "legacy_vectors",
          "old_triggers",
          "housekeeping",
          "model_changes",
          "batches",
        ]);
        assert.equal(j.legacy_vectors.policy, "trust");
        assert.equal(
          j.legacy_vectors.unknown_origin,
          0,
          "every vector of the seeded stack was written by embed_queue",
        );
        assert.deepEqual(j.old_triggers, []);
        assert.deepEqual(Object.keys(j.totals), [
          "pending",
          "processing",
          "completed",
          "failed",
          "skipped",
          "missing",
          "tokens",
          "cost_usd",
        ]);
        const mine = j.failures.filter((f: { error_message: string }) => f.error_message === error);
        assert.deepEqual(mine, [{
          table_name: "sessions",
          error_message: error,
          count: 1,
          record_ids: [id],
        }]);
        const failed = j.queue.find((q: { table_name: string; status: string }) =>
          q.table_name === "sessions" && q.status === "failed"
        );
        assert.ok(
          failed && typeof failed.count === "number" && failed.count >= 1,
          "sessions/failed in the queue counts",
        );
        assert.ok(j.totals.failed >= 1);
        for (const c of j.coverage) {
          assert.deepEqual(Object.keys(c), [
            "table_name",
            "embedding_column",
            "total",
            "with_embeddings",
            "missing",
          ]);
          assert.equal(c.total, c.with_embeddings + c.missing);
        }
        assert.deepEqual(
          j.coverage.map((c: { table_name: string; embedding_column: string }) =>
            `${c.table_name}.${c.embedding_column}`
          ),
          ["sessions.title_embedding", "summaries.content_embedding"],
        );
        assert.ok(j.runs.length >= 1 && j.runs.length <= 5, "last runs, 5 by default");
        assert.equal(typeof j.runs[0].completed, "number");
        // The tables the tick prunes, with their size: the run log has our runs and takes room.
        const kept = new Map(j.housekeeping.map((x: { table_name: string }) => [x.table_name, x]));
        assert.deepEqual([...kept.keys()], [
          "embed_queue.runs",
          "cron.job_run_details",
          "net._http_response",
        ]);
        const runsKept = kept.get("embed_queue.runs") as { rows: number; bytes: number; kept_for: string };
        assert.ok(runsKept.rows >= j.runs.length && runsKept.bytes > 0, JSON.stringify(runsKept));
        assert.match(runsKept.kept_for, /^7 days \(settings\.runs_retention\)$/);

        const text = await cli(["status", "--runs", "1"], { env: dbEnv });
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stdout, /^embed-queue status \(project 127\.0\.0\.1:\d+\)/);
        assert.ok(text.stdout.includes(error), "the failure's message is listed");
        assert.ok(text.stdout.includes(id), "with its record id");
        assert.match(text.stdout, /\nHousekeeping .*\n.*\n.*embed_queue\.runs +[\d,]+ +[\d.]+ (kB|MB)/);
      } finally {
        await sql.end();
        await viaEnd(via);
      }
    },
  );
}

for (const via of VIAS) {
  Deno.test(
    {
      name: `cli retry: puts our failed job back to pending; scoped by table and id${viaLabel(via)}`,
      ignore,
    },
    async () => {
      const sql = db();
      try {
        const dbEnv = await viaEnv(via);
        const user = await makeUser(sql);
        const id = await makeSession(sql, user, `${tag()} retry probe`);
        const other = await makeSession(sql, user, `${tag()} retry bystander`);
        await waitCompleted(sql, "sessions", id);
        await waitCompleted(sql, "sessions", other);
        await sql`update public.embedding_queue set status = 'failed', error_message = 'boom', attempts = 5
              where table_name = 'sessions' and record_id in (${id}, ${other})`;

        await unthrottleWebhook(sql);
        const r = await cli(["retry", "--table", "sessions", "--id", id], { env: dbEnv });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^Retried 1 failed job \(table sessions, that row\): back to pending/);
        const j = await jobOf(sql, "sessions", id);
        assert.notEqual(j.status, "failed");
        assert.equal(j.error_message, null);
        assert.equal((await jobOf(sql, "sessions", other)).status, "failed", "the other row was not touched");
        // The hands-off path embeds it again.
        await waitCompleted(sql, "sessions", id);

        const again = await cli(["retry", "--id", id], { env: dbEnv });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /^Nothing to retry: that row's job is completed, not failed\./);

        const unknownId = await cli(["retry", "--table", "sessions", "--id", crypto.randomUUID()], {
          env: dbEnv,
        });
        assert.equal(unknownId.code, 1);
        assert.match(oneErrorLine(unknownId), /^error: no job for that id in sessions: check the id/);

        await sql`update public.embedding_queue set status = 'completed', error_message = null
              where table_name = 'sessions' and record_id = ${other}`;
      } finally {
        await sql.end();
        await viaEnd(via);
      }
    },
  );
}

for (const via of VIAS) {
  Deno.test({
    name: `cli requeue: the guide's manual requeue embeds our row again; bad ids change nothing${
      viaLabel(via)
    }`,
    ignore,
  }, async () => {
    const sql = db();
    try {
      const dbEnv = await viaEnv(via);
      const user = await makeUser(sql);
      const id = await makeSession(sql, user, `${tag()} requeue probe`);
      const before = await waitCompleted(sql, "sessions", id);

      await unthrottleWebhook(sql);
      const r = await cli(["requeue", "sessions", id], { env: dbEnv });
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`^Requeued 1 job for sessions ${id} \\(title_embedding\\): pending now`),
      );
      await waitFor("the requeued job to complete again", async () => {
        const j = await jobOf(sql, "sessions", id);
        return j.status === "completed" && j.completed_at > before.completed_at;
      });

      const [{ n: jobsBefore }] = await sql`select count(*)::int as n from public.embedding_queue`;
      const missing = await cli(["requeue", "sessions", crypto.randomUUID()], { env: dbEnv });
      assert.equal(missing.code, 1);
      assert.equal(oneErrorLine(missing), "error: sessions has no row with that id: check the id");
      const malformed = await cli(["requeue", "sessions", "not-a-uuid"], { env: dbEnv });
      assert.equal(malformed.code, 1);
      assert.equal(oneErrorLine(malformed), "error: sessions has no row with that id: check the id");

      const gone = await makeSession(sql, user, `${tag()} soft-deleted`);
      await sql`update public.sessions set deleted_at = now() where id = ${gone}`;
      const deleted = await cli(["requeue", "sessions", gone], { env: dbEnv });
      assert.equal(deleted.code, 1);
      assert.match(oneErrorLine(deleted), /^error: that row of sessions is soft-deleted/);
      assert.equal(await jobOf(sql, "sessions", gone), null, "no job was made for it");

      const table = await cli(["requeue", "nosuchtable", id], { env: dbEnv });
      assert.equal(table.code, 1);
      assert.equal(
        oneErrorLine(table),
        "error: unknown table 'nosuchtable': the tables kept embedded are sessions, summaries",
      );
      const [{ n: jobsAfter }] = await sql`select count(*)::int as n from public.embedding_queue`;
      assert.equal(jobsAfter, jobsBefore, "the refused requeues queued nothing");
    } finally {
      await sql.end();
      await viaEnd(via);
    }
  });
}

for (const via of VIAS) {
  Deno.test(
    { name: `cli backfill: queues our row that has no embedding and no job${viaLabel(via)}`, ignore },
    async () => {
      const sql = db();
      try {
        const dbEnv = await viaEnv(via);
        const user = await makeUser(sql);
        const id = await makeSession(sql, user, `${tag()} backfill probe`);
        await waitCompleted(sql, "sessions", id);
        // A row from before the table was registered: no vector, no job.
        await sql`update public.sessions set title_embedding = null where id = ${id}`;
        await sql`delete from public.embedding_queue where table_name = 'sessions' and record_id = ${id}`;

        await unthrottleWebhook(sql);
        const r = await cli(["backfill", "--table", "sessions", "--page-size", "100000"], { env: dbEnv });
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /^Backfill \(project [^)]+\): queueing live rows without an embedding, 100,000 rows a page$/m,
        );
        assert.match(r.stdout, /^ {2}sessions: page 1, \d+ queued/m);
        const m = r.stdout.match(/^Queued (\d+) jobs? \(sessions (\d+)\)/m);
        assert.ok(m, r.stdout);
        assert.ok(Number(m[1]) >= 1 && m[1] === m[2]);
        assert.ok(await jobOf(sql, "sessions", id), "our row has a job again");
        await waitCompleted(sql, "sessions", id);
        const [{ has }] =
          await sql`select title_embedding is not null as has from public.sessions where id = ${id}`;
        assert.equal(has, true, "and, through the hands-off path, its embedding");
      } finally {
        await sql.end();
        await viaEnd(via);
      }
    },
  );
}

for (const via of VIAS) {
  Deno.test({
    name: `cli estimate and drain: exact tokens for the pending jobs, then drain embeds them${viaLabel(via)}`,
    ignore,
  }, async () => {
    const sql = db();
    // An independent count: js-tiktoken, where the function uses gpt-tokenizer.
    const enc = new Tiktoken(cl100k);
    try {
      const dbEnv = await viaEnv(via);
      const user = await makeUser(sql);
      await withHandsOffPaused(sql, async () => {
        const long = `${tag()} ${"lorem ipsum dolor sit amet ".repeat(2000)}`; // about 10 000 tokens: cut at 8191
        const ids = [
          await makeSession(sql, user, `${tag()} estimate probe one`),
          await makeSession(sql, user, `${tag()} estimate probe two, a little longer`),
          await makeSession(sql, user, long),
        ];
        for (const id of ids) assert.equal((await jobOf(sql, "sessions", id)).status, "pending");

        // Recount what estimate should say, independently (js-tiktoken, cut at 8191 tokens).
        const pending =
          await sql`select content from public.embedding_queue where status = 'pending' and table_name = 'sessions'`;
        const counts = pending.map((p) => enc.encode(p.content ?? "").length);
        const r = await cli(["estimate", "--table", "sessions", "--json"], { env: dbEnv });
        assert.equal(r.code, 0, r.stderr);
        const j = JSON.parse(r.stdout);
        assert.deepEqual(Object.keys(j), [
          "provider",
          "model",
          "usd_per_million_tokens",
          "batch_usd_per_million_tokens",
          "max_tokens_per_input",
          "totals",
          "targets",
        ]);
        assert.equal(j.provider, "openai");
        assert.equal(j.model, "text-embedding-3-small");
        assert.equal(j.usd_per_million_tokens, 0.02);
        assert.deepEqual(j.targets.map((t: { target: string }) => t.target), ["sessions.title_embedding"]);
        assert.equal(j.totals.jobs, pending.length);
        assert.equal(j.totals.tokens, counts.reduce((n, c) => n + Math.min(c, 8191), 0));
        assert.equal(j.targets[0].largest_input_tokens, 8191);
        assert.equal(j.totals.truncated, counts.filter((c) => c > 8191).length);
        assert.ok(j.totals.truncated >= 1);
        assert.equal(j.totals.cost_usd, Number((j.totals.tokens * 0.02 / 1e6).toFixed(8)));
        // Both prices: the Batch API's is half (embed_queue.models.usd_per_million_tokens_batch).
        assert.equal(j.batch_usd_per_million_tokens, 0.01);
        assert.equal(j.totals.batch_cost_usd, Number((j.totals.tokens * 0.01 / 1e6).toFixed(8)));
        const text = await cli(["estimate", "--table", "sessions"], { env: dbEnv });
        assert.match(text.stdout, /Cost with text-embedding-3-small at \$0\.02 per 1M tokens: \$/);
        assert.match(text.stdout, /Through the Batch API at \$0\.01 per 1M tokens: \$/);

        // drain: the guide's processor, through the function; the hands-off path is held.
        const d = await cli(["drain", "--batch-size", "2", "--delay-ms", "10"], { env: dbEnv });
        assert.equal(d.code, 0, d.stdout + d.stderr);
        assert.match(d.stdout, /^Batch size: 2$/m);
        assert.match(d.stdout, /^Delay between calls: 10 ms$/m);
        const block = d.stdout.slice(d.stdout.indexOf("=== PROCESSING SUMMARY ==="));
        const processed = Number(block.match(/^Total records processed: (\d+)$/m)?.[1]);
        assert.ok(processed >= ids.length, block);
        assert.match(block, /^Total errors: 0\nSuccess rate: 100\.0%\n/m);
        assert.match(block, /^Model: text-embedding-3-small$/m);
        for (const id of ids) {
          const job = await jobOf(sql, "sessions", id);
          assert.equal(job.status, "completed", "drained by the CLI while the hands-off path was held");
          assert.equal(job.model, "text-embedding-3-small");
        }
        const [{ n }] =
          await sql`select count(*)::int as n from embed_queue.runs where trigger = 'manual' and started_at > now() - interval '5 minutes'`;
        assert.ok(n >= 1, "drain's calls are manual runs");
      });
    } finally {
      await sql.end();
      await viaEnd(via);
    }
  });
}

for (const via of VIAS) {
  Deno.test(
    { name: `cli search: an exact title ranks first, with its similarity${viaLabel(via)}`, ignore },
    async () => {
      const sql = db();
      try {
        const dbEnv = await viaEnv(via);
        const user = await makeUser(sql);
        const t = tag();
        const target = await makeSession(sql, user, `${t} aurora borealis photography trip to Tromsø`);
        const other = await makeSession(sql, user, `${t} quarterly tax filing checklist`);
        await waitCompleted(sql, "sessions", target);
        await waitCompleted(sql, "sessions", other);

        const r = await cli([
          "search",
          "sessions",
          `${t} aurora borealis photography trip to Tromsø`,
          "--limit",
          "3",
        ], { env: dbEnv });
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split("\n").filter((l) => /^\s+\d+\s+-?\d\.\d{4}\s/.test(l));
        assert.equal(lines.length, 3, r.stdout);
        const [rank, sim, recordId] = lines[0].trim().split(/\s+/);
        assert.equal(rank, "1");
        assert.equal(recordId, target);
        assert.ok(Number(sim) > 0.999, `similarity ${sim}`);
        const [{ n }] = await sql`
      select count(*)::int as n from pg_indexes where tablename = 'sessions' and indexdef ilike '%hnsw%'`;
        assert.ok(n >= 1, "search made sure the HNSW index exists");
      } finally {
        await sql.end();
        await viaEnd(via);
      }
    },
  );
}

Deno.test({
  name: "cli bad input: one line on stderr, exit 2 for usage and 1 otherwise, nothing changed",
  ignore,
}, async () => {
  const sql = db();
  try {
    const [{ n: before }] =
      await sql`select count(*)::int as n from public.embedding_queue where status = 'pending'`;
    const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
      [["frobnicate"], {}, 2, /^error: unknown command 'frobnicate'/],
      [["status", "--bogus"], {}, 2, /^error: unknown flag '--bogus' for status; see 'status --help'$/],
      [
        ["drain", "--batch-size", "abc"],
        {},
        2,
        /^error: --batch-size needs a whole number from 1 to 10000, got 'abc'/,
      ],
      [
        ["search", "sessions", "x", "--limit", "0"],
        {},
        2,
        /^error: --limit needs a whole number from 1 to 1000/,
      ],
      [["requeue", "sessions"], {}, 2, /^error: requeue needs <id>/],
      [
        ["search", "nosuchtable", "anything"],
        {},
        1,
        /^error: unknown table 'nosuchtable': the tables kept embedded are sessions, summaries$/,
      ],
      [["retry", "--table", "nosuchtable"], {}, 1, /^error: unknown table 'nosuchtable'/],
      [
        ["status"],
        { SUPABASE_DB_URL: "postgresql://postgres:hunter2@127.0.0.1:9/postgres" },
        1,
        /^error: cannot reach the database at 127\.0\.0\.1:9 \(SUPABASE_DB_URL\): check SUPABASE_DB_URL/,
      ],
      [
        ["drain"],
        { SUPABASE_URL: "http://127.0.0.1:9" },
        1,
        /^error: cannot reach the function at http:\/\/127\.0\.0\.1:9\/functions\/v1\/embed-queue: check SUPABASE_URL/,
      ],
      [
        ["drain"],
        { SUPABASE_SERVICE_ROLE_KEY: "wrong-key-0123456789" },
        1,
        /^error: the function refused the key \(HTTP 401\): SUPABASE_SERVICE_ROLE_KEY must be the project's service role key/,
      ],
      [
        ["search", "sessions", "secret words"],
        { EMBEDDING_DIMENSIONS: "many" },
        2,
        /^error: EMBEDDING_DIMENSIONS must be a whole number/,
      ],
      [["drain"], { SUPABASE_SERVICE_ROLE_KEY: "" }, 2, /^error: drain needs SUPABASE_SERVICE_ROLE_KEY/],
      [
        ["search", "sessions", "secret words"],
        { OPENAI_API_KEY: "sk-wrong-key-0123456789" },
        1,
        /^error: embedding the search text failed: authentication failed \(401\): check OPENAI_API_KEY$/,
      ],
    ];
    for (const [args, envOverride, code, re] of cases) {
      const r = await cli(args, { env: envOverride });
      const what = `${args.join(" ")} ${JSON.stringify(envOverride)}`;
      assert.equal(r.code, code, `${what}: exit ${r.code}\n${r.stderr}`);
      const line = oneErrorLine(r);
      assert.match(line, re, what);
      for (const secret of ["hunter2", "wrong-key-0123456789", "secret words", "sk-wrong"]) {
        assert.ok(!r.stderr.includes(secret), `${what}: leaks ${secret}`);
      }
      assert.equal(r.stdout.includes("PROCESSING SUMMARY"), false, `${what}: no work reported`);
    }
    const [{ n: after }] =
      await sql`select count(*)::int as n from public.embedding_queue where status = 'pending'`;
    assert.ok(after <= before, "no job was queued by a refused command");

    const help = await cli(["drain", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: embed-queue drain \[--batch-size N\] \[--delay-ms M\] \[--table T\]/);
  } finally {
    await sql.end();
  }
});
