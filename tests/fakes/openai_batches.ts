/**
 * The fake OpenAI server's Files and Batches endpoints (mounted by openai_server.ts), following
 * OpenAI's API reference and the official SDK's types (openai-node 7.55.0,
 * src/resources/files.ts and src/resources/batches.ts) and the Batch guide's file formats:
 *
 * - `POST /v1/files` (multipart: `file`, `purpose`), `GET /v1/files/{id}`,
 *   `GET /v1/files/{id}/content`, `DELETE /v1/files/{id}`. A `batch` file must be JSONL, at most
 *   200 MB and 50,000 lines.
 * - `POST /v1/batches` `{input_file_id, endpoint, completion_window, metadata?}`: only
 *   `completion_window: "24h"` is accepted; `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`,
 *   `GET /v1/batches?limit&after` (newest first, cursor pagination).
 * - Statuses validating → in_progress → finalizing → completed, or failed (validation: a line that
 *   is not a POST to the batch's endpoint, a repeated custom_id, more than 50,000 embedding inputs,
 *   more than one model), expired (the window ran out: lines not done get `batch_expired`),
 *   cancelling → cancelled (lines not done get `batch_cancelled`). `request_counts`, `usage`,
 *   `output_file_id` (lines answered 200) and `error_file_id` (the others), as OpenAI writes them:
 *   `{"id","custom_id","response":{"status_code","request_id","body"},"error":null}` or
 *   `{"id","custom_id","response":null,"error":{"code","message"}}`.
 *
 * Time is compressed by a script (`POST /_admin/batch_script`): how long a batch validates, runs
 * and finalizes, whether it ends expired or failed, which lines fail (an input containing
 * `poison` gets a 400 naming it; `fail_share` of lines a 500), and `hold` (stays in_progress
 * until the script changes). Output files are made on download from the inputs (vectors are
 * fakeVector(text), deterministic), so a 100,000-row batch does not sit in memory.
 */
import { countTokens as exactCount } from "gpt-tokenizer/encoding/cl100k_base";
import { fakeVector } from "./fake_vector.ts";
import { mulberry32 } from "../lib/prng.ts";

export interface BatchScript {
  /** Time in validating. */
  validate_ms: number;
  /** Time in in_progress before finalizing (or before it expires, with outcome "expired"). */
  run_ms: number;
  /** Time in finalizing. */
  finalize_ms: number;
  /** Time in cancelling before cancelled. */
  cancel_ms: number;
  /** How a batch that is not cancelled ends. */
  outcome: "completed" | "expired" | "failed";
  /** With outcome "expired" (or a cancel): this share of lines was done before the end. */
  done_share: number;
  /** A line with an input containing this gets a 400 naming that input. */
  poison: string | null;
  /** This share of lines gets a 500 (seeded by `seed`). */
  fail_share: number;
  seed: number;
  /** Batches stay in_progress while true. */
  hold: boolean;
}

export interface BatchStats {
  files: number;
  batches: number;
  /** Embedding inputs in lines answered 200 (counted when the batch ends). */
  inputs: number;
  tokens: number;
  /** How often each text was embedded by a batch, by sha256 hex of its UTF-8. */
  inputs_by_text_hash: Record<string, number>;
  /** Downloads of file content, and their bytes. */
  downloads: number;
  download_bytes: number;
}

export function emptyBatchScript(): BatchScript {
  return {
    validate_ms: 0,
    run_ms: 0,
    finalize_ms: 0,
    cancel_ms: 0,
    outcome: "completed",
    done_share: 0,
    poison: null,
    fail_share: 0,
    seed: 1,
    hold: false,
  };
}

const MAX_FILE_BYTES = 200 * 1024 * 1024;
const MAX_REQUESTS = 50_000;
const MAX_EMBEDDING_INPUTS = 50_000;
const ENDPOINTS = [
  "/v1/responses",
  "/v1/chat/completions",
  "/v1/embeddings",
  "/v1/completions",
  "/v1/moderations",
];
const PURPOSES = [
  "assistants",
  "batch",
  "fine-tune",
  "vision",
  "user_data",
  "evals",
];
const PLAIN = {
  allowedSpecial: new Set<string>(),
  disallowedSpecial: new Set<string>(),
};

interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  created_at: number;
  /** Input files: their bytes. */
  bytes?: Uint8Array<ArrayBuffer>;
  /** Output and error files: made on download. */
  lines?: () => Iterable<string>;
  size?: number;
}

