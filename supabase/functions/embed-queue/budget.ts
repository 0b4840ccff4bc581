/**
 * The worker's own resources, as the edge runtime counts them, so that a run stops claiming before
 * the runtime stops it. The runtime (supabase/edge-runtime, its worker supervisor) charges CPU to
 * the worker, accumulated over every request it serves: at the soft limit (1 s) the worker is
 * retired (new requests go to a fresh worker; what runs may finish), at the hard limit (2 s) it is
 * killed and what runs is lost. It kills at 256 MB of heap plus external memory, too.
 *
 * The runtime gives a function no CPU clock (`process.cpuUsage` is not implemented there), so CPU
 * is estimated: the run times its own synchronous work (tokenizing and packing a batch, decoding
 * a response's vectors, turning them into pgvector text), which is most of what it costs,
 * multiplies it by OVERHEAD for what it cannot time (the SDK's parsing, postgres.js, garbage
 * collection) and adds PER_REQUEST_MS for each provider request, PER_RUN_MS for each run and
 * IDLE_MS_PER_S for each second of the worker's life.
 * Timed with the wall clock, so on a machine whose cores are shared it errs high; measured
 * against a rate-limited provider (429s, small requests, runs waiting), it also erred low, by
 * up to a fifth. An estimate of the worker's whole life is not safe either way: too high, a
 * worker the runtime keeps serving refuses work; too low, it is killed.
 *
 * So the estimate only ever has to be right about a short stretch. The runtime routes no request
 * to a worker it has retired (supabase/edge-runtime v1.74.0, commit b1edf453:
 * crates/base/src/worker/pool.rs maybe_active_worker skips a worker whose is_retired is raised;
 * strategy_per_worker.rs raises it at the soft CPU limit and at half the wall clock), so
 * a request that reaches this worker proves that its CPU was under the soft limit then
 * (requestArrived). From such a proof on, the worker sends requests worth at most PROOF_SHARE of
 * the margin between the soft and the hard limit (estimated: what it did since the proof, plus
 * the requests in flight at the learned cost per job): if it was retired a moment after the
 * proof, it still ends under the hard limit unless the estimate errs low by more than
 * 1 / PROOF_SHARE = 2 times. When that room is used up the run asks for a new proof
 * (handler.ts: a call to itself through the gateway, answered with this worker's id): if the
 * answer comes from this worker, the room is renewed; if from another, this one is retired: it
 * calls the next run at once, sends nothing more and gives back what it holds unsent (attempts
 * refunded). Every cron tick or webhook call that lands here is a
 * proof too. Past YIELD_SHARE of the margin since
 * the last proof a run sends nothing more either. Claims are bounded apart from that, by the work
 * held (HOLD_SHARE of the margin), so lanes keep requests ready: a held job costs next to nothing
 * until it is sent, and one given back costs no attempt.
 *
 * Memory: a run stops claiming at MEMORY_STOP_SHARE of the limit. The heap it reads still holds
 * garbage the next collection frees, so stopping at half (where the runtime drops an idle worker)
 * starved runs that began right after a big one; the runtime kills only at the whole.
 *
 * Calibrated with bench/cpu_budget.ts (one run on a warm worker, local host): for 3,000 rows the
 * timed work was 0.75 to 1.25 of the CPU /proc charged the worker's thread (0.8 for 300 rows,
 * where fixed costs weigh more), so OVERHEAD 2 put the estimate at 1.5 to 2.5 times the charge,
 * before the answer's decoding was timed too (it adds to the estimate; not calibrated again).
 */

/** Share of the memory limit at which a run stops claiming. */
export const MEMORY_STOP_SHARE = 0.7;
/**
 * Share of the memory limit past which a request waits for those in flight (one always goes):
 * each carries its vectors three times over (the answer, the floats, pgvector text) until written.
 */
export const MEMORY_SEND_SHARE = 0.5;
/** Worker CPU per millisecond of timed work (calibrated against the local host's /proc count). */
export const OVERHEAD = 2;
/**
 * Share of the margin between the soft and the hard limit that the worker may send (estimated)
 * after a proof that it is under the soft limit.
 */
