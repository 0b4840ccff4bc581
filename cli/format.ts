/**
 * Everything the CLI prints, as pure functions of plain data: numbers, tables, the guide's
 * summary block, the status report, progress lines, estimates and search results. No I/O, no
 * clock (times are passed in), so tests can check every shape.
 */
import { LOCAL_MODEL } from "../supabase/functions/_shared/config.ts";
import type {
  CoverageRow,
  FailureRow,
  HousekeepingRow,
  LagRow,
  QueueStatusRow,
  RunRow,
  SearchAsRow,
  SearchRow,
  SpendCapRow,
  TargetSnapshot,
  UsageRow,
} from "./db.ts";
import type { AdoptionReport, BatchRow, ModelChangeRow } from "./db.ts";

// --- numbers -----------------------------------------------------------------------------------

export function fmtInt(n: number): string {
  const s = String(Math.round(Math.abs(n)));
  return (n < 0 ? "-" : "") + s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Dollars with enough digits that a small cost is not shown as $0.00. */
export function fmtUsd(x: number): string {
  if (!Number.isFinite(x) || x === 0) return "$0.00";
  if (x >= 1) return `$${x.toFixed(2)}`;
  if (x >= 0.01) return `$${x.toFixed(4)}`;
  // Three significant digits, no exponent: 0.0000503 → $0.0000503
  const digits = Math.min(12, 2 - Math.floor(Math.log10(x)));
  return `$${x.toFixed(digits).replace(/0+$/, "")}`;
}

export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  if (m < 60) return `${m} min ${String(rest).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function fmtRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return "0 rows/s";
  return `${perSecond >= 100 ? Math.round(perSecond) : perSecond.toFixed(1)} rows/s`;
}

/** The guide's success rate: share of processed records that did not end in error. */
export function fmtSuccessRate(processed: number, errors: number): string {
  if (processed <= 0) return "n/a (nothing processed)";
  return `${((100 * (processed - errors)) / processed).toFixed(1)}%`;
}

/** A size on disk: `8.0 kB`, `1.3 MB`, `2.1 GB` (powers of 1,024, as PostgreSQL's pg_size_pretty). */
export function fmtBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "-";
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} bytes` : `${n.toFixed(1)} ${units[i]}`;
}

/** `2026-11-24 20:31:05` (UTC). */
export function fmtTime(d: Date | null): string {
  return d ? d.toISOString().replace("T", " ").slice(0, 19) : "-";
}

/**
 * Characters that act on a terminal instead of printing: C0 controls (ESC starts escape codes),
 * DEL, C1 controls (U+009B is an 8-bit CSI) and the bidirectional overrides and isolates that
 * reorder what follows. Text from the database (row content, record ids, error messages) passes
 * through `printable` before it is shown.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `s` with every control character shown as an inert escape (`\x1b`, `\u202e`), so it cannot act on the terminal. */
export function printable(s: string): string {
  return s.replace(CONTROL, (c) => {
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
  });
}

