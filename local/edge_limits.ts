/**
 * The edge runtime's per-worker limits and the gateway's answers, in one place (local only).
 * Sources: supabase/edge-runtime tag v1.74.0 (commit b1edf453b6ab) and the Supabase CLI's
 * `functions serve` main worker (supabase/cli internal/functions/serve/templates/main.ts);
 * local/gateway.ts's header says which rule comes from where.
 */

export interface EdgeLimits {
  /** CPU time after which the worker is retired (accumulated over the requests it serves). */
  cpuSoftMs: number;
  /** CPU time at which the worker is terminated; 0 and 0 turn the CPU limit off. */
  cpuHardMs: number;
  /** V8 used heap + external memory at which the worker is terminated. */
  memoryMb: number;
  /** Worker lifetime: retired at half, terminated at the whole; 0 turns it off. */
  wallClockMs: number;
  /** How often the gateway samples each worker. */
  pollMs: number;
}

/** Hosted defaults (the CLI's main.ts: memoryLimitMb 256, cpuTimeSoftLimitMs 1000, cpuTimeHardLimitMs 2000; wall clock 150 s on the free plan, 400 s paid). */
export const HOSTED_LIMITS: EdgeLimits = {
  cpuSoftMs: 1000,
  cpuHardMs: 2000,
  memoryMb: 256,
  wallClockMs: 150_000,
  pollMs: 50,
};

export type LimitKind = "cpu" | "memory" | "wall_clock";

export interface Measured {
  cpuMs: number;
  memBytes: number;
  wallMs: number;
}

export interface WorkerMarks {
  cpuSoftReached: boolean;
  wallClockRetired: boolean;
}

export type Verdict =
  | { action: "terminate"; limit: LimitKind; measured: number; limitValue: number }
  | { action: "retire"; reason: "cpu" | "wall_clock"; measured: number; limitValue: number }
  | { action: "drop_when_idle"; reason: "memory"; measured: number; limitValue: number }
  | { action: "none" };

/**
 * What the supervisor does with one sample (strategy_per_worker.rs): past the hard CPU limit,
 * the memory limit or the whole wall clock it terminates; at the soft CPU limit or half the wall
 * clock it retires (no new requests; dropped once idle); past half the memory limit it drops the
 * worker once idle (has_resource_alert / mem_reached_half).
 */
export function judge(l: EdgeLimits, m: Measured, marks: WorkerMarks): Verdict {
  const memLimit = l.memoryMb * 1024 * 1024;
  const cpuOn = !(l.cpuSoftMs === 0 && l.cpuHardMs === 0);
  if (l.wallClockMs > 0 && m.wallMs >= l.wallClockMs) {
    return { action: "terminate", limit: "wall_clock", measured: m.wallMs, limitValue: l.wallClockMs };
  }
  if (cpuOn && m.cpuMs >= l.cpuHardMs) {
    return { action: "terminate", limit: "cpu", measured: m.cpuMs, limitValue: l.cpuHardMs };
  }
  if (m.memBytes >= memLimit) {
    return { action: "terminate", limit: "memory", measured: m.memBytes, limitValue: memLimit };
  }
  if (cpuOn && !marks.cpuSoftReached && m.cpuMs >= l.cpuSoftMs) {
    return { action: "retire", reason: "cpu", measured: m.cpuMs, limitValue: l.cpuSoftMs };
  }
  if (l.wallClockMs > 0 && !marks.wallClockRetired && m.wallMs >= l.wallClockMs / 2) {
    return { action: "retire", reason: "wall_clock", measured: m.wallMs, limitValue: l.wallClockMs };
  }
  if (m.memBytes >= memLimit / 2) {
    return { action: "drop_when_idle", reason: "memory", measured: m.memBytes, limitValue: memLimit };
  }
  return { action: "none" };
}

/** Clock ticks per second of /proc's utime/stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/**
 * CPU time (ms) of a process's main thread, where Deno runs JavaScript: the runtime measures
 * the worker thread's CPU clock (crates/cpu_timer, CLOCK_THREAD_CPUTIME_ID). Null once gone.
 */
export function mainThreadCpuMs(pid: number): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
  } catch {
    return null;
  }
  // Fields after the command name in parentheses (which may hold spaces): state is field 3,
  // utime 14 and stime 15.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1000) / USER_HZ;
}

/** The main worker's answers when a user worker fails (the CLI's templates/main.ts). */
export const WORKER_FAILURE = {
  BOOT_ERROR: { status: 503, message: "Worker failed to boot (please check logs)" },
  WORKER_ERROR: { status: 500, message: "Function exited due to an error (please check logs)" },
  WORKER_LIMIT: {
    status: 546,
    message: "Worker failed to respond due to a resource limit (please check logs)",
  },
} as const;

export type WorkerFailure = keyof typeof WORKER_FAILURE;

export function failureResponse(code: WorkerFailure): Response {
  const f = WORKER_FAILURE[code];
  return new Response(JSON.stringify({ code, message: f.message }), {
    status: f.status,
    headers: { "content-type": "application/json" },
  });
}
