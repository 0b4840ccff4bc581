/**
 * The Batch API path (supabase/functions/embed-queue/batch.ts) against the test stack's database
 * and the test server's Files and Batches endpoints: the happy path, a row edited and a row
 * soft-deleted while their batch runs, expiry, partial output with error lines, a run killed
 * between two steps and the next one resuming, and cancel. Each test opens its batch itself, in
 * the transaction that makes its jobs, under a worker id of its own, and drives the batch by
 * calling the module; the stack's background runs (webhook, pg_cron) keep batching off (the
 * setting is on only inside that transaction) and cannot take a batch another run leases.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import postgres from "postgres";
import { adminBatchScript, adminBatchStats } from "../fakes/openai_process.ts";
import { type BatchSummary, runBatches, type StopAfter } from "../../supabase/functions/embed-queue/batch.ts";
import { createBatchDb } from "../../supabase/functions/embed-queue/batch_db.ts";
import { UNLIMITED } from "../../supabase/functions/embed-queue/budget.ts";
import { env, ignore, isVectorOf, scenario, waitFor } from "./helpers.ts";
import { cli } from "../cli/helpers.ts";

const MODEL = "text-embedding-3-small";
const DIMS = 1536;

/** Makes `titles` as sessions rows of `user`, their jobs bulk work, and opens a batch of them. */
async function openBatch(
  sql: postgres.Sql,
  user: string,
  titles: string[],
  worker: string,
  perLine = 7,
) {
  return await sql.begin(async (tx) => {
    const rows = await tx`
      insert into public.sessions (user_id, title) select ${user}, unnest(${tx.array(titles)}::text[])
      returning id::text, title`;
    // Bulk work, first in the bulk lane's line (so this batch takes these jobs, whatever else waits).
    await tx`update public.embedding_queue set lane = 'bulk', vtime = vtime - 1000000000000
             where table_name = 'sessions' and record_id = any (${tx.array(rows.map((r) => r.id))}::text[])`;
    await tx`update embed_queue.settings set batch_enabled = true, batch_min_jobs = ${titles.length},
             batch_max_jobs = ${titles.length}, batch_inputs_per_request = ${perLine}, batch_poll_seconds = 1`;
    const [b] = await tx`select batch_id, jobs from embed_queue.batch_open(${worker}, ${MODEL}, ${DIMS})`;
    await tx`update embed_queue.settings set batch_enabled = false`;
    assert.ok(b, "the batch opened");
    return {
      batchId: Number(b.batch_id),
      jobs: Number(b.jobs),
      rows: rows as unknown as Array<{ id: string; title: string }>,
    };
  });
}

function client() {
  return new OpenAI({
    apiKey: env.fakeOpenAIKey,
    baseURL: env.fakeOpenAIUrl,
    maxRetries: 0,
  });
}

/** One run of the batch steps, as the function does it at the start of a run. */
async function step(
  sql: postgres.Sql,
  worker: string,
  stopAfter?: StopAfter,
  writeChunk?: number,
): Promise<BatchSummary | null> {
  return await runBatches({
    db: createBatchDb(sql),
    client: client(),
    maxTokensPerInput: 8191,
    model: MODEL,
    dimensions: DIMS,
    budget: UNLIMITED,
    log: (e, f) => Deno.env.get("EQ_TEST_BATCH_LOG") && console.log(e, JSON.stringify(f)),
    stopAfter,
    writeChunk,
  }, {
    runId: null,
    worker,
    deadline: Date.now() + 60_000,
    signal: new AbortController().signal,
  });
}

async function batchRow(sql: postgres.Sql, id: number) {
  const [b] = await sql`select * from embed_queue.batch_status where id = ${id}`;
  return b;
}

/** Steps the batch (polls are due at once) until it is done. */
async function runToEnd(sql: postgres.Sql, id: number, worker: string, writeChunk?: number) {
  return await waitFor(`batch ${id} done`, async () => {
    await sql`update embed_queue.batches set next_poll_at = now() where id = ${id} and step = 'submitted'`;
    await step(sql, worker, undefined, writeChunk);
    const b = await batchRow(sql, id);
    return b.step === "done" ? b : null;
  }, 30_000);
}

