/**
 * The worker's own resources, as the edge runtime counts them, so that a run stops claiming before
 * the runtime stops it. The runtime (supabase/edge-runtime, its worker supervisor) charges CPU to
 * the worker, accumulated over every request it serves: at the soft limit (1 s) the worker is
 * retired (new requests go to a fresh worker; what runs may finish), at the hard limit (2 s) it is
 * killed and what runs is lost. It kills at 256 MB of heap plus external memory, too.
 *
 * The runtime gives a function no CPU clock (`process.cpuUsage` is not implemented there), so CPU
 * is estimated: the run times its own synchronous work (tokenizing and packing a batch, turning a
 * response's vectors into pgvector text), which is most of what it costs, and multiplies it by
 * OVERHEAD for what it cannot time (the SDK's parsing, postgres.js, garbage collection). Timed
 * with the wall clock, so on a machine whose cores are shared it errs on the safe side. (A timer
 * lateness meter was tried: it counted 3 % of idle time as busy and half of fine-grained work.)
 *
 * The estimate starts at BASE_MS (the first requests' one-time costs: lazy initialisation, the
 * JIT) and each run adds PER_RUN_MS for its fixed work. Claims are sized so that the estimate, with what is already in flight, stays under
 * HARD_SHARE of the hard limit (the worker's cost per job is learned as it goes), and a run stops
 * claiming there; past the soft limit the runtime has retired the worker, so the run's hand-over
 * reaches a fresh one. A run that starts in a worker already over budget (the estimate errs high,
 * and the runtime has not retired it) still takes MIN_CLAIM jobs, so that work goes on until it is
 * retired. Memory: a run stops claiming at MEMORY_STOP_SHARE of the limit. The heap it reads
 * still holds garbage the next collection frees, so stopping at half (where the runtime drops an
 * idle worker) starved runs that began right after a big one; the runtime kills only at the whole.
 *
 * The runtime routes no request to a worker it has retired, so a request that arrives proves the
 * worker is under the soft limit: an estimate above it is brought down (requestArrived). Without
 * that, an estimate inflated by a busy machine left a worker that the runtime kept serving
 * refusing all work until its wall clock retired it.
 *
 * Calibrated with bench/cpu_budget.ts (one run on a warm worker, local host): for 3,000 rows the
 * timed work was 0.75 to 1.25 of the CPU /proc charged the worker's thread (0.8 for 300 rows,
 * where fixed costs weigh more), so with 1.5 the estimate was 1.1 to 1.9 times the charge. Against
 * a rate-limited provider (429s, retries, runs waiting in the worker) 1.5 fell short by a fifth and
 * workers were killed at the hard limit, so OVERHEAD is 2.
 */

/** Share of the memory limit at which a run stops claiming. */
export const MEMORY_STOP_SHARE = 0.7;
/** Worker CPU per millisecond of timed work (calibrated against the local host's /proc count). */
export const OVERHEAD = 2;
/** Share of the hard CPU limit the estimate, with the work in flight, is kept under. */
export const HARD_SHARE = 0.75;
/** Share of the hard CPU limit past which a run sends nothing more: what it holds goes back. */
export const YIELD_SHARE = 0.9;
/** Where a request's arrival puts an estimate that was above the soft limit (requestArrived). */
export const ALIVE_SHARE = 0.95;
/** Estimated CPU of a worker before its first timed work. */
export const BASE_MS = 250;
/** Estimated CPU of a run's fixed work (its record, claims, counts, connections), untimed. */
export const PER_RUN_MS = 25;
/** Estimated worker CPU per job until enough jobs were done to learn it. */
export const DEFAULT_JOB_MS = 0.5;
/** Jobs done before the cost per job is learned from them. */
const LEARN_AFTER = 200;
/** Jobs a run may claim in a worker already over budget. */
export const MIN_CLAIM = 100;

export interface WorkerLimits {
  cpuSoftMs: number;
  cpuHardMs: number;
  memoryBytes: number;
}

export type Exhausted = "cpu" | "memory" | null;