interface InputLine {
  custom_id: string;
  body: Record<string, unknown>;
}

type LineResult =
  | { kind: "ok"; line: InputLine }
  | {
    kind: "http";
    line: InputLine;
    status: number;
    error: Record<string, unknown>;
  }
  | { kind: "error"; line: InputLine; code: string; message: string };

interface StoredBatch {
  id: string;
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  created_at: number; // ms
  /** The script when the batch was created (changes to `hold` still apply). */
  plan: BatchScript;
  status: string;
  lines: InputLine[];
  errors:
    | Array<
      {
        code: string;
        message: string;
        line: number | null;
        param: string | null;
      }
    >
    | null;
  times: Record<string, number>;
  cancel_at: number | null;
  ended: boolean;
  output_file_id: string | null;
  error_file_id: string | null;
  counts: { total: number; completed: number; failed: number };
  usage: number;
}

const sec = (ms: number) => Math.floor(ms / 1000);
const hex = () => crypto.randomUUID().replaceAll("-", "").slice(0, 24);

export class FakeBatches {
  script = emptyBatchScript();
  stats: BatchStats = emptyStats();
  #files = new Map<string, StoredFile>();
  #batches = new Map<string, StoredBatch>();

  constructor(
    private readonly sha256Hex: (text: string) => string,
    private readonly toBase64: (v: Float32Array) => string,
  ) {}

  reset() {
    this.script = emptyBatchScript();
    this.stats = emptyStats();
    this.#files.clear();
    this.#batches.clear();
  }