async function jobsOf(sql: postgres.Sql, user: string) {
  return await sql`
    select s.id::text, s.title, s.deleted_at, s.title_embedding::text as v, q.status, q.attempts, q.locked_by,
           q.batch_id, q.error_message
    from public.sessions s left join public.embedding_queue q on q.record_id = s.id::text and q.table_name = 'sessions'
    where s.user_id = ${user} order by s.title`;
}

async function withBatching<T>(f: () => Promise<T>, opts: { runsMayOpen?: boolean } = {}): Promise<T> {
  try {
    return await f();
  } finally {
    // Leave nothing behind for the next tests: the settings' defaults first (no test backlog
    // reaches batch_min_jobs), then, once no run that read the old ones is still working, no
    // batch open (their jobs released) and nothing waiting in the batch lane.
    const sql = postgres(env.dbUrl, { max: 1, onnotice: () => {} });
    await sql`update embed_queue.settings set batch_enabled = true, batch_min_jobs = 10000, batch_max_jobs = 10000,
              batch_inputs_per_request = 100, batch_poll_seconds = 60`;
    if (opts.runsMayOpen) {
      await waitFor("no run working", async () => {
        const [{ n }] = await sql`select count(*)::int as n from embed_queue.runs
                                  where finished_at is null and started_at > now() - interval '3 minutes'`;
        return n === 0;
      }, 60_000).catch(() => {});
    }
    await sql`select embed_queue.batch_finish(id, null, 'cancelled', 'test cleanup') from embed_queue.batches where step <> 'done'`;
    await sql.begin(async (tx) => {
      await tx`select set_config('embed_queue.internal', 'on', true)`;
      await tx`update public.embedding_queue set lane = 'bulk' where status = 'pending' and lane = 'batch'`;
    });
    await sql.end();
  }
}

Deno.test({
  name: "batch: every job gets the vector of its text, billed at the batch price",
  ignore,
}, () =>
  withBatching(() =>
    scenario(async ({ sql, user, tag }) => {
      const worker = `test-${crypto.randomUUID()}`;
      const titles = Array.from(
        { length: 60 },
        (_, i) => `batch happy ${tag} row ${i}`,
      );
      const { batchId, jobs } = await openBatch(sql, user, titles, worker);
      assert.equal(jobs, 60);
      // Visible as held by the batch, in SQL.
      const held = await sql`select count(*)::int as n from public.embedding_queue
                             where locked_by = ${
        "batch:" + batchId
      } and status = 'processing' and batch_id = ${batchId}`;
      assert.equal(held[0].n, 60);

      const first = await step(sql, worker);
      assert.equal(first?.uploaded, 1);
      assert.equal(first?.submitted, 1);
      let b = await batchRow(sql, batchId);
      assert.equal(b.step, "submitted");
      assert.equal(Number(b.requests), 9, "60 inputs, 7 a line");
      assert.match(b.provider_batch_id, /^batch_/);
      // Pages of 14 jobs (two lines), several in one run: the cursor moves page by page.
      b = await runToEnd(sql, batchId, worker, 14);
      const [cur] = await sql`select output_lines_done as n from embed_queue.batches where id = ${batchId}`;
      assert.equal(cur.n, 9, "the cursor at the last of the 9 lines");
      assert.equal(b.outcome, "completed");
      assert.equal(b.written, 60);
      assert.equal(Number(b.holding), 0);
      const rows = await jobsOf(sql, user);
      for (const r of rows) {
        assert.equal(r.status, "completed");
        assert.ok(isVectorOf(r.v, r.title, DIMS), "the vector of its text");
        assert.equal(r.attempts, 1);
      }
      const stats = await adminBatchStats(env.fakeAdminUrl);
      assert.equal(
        Number(b.tokens),
        stats.tokens,
        "the tokens the server billed",
      );
      const [{ price }] =
        await sql`select usd_per_million_tokens_batch as price from embed_queue.models where model = ${MODEL}`;
      assert.equal(Number(price), 0.01);
      assert.ok(
        Math.abs(Number(b.cost_usd) - stats.tokens * 0.01 / 1e6) < 1e-12,
        "at the batch price",
      );
    })
  ));

