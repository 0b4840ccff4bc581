/**
 * Bulk work through OpenAI's Batch API, at half the price (docs/design.md, "Bulk work through the
 * Batch API"; SQL side: migration 20261124001300_batches.sql). Each run of the function, before
 * its synchronous lanes, takes the open batches that have a step due and moves each one on:
 *
 *   claimed      jobs held as 'batch:<id>'       → build the JSONL file a page of jobs at a time,
 *                                                   upload it (files.create, purpose "batch")
 *   uploaded     input_file_id recorded           → create the batch (batches.create, 24h), unless
 *                                                   one for that file exists already (batches.list)
 *   submitted    provider_batch_id recorded       → poll (batches.retrieve; batches.cancel first if
 *                                                   the operator asked); an ended batch → downloading
 *   downloading  output/error files, cursors      → stream each file line by line from its cursor,
 *                                                   write back a page at a time with complete(),
 *                                                   fail() or release() and the cursor in one
 *                                                   transaction, until the CPU budget or the time
 *                                                   is spent; the next run continues
 *   done         every job the batch still held is released (attempt refunded)
 *
 * Then, with room left, it opens one new batch when the bulk backlog is big enough
 * (embed_queue.batch_open decides: settings.batch_min_jobs).
 *
 * A run killed between two steps leaves the batch at the last recorded step; its lease on the
 * batch row runs out and the next run does the step again: a file uploaded but not recorded is
 * uploaded again (the orphan expires at the provider after 30 days), a batch created but not
 * recorded is found by its input file, lines written but not recorded are written again and
 * come back "lost" from complete() (nothing written twice), since the cursor moves in the same
 * transaction as the writes.
 *
 * Provider API as in the official SDK (openai-node 7.55.0, src/resources/files.ts and
 * src/resources/batches.ts) and OpenAI's Batch guide (input and output line formats).
 */
import OpenAI from "openai";
import type { Budget } from "./budget.ts";
import type { CompletedJob, JobFailure } from "./db.ts";
import type {
  BatchDb,
  BatchLine,
  BatchRow,
  LineWrites,
  WriteCounts,
} from "./batch_db.ts";
import { truncateToTokens } from "../_shared/tokens.ts";
import { decodeBase64Float32, toPgvector } from "../_shared/vectors.ts";
import type { BatchSummary } from "../_shared/summary.ts";

export type { BatchSummary };

/** Jobs read per page while building a file. */
const BUILD_PAGE = 2000;
/** Jobs per write-back transaction (as the synchronous path's complete() chunks). */
const WRITE_CHUNK = 500;
/** Time kept in hand before the run's deadline. */
const MARGIN_MS = 3000;
/** Batches listed when looking for one created for an input file but not recorded. */
const LIST_LIMIT = 100;

/** A step after which a test stops the run, as a kill between steps would. */
export type StopAfter =
  | "claimed"
  | "uploaded"
  | "submitted"
  | "polled"
  | "page";

export interface BatchDeps {
  db: BatchDb;
  /** The official SDK's client (files, batches). */
  client: OpenAI;
  /** Input tokens per input at most (longer inputs are cut, as the synchronous path does). */
  maxTokensPerInput: number;
  /** The model and size new batches embed with (the function's provider's). */
  model: string;
  dimensions: number;
  budget: Budget;
  log: (event: string, fields?: Record<string, unknown>) => void;
  now?: () => number;
  /** Jobs per write-back transaction (default WRITE_CHUNK). */
  writeChunk?: number;
  /** Tests only: end the run after this step, as if the function were killed there. */
  stopAfter?: StopAfter;
}

export interface BatchRunContext {
  runId: number | null;
  worker: string;
  deadline: number;
  signal: AbortSignal;
}

/** Runs the batch steps due now; never throws (a failure is logged and left for the next run). */
export type BatchRunner = (
  ctx: BatchRunContext,
) => Promise<BatchSummary | null>;

export function createBatchRunner(deps: BatchDeps): BatchRunner {
  return (ctx) => runBatches(deps, ctx);
}