/**
 * JSON for the terminal: JSON.stringify escapes C0 controls but prints DEL, C1 controls and the
 * bidirectional marks as they are; here they are escaped too (`\u009b`), still valid JSON.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`,
  );
}

/** Whitespace collapsed, control characters neutralised, cut to `max` characters (160 unless told). */
export function oneLine(s: string | null | undefined, max = 160): string {
  const t = printable((s ?? "").replace(/\s+/g, " ").trim());
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

// --- tables ------------------------------------------------------------------------------------

export type Cell = string | number;

const NUMERIC = /^(-|[-$]?\d[\d,]*(\.\d+)?%?)$/;

/** Column-aligned text table; numeric columns (numbers, amounts, "-") align right. Indented by two spaces. */
export function renderTable(headers: string[], rows: Cell[][]): string[] {
  const numeric = headers.map((_, i) =>
    rows.length > 0 && rows.every((r) => typeof r[i] === "number" || NUMERIC.test(String(r[i] ?? "")))
  );
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? fmtInt(c) : printable(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    "  " + r.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(headers), ...cells.map(line)];
}

// --- provider ----------------------------------------------------------------------------------

export interface ProviderInfo {
  provider: string;
  model: string;
  dimensions: number;
  usdPerMillionTokens: number;
}

export function describeProvider(p: ProviderInfo): string {
  if (p.provider === "local") {
    return `local lexical provider, model ${p.model} (${p.dimensions} dimensions; offline and free, NOT semantic: ` +
      `it matches shared words, not meaning; set OPENAI_API_KEY for real embeddings)`;
  }
  return `${p.provider === "openai" ? "OpenAI" : p.provider} ${p.model} (${p.dimensions} dimensions, ` +
    `$${p.usdPerMillionTokens} per 1M tokens)`;
}

/** The models that wrote a run's embeddings, as the summary's Model line. */
export function describeModels(models: string[]): string | undefined {
  if (models.length === 0) return undefined;
  return models.map((m) =>
    m === LOCAL_MODEL
      ? `${m} (the offline lexical provider: free, NOT semantic; set OPENAI_API_KEY for OpenAI embeddings)`
      : m
  ).join(", ");
}

// --- the guide's summary -----------------------------------------------------------------------

export interface SummaryInput {
  /** Jobs that reached completed, failed or skipped. */
  processed: number;
  /** Jobs that ended failed. */
  errors: number;
  skipped: number;
  tokens: number;
  costUsd: number;
  durationMs: number;
  /** e.g. "OpenAI text-embedding-3-small (1536 dimensions, ...)" */
  model?: string;
  /** Further `label: value` lines after the guide's three. */
  extra?: Array<[string, string]>;
}

/** The guide's block, exactly its first four lines, then what this project adds. */
export function summaryBlock(s: SummaryInput): string[] {
  const lines = [
    "=== PROCESSING SUMMARY ===",
    `Total records processed: ${s.processed}`,
    `Total errors: ${s.errors}`,
    `Success rate: ${fmtSuccessRate(s.processed, s.errors)}`,
  ];
  if (s.skipped > 0) lines.push(`Skipped (empty content, embedding cleared): ${s.skipped}`);
  lines.push(`Tokens: ${fmtInt(s.tokens)}`);
  lines.push(`Estimated cost: ${fmtUsd(s.costUsd)}`);
  lines.push(`Time: ${fmtDuration(s.durationMs)}`);
  if (s.model) lines.push(`Model: ${s.model}`);
  for (const [k, v] of s.extra ?? []) lines.push(`${k}: ${v}`);
  return lines;
}

// --- live display ------------------------------------------------------------------------------

export interface DisplayItem {
  label: string;
  /** Jobs finished during this watch. */
  done: number;
  /** done + still open (pending + processing). */
  total: number;
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  rate: number;
}

export function targetLabel(t: { table_name: string; embedding_column: string }): string {
  return `${t.table_name}.${t.embedding_column}`;
}

/** Display labels: the table's name, or table.column where a table has several targets. */
export function displayItems(snaps: TargetSnapshot[], rates: Map<string, number>): DisplayItem[] {
  const perTable = new Map<string, number>();
  for (const s of snaps) perTable.set(s.table_name, (perTable.get(s.table_name) ?? 0) + 1);
  return snaps.map((s) => {
    const label = perTable.get(s.table_name)! > 1 ? targetLabel(s) : s.table_name;
    return {
      label,
      done: s.done_since,
      total: s.done_since + s.pending + s.processing,
      pending: s.pending,
      processing: s.processing,
      completed: s.completed,
      failed: s.failed,
      rate: rates.get(targetLabel(s)) ?? 0,
    };
  });
}

export function itemText(i: DisplayItem): string {
  return `pending ${i.pending}, processing ${i.processing}, completed ${i.completed}, failed ${i.failed}, ${
    fmtRate(i.rate)
  }`;
}

/** The same for a narrow terminal. */
export function itemTextCompact(i: DisplayItem): string {
  const r = i.rate > 0 ? (i.rate >= 100 ? Math.round(i.rate) : i.rate.toFixed(1)) : "0";
  return `pend ${i.pending} · proc ${i.processing} · done ${i.completed} · fail ${i.failed} · ${r}/s`;
}

/** The plain line printed once a second when stdout is not a terminal. */
export function progressLine(elapsedMs: number, items: DisplayItem[]): string {
  const secs = `[${String(Math.floor(elapsedMs / 1000)).padStart(4)} s]`;
  return `${secs} ` + items.map((i) => `${i.label} ${i.done}/${i.total}: ${itemText(i)}`).join(" | ");
}

/** Rows finished per second over a sliding window, from (time, cumulative count) samples. */
export class RateMeter {
  private samples: Array<[number, number]> = [];
  constructor(private windowMs = 10_000) {}

  add(atMs: number, value: number): void {
    this.samples.push([atMs, value]);
    while (this.samples.length > 2 && atMs - this.samples[1][0] >= this.windowMs) this.samples.shift();
  }

  rate(): number {
    if (this.samples.length < 2) return 0;
    const [t0, v0] = this.samples[0];
    const [t1, v1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? Math.max(0, ((v1 - v0) * 1000) / (t1 - t0)) : 0;
  }
}

// --- status ------------------------------------------------------------------------------------

export interface StatusReport {
  queue: QueueStatusRow[];
  coverage: CoverageRow[];
  lag: LagRow[];
  failures: FailureRow[];
  usage: UsageRow[];
  runs: RunRow[];
  /** Daily token caps in force today (the `status` command always reads them). */
  spendCaps?: SpendCapRow[];
  /** What keeps the queue from working by itself, e.g. an empty Vault secret (the `status` command always reads them). */
  warnings?: string[];
  /** Old triggers and vectors of unknown origin (the `status` command always reads them). */
  adoption?: AdoptionReport;
  /** The tables the tick keeps bounded, with their size (the `status` command always reads them). */
  housekeeping?: HousekeepingRow[];
  /** Model changes under way and old vectors kept (embed_queue.model_changes; `status` always reads them). */
  modelChanges?: ModelChangeRow[];
  /** Batch API batches, open ones first (the `status` command always reads them). */
  batches?: BatchRow[];
}

export interface StatusTotals {
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  skipped: number;
  missing: number;
  tokens: number;
  cost_usd: number;
}

export function statusTotals(r: StatusReport): StatusTotals {
  const by = (s: string) => r.queue.filter((q) => q.status === s).reduce((n, q) => n + q.count, 0);
  return {
    pending: by("pending"),
    processing: by("processing"),
    completed: by("completed"),
    failed: by("failed"),
    skipped: by("skipped"),
    missing: r.coverage.reduce((n, c) => n + c.missing, 0),
    tokens: r.usage.reduce((n, u) => n + u.tokens, 0),
    cost_usd: Number(r.usage.reduce((n, u) => n + (u.cost_usd ?? 0), 0).toFixed(8)),
  };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** `status --json`: stable keys (the views' column names), numbers as numbers, times as ISO 8601. */
export function statusJson(r: StatusReport, now: Date): Record<string, unknown> {
  return {
    generated_at: now.toISOString(),
    totals: statusTotals(r),
    queue: r.queue.map((q) => ({ table_name: q.table_name, status: q.status, count: q.count })),
    coverage: r.coverage.map((c) => ({
      table_name: c.table_name,
      embedding_column: c.embedding_column,
      total: c.total,
      with_embeddings: c.with_embeddings,
      missing: c.missing,
    })),
    lag: r.lag.map((l) => ({
      table_name: l.table_name,
      embedding_column: l.embedding_column,
      pending: l.pending,
      processing: l.processing,
      oldest_pending_at: iso(l.oldest_pending_at),
      lag_seconds: l.lag_seconds === null ? null : Number(l.lag_seconds.toFixed(3)),
    })),
    failures: r.failures.map((f) => ({
      table_name: f.table_name,
      error_message: f.error_message,
      count: f.count,
      record_ids: f.record_ids ?? [],
    })),
    usage: r.usage.map((u) => ({
      table_name: u.table_name,
      embedding_column: u.embedding_column,
      model: u.model,
      completed: u.completed,
      tokens: u.tokens,
      cost_usd: u.cost_usd,
    })),
    runs: r.runs.map((x) => ({
      id: x.id,
      trigger: x.trigger,
      started_at: iso(x.started_at),
      finished_at: iso(x.finished_at),
      claimed: x.claimed,
      completed: x.completed,
      failed: x.failed,
      skipped: x.skipped,
      unchanged: x.unchanged ?? 0,
      stale: x.stale,
      requests: x.requests,
      rate_limited: x.rate_limited,
      tokens: x.tokens,
      cost_usd: x.cost_usd,
      error: x.error,
    })),
    ...(r.spendCaps
      ? {
        spend_caps: r.spendCaps.map((c) => ({
          scope: c.scope,
          fair_key: c.fair_key,
          tokens: c.tokens,
          daily_tokens: c.daily_tokens,
          reached: c.reached,
          waiting: c.waiting,
          resumes_at: iso(c.resumes_at),
        })),
      }
      : {}),
    ...(r.warnings ? { warnings: r.warnings } : {}),
    ...(r.adoption ? adoptionJson(r.adoption) : {}),
    ...(r.housekeeping
      ? {
        housekeeping: r.housekeeping.map((x) => ({
          table_name: x.table_name,
          rows: x.rows,
          bytes: x.bytes,
          oldest_at: iso(x.oldest_at),
          kept_for: x.kept_for,
        })),
      }
      : {}),
    ...(r.modelChanges ? { model_changes: r.modelChanges } : {}),
    ...(r.batches
      ? {
        batches: r.batches.map((b) => ({
          id: b.id,
          step: b.step,
          outcome: b.outcome,
          provider_status: b.provider_status,
          provider_batch_id: b.provider_batch_id,
          jobs: b.jobs,
          holding: b.holding,
          written: b.written,
          stale: b.stale,
          released: b.released,
          failed: b.failed,
          tokens: b.tokens,
          cost_usd: b.cost_usd,
          created_at: iso(b.created_at),
          finished_at: iso(b.finished_at),
          error: b.error,
        })),
      }
      : {}),
  };
}

function section(title: string, body: string[], empty: string): string[] {
  return ["", title, ...(body.length > 1 ? body : [`  ${empty}`])];
}

export function statusText(r: StatusReport): string {
  const t = statusTotals(r);
  const out: string[] = [
    ...(r.warnings ?? []).map((w) => `warning: ${w}`),
    `Queue: ${t.pending} pending, ${t.processing} processing, ${t.completed} completed, ${t.failed} failed, ` +
    `${t.skipped} skipped; ${t.missing} live rows without an embedding`,
  ];
  out.push(...section(
    "Jobs by target and status (the guide's queue query)",
    renderTable(["table", "status", "count"], r.queue.map((q) => [q.table_name, q.status, q.count])),
    "no jobs",
  ));
  out.push(...section(
    "Coverage (live rows)",
    renderTable(
      ["table", "column", "rows", "with embedding", "missing"],
      r.coverage.map((c) => [c.table_name, c.embedding_column, c.total, c.with_embeddings, c.missing]),
    ),
    "no targets registered",
  ));
  out.push(...section(
    "Lag (jobs still to do)",
    renderTable(
      ["table", "column", "pending", "processing", "oldest pending (UTC)", "lag"],
      r.lag.map((l) => [
        l.table_name,
        l.embedding_column,
        l.pending,
        l.processing,
        fmtTime(l.oldest_pending_at),
        l.lag_seconds === null ? "-" : fmtDuration(l.lag_seconds * 1000),
      ]),
    ),
    "nothing waiting",
  ));
  out.push(...section(
    "Failures, grouped by error (undo with: retry [--table T] [--id ID])",
    renderTable(
      ["table", "count", "error", "record ids"],
      r.failures.map((f) => {
        const ids = f.record_ids ?? [];
        return [
          f.table_name,
          f.count,
          oneLine(f.error_message ?? "(no message)", 70),
          ids.slice(0, 3).join(", ") + (ids.length > 3 ? `, … (${ids.length - 3} more)` : ""),
        ];
      }),
    ),
    "none",
  ));
  const usageRows: Cell[][] = r.usage.map((u) => [
    u.table_name,
    u.embedding_column,
    u.model ?? "-",
    u.completed,
    u.tokens,
    // The offline model is free even where embed_queue.models does not list it.
    u.cost_usd === null ? (u.model === LOCAL_MODEL ? fmtUsd(0) : "unknown price") : fmtUsd(u.cost_usd),
  ]);
  if (r.usage.length > 1) usageRows.push(["total", "", "", t.completed, t.tokens, fmtUsd(t.cost_usd)]);
  out.push(...section(
    "Tokens and estimated cost (completed jobs)",
    renderTable(["table", "column", "model", "jobs", "tokens", "cost"], usageRows),
    "nothing embedded yet",
  ));
  out.push(...section(
    "Last runs",
    renderTable(
      ["id", "trigger", "started (UTC)", "took", "claimed", "completed", "failed", "tokens", "error"],
      r.runs.map((x) => [
        x.id,
        x.trigger,
        fmtTime(x.started_at),
        x.finished_at ? fmtDuration(x.finished_at.getTime() - x.started_at.getTime()) : "running",
        x.claimed,
        x.completed,
        x.failed,
        x.tokens,
        x.error ? oneLine(x.error, 50) : "",
      ]),
    ),
    "no runs yet",
  ));
  if (r.batches && r.batches.length > 0) {
    out.push(...section(
      "Batch API batches (jobs held as processing, locked_by 'batch:<id>'; cancel with: cancel-batch <id>)",
      renderTable(
        ["id", "step", "provider", "jobs", "holding", "written", "stale", "given back", "failed", "tokens", "cost", "error"],
        r.batches.map((b) => [
          b.id,
          b.step === "done" ? `done (${b.outcome ?? "?"})` : b.step,
          b.provider_status ?? "-",
          b.jobs,
          b.holding,
          b.written,
          b.stale,
          b.released,
          b.failed,
          b.tokens,
          fmtUsd(b.cost_usd),
          b.error ? oneLine(b.error, 40) : "",
        ]),
      ),
      "none",
    ));
  }
  if (r.spendCaps) {
    out.push(...section(
      "Daily token caps (UTC day; lift a user's with: select embed_queue.lift_cap('<user>', <tokens or null>))",
      renderTable(
        ["scope", "user", "tokens today", "cap", "state", "jobs waiting", "resumes (UTC)"],
        r.spendCaps.map((c) => [
          c.scope,
          c.fair_key ?? "all users",
          c.tokens,
          c.daily_tokens,
          c.reached ? "reached: not sending" : "under",
          c.waiting,
          c.reached ? fmtTime(c.resumes_at) : "-",
        ]),
      ),
      "no cap reached",
    ));
  }
  if (r.housekeeping) {
    out.push(...section(
      "Housekeeping (pruned by the tick; pg_net drops its own responses)",
      renderTable(
        ["table", "rows", "size", "oldest (UTC)", "kept for"],
        r.housekeeping.map((
          x,
        ) => [x.table_name, x.rows, fmtBytes(x.bytes), fmtTime(x.oldest_at), x.kept_for]),
      ),
      "nothing to prune",
    ));
  }
  if (r.adoption) out.push(...adoptionSections(r.adoption));
  if (r.modelChanges?.length) {
    out.push(...section(
      "Model changes (reembed --status; --switch, --rollback, --drop-old, --cancel)",
      renderTable(
        [
          "table",
          "column",
          "search uses",
          "other column",
          "its model",
          "role",
          "covered",
          "live rows",
          "failed",
        ],
        r.modelChanges.map((m) => [
          m.table_name,
          m.embedding_column,
          m.active_model ?? "(configured)",
          m.other_column,
          m.other_model ?? "(unrecorded)",
          m.generation,
          m.covered,
          m.live_rows,
          m.failed_jobs,
        ]),
      ),
      "none",
    ));
  }
  return out.map(printable).join("\n");
}

// --- adoption (an install of the guide's script) -----------------------------------------------

const sum = (rows: { unknown_origin: number }[]) => rows.reduce((n, l) => n + l.unknown_origin, 0);

export function adoptionJson(a: AdoptionReport): Record<string, unknown> {
  return {
    legacy_vectors: {
      policy: a.legacyPolicy,
      unknown_origin: sum(a.legacy),
      by_target: a.legacy.map((l) => ({
        table_name: l.table_name,
        embedding_column: l.embedding_column,
        unknown_origin: l.unknown_origin,
      })),
    },
    old_triggers: a.oldTriggers.map((o) => ({
      table_name: `${o.schema_name}.${o.table_name}`,
      trigger_name: o.trigger_name,
      function_name: o.function_name,
      enabled: o.enabled,
    })),
  };
}

/** The SQL that drops the old triggers (their functions stay): the one documented way. */
export const DROP_OLD_TRIGGERS_SQL = "select * from embed_queue.drop_old_triggers();";

function legacyExplanation(a: AdoptionReport): string {
  return a.legacyPolicy === "reembed"
    ? "settings.legacy_vectors = reembed: embedded again as bulk work, only while nothing else is pending"
    : "settings.legacy_vectors = trust: kept as they are, never paid for again";
}

export function adoptionSections(a: AdoptionReport): string[] {
  const out: string[] = [];
  out.push(...section(
    `Vectors of unknown origin (written before embed_queue; ${legacyExplanation(a)})`,
    renderTable(
      ["table", "column", "vectors"],
      a.legacy.map((l) => [l.table_name, l.embedding_column, l.unknown_origin]),
    ),
    "none",
  ));
  out.push(...section(
    `Old triggers writing into embedding_queue (not embed_queue's; drop with: ${DROP_OLD_TRIGGERS_SQL})`,
    renderTable(
      ["table", "trigger", "function", "enabled"],
      a.oldTriggers.map((
        o,
      ) => [`${o.schema_name}.${o.table_name}`, o.trigger_name, o.function_name, o.enabled ? "yes" : "no"]),
    ),
    "none",
  ));
  return out;
}

/** `doctor`: findings about an install adopted from the guide's script, and what to do. */
export function doctorText(a: AdoptionReport): { text: string; problems: number } {
  const lines: string[] = [];
  let problems = 0;
  if (a.oldTriggers.length) {
    problems += a.oldTriggers.length;
    lines.push(
      `! ${a.oldTriggers.length} old trigger(s) of your own also write into embedding_queue:`,
      ...a.oldTriggers.map((o) =>
        `    ${o.schema_name}.${o.table_name}: trigger ${o.trigger_name} (function ${o.function_name}${
          o.enabled ? "" : ", disabled"
        })`
      ),
      "  embed_queue's own triggers queue these tables now. Once the old script is stopped, drop the old ones:",
      `    ${DROP_OLD_TRIGGERS_SQL}`,
      "  Their functions stay; add p_drop_functions => true to drop those no other trigger uses.",
    );
  } else {
    lines.push("ok: no trigger but embed_queue's writes into embedding_queue");
  }
  const legacy = sum(a.legacy);
  if (legacy) {
    lines.push(
      `i ${legacy} vector(s) of unknown origin (${
        a.legacy.map((l) => `${l.table_name}.${l.embedding_column} ${l.unknown_origin}`).join(", ")
      }): ${legacyExplanation(a)}.`,
      a.legacyPolicy === "reembed"
        ? "  To keep them instead: update embed_queue.settings set legacy_vectors = 'trust';"
        : "  To embed them again: update embed_queue.settings set legacy_vectors = 'reembed';",
    );
  } else {
    lines.push("ok: every vector was written by embed_queue");
  }
  return { text: lines.map(printable).join("\n"), problems };
}

// --- estimate ----------------------------------------------------------------------------------

export interface EstimateRow {
  label: string;
  jobs: number;
  tokens: number;
  largest: number;
  /** Inputs over the per-input limit (cut before sending). */
  truncated: number;
  /** Jobs with empty content (skipped, nothing sent). */
  empty: number;
}

export interface EstimateReport {
  rows: EstimateRow[];
  maxTokensPerInput: number;
  provider: ProviderInfo;
  /** OpenAI's default model and price, shown next to the local provider's $0. */
  reference?: { model: string; usdPerMillionTokens: number };
  /** The model's price through the Batch API (bulk work above settings.batch_min_jobs); none for the local provider. */
  batchUsdPerMillionTokens?: number;
}

export function estimateTotals(r: EstimateReport) {
  const sum = (f: (x: EstimateRow) => number) => r.rows.reduce((n, x) => n + f(x), 0);
  const tokens = sum((x) => x.tokens);
  return {
    jobs: sum((x) => x.jobs),
    tokens,
    truncated: sum((x) => x.truncated),
    empty: sum((x) => x.empty),
    cost_usd: Number(((tokens * r.provider.usdPerMillionTokens) / 1e6).toFixed(8)),
    ...(r.batchUsdPerMillionTokens === undefined
      ? {}
      : { batch_cost_usd: Number(((tokens * r.batchUsdPerMillionTokens) / 1e6).toFixed(8)) }),
  };
}

export function estimateJson(r: EstimateReport): Record<string, unknown> {
  const t = estimateTotals(r);
  return {
    provider: r.provider.provider,
    model: r.provider.model,
    usd_per_million_tokens: r.provider.usdPerMillionTokens,
    ...(r.batchUsdPerMillionTokens === undefined ? {} : { batch_usd_per_million_tokens: r.batchUsdPerMillionTokens }),
    max_tokens_per_input: r.maxTokensPerInput,
    totals: t,
    targets: r.rows.map((x) => ({
      target: x.label,
      jobs: x.jobs,
      tokens: x.tokens,
      largest_input_tokens: x.largest,
      truncated: x.truncated,
      empty: x.empty,
    })),
  };
}

export function estimateText(r: EstimateReport): string {
  const t = estimateTotals(r);
  const rows: Cell[][] = r.rows.map((x) => [x.label, x.jobs, x.tokens, x.largest, x.truncated]);
  if (r.rows.length > 1) {
    rows.push([
      "total",
      t.jobs,
      t.tokens,
      Math.max(0, ...r.rows.map((x) => x.largest)),
      t.truncated,
    ]);
  }
  const out = [
    `Estimate for ${t.jobs} pending job${
      t.jobs === 1 ? "" : "s"
    } (tokens counted with the cl100k tokenizer; nothing is sent)`,
    "",
    ...(r.rows.length
      ? renderTable(["target", "jobs", "tokens", "largest input", `cut at ${r.maxTokensPerInput}`], rows)
      : ["  no pending jobs"]),
    "",
  ];
  if (t.empty > 0) {
    out.push(`${t.empty} job(s) have empty content: they are skipped, nothing is sent for them.`);
  }
  const p = r.provider;
  if (p.provider === "local") {
    out.push(`Cost with the configured provider (local, offline): $0.00`);
    if (r.reference) {
      out.push(
        `With OpenAI ${r.reference.model} at $${r.reference.usdPerMillionTokens} per 1M tokens it would be ${
          fmtUsd((t.tokens * r.reference.usdPerMillionTokens) / 1e6)
        }.`,
      );
    }
  } else {
    out.push(`Cost with ${p.model} at $${p.usdPerMillionTokens} per 1M tokens: ${fmtUsd(t.cost_usd)}`);
    if (t.batch_cost_usd !== undefined) {
      out.push(
        `Through the Batch API at $${r.batchUsdPerMillionTokens} per 1M tokens: ${fmtUsd(t.batch_cost_usd)} ` +
          `(bulk work: backfills, requeues and re-embeds of settings.batch_min_jobs jobs or more; done within 24 h)`,
      );
    }
  }
  return out.join("\n");
}

// --- search ------------------------------------------------------------------------------------

export function searchText(table: string, rows: SearchRow[], model: string): string {
  if (rows.length === 0) return `No rows of ${table} have an embedding yet: run \`status\` to see the queue.`;
  const body = renderTable(
    ["#", "similarity", "record id", "content"],
    rows.map((r, i) => [i + 1, r.similarity.toFixed(4), r.record_id, oneLine(r.content, 60)]),
  );
  return [
    `Top ${rows.length} of ${printable(table)} by cosine similarity to the text (model ${model}):`,
    ...body,
  ].join(
    "\n",
  );
}

/** search --as: what one user would get from the search function. */
export function searchAsText(table: string, userId: string, rows: SearchAsRow[], model: string): string {
  if (rows.length === 0) {
    return `Nothing of ${table} for user ${userId}: no row of theirs matches (their own, live, embedded with ${model}).`;
  }
  const body = renderTable(
    ["#", "score", "similarity", "record id", "content"],
    rows.map((
      r,
      i,
    ) => [i + 1, r.score.toFixed(4), r.similarity.toFixed(4), r.record_id, oneLine(r.content ?? "", 60)]),
  );
  return [
    `What user ${userId} gets from the search function: top ${rows.length} of ${table} (hybrid: full text and cosine similarity fused by reciprocal rank; model ${model}; RLS applied):`,
    ...body,
  ].join("\n");
}