Deno.test({
  name: "batch: a row edited and a row soft-deleted while the batch runs get nothing from it",
  ignore,
}, () =>
  withBatching(() =>
    scenario(async ({ sql, user, tag }) => {
      const worker = `test-${crypto.randomUUID()}`;
      const titles = Array.from(
        { length: 30 },
        (_, i) => `batch stale ${tag} row ${i}`,
      );
      const { batchId, rows } = await openBatch(sql, user, titles, worker);
      await adminBatchScript(env.fakeAdminUrl, { hold: true });
      await step(sql, worker); // uploaded and submitted; the server holds it in_progress
      const edited = rows[3], deleted = rows[5];
      await sql`update public.sessions set title = ${`edited ${tag}`} where id = ${edited.id}`;
      await sql`update public.sessions set deleted_at = now() where id = ${deleted.id}`;
      await adminBatchScript(env.fakeAdminUrl, { hold: false });
      const b = await runToEnd(sql, batchId, worker);
      assert.equal(b.written, 28);
      assert.equal(b.stale, 2);
      // The edited row: the synchronous path embeds its new text (a background run or this wait).
      await waitFor("the edited row's new vector", async () => {
        const [r] = await sql`select title_embedding::text as v from public.sessions where id = ${edited.id}`;
        return isVectorOf(r.v, `edited ${tag}`, DIMS);
      }, 60_000);
      const [d] =
        await sql`select title_embedding is null as none from public.sessions where id = ${deleted.id}`;
      assert.equal(d.none, true, "the soft-deleted row holds no vector");
      for (
        const r of (await jobsOf(sql, user)).filter((r) => r.id !== edited.id && r.id !== deleted.id)
      ) {
        assert.ok(isVectorOf(r.v, r.title, DIMS));
      }
    })
  ));

Deno.test({
  name: "batch: an expired batch writes what it did and gives the rest back with no attempt lost",
  ignore,
}, () =>
  withBatching(() =>
    scenario(async ({ sql, user, tag }) => {
      const worker = `test-${crypto.randomUUID()}`;
      await adminBatchScript(env.fakeAdminUrl, {
        outcome: "expired",
        done_share: 0.5,
      });
      const titles = Array.from(
        { length: 28 },
        (_, i) => `batch expired ${tag} row ${i}`,
      );
      const { batchId } = await openBatch(sql, user, titles, worker);
      const b = await runToEnd(sql, batchId, worker);
      assert.equal(b.outcome, "expired");
      assert.equal(
        b.written,
        14,
        "the 2 of 4 lines done before the window ran out",
      );
      assert.equal(b.released, 14);
      // The released jobs went to the synchronous path with their attempt refunded: each ends
      // completed on its first counted attempt.
      await waitFor("the released jobs done synchronously", async () => {
        const now = await jobsOf(sql, user);
        return now.every((r) => r.status === "completed") ? now : null;
      }, 60_000);
      for (const r of await jobsOf(sql, user)) {
        assert.ok(isVectorOf(r.v, r.title, DIMS));
        assert.equal(r.attempts, 1, "no attempt lost to the expiry");
      }
    })
  ));

Deno.test({
  name: "batch: error lines: a refused input fails alone, the rest of its line and 5xx lines go back",
  ignore,
}, () =>
  withBatching(() =>
    scenario(async ({ sql, user, tag }) => {
      const worker = `test-${crypto.randomUUID()}`;
      const poison = `POISON-${tag}`;
      await adminBatchScript(env.fakeAdminUrl, { poison });
      const titles = Array.from(
        { length: 21 },
        (_, i) => i === 2 ? `bad ${poison}` : `batch partial ${tag} row ${i}`,
      );
      const { batchId } = await openBatch(sql, user, titles, worker);
      const b = await runToEnd(sql, batchId, worker);
      assert.equal(b.outcome, "completed");
      assert.equal(b.failed, 1);
      assert.equal(b.written, 14, "the two lines without the poisoned input");
      assert.equal(b.released, 6, "the poisoned line's other inputs");
      const rows = await jobsOf(sql, user);
      const bad = rows.find((r) => r.title.includes(poison))!;
      assert.equal(bad.status, "failed");
      assert.match(bad.error_message, /400/);
      assert.ok(
        !bad.error_message.includes(poison),
        "no user text in the error",
      );
    })
  ));

