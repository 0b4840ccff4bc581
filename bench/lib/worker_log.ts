/**
 * What the local host's gateway log says about the function's workers over a stretch of a bench:
 * CPU and peak memory per worker as the host measures them (local/gateway.ts: the main thread's
 * CPU from /proc, V8 heap + external memory), workers killed at a limit or retired, and what the
 * runs logged (run.finish, run.skipped). Figures that do not depend on how busy the machine is.
 */
import { join } from "node:path";

export interface WorkerFigures {
  /** Workers that ended in the stretch. */
  workers: number;
  /** Killed at a limit, by limit (cpu, memory, wall_clock). */
  killed: Record<string, number>;
  /** Retired by the host, by reason (cpu_soft_limit, wall_clock_half). */
  retired: Record<string, number>;
  /** CPU of the workers that ended, ms, as the host charged them (sum, max, each). */
  cpu_ms_total: number;
  cpu_ms_max: number;
  cpu_ms_each: number[];
  /** Peak memory of a worker, MB (heap + external, the host's samples). */
  peak_memory_mb_max: number;
  peak_memory_mb_each: number[];
  /** Background runs that worked, and calls a busy worker turned away. */
  runs: number;
  runs_stopped: Record<string, number>;
  runs_skipped: number;
  /** The highest worker_memory_mb a run reported at its end. */
  run_memory_mb_max: number;
}

/** The size of the gateway log now: pass it to figuresSince to read what comes after. */
export function logSize(stateDir: string): number {
  try {
    return Deno.statSync(join(stateDir, "logs/gateway.log")).size;
  } catch {
    return 0;
  }
}

/** The figures of the gateway log's lines from byte `from` on. */
export function figuresSince(stateDir: string, from: number): WorkerFigures {
  const bytes = Deno.readFileSync(join(stateDir, "logs/gateway.log"));
  const text = new TextDecoder().decode(bytes.subarray(from));
  const f: WorkerFigures = {
    workers: 0,
    killed: {},
    retired: {},
    cpu_ms_total: 0,
    cpu_ms_max: 0,
    cpu_ms_each: [],
    peak_memory_mb_max: 0,
    peak_memory_mb_each: [],
    runs: 0,
    runs_stopped: {},
    runs_skipped: 0,
    run_memory_mb_max: 0,
  };
  const mb = (b: number) => Math.round(b / 2 ** 20);
  for (const line of text.split("\n")) {
    const i = line.indexOf("{");
    if (i < 0) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line.slice(i));
    } catch {
      continue;
    }
    switch (e.event) {
      case "gateway.worker_limit":
        f.killed[String(e.limit)] = (f.killed[String(e.limit)] ?? 0) + 1;
        break;
      case "gateway.worker_retired":
        f.retired[String(e.reason)] = (f.retired[String(e.reason)] ?? 0) + 1;
        break;
      case "gateway.function_exited": {
        f.workers++;
        const cpu = Number(e.cpu_ms ?? 0);
        f.cpu_ms_total += cpu;
        f.cpu_ms_max = Math.max(f.cpu_ms_max, cpu);
        f.cpu_ms_each.push(cpu);
        const peak = mb(Number(e.peak_mem_bytes ?? e.mem_bytes ?? 0));
        f.peak_memory_mb_max = Math.max(f.peak_memory_mb_max, peak);
        f.peak_memory_mb_each.push(peak);
        break;
      }
      case "run.finish":
        if (e.run_id === null || e.run_id === undefined) break;
        f.runs++;
        f.runs_stopped[String(e.stopped)] = (f.runs_stopped[String(e.stopped)] ?? 0) + 1;
        f.run_memory_mb_max = Math.max(f.run_memory_mb_max, Number(e.worker_memory_mb ?? 0));
        break;
      case "run.skipped":
        f.runs_skipped++;
        break;
    }
  }
  return f;
}
