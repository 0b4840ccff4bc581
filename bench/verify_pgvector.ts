/**
 * Checks the function's pgvector text encoder (vectors.ts toPgvector) against the reference
 * (bench/lib/pgvector_reference.ts, the encoder before the fast path): the same string for
 * every float32 checked, hence the same round-trip and shortest-digits properties the unit
 * tests assert. Optionally also reads every string back with the C library's strtof (what
 * pgvector's vector_in uses) through Deno's FFI.
 *
 *   deno run -A bench/verify_pgvector.ts                      # sample: 20M values, ~1 min
 *   deno run -A bench/verify_pgvector.ts --exhaustive         # every float32 with 2^-20 <= |v| < 2 (~189M bit patterns)
 *   deno run -A bench/verify_pgvector.ts --exhaustive --from -40 --to 70   # binary exponents [from, to)
 *   deno run -A bench/verify_pgvector.ts --strtof             # also check read-back with libc strtof
 *
 * Exits 1 on the first difference, printing the value's bits.
 */
import { toPgvector } from "../supabase/functions/_shared/vectors.ts";
import { referenceFloat32Text } from "./lib/pgvector_reference.ts";
import { prng } from "./lib/texts.ts";
import { fakeVector } from "../tests/fakes/fake_vector.ts";

const args = Deno.args;
const flag = (n: string) => args.includes(n);
const num = (n: string, d: number) => {
  const i = args.indexOf(n);
  return i >= 0 ? Number(args[i + 1]) : d;
};

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The new encoder, one value at a time (toPgvector of a one-element vector, brackets cut). */
function fast(x: number): string {
  const s = toPgvector([x]);
  return s.slice(1, -1);
}

let strtof: ((s: string) => number) | null = null;
if (flag("--strtof")) {
  const lib = Deno.dlopen("libc.so.6", { strtof: { parameters: ["buffer", "pointer"], result: "f32" } });
  const enc = new TextEncoder();
  const buf = new Uint8Array(64);
  strtof = (s: string) => {
    const n = enc.encodeInto(s, buf).written!;
    buf[n] = 0;
    return lib.symbols.strtof(buf, null);
  };
}

let checked = 0;
let viaStrtof = 0;
function check(x: number) {
  const v = Math.fround(x);
  if (!Number.isFinite(v)) return;
  const got = fast(v);
  const want = referenceFloat32Text(v);
  if (got !== want) {
    f32[0] = v;
    console.error(`DIFFERENT for bits 0x${u32[0].toString(16)} (${v}): new "${got}", reference "${want}"`);
    Deno.exit(1);
  }
  if (strtof) {
    const back = strtof(got);
    if (back !== v && !(v === 0 && back === 0)) {
      f32[0] = v;
      console.error(`strtof("${got}") = ${back}, not ${v} (bits 0x${u32[0].toString(16)})`);
      Deno.exit(1);
    }
    viaStrtof++;
  }
  checked++;
}

const started = performance.now();
if (flag("--exhaustive")) {
  // Every positive float32 whose binary exponent is in [from, to); negatives are the same
  // digits with a sign (checked on a sample below).
  const from = num("--from", -20), to = num("--to", 1);
  for (let exp = from; exp < to; exp++) {
    const biased = exp + 127;
    if (biased < 0 || biased > 254) continue;
    for (let m = 0; m < 1 << 23; m++) {
      u32[0] = (biased << 23) | m;
      check(f32[0]);
    }
    console.error(
      `exponent ${exp}: ok (${checked} values, ${((performance.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
}
// Random bit patterns over the whole range, signed.
const r = prng(num("--seed", 1));
const sample = num("--sample", flag("--exhaustive") ? 2_000_000 : 10_000_000);
for (let i = 0; i < sample; i++) {
  u32[0] = Math.floor(r() * 4294967296) >>> 0;
  check(f32[0]);
}
// Values shaped like embeddings (what the function actually encodes), signed.
for (let i = 0; i < sample / 1536; i++) {
  for (const x of fakeVector(`verify ${i}`, 1536)) check(x);
}
// Edges: powers of ten and two and their neighbours, the extremes, subnormals.
for (let e = -45; e <= 38; e++) {
  for (const base of [Number(`1e${e}`), 2 ** Math.max(-149, Math.min(127, e * 3))]) {
    f32[0] = base;
    const b = u32[0];
    for (let d = -3; d <= 3; d++) {
      u32[0] = (b + d) >>> 0;
      check(f32[0]);
      check(-f32[0]);
    }
  }
}
for (
  const x of [
    1,
    -1,
    0.5,
    3.4028234663852886e38,
    1.1754943508222875e-38,
    1.401298464324817e-45,
    0.1,
    123456.789,
  ]
) {
  check(x);
  check(-x);
}
console.log(
  `${checked} float32 values: the new encoder gives the reference's string for every one` +
    (strtof ? `; libc strtof reads each back as the same float32 (${viaStrtof})` : "") +
    ` (${((performance.now() - started) / 1000).toFixed(1)} s)`,
);