export const PROOF_SHARE = 0.5;
/** Share of that room one request may take, so that two can be in flight. */
export const REQUEST_SHARE = 0.5;
/** A request may always carry this many jobs (a noisy estimate must not make requests tiny). */
export const MIN_REQUEST_JOBS = 256;
/** Share of the room used since the last proof past which a new proof is asked for ahead of need. */
export const PROOF_AHEAD_SHARE = 0.5;
/**
 * A proof older than this is asked for again whatever the estimate says: a run waiting on the
 * provider's pace spends CPU the estimate does not see (BENCHMARKS.md 1.10: a retired worker went
 * 19 s without a proof and reached 1,870 ms), so a retirement is found within a few seconds.
 */
export const PROOF_MAX_AGE_MS = 5000;
/** Share of the margin the jobs held (claimed, not yet done) may be worth. */
export const HOLD_SHARE = 1;
/** Share of the margin, estimated since the last proof, past which a run sends nothing more. */
export const YIELD_SHARE = 0.8;
/**
 * Estimated CPU a second of a worker's life costs whatever it does (its event loop, timers, the
 * runtime's memory checks): measured on the local host, a worker waiting on the network was
 * charged about 10 ms a second. Without it a run waiting long for the provider's pace went 18 s
 * without a proof while its worker was charged 1 s (BENCHMARKS.md 1.10).
 */
export const IDLE_MS_PER_S = 10;
/** Longest a request that must wait for those in flight sleeps before it looks again. */
export const WAIT_MAX_MS = 1000;
/** Estimated CPU of a worker's first run's one-time costs (lazy initialisation, the JIT). */
export const BASE_MS = 250;
/** Estimated CPU of a run's fixed work (its record, claims, counts, connections), untimed. */
export const PER_RUN_MS = 25;
/** Estimated CPU of one provider request beyond its timed work (pace, write-back, parsing). */
export const PER_REQUEST_MS = 5;
/** Estimated worker CPU per job until enough jobs were done to learn it. */
export const DEFAULT_JOB_MS = 0.5;
/** Jobs done before the cost per job is learned from them. */
const LEARN_AFTER = 200;

export interface WorkerLimits {
  cpuSoftMs: number;
  cpuHardMs: number;
  memoryBytes: number;
}

export type Exhausted = "cpu" | "memory" | null;

/** What admit() says about a request: send it, wait for those in flight, or prove first. */
export type Admission = "send" | "wait" | "prove";

export interface Budget {
  /**
   * Why no more work should be claimed in this worker, or null while there is room: "memory" past
   * MEMORY_STOP_SHARE of the memory limit, "cpu" while the jobs held fill HOLD_SHARE.
   */
  exhausted(): Exhausted;
  /** Runs `f` and counts its time as the worker's work. */
  timed<T>(f: () => T): T;
  /** Counts `ms` of estimated CPU that cannot be timed (PER_RUN_MS, PER_REQUEST_MS). */
  charge(ms: number): void;
  /**
   * How many of `want` jobs a claim may take now (0: none); the answer is reserved until
   * settle().
   */
  allow(want: number): number;
  /** A reservation ends: `reserved` as allow() gave it, `done` of them worked on. */
  settle(reserved: number, done: number): void;
  /**
   * The most jobs one request should carry: REQUEST_SHARE of the room at the learned cost, and
   * MIN_REQUEST_JOBS at least.
   */
  maxJobsPerRequest(): number;
  /**
   * True past PROOF_AHEAD_SHARE of the room since the last proof, or PROOF_MAX_AGE_MS after it:
   * ask for one before it is needed.
   */
  proofDue(): boolean;
  /**
   * May a request of `jobs` jobs be sent now? "send" reserves it until sent(); "wait": those in
   * flight fill the room, or memory is past MEMORY_SEND_SHARE; "prove": the room since the last
   * proof is used up.
   */
  admit(jobs: number): Admission;
  /** A request admitted with `jobs` jobs is done (answered and written back, or failed). */
  sent(jobs: number): void;
  /**
   * Resolves at the next sent() or settle(), or after `maxMs`: what a request told "wait" waits
   * for, instead of polling.
   */
  changed?(maxMs: number): Promise<void>;
  /**
   * True past YIELD_SHARE of the margin since the last proof: the worker must send nothing more
   * (its batches in flight cost more than allow() reserved); unsent work is released for a fresh
   * worker.
   */
  mustYield(): boolean;
  /**
   * A request reached this worker, so the runtime has not retired it: its CPU is under the soft
   * limit, and it may take on PROOF_ROOM again.
   */
  requestArrived(): void;
  /** Estimated CPU used so far and heap + external memory now, for the run's record and logs. */
  usage(): { cpuMs: number; memoryBytes: number };
}