export interface Budget {
  /** Why no more work should be claimed in this worker, or null while there is room. */
  exhausted(): Exhausted;
  /** Runs `f` and counts its time as the worker's work. */
  timed<T>(f: () => T): T;
  /** Counts `ms` of estimated CPU that cannot be timed (a run's fixed work: PER_RUN_MS). */
  charge(ms: number): void;
  /**
   * How many of `want` jobs a claim may take now (0: none); the answer is reserved until
   * settle(). `first`: the run has claimed nothing yet (it gets MIN_CLAIM even when over).
   */
  allow(want: number, first: boolean): number;
  /** A reservation ends: `reserved` as allow() gave it, `done` of them worked on. */
  settle(reserved: number, done: number): void;
  /**
   * True past YIELD_SHARE of the hard limit: the worker must send nothing more (its batches in
   * flight cost more than allow() reserved, as they do against a provider that refuses and
   * retries); unsent work is released for a fresh worker.
   */
  mustYield(): boolean;
  /**
   * A request reached this worker, so the runtime has not retired it: its CPU is under the soft
   * limit. An estimate above that was too high (the wall clock also counts waiting for a core
   * on a busy machine): it is brought down to just under the soft limit.
   */
  requestArrived(): void;
  /** Estimated CPU used so far and heap + external memory now, for the run's record and logs. */
  usage(): { cpuMs: number; memoryBytes: number };
}

/** Heap plus external memory, as the runtime's memory check adds them; 0 where not reported. */
export function heapAndExternal(): number {
  const m = (Deno as { memoryUsage?: () => { heapUsed: number; external: number } }).memoryUsage?.();
  return m ? m.heapUsed + m.external : 0;
}

export function createBudget(
  limits: WorkerLimits,
  opts: { now?: () => number; memoryBytes?: () => number; overhead?: number } = {},
): Budget {
  const now = opts.now ?? (() => performance.now());
  const memory = opts.memoryBytes ?? heapAndExternal;
  const overhead = opts.overhead ?? OVERHEAD;
  let worked = 0;
  let charged = 0;
  let corrected = 0;
  let reserved = 0;
  let jobsDone = 0;
  const cpuMs = () => BASE_MS + charged + worked * overhead - corrected;
  const perJob =
    () => (jobsDone >= LEARN_AFTER ? Math.max((cpuMs() - BASE_MS) / jobsDone, 0.01) : DEFAULT_JOB_MS);
  const exhausted = (): Exhausted => {
    if (cpuMs() >= limits.cpuHardMs * HARD_SHARE) return "cpu";
    if (memory() >= limits.memoryBytes * MEMORY_STOP_SHARE) return "memory";
    return null;
  };
  return {
    exhausted,
    timed<T>(f: () => T): T {
      const t0 = now();
      try {
        return f();
      } finally {
        worked += now() - t0;
      }
    },
    charge(ms) {
      charged += ms;
    },
    mustYield: () => cpuMs() >= limits.cpuHardMs * YIELD_SHARE,
    requestArrived() {
      const ceiling = limits.cpuSoftMs * ALIVE_SHARE;
      if (cpuMs() > ceiling) corrected += cpuMs() - ceiling;
    },
    allow(want, first) {
      const room = limits.cpuHardMs * HARD_SHARE - cpuMs() - reserved * perJob();
      let n = exhausted() ? 0 : Math.min(want, Math.max(0, Math.floor(room / perJob())));
      if (n === 0 && first) n = Math.min(want, MIN_CLAIM);
      reserved += n;
      return n;
    },
    settle(r, done) {
      reserved = Math.max(0, reserved - r);
      jobsDone += done;
    },
    usage: () => ({ cpuMs: Math.round(cpuMs()), memoryBytes: memory() }),
  };
}

/** No limits: for callers that run outside a worker (the CLI, benchmarks, tests). */
export const UNLIMITED: Budget = {
  exhausted: () => null,
  timed: (f) => f(),
  charge: () => {},
  mustYield: () => false,
  requestArrived: () => {},
  allow: (want) => want,
  settle: () => {},
  usage: () => ({ cpuMs: 0, memoryBytes: 0 }),
};