Deno.test({
  name: "batch: a run killed after each step is resumed by the next, one file and one batch in all",
  ignore,
}, () =>
  withBatching(() =>
    scenario(async ({ sql, user, tag }) => {
      const titles = Array.from(
        { length: 40 },
        (_, i) => `batch resume ${tag} row ${i}`,
      );
      let worker = `test-${crypto.randomUUID()}`;
      const { batchId } = await openBatch(sql, user, titles, worker);
      // A run that dies right after the upload: the next run (another worker, once the lease
      // expired) creates the batch from the recorded file.
      await step(sql, worker, "uploaded");
      let b = await batchRow(sql, batchId);
      assert.equal(b.step, "uploaded");
      const expire = async () => {
        worker = `test-${crypto.randomUUID()}`;
        await sql`update embed_queue.batches set locked_by = ${worker}, locked_until = now() + interval '1 minute' where id = ${batchId}`;
      };
      await expire();
      await step(sql, worker, "submitted");
      b = await batchRow(sql, batchId);
      assert.equal(b.step, "submitted");
      // Killed after the batch was created at the provider but before it was recorded: the
      // next run finds it by its input file instead of paying for a second one.
      await sql`update embed_queue.batches set step = 'uploaded', provider_batch_id = null where id = ${batchId}`;
      await expire();
      await step(sql, worker, "submitted");
      // Killed after its write-back's last page was recorded, before the batch was closed: the
      // next run finds the cursor at the end and only closes it.
      await expire();
      await waitFor("the batch ended", async () => {
        await sql`update embed_queue.batches set next_poll_at = now() where id = ${batchId} and step = 'submitted'`;
        await step(sql, worker, "polled");
        return (await batchRow(sql, batchId)).step === "downloading";
      }, 30_000);
      await step(sql, worker, "page");
      b = await batchRow(sql, batchId);
      assert.equal(b.step, "downloading");
      assert.equal(b.written, 40);
      await expire();
      b = await runToEnd(sql, batchId, worker);
      assert.equal(b.written, 40);
      assert.equal(b.stale, 0, "nothing written twice");
      const stats = await adminBatchStats(env.fakeAdminUrl);
      assert.equal(stats.files, 1, "one input file uploaded");
      assert.equal(stats.batches, 1, "one batch created");
      for (const r of await jobsOf(sql, user)) {
        assert.ok(isVectorOf(r.v, r.title, DIMS));
      }
    })
  ));

Deno.test({
  name: "batch: write-back spread over runs by its cursor writes every line once",
  ignore,
}, () =>
  withBatching(() =>
    scenario(async ({ sql, user, tag }) => {
      const worker = `test-${crypto.randomUUID()}`;
      const titles = Array.from(
        { length: 120 },
        (_, i) => `batch pages ${tag} row ${i}`,
      );
      const { batchId } = await openBatch(sql, user, titles, worker, 10);
      await waitFor("the batch ended", async () => {
        await sql`update embed_queue.batches set next_poll_at = now() where id = ${batchId} and step = 'submitted'`;
        await step(sql, worker, "polled");
        return (await batchRow(sql, batchId)).step === "downloading";
      }, 30_000);
      // Each run stops after one page of write-back (50 jobs or more here, whole lines), as a run
      // out of CPU would; the next one goes on from the cursor.
      const seen: number[] = [];
      for (
        let i = 0;
        i < 5 && (await batchRow(sql, batchId)).step !== "done";
        i++
      ) {
        await step(sql, worker, "page", 50);
        const [c] = await sql`select output_lines_done as n from embed_queue.batches where id = ${batchId}`;
        seen.push(c.n);
      }
      assert.deepEqual(
        seen,
        [5, 10, 12, 12],
        "five lines (50 jobs) a page, then the rest, then the run that closes it",
      );
      const b = await runToEnd(sql, batchId, worker);
      assert.equal(b.written, 120);
      assert.equal(b.stale, 0, "no line written twice");
    })
  ));

