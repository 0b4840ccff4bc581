/**
 * The function's pgvector text encoder as it was before the fast path (commit 96802ea), kept
 * here as the reference the new one is checked against (bench/verify_pgvector.ts) and timed
 * against (bench/cpu.ts). Not used by the function.
 */

/** The shortest decimal that reads back as the same float32 (at most 9 significant digits). */
export function referenceFloat32Text(x: number): string {
  const v = Math.fround(x);
  if (!Number.isFinite(v)) throw new RangeError(`vector holds a non-finite value (${v})`);
  if (v === 0) return "0";
  let s = v.toPrecision(8);
  if (Math.fround(+s) !== v) return String(+v.toPrecision(9));
  for (let p = 7; p > 0; p--) {
    const t = v.toPrecision(p);
    if (Math.fround(+t) !== v) break;
    s = t;
  }
  return s;
}

export function referenceToPgvector(v: Float32Array | number[]): string {
  const parts = new Array<string>(v.length);
  for (let i = 0; i < v.length; i++) parts[i] = referenceFloat32Text(v[i]);
  return `[${parts.join(",")}]`;
}
