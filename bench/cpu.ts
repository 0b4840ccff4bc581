/**
 * CPU per 1,000 rows inside the function, stage by stage, with the runtime's own accounting
 * (process.cpuUsage(): user + system time of this process). The stages are the function's own
 * code, called as the run calls it, on the benchmark's text mix:
 *
 *   tokenize   truncateToTokens(content, 8191) per job (worker.ts)
 *   pack       packRequests over the batch (batching.ts)
 *   decode     JSON.parse of the provider's answer + decodeBase64Float32 per vector (provider.ts)
 *   encode     toPgvector per vector (vectors.ts), and the previous encoder for comparison
 *
 * The answer bodies are made beforehand exactly as the fake server makes them (base64 of
 * fakeVector), so only the function's side is timed. Each stage runs `reps` times after a
 * warm-up; the median is reported.
 *
 *   deno run -A bench/cpu.ts [--rows 1000] [--reps 7]
 */
import process from "node:process";
import { truncateToTokens } from "../supabase/functions/_shared/tokens.ts";
import { packRequests } from "../supabase/functions/embed-queue/batching.ts";
import {
  decodeBase64Float32,
  encodeBase64Float32,
  toPgvector,
} from "../supabase/functions/_shared/vectors.ts";
import { fakeVector } from "../tests/fakes/fake_vector.ts";
import { referenceToPgvector } from "./lib/pgvector_reference.ts";
import { rows as makeRows } from "./lib/texts.ts";
import * as h from "./lib/harness.ts";
import { median } from "./lib/harness.ts";
import { loadConfig } from "../supabase/functions/_shared/config.ts";
import { createDb } from "../supabase/functions/embed-queue/db.ts";
import { createProvider } from "../supabase/functions/_shared/provider.ts";
import { runQueue } from "../supabase/functions/embed-queue/worker.ts";
import { portOffset } from "../tests/lib/env.ts";

export interface CpuResult {
  rows: number;
  reps: number;
  /** Median CPU milliseconds per 1,000 rows, by stage. */
  ms_per_1000: {
    tokenize: number;
    pack: number;
    decode: number;
    encode: number;
    encode_previous: number;
  };
  /** tokenize + pack + decode + encode. */
  total_ms_per_1000: number;
  total_with_previous_encoder_ms_per_1000: number;
}

function cpuMs(f: () => void): number {
  const before = process.cpuUsage();
  f();
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
}

export function runCpu(opts: { rows?: number; reps?: number; seed?: number } = {}): CpuResult {
  const n = opts.rows ?? 1000;
  const reps = opts.reps ?? 7;
  const rows = makeRows(n, { seed: opts.seed ?? 777 });
  // The provider's answers, made as the fake server makes them: one body per 500 inputs.
  const bodies: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const data = rows.slice(i, i + 500).map((r, index) => ({
      object: "embedding",
      index,
      embedding: encodeBase64Float32(fakeVector(r.text, 1536)),
    }));
    bodies.push(JSON.stringify({ object: "list", data, model: "text-embedding-3-small", usage: {} }));
  }
  const vectors = rows.map((r) => fakeVector(r.text, 1536));
  const items = rows.map((r, id) => ({ id, text: r.text, tokens: 0 }));

  const stages: Record<keyof CpuResult["ms_per_1000"], () => void> = {
    tokenize: () => {
      for (const it of items) it.tokens = truncateToTokens(it.text, 8191).tokens;
    },
    pack: () => {
      packRequests(items, { maxInputs: 2048, maxTokens: 300_000 });
    },
    decode: () => {
      for (const b of bodies) {
        for (const d of JSON.parse(b).data) decodeBase64Float32(d.embedding);
      }
    },
    encode: () => {
      for (const v of vectors) toPgvector(v);
    },
    encode_previous: () => {
      for (const v of vectors) referenceToPgvector(v);
    },
  };
  const out = {} as CpuResult["ms_per_1000"];
  for (const [name, f] of Object.entries(stages) as Array<[keyof CpuResult["ms_per_1000"], () => void]>) {
    f(); // warm-up (JIT, the tokenizer's lazy tables)
    const samples = Array.from({ length: reps }, () => cpuMs(f));
    out[name] = Math.round((median(samples) * 1000 / n) * 10) / 10;
  }
  const total = out.tokenize + out.pack + out.decode + out.encode;
  return {
    rows: n,
    reps,
    ms_per_1000: out,
    total_ms_per_1000: Math.round(total * 10) / 10,
    total_with_previous_encoder_ms_per_1000: Math.round((total - out.encode + out.encode_previous) * 10) / 10,
  };
}