/** Heap plus external memory, as the runtime's memory check adds them; 0 where not reported. */
export function heapAndExternal(): number {
  const m = (Deno as { memoryUsage?: () => { heapUsed: number; external: number } })
    .memoryUsage?.();
  return m ? m.heapUsed + m.external : 0;
}

export function createBudget(
  limits: WorkerLimits,
  opts: { now?: () => number; memoryBytes?: () => number; overhead?: number } = {},
): Budget {
  const now = opts.now ?? (() => performance.now());
  const born = now();
  const memory = opts.memoryBytes ?? heapAndExternal;
  const overhead = opts.overhead ?? OVERHEAD;
  // Where the runtime kills at the soft limit itself (soft = hard), half the hard limit stands in
  // for the margin: there is none after a retirement, so what was sent since a proof must be small.
  const margin = limits.cpuHardMs > limits.cpuSoftMs
    ? limits.cpuHardMs - limits.cpuSoftMs
    : limits.cpuHardMs / 2;
  const room = margin * PROOF_SHARE;
  const hold = margin * HOLD_SHARE;
  let worked = 0;
  let charged = 0;
  let reserved = 0; // jobs claimed, not yet done
  let inFlight = 0; // jobs of requests admitted, not yet done
  let jobsDone = 0;
  // Estimated CPU at the last proof; before the first, BASE_MS is still to come.
  let proofAt = 0;
  let proofWallAt = born;
  let proven = false;
  // The work the worker did, and what its life costs anyway (IDLE_MS_PER_S).
  const active = () => charged + worked * overhead;
  const cpuMs = () => BASE_MS + active() + ((now() - born) / 1000) * IDLE_MS_PER_S;
  const sinceProof = () => cpuMs() - proofAt;
  const perJob = () => (jobsDone >= LEARN_AFTER ? Math.max(active() / jobsDone, 0.01) : DEFAULT_JOB_MS);
  let wake: Array<() => void> = [];
  const notify = () => {
    const w = wake;
    wake = [];
    for (const f of w) f();
  };
  const memoryOver = () => memory() >= limits.memoryBytes * MEMORY_STOP_SHARE;
  return {
    exhausted() {
      if (memoryOver()) return "memory";
      if (reserved * perJob() >= hold) return "cpu";
      return null;
    },
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
    mustYield: () => sinceProof() >= margin * YIELD_SHARE,
    requestArrived() {
      // The first proof leaves BASE_MS counted: the first run's one-time costs come after it.
      proofAt = Math.max(proofAt, proven ? cpuMs() : cpuMs() - BASE_MS);
      proofWallAt = now();
      proven = true;
    },
    allow(want) {
      if (memoryOver()) return 0;
      const n = Math.max(
        0,
        Math.min(want, Math.floor((hold - reserved * perJob()) / perJob())),
      );
      reserved += n;
      return n;
    },
    maxJobsPerRequest: () => Math.max(MIN_REQUEST_JOBS, Math.floor((room * REQUEST_SHARE) / perJob())),
    proofDue: () => sinceProof() >= room * PROOF_AHEAD_SHARE || now() - proofWallAt >= PROOF_MAX_AGE_MS,
    admit(jobs) {
      if (inFlight > 0 && memory() >= limits.memoryBytes * MEMORY_SEND_SHARE) return "wait";
      const each = perJob();
      const fresh = sinceProof() < room * 0.1;
      // Fits; or nothing in flight right after a proof (a request bigger than the room alone).
      if (
        sinceProof() + (inFlight + jobs) * each <= room ||
        (fresh && inFlight === 0)
      ) {
        inFlight += jobs;
        return "send";
      }
      // A proof would make room beside those in flight: ask for it now, not once they are done.
      if (!fresh && (inFlight + jobs) * each <= room) return "prove";
      return inFlight > 0 ? "wait" : "prove";
    },
    sent(jobs) {
      inFlight = Math.max(0, inFlight - jobs);
      notify();
    },
    settle(r, done) {
      reserved = Math.max(0, reserved - r);
      jobsDone += done;
      notify();
    },
    changed(maxMs) {
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, maxMs);
        wake.push(done);
      });
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
  maxJobsPerRequest: () => Infinity,
  proofDue: () => false,
  admit: () => "send",
  sent: () => {},
  allow: (want) => want,
  settle: () => {},
  usage: () => ({ cpuMs: 0, memoryBytes: 0 }),
};