  setScript(body: unknown): BatchScript {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new Error("script must be an object");
    }
    const next = { ...this.script };
    for (const [k, v] of Object.entries(body)) {
      switch (k) {
        case "validate_ms":
        case "run_ms":
        case "finalize_ms":
        case "cancel_ms":
          if (typeof v !== "number" || !(v >= 0)) {
            throw new Error(`${k}: a number >= 0`);
          }
          next[k] = v;
          break;
        case "done_share":
        case "fail_share":
          if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
            throw new Error(`${k}: a number from 0 to 1`);
          }
          next[k] = v;
          break;
        case "outcome":
          if (v !== "completed" && v !== "expired" && v !== "failed") {
            throw new Error("outcome: completed, expired or failed");
          }
          next.outcome = v;
          break;
        case "poison":
          if (v !== null && (typeof v !== "string" || v === "")) {
            throw new Error("poison: a non-empty string or null");
          }
          next.poison = v as string | null;
          break;
        case "seed":
          if (!Number.isInteger(v)) throw new Error("seed: an integer");
          next.seed = v as number;
          break;
        case "hold":
          if (typeof v !== "boolean") throw new Error("hold: true or false");
          next.hold = v;
          break;
        default:
          throw new Error(`unknown batch script field "${k}"`);
      }
    }
    this.script = next;
    return next;
  }

  /** Handles /v1/files* and /v1/batches*; null for any other path. */
  async handle(
    req: Request,
    url: URL,
    apiError: ApiError,
    json: Json,
  ): Promise<Response | null> {
    const p = url.pathname;
    if (p === "/v1/files" && req.method === "POST") {
      return await this.#upload(req, apiError, json);
    }
    let m = p.match(/^\/v1\/files\/([^/]+)$/);
    if (m && req.method === "GET") {
      const f = this.#files.get(m[1]);
      return f
        ? json(200, this.#fileObject(f))
        : apiError(404, `No such File object: ${m[1]}`, { param: "id" });
    }
    if (m && req.method === "DELETE") {
      const ok = this.#files.delete(m[1]);
      return ok
        ? json(200, { id: m[1], object: "file", deleted: true })
        : apiError(404, `No such File object: ${m[1]}`, { param: "id" });
    }
    m = p.match(/^\/v1\/files\/([^/]+)\/content$/);
    if (m && req.method === "GET") return this.#content(m[1], apiError);
    if (p === "/v1/batches" && req.method === "POST") {
      return await this.#create(req, apiError, json);
    }
    if (p === "/v1/batches" && req.method === "GET") {
      return this.#list(url, json);
    }
    m = p.match(/^\/v1\/batches\/([^/]+)$/);
    if (m && req.method === "GET") {
      const b = this.#batches.get(m[1]);
      if (!b) {
        return apiError(404, `No batch found with id '${m[1]}'.`, {
          param: "batch_id",
        });
      }
      this.#advance(b);
      return json(200, this.#batchObject(b));
    }
    m = p.match(/^\/v1\/batches\/([^/]+)\/cancel$/);
    if (m && req.method === "POST") {
      await req.body?.cancel();
      const b = this.#batches.get(m[1]);
      if (!b) {
        return apiError(404, `No batch found with id '${m[1]}'.`, {
          param: "batch_id",
        });
      }
      this.#advance(b);
      if (!["validating", "in_progress", "finalizing"].includes(b.status)) {
        return apiError(
          409,
          `Cannot cancel a batch with status '${b.status}'.`,
        );
      }
      b.status = "cancelling";
      b.times.cancelling_at = Date.now();
      b.cancel_at = Date.now() + b.plan.cancel_ms;
      this.#advance(b);
      return json(200, this.#batchObject(b));
    }
    return null;
  }

  async #upload(
    req: Request,
    apiError: ApiError,
    json: Json,
  ): Promise<Response> {
    let form: FormData;
    try {
      form = await req.formData();
    } catch {
      return apiError(400, "Failed to parse multipart form data.");
    }
    const purpose = form.get("purpose");
    const file = form.get("file");
    if (typeof purpose !== "string" || !PURPOSES.includes(purpose)) {
      return apiError(
        400,
        `Invalid value for 'purpose': must be one of ${PURPOSES.join(", ")}.`,
        { param: "purpose" },
      );
    }
    if (!(file instanceof File)) {
      return apiError(400, "Missing required parameter: 'file'.", {
        param: "file",
      });
    }
    if (file.size > MAX_FILE_BYTES) {
      return apiError(
        400,
        `File is too large: ${file.size} bytes, at most ${MAX_FILE_BYTES} for purpose batch.`,
        {
          param: "file",
        },
      );
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (purpose === "batch") {
      if (!file.name.endsWith(".jsonl")) {
        return apiError(
          400,
          "Invalid file format for Batch API. Must be .jsonl",
          { param: "file" },
        );
      }
      const lines = new TextDecoder().decode(bytes).split("\n").filter((l) =>
        l.trim() !== ""
      );
      if (lines.length > MAX_REQUESTS) {
        return apiError(
          400,
          `The batch input file has ${lines.length} requests, at most ${MAX_REQUESTS}.`,
          {
            param: "file",
          },
        );
      }
      for (let i = 0; i < lines.length; i++) {
        try {
          const o = JSON.parse(lines[i]);
          if (typeof o !== "object" || o === null || Array.isArray(o)) {
            throw new Error();
          }
        } catch {
          return apiError(
            400,
            `Invalid file format for Batch API: line ${
              i + 1
            } is not valid JSON.`,
            {
              param: "file",
            },
          );
        }
      }
    }
    const f: StoredFile = {
      id: `file-${hex()}`,
      filename: file.name,
      purpose,
      created_at: Date.now(),
      bytes,
      size: bytes.length,
    };
    this.#files.set(f.id, f);
    this.stats.files++;
    return json(200, this.#fileObject(f));
  }

  #fileObject(f: StoredFile) {
    return {
      id: f.id,
      object: "file",
      bytes: f.size ?? 0,
      created_at: sec(f.created_at),
      expires_at: sec(f.created_at) + 30 * 86400,
      filename: f.filename,
      purpose: f.purpose,
      status: "processed",
      status_details: null,
    };
  }

  #content(id: string, apiError: ApiError): Response {
    const f = this.#files.get(id);
    if (!f) {
      return apiError(404, `No such File object: ${id}`, { param: "file_id" });
    }
    this.stats.downloads++;
    if (f.bytes) {
      this.stats.download_bytes += f.bytes.length;
      return new Response(f.bytes as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/octet-stream" },
      });
    }
    // Made line by line as the client reads, so a big output never sits in memory.
    const it = f.lines!()[Symbol.iterator]();
    const enc = new TextEncoder();
    const stats = this.stats;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        let chunk = "";
        while (chunk.length < 256 * 1024) {
          const n = it.next();
          if (n.done) break;
          chunk += n.value + "\n";
        }
        if (chunk === "") {
          controller.close();
          return;
        }
        const b = enc.encode(chunk);
        stats.download_bytes += b.length;
        controller.enqueue(b);
      },
    });
    return new Response(body, {
      headers: { "content-type": "application/octet-stream" },
    });
  }

  async #create(
    req: Request,
    apiError: ApiError,
    json: Json,
  ): Promise<Response> {
    let body: Record<string, unknown>;
    try {
      body = await req.json();
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new Error();
      }
    } catch {
      return apiError(400, "We could not parse the JSON body of your request.");
    }
    if (typeof body.input_file_id !== "string") {
      return apiError(400, "Missing required parameter: 'input_file_id'.", {
        param: "input_file_id",
      });
    }
    if (
      typeof body.endpoint !== "string" || !ENDPOINTS.includes(body.endpoint)
    ) {
      return apiError(
        400,
        `Invalid value for 'endpoint': must be one of ${ENDPOINTS.join(", ")}.`,
        {
          param: "endpoint",
        },
      );
    }
    if (body.completion_window !== "24h") {
      return apiError(
        400,
        "Invalid value for 'completion_window': only '24h' is supported.",
        {
          param: "completion_window",
        },
      );
    }
    const meta = body.metadata;
    if (
      meta !== undefined && meta !== null &&
      (typeof meta !== "object" || Array.isArray(meta) ||
        Object.keys(meta).length > 16 ||
        !Object.entries(meta).every(([k, v]) =>
          k.length <= 64 && typeof v === "string" && v.length <= 512
        ))
    ) {
      return apiError(
        400,
        "Invalid 'metadata': at most 16 string pairs (keys ≤ 64, values ≤ 512 characters).",
        {
          param: "metadata",
        },
      );
    }
    const f = this.#files.get(body.input_file_id);
    if (!f || !f.bytes) {
      return apiError(
        400,
        `Invalid 'input_file_id': no such file ${body.input_file_id}.`,
        {
          param: "input_file_id",
        },
      );
    }
    if (f.purpose !== "batch") {
      return apiError(
        400,
        "The input file must be uploaded with purpose 'batch'.",
        { param: "input_file_id" },
      );
    }
    const b: StoredBatch = {
      id: `batch_${hex()}`,
      input_file_id: f.id,
      endpoint: body.endpoint,
      completion_window: "24h",
      metadata: (meta as Record<string, string> | undefined) ?? null,
      created_at: Date.now(),
      plan: { ...this.script },
      status: "validating",
      lines: [],
      errors: null,
      times: {},
      cancel_at: null,
      ended: false,
      output_file_id: null,
      error_file_id: null,
      counts: { total: 0, completed: 0, failed: 0 },
      usage: 0,
    };
    this.#batches.set(b.id, b);
    this.stats.batches++;
    this.#advance(b);
    return json(200, this.#batchObject(b));
  }

  #list(url: URL, json: Json): Response {
    const limit = Math.min(
      100,
      Math.max(1, Number(url.searchParams.get("limit") ?? 20) || 20),
    );
    const after = url.searchParams.get("after");
    const all = [...this.#batches.values()].reverse(); // newest first
    let start = 0;
    if (after) start = all.findIndex((b) => b.id === after) + 1;
    const page = all.slice(start, start + limit);
    for (const b of page) this.#advance(b);
    return json(200, {
      object: "list",
      data: page.map((b) => this.#batchObject(b)),
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: start + limit < all.length,
    });
  }

  /** Moves a batch along its statuses by the time its plan gives each (checked on every read). */
  #advance(b: StoredBatch) {
    const now = Date.now();
    const p = b.plan;
    if (b.status === "validating" && now >= b.created_at + p.validate_ms) {
      const problem = this.#validate(b);
      if (problem) {
        b.status = "failed";
        b.errors = [problem];
        b.times.failed_at = now;
        b.ended = true;
        return;
      }
      b.status = "in_progress";
      b.times.in_progress_at = now;
      b.counts.total = b.lines.length;
    }
    if (b.status === "in_progress") {
      const due = b.times.in_progress_at + p.run_ms;
      if (this.script.hold || now < due) return;
      if (p.outcome === "expired") {
        return this.#end(b, "expired", p.done_share, "batch_expired");
      }
      if (p.outcome === "failed") {
        b.status = "failed";
        b.errors = [{
          code: "server_error",
          message: "The batch failed at the provider.",
          line: null,
          param: null,
        }];
        b.times.failed_at = now;
        b.ended = true;
        return;
      }
      b.status = "finalizing";
      b.times.finalizing_at = now;
    }
    if (
      b.status === "finalizing" && now >= b.times.finalizing_at + p.finalize_ms
    ) {
      return this.#end(b, "completed", 1, null);
    }
    if (b.status === "cancelling" && now >= (b.cancel_at ?? 0)) {
      return this.#end(
        b,
        "cancelled",
        b.times.in_progress_at ? p.done_share : 0,
        "batch_cancelled",
      );
    }
  }

  #validate(
    b: StoredBatch,
  ): {
    code: string;
    message: string;
    line: number | null;
    param: string | null;
  } | null {
    const f = this.#files.get(b.input_file_id)!;
    const text = new TextDecoder().decode(f.bytes!);
    const seen = new Set<string>();
    let inputs = 0;
    let model: unknown = undefined;
    const rows = text.split("\n");
    for (let i = 0; i < rows.length; i++) {
      if (rows[i].trim() === "") continue;
      const o = JSON.parse(rows[i]);
      const at = i + 1;
      if (typeof o.custom_id !== "string" || o.custom_id === "") {
        return {
          code: "missing_required_parameter",
          message: "Missing custom_id.",
          line: at,
          param: "custom_id",
        };
      }
      if (seen.has(o.custom_id)) {
        return {
          code: "duplicate_custom_id",
          message: "The custom_id for this request is a duplicate.",
          line: at,
          param: "custom_id",
        };
      }
      seen.add(o.custom_id);
      if (o.method !== "POST") {
        return {
          code: "invalid_request",
          message: "Only POST is supported.",
          line: at,
          param: "method",
        };
      }
      if (o.url !== b.endpoint) {
        return {
          code: "mismatched_endpoint",
          message: `The url must be ${b.endpoint}.`,
          line: at,
          param: "url",
        };
      }
      const body = o.body;
      if (typeof body !== "object" || body === null) {
        return {
          code: "invalid_request",
          message: "Missing body.",
          line: at,
          param: "body",
        };
      }
      if (model !== undefined && body.model !== model) {
        return {
          code: "model_mismatch",
          message: "All requests in a batch must use the same model.",
          line: at,
          param: "body.model",
        };
      }
      model = body.model;
      inputs += Array.isArray(body.input) ? body.input.length : 1;
      b.lines.push({ custom_id: o.custom_id, body });
    }
    if (b.lines.length === 0) {
      return {
        code: "empty_file",
        message: "The input file has no requests.",
        line: null,
        param: null,
      };
    }
    if (b.endpoint === "/v1/embeddings" && inputs > MAX_EMBEDDING_INPUTS) {
      b.lines = [];
      return {
        code: "too_many_inputs",
        message:
          `The batch has ${inputs} embedding inputs, at most ${MAX_EMBEDDING_INPUTS} across all requests.`,
        line: null,
        param: null,
      };
    }
    return null;
  }

  /** Ends a batch: `doneShare` of its lines were run (each answered by the script), the rest get `rest`. */
  #end(b: StoredBatch, status: string, doneShare: number, rest: string | null) {
    const now = Date.now();
    b.status = status;
    b.times[`${status}_at`] = now;
    b.ended = true;
    const random = mulberry32(b.plan.seed);
    const done = Math.floor(b.lines.length * doneShare);
    const results: LineResult[] = b.lines.map((line, i): LineResult => {
      if (i >= done && rest) {
        return {
          kind: "error",
          line,
          code: rest,
          message: rest === "batch_expired"
            ? "This request could not be executed before the completion window expired."
            : "This request was not executed because the batch was cancelled.",
        };
      }
      return this.#answer(line, random, b.plan);
    });
    for (const r of results) {
      if (r.kind === "ok") {
        b.counts.completed++;
        for (const t of r.line.body.input as string[]) {
          const n = exactCount(t, PLAIN);
          b.usage += n;
          this.stats.inputs++;
          this.stats.tokens += n;
          const h = this.sha256Hex(t);
          this.stats.inputs_by_text_hash[h] =
            (this.stats.inputs_by_text_hash[h] ?? 0) + 1;
        }
      } else b.counts.failed++;
    }
    const ok = results.filter((r) => r.kind === "ok");
    const bad = results.filter((r) => r.kind !== "ok");
    if (ok.length > 0) b.output_file_id = this.#outputFile(b, "output", ok);
    if (bad.length > 0) b.error_file_id = this.#outputFile(b, "error", bad);
  }

  /** One line's answer: a 400 for a poisoned or invalid input, a drawn 500, else 200. */
  #answer(
    line: InputLine,
    random: () => number,
    plan: BatchScript,
  ): LineResult {
    const body = line.body;
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const bad = (
      status: number,
      message: string,
      param: string | null,
      code: string | null = null,
    ): LineResult => ({
      kind: "http",
      line,
      status,
      error: {
        message,
        type: status >= 500 ? "server_error" : "invalid_request_error",
        param,
        code,
      },
    });
    if (random() < plan.fail_share) {
      return bad(
        500,
        "The server had an error while processing your request. Sorry about that!",
        null,
      );
    }
    if (typeof body.model !== "string") {
      return bad(400, "you must provide a model parameter", "model");
    }
    for (let i = 0; i < inputs.length; i++) {
      const t = inputs[i];
      if (typeof t !== "string" || t === "") {
        return bad(400, `Invalid 'input[${i}]': empty string.`, `input[${i}]`);
      }
      if (plan.poison !== null && t.includes(plan.poison)) {
        return bad(
          400,
          `Invalid 'input[${i}]': the input was rejected by the server's content checks.`,
          `input[${i}]`,
        );
      }
      if (exactCount(t, PLAIN) > 8192) {
        return bad(
          400,
          `Invalid 'input[${i}]': maximum input length is 8192 tokens.`,
          `input[${i}]`,
        );
      }
    }
    return { kind: "ok", line };
  }

  #outputFile(
    b: StoredBatch,
    kind: "output" | "error",
    results: LineResult[],
  ): string {
    const toBase64 = this.toBase64;
    const id = `file-${hex()}`;
    const lines = function* (): Iterable<string> {
      for (const r of results) {
        const reqId = `batch_req_${hex()}`;
        if (r.kind === "error") {
          yield JSON.stringify({
            id: reqId,
            custom_id: r.line.custom_id,
            response: null,
            error: { code: r.code, message: r.message },
          });
        } else if (r.kind === "http") {
          yield JSON.stringify({
            id: reqId,
            custom_id: r.line.custom_id,
            response: {
              status_code: r.status,
              request_id: `req_${hex()}`,
              body: { error: r.error },
            },
            error: null,
          });
        } else {
          const body = r.line.body;
          const texts = body.input as string[];
          const model = body.model as string;
          const dims = typeof body.dimensions === "number"
            ? body.dimensions
            : model === "text-embedding-3-large"
            ? 3072
            : 1536;
          const base64 = body.encoding_format === "base64";
          let tokens = 0;
          const data = texts.map((t, index) => {
            tokens += exactCount(t, PLAIN);
            const v = fakeVector(t, dims);
            return {
              object: "embedding",
              index,
              embedding: base64 ? toBase64(v) : Array.from(v),
            };
          });
          yield JSON.stringify({
            id: reqId,
            custom_id: r.line.custom_id,
            response: {
              status_code: 200,
              request_id: `req_${hex()}`,
              body: {
                object: "list",
                data,
                model,
                usage: { prompt_tokens: tokens, total_tokens: tokens },
              },
            },
            error: null,
          });
        }
      }
    };
    this.#files.set(id, {
      id,
      filename: `${b.id}_${kind}.jsonl`,
      purpose: "batch_output",
      created_at: Date.now(),
      lines,
    });
    return id;
  }

  #batchObject(b: StoredBatch) {
    const t = (
      k: string,
    ) => (b.times[k] === undefined ? null : sec(b.times[k]));
    return {
      id: b.id,
      object: "batch",
      endpoint: b.endpoint,
      errors: b.errors ? { object: "list", data: b.errors } : null,
      input_file_id: b.input_file_id,
      completion_window: b.completion_window,
      status: b.status,
      output_file_id: b.output_file_id,
      error_file_id: b.error_file_id,
      created_at: sec(b.created_at),
      in_progress_at: t("in_progress_at"),
      expires_at: sec(b.created_at) + 86400,
      finalizing_at: t("finalizing_at"),
      completed_at: t("completed_at"),
      failed_at: t("failed_at"),
      expired_at: t("expired_at"),
      cancelling_at: t("cancelling_at"),
      cancelled_at: t("cancelled_at"),
      request_counts: b.counts,
      usage: {
        input_tokens: b.usage,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 0,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: b.usage,
      },
      metadata: b.metadata,
    };
  }
}

type ApiError = (
  status: number,
  message: string,
  extra?: { type?: string; param?: string | null; code?: string | null },
) => Response;
type Json = (status: number, body: unknown) => Response;

function emptyStats(): BatchStats {
  return {
    files: 0,
    batches: 0,
    inputs: 0,
    tokens: 0,
    inputs_by_text_hash: {},
    downloads: 0,
    download_bytes: 0,
  };
}