export interface WholeRunResult {
  rows: number;
  knobs: Record<string, string>;
  seconds: number;
  jobs_per_s: number;
  /** process.cpuUsage() of this process across runQueue, per 1,000 jobs. */
  cpu_ms_per_1000: number;
  completed: number;
  /** Wall milliseconds inside each database call and provider request, summed over lanes. */
  wall_ms_in: Record<string, number>;
  /** CPU seconds of the other processes in the same window (see harness cpuSince). */
  other_cpu_s: Record<string, number>;
}

/** Wraps every method of `o` to add its wall time (ms) to `acc[prefix.method]`. */
function timed<T extends object>(o: T, prefix: string, acc: Record<string, number>): T {
  return new Proxy(o, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return async (...args: unknown[]) => {
        const t = performance.now();
        try {
          return await v.apply(target, args);
        } finally {
          const k = `${prefix}.${String(prop)}`;
          acc[k] = (acc[k] ?? 0) + Math.round(performance.now() - t);
        }
      };
    },
  });
}

/**
 * The whole run in this process: the function's own config, database client, provider and
 * runQueue, against the bench stack and its (instant) fake server, N rows inserted first with
 * the gateway stopped. process.cpuUsage() across runQueue counts everything the function does:
 * claim and its result, tokenizing, packing, the SDK's request and JSON, base64, the pgvector
 * text, postgres.js building the complete() call, bookkeeping.
 */
export async function wholeRunInProcess(b: h.Bench, n: number, seed = 7000): Promise<WholeRunResult> {
  await h.stopProcessing(b);
  await h.clean(b);
  await h.insertRows(b, makeRows(n, { seed }));
  await h.fakeScript(b, {});
  const config = loadConfig({
    OPENAI_API_KEY: b.fake.apiKey,
    OPENAI_BASE_URL: b.fake.baseUrl,
    SUPABASE_DB_URL: b.info.dbUrl,
    ...b.knobs,
  });
  const db = createDb(config.dbUrl!);
  try {
    const provider = createProvider(config);
    // Warm-up: one small run (module JIT, the tokenizer's tables, connections).
    await runQueue({ db, provider, config, log: () => {} }, {
      trigger: "manual",
      batchSize: 50,
      timeBudgetMs: 60_000,
      dryRun: false,
      maxJobs: 50,
    });
    const wall: Record<string, number> = {};
    const others = h.cpuSnapshot(h.benchProcesses(b));
    const before = process.cpuUsage();
    const t0 = performance.now();
    const s = await runQueue({
      db: timed(db, "db", wall),
      provider: timed(provider, "provider", wall),
      config,
      log: () => {},
    }, {
      trigger: "manual",
      batchSize: config.batchSize,
      timeBudgetMs: 400_000,
      dryRun: false,
    });
    const seconds = (performance.now() - t0) / 1000;
    const d = process.cpuUsage(before);
    const other = h.cpuSince(b, others);
    delete other.function;
    const done = s.completed + 50;
    return {
      rows: n,
      knobs: b.knobs,
      wall_ms_in: wall,
      other_cpu_s: other,
      seconds: Math.round(seconds * 10) / 10,
      jobs_per_s: Math.round(s.completed / seconds),
      cpu_ms_per_1000: Math.round(((d.user + d.system) / 1000) * 1000 / s.completed),
      completed: done,
    };
  } finally {
    await db.close();
    await h.startProcessing(b);
  }
}

if (import.meta.main) {
  const a = Deno.args;
  const num = (name: string, d: number) => {
    const i = a.indexOf(name);
    return i >= 0 ? Number(a[i + 1]) : d;
  };
  if (a.includes("--whole-run")) {
    // deno run -A [--cpu-prof] bench/cpu.ts --whole-run [--rows 10000]: a stack of its own.
    const b = await h.startBench({ name: "bench", dbPort: 27522 + portOffset, apiPort: 27521 + portOffset });
    try {
      console.log(JSON.stringify(await wholeRunInProcess(b, num("--rows", 10_000)), null, 2));
    } finally {
      await b.close();
    }
  } else {
    console.log(JSON.stringify(runCpu({ rows: num("--rows", 1000), reps: num("--reps", 7) }), null, 2));
  }
}