/** A client for the Batch API with the provider's settings (retries are the next run's). */
export function batchClient(
  cfg: {
    openaiApiKey?: string;
    openaiBaseUrl?: string;
    requestTimeoutMs: number;
  },
) {
  return new OpenAI({
    apiKey: cfg.openaiApiKey ?? "unused",
    baseURL: cfg.openaiBaseUrl,
    maxRetries: 0,
    timeout: cfg.requestTimeoutMs,
  });
}

class Stop extends Error {}

export async function runBatches(
  deps: BatchDeps,
  ctx: BatchRunContext,
): Promise<BatchSummary | null> {
  const now = deps.now ?? Date.now;
  const { db, budget, log } = deps;
  const sum: BatchSummary = {
    opened: 0,
    uploaded: 0,
    submitted: 0,
    polled: 0,
    written: 0,
    stale: 0,
    released: 0,
    failed: 0,
    tokens: 0,
    cost_usd: 0,
    more: false,
    events: [],
  };
  const event = (
    batch: number,
    what: string,
    fields: Record<string, unknown> = {},
  ) => {
    sum.events.push({ batch, event: what, ...fields });
    log("batch", { run_id: ctx.runId, batch, event: what, ...fields });
  };
  const outOfRoom = () =>
    ctx.signal.aborted || budget.exhausted() !== null || budget.mustYield() ||
    now() > ctx.deadline - MARGIN_MS;
  const stopAfter = (step: StopAfter) => {
    if (deps.stopAfter === step) throw new Stop();
  };
  const leaseSeconds = Math.max(
    60,
    Math.ceil((ctx.deadline - now()) / 1000) + 60,
  );
  const add = (c: WriteCounts) => {
    sum.written += c.written;
    sum.stale += c.stale;
    sum.released += c.released;
    sum.failed += c.failed;
    sum.tokens += c.tokens;
    sum.cost_usd = Number((sum.cost_usd + c.cost_usd).toFixed(8));
  };

  /** Builds the input file a page of jobs at a time and uploads it. */
  async function upload(b: BatchRow): Promise<boolean> {
    const parts: string[] = [];
    const lines: BatchLine[] = [];
    const per = b.inputs_per_request;
    let line: BatchLine = { line: 0, job_ids: [], hashes: [], truncated: [] };
    let inputs: string[] = [];
    const flush = () => {
      if (line.job_ids.length === 0) return;
      parts.push(
        JSON.stringify({
          custom_id: `eq-${b.id}-${line.line}`,
          method: "POST",
          url: "/v1/embeddings",
          body: {
            model: b.model,
            input: inputs,
            // Smaller files and output than floats (4 bytes a value, base64).
            encoding_format: "base64",
            ...(b.model.startsWith("text-embedding-3")
              ? { dimensions: b.dimensions }
              : {}),
          },
        }) + "\n",
      );
      lines.push(line);
      line = { line: line.line + 1, job_ids: [], hashes: [], truncated: [] };
      inputs = [];
    };
    for (let after = 0;;) {
      const page = await db.jobs(b.id, after, BUILD_PAGE);
      if (page.length === 0) break;
      budget.timed(() => {
        for (const j of page) {
          let text = j.content.isWellFormed()
            ? j.content
            : j.content.toWellFormed();
          let cut = j.clipped;
          // Every token is at least one UTF-8 byte: only a longer text may need cutting.
          if (
            text.length > deps.maxTokensPerInput ||
            new TextEncoder().encode(text).length > deps.maxTokensPerInput
          ) {
            const t = truncateToTokens(text, deps.maxTokensPerInput);
            text = t.text;
            cut ||= t.truncated;
          }
          line.job_ids.push(j.id);
          line.hashes.push(j.content_hash);
          line.truncated.push(cut);
          inputs.push(text);
          if (line.job_ids.length >= per) flush();
        }
      });
      after = page[page.length - 1].id;
    }
    flush();
    if (lines.length === 0) {
      const n = await db.finish(
        b.id,
        ctx.worker,
        "cancelled",
        "no job left to send",
      );
      event(b.id, "empty", { released: n ?? 0 });
      return false;
    }
    const file = await deps.client.files.create({
      file: new File(parts, `embed-queue-batch-${b.id}.jsonl`, {
        type: "application/jsonl",
      }),
      purpose: "batch",
    });
    parts.length = 0;
    if (!(await db.uploaded(b.id, ctx.worker, file.id, lines))) return false;
    b.step = "uploaded";
    b.input_file_id = file.id;
    sum.uploaded++;
    event(b.id, "uploaded", { requests: lines.length, bytes: file.bytes });
    return true;
  }

  /** Creates the batch, or finds the one a killed run created for this file. */
  async function submit(b: BatchRow): Promise<boolean> {
    let found: OpenAI.Batches.Batch | undefined;
    const page = await deps.client.batches.list({ limit: LIST_LIMIT });
    found = page.data.find((x) => x.input_file_id === b.input_file_id);
    if (!found) {
      found = await deps.client.batches.create({
        input_file_id: b.input_file_id!,
        endpoint: "/v1/embeddings",
        completion_window: "24h",
        metadata: { embed_queue_batch: String(b.id) },
      });
    }
    if (!(await db.submitted(b.id, ctx.worker, found.id, found.status))) {
      return false;
    }
    b.step = "submitted";
    b.provider_batch_id = found.id;
    sum.submitted++;
    event(b.id, "submitted", {
      provider_batch_id: found.id,
      status: found.status,
    });
    return true;
  }

  async function poll(b: BatchRow): Promise<boolean> {
    let pb = await deps.client.batches.retrieve(b.provider_batch_id!);
    if (
      b.cancel_requested &&
      ["validating", "in_progress", "finalizing"].includes(pb.status)
    ) {
      pb = await deps.client.batches.cancel(pb.id);
      event(b.id, "cancel_sent", { status: pb.status });
    }
    const error = pb.errors?.data?.length
      ? `provider: ${
        pb.errors.data.slice(0, 3).map((e) =>
          `${e.code ?? "error"}${e.line ? ` (line ${e.line})` : ""}`
        ).join(", ")
      }`
      : null;
    const step = await db.polled(b.id, ctx.worker, {
      status: pb.status,
      counts: pb.request_counts ?? null,
      outputFileId: pb.output_file_id ?? null,
      errorFileId: pb.error_file_id ?? null,
      error,
    });
    log("batch.poll", {
      run_id: ctx.runId,
      batch: b.id,
      status: pb.status,
      step,
    });
    if (step === null) return false;
    b.provider_status = pb.status;
    sum.polled++;
    if (step === "downloading") {
      b.step = "downloading";
      b.output_file_id = pb.output_file_id ?? null;
      b.error_file_id = pb.error_file_id ?? null;
      event(b.id, "ended", {
        status: pb.status,
        request_counts: pb.request_counts ?? null,
      });
    }
    return true;
  }

  /** What a line of the output or error file means for its jobs. */
  function readLine(
    b: BatchRow,
    lines: Map<number, BatchLine>,
    text: string,
    w: LineWrites,
  ): number {
    let o: {
      custom_id?: unknown;
      response?:
        | { status_code?: number; body?: Record<string, unknown> }
        | null;
      error?: { code?: string } | null;
    };
    try {
      o = JSON.parse(text);
    } catch {
      return 0;
    }
    const m = typeof o.custom_id === "string"
      ? /^eq-(\d+)-(\d+)$/.exec(o.custom_id)
      : null;
    const line = m && Number(m[1]) === b.id
      ? lines.get(Number(m[2]))
      : undefined;
    if (!line) return 0;
    const body = o.response?.body as
      | {
        data?: Array<{ index?: number; embedding?: unknown }>;
        usage?: { prompt_tokens?: number };
        error?: { param?: unknown };
      }
      | undefined;
    if (o.response?.status_code === 200 && Array.isArray(body?.data)) {
      const tokens = typeof body.usage?.prompt_tokens === "number"
        ? body.usage.prompt_tokens
        : 0;
      w.tokens += tokens;
      const share = Math.round(tokens / line.job_ids.length);
      const seen = new Set<number>();
      for (let k = 0; k < body.data.length; k++) {
        const item = body.data[k];
        const i = typeof item.index === "number" ? item.index : k;
        if (
          i < 0 || i >= line.job_ids.length || seen.has(i) ||
          typeof item.embedding !== "string"
        ) continue;
        let v: Float32Array;
        try {
          v = decodeBase64Float32(item.embedding);
        } catch {
          continue;
        }
        if (v.length !== b.dimensions || !v.every(Number.isFinite)) continue;
        seen.add(i);
        w.complete.push(
          {
            id: line.job_ids[i],
            contentHash: line.hashes[i],
            embedding: toPgvector(v),
            tokens: share,
            truncated: line.truncated[i],
          } satisfies CompletedJob,
        );
      }
      // An answer short of some vectors: those jobs go back to the synchronous path.
      for (let i = 0; i < line.job_ids.length; i++) {
        if (!seen.has(i)) w.release.push(line.job_ids[i]);
      }
      return line.job_ids.length;
    }
    // A request the provider refused: the input it names fails for good, as the synchronous path
    // fails an input it cannot embed; the others of the line, and every job of a line that failed
    // for the provider's own reasons (5xx, 429, expired, cancelled), go back with no attempt lost.
    const status = o.response?.status_code;
    const param = typeof body?.error?.param === "string"
      ? /^input\[(\d+)\]$/.exec(body.error.param)
      : null;
    const bad = status === 400 && param ? Number(param[1]) : -1;
    for (let i = 0; i < line.job_ids.length; i++) {
      if (i === bad) {
        w.fail.push(
          {
            id: line.job_ids[i],
            kind: "permanent",
            error:
              `provider rejected the input (400, in batch ${b.id}): check the row's text`,
          } satisfies JobFailure,
        );
      } else w.release.push(line.job_ids[i]);
    }
    return line.job_ids.length;
  }

  /** Writes back one file from its cursor; false when the run ran out of room first. */
  async function download(
    b: BatchRow,
    lines: Map<number, BatchLine>,
    file: "output" | "error",
  ): Promise<boolean> {
    const fileId = file === "output" ? b.output_file_id : b.error_file_id;
    if (!fileId) return true;
    const bytesDone = file === "output"
      ? b.output_bytes_done
      : b.error_bytes_done;
    const res = await deps.client.files.content(fileId);
    if (!res.body) return true;
    const reader = res.body.getReader();
    // A page starts at the cursor last written (commit() moves it forward).
    const fresh = (): LineWrites => ({
      file,
      bytesDone: file === "output" ? b.output_bytes_done : b.error_bytes_done,
      linesDone: file === "output" ? b.output_lines_done : b.error_lines_done,
      complete: [],
      fail: [],
      release: [],
      tokens: 0,
    });
    let w = fresh();
    let jobs = 0;
    const commit = async () => {
      if (
        w.linesDone ===
          (file === "output" ? b.output_lines_done : b.error_lines_done) &&
        jobs === 0
      ) return true;
      const c = await db.write(b, ctx.worker, w);
      if (c === null) return false;
      add(c);
      if (file === "output") {
        b.output_bytes_done = w.bytesDone;
        b.output_lines_done = w.linesDone;
      } else {
        b.error_bytes_done = w.bytesDone;
        b.error_lines_done = w.linesDone;
      }
      w = fresh();
      jobs = 0;
      stopAfter("page");
      return true;
    };
    // Bytes of the file read so far (the stream's position) and the unfinished line's bytes.
    let pos = 0;
    let pending: Uint8Array[] = [];
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let chunk = value;
        // Skip what earlier runs wrote back (the cursor is always at a line end).
        if (pos + chunk.length <= bytesDone) {
          pos += chunk.length;
          continue;
        }
        if (pos < bytesDone) {
          chunk = chunk.subarray(bytesDone - pos);
          pos = bytesDone;
        }
        let start = 0;
        for (;;) {
          const nl = chunk.indexOf(10, start);
          if (nl < 0) {
            if (start < chunk.length) pending.push(chunk.slice(start));
            pos += chunk.length - start;
            break;
          }
          const piece = chunk.subarray(start, nl);
          pos += nl + 1 - start;
          start = nl + 1;
          let bytes = piece;
          if (pending.length > 0) {
            const total = pending.reduce((n, p) => n + p.length, 0) +
              piece.length;
            bytes = new Uint8Array(total);
            let at = 0;
            for (const p of pending) {
              bytes.set(p, at);
              at += p.length;
            }
            bytes.set(piece, at);
            pending = [];
          }
          jobs += budget.timed(() =>
            readLine(b, lines, decoder.decode(bytes), w)
          );
          w.bytesDone = pos;
          w.linesDone++;
          if (jobs >= (deps.writeChunk ?? WRITE_CHUNK)) {
            if (!(await commit())) return false;
            if (outOfRoom()) {
              sum.more = true;
              return false;
            }
          }
        }
      }
      if (pending.length > 0) {
        // A last line with no newline.
        const total = pending.reduce((n, p) => n + p.length, 0);
        const bytes = new Uint8Array(total);
        let at = 0;
        for (const p of pending) {
          bytes.set(p, at);
          at += p.length;
        }
        jobs += budget.timed(() =>
          readLine(b, lines, decoder.decode(bytes), w)
        );
        w.bytesDone = pos;
        w.linesDone++;
      }
      return await commit();
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  async function writeBack(b: BatchRow) {
    const lines = await db.lines(b.id);
    for (const file of ["output", "error"] as const) {
      if (!(await download(b, lines, file))) return;
    }
    // Both files done: whatever is still held had no line in either (or the batch failed
    // before running): back to the synchronous path.
    const outcome = b.outcome ?? b.provider_status ?? "completed";
    const n = await db.finish(b.id, ctx.worker, outcome);
    if (n !== null) {
      sum.released += n;
      event(b.id, "done", { outcome, released_unanswered: n });
    }
  }

  async function advance(b: BatchRow) {
    if (b.cancel_requested && (b.step === "claimed" || b.step === "uploaded")) {
      const n = await db.finish(
        b.id,
        ctx.worker,
        "cancelled",
        "cancelled by the operator before it was submitted",
      );
      if (n !== null) {
        sum.released += n;
        event(b.id, "cancelled", { released: n });
      }
      return;
    }
    if (b.step === "claimed") {
      stopAfter("claimed");
      if (!(await upload(b))) return;
      stopAfter("uploaded");
    }
    if (b.step === "uploaded") {
      if (!(await submit(b))) return;
      stopAfter("submitted");
      return; // polled from the next run on (settings.batch_poll_seconds)
    }
    if (b.step === "submitted") {
      if (!(await poll(b))) return;
      stopAfter("polled");
    }
    if (b.step === "downloading") await writeBack(b);
  }

  const taken: number[] = [];
  try {
    for (const b of await db.take(ctx.worker, leaseSeconds)) {
      taken.push(b.id);
      if (outOfRoom()) {
        sum.more = true;
        break;
      }
      try {
        await advance(b);
      } catch (e) {
        if (e instanceof Stop) throw e;
        event(b.id, "error", { step: b.step, code: errorCode(e) });
      }
    }
    if (!outOfRoom()) {
      const b = await db.open(ctx.worker, deps.model, deps.dimensions);
      if (b) {
        taken.push(b.id);
        sum.opened++;
        event(b.id, "opened", { jobs: b.jobs });
        try {
          await advance(b);
        } catch (e) {
          if (e instanceof Stop) throw e;
          event(b.id, "error", { step: b.step, code: errorCode(e) });
        }
      }
    }
  } catch (e) {
    if (e instanceof Stop) {
      // As a kill would: no lease given back, nothing recorded beyond the step reached.
      return sum;
    }
    log("batch.error", { run_id: ctx.runId, code: errorCode(e) });
  }
  for (const id of taken) await db.letGo(id, ctx.worker).catch(() => {});
  // Any step done (a write-back page has no event of its own) goes into the run's record.
  const did = sum.events.length > 0 || sum.polled > 0 ||
    sum.written + sum.stale + sum.released + sum.failed > 0;
  if (ctx.runId !== null && did) {
    await db.noteRun(ctx.runId, sum).catch(() => {});
  }
  return did ? sum : null;
}

/** An error's class for the logs: an HTTP status, a SQLSTATE or a name; never its text. */
function errorCode(e: unknown): string {
  if (e instanceof OpenAI.APIError) return `http ${e.status ?? "?"}`;
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : (e as Error)?.name ?? "Error";
}