Deno.test(
  { name: "batch: cancel before and after submission", ignore },
  () =>
    withBatching(() =>
      scenario(async ({ sql, user, tag }) => {
        // Not yet submitted: ends at once, jobs released.
        const worker = `test-${crypto.randomUUID()}`;
        const one = await openBatch(
          sql,
          user,
          Array.from({ length: 10 }, (_, i) => `batch cancel-a ${tag} ${i}`),
          worker,
        );
        // The run working on it (here: this test) lets go and the operator cancels, in one go.
        const [{ r }] = await sql.begin(async (tx) => {
          await tx`update embed_queue.batches set locked_by = null, locked_until = null where id = ${one.batchId}`;
          return await tx`select embed_queue.cancel_batch(${one.batchId}) as r`;
        });
        assert.match(r, /cancelled/);
        const a = await batchRow(sql, one.batchId);
        assert.equal(a.step, "done");
        assert.equal(a.outcome, "cancelled");
        assert.equal(a.released, 10);

        // Submitted: the next run cancels it at the provider and gives the jobs back.
        await adminBatchScript(env.fakeAdminUrl, { hold: true });
        const two = await openBatch(
          sql,
          user,
          Array.from({ length: 10 }, (_, i) => `batch cancel-b ${tag} ${i}`),
          worker,
        );
        await step(sql, worker);
        // status shows it, with the jobs it holds; the CLI cancels it.
        const st = await cli(["status", "--json"]);
        assert.equal(st.code, 0, st.stderr);
        const shown = JSON.parse(st.stdout).batches.find((x: { id: number }) => x.id === two.batchId);
        assert.equal(shown.step, "submitted");
        assert.equal(shown.holding, 10);
        const c = await cli(["cancel-batch", String(two.batchId)]);
        assert.equal(c.code, 0, c.stderr);
        assert.match(c.stdout, /cancel requested/);
        const b = await runToEnd(sql, two.batchId, worker);
        assert.equal(b.outcome, "cancelled");
        assert.equal(b.provider_status, "cancelled");
        assert.equal(b.released, 10);
        const [{ n }] = await sql`select count(*)::int as n from public.embedding_queue where locked_by = ${
          "batch:" + two.batchId
        }`;
        assert.equal(n, 0);
      })
    ),
);

Deno.test({
  name: "batch: hands-off, the function opens, polls and writes back a batch, and its run records say so",
  ignore,
}, () =>
  withBatching(() =>
    scenario(async ({ sql, user, tag }) => {
      const titles = Array.from({ length: 40 }, (_, i) => `batch hands-off ${tag} row ${i}`);
      // No run is working (one in its lanes would take bulk jobs synchronously before the next
      // run's batch step): the insert's webhook starts the run that opens the batch.
      await waitFor("no run working", async () => {
        const [{ n }] = await sql`select count(*)::int as n from embed_queue.runs
                                  where finished_at is null and started_at > now() - interval '3 minutes'`;
        return n === 0;
      }, 60_000);
      await sql.begin(async (tx) => {
        const rows = await tx`insert into public.sessions (user_id, title) select ${user}, unnest(${
          tx.array(titles)
        }::text[])
                              returning id::text`;
        await tx`update public.embedding_queue set lane = 'bulk'
                 where table_name = 'sessions' and record_id = any (${
          tx.array(rows.map((r) => r.id))
        }::text[])`;
        // Runs open a batch for 20 bulk jobs or more (others' leftovers may join it).
        await tx`update embed_queue.settings set batch_enabled = true, batch_min_jobs = 20, batch_max_jobs = 1000,
                 batch_inputs_per_request = 10, batch_poll_seconds = 1`;
      });
      await waitFor("every row embedded", async () => {
        const rows = await jobsOf(sql, user);
        return rows.every((r) => r.status === "completed") ? rows : null;
      }, 90_000);
      for (const r of await jobsOf(sql, user)) assert.ok(isVectorOf(r.v, r.title, DIMS));
      const batched =
        await sql`select count(*)::int as n from public.embedding_queue q join public.sessions s on q.record_id = s.id::text
                                where s.user_id = ${user} and q.table_name = 'sessions' and q.batch_id is not null`;
      assert.ok(batched[0].n >= 20, `the bulk jobs went through a batch (${batched[0].n})`);
      const run = await waitFor("a finished run that wrote a batch back", async () => {
        const [r] = await sql`select tokens, cost_usd, batch from embed_queue.runs
                              where finished_at is not null and (batch ->> 'written')::int > 0 order by id desc limit 1`;
        return r;
      }, 30_000);
      assert.ok(run, "a run recorded its batch write-back");
      assert.ok(Number(run.tokens) >= Number(run.batch.tokens));
      assert.ok(
        Math.abs(Number(run.batch.cost_usd) - Number(run.batch.tokens) * 0.01 / 1e6) < 1e-9,
        "at the batch price",
      );
    }), { runsMayOpen: true }));
