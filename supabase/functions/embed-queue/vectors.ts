/**
 * Vector encodings: the provider's base64 (float32, little-endian) and pgvector's text form.
 * Written here rather than taken from a library: each is a few lines over DataView.
 */

/** Decodes base64 of little-endian float32 values, as OpenAI returns with `encoding_format: "base64"`. */
export function decodeBase64Float32(b64: string): Float32Array {
  const bin = atob(b64);
  if (bin.length % 4 !== 0) {
    throw new RangeError(`base64 embedding has ${bin.length} bytes, not a multiple of 4`);
  }
  const view = new DataView(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) view.setUint8(i, bin.charCodeAt(i));
  const out = new Float32Array(bin.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Encodes float32 values as base64 little-endian (the inverse of decodeBase64Float32). */
export function encodeBase64Float32(v: Float32Array | number[]): string {
  const view = new DataView(new ArrayBuffer(v.length * 4));
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i], true);
  const bytes = new Uint8Array(view.buffer);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** The shortest decimal that reads back as the same float32 (at most 9 significant digits). */
function float32Text(x: number): string {
  const v = Math.fround(x);
  if (!Number.isFinite(v)) throw new RangeError(`vector holds a non-finite value (${v})`);
  if (v === 0) return "0";
  return fastFloat32Text(v) ?? slowFloat32Text(v);
}

/**
 * The definition: try 8 significant digits (toPrecision: the p-digit decimal nearest to the
 * value, ties away from zero); if that does not read back as the same float32, 9 digits (which
 * always do); else walk down from 7 while it still reads back. About 0.2 µs a value.
 */
function slowFloat32Text(v: number): string {
  let s = v.toPrecision(8);
  if (Math.fround(+s) !== v) return String(+v.toPrecision(9));
  for (let p = 7; p > 0; p--) {
    const t = v.toPrecision(p);
    if (Math.fround(+t) !== v) break;
    s = t;
  }
  return s;
}

/** 10^0 .. 10^22: every one exact in a double. */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/**
 * The same strings as slowFloat32Text, computed with integer arithmetic in doubles instead of
 * toPrecision and parsing; null (use slowFloat32Text) outside 1e-6 <= |v| < 1e20 and near a
 * rounding tie. Why it is exact there:
 * - |v| * 10^k (|k| <= 22, 10^k exact) is one correctly rounded operation; the result is below
 *   1e9, so its error is below 1.2e-7, and Math.round of it is the p-digit rounding of the
 *   exact value unless the fraction is within 1e-6 of .5 (then: null);
 * - the decade e (10^e <= |v| < 10^(e+1)) is found by comparisons |v| * 10^-e >= 1 that are
 *   exact for e >= -12: a float32 (24-bit significand) times 10^m differs from 1 by at least
 *   2^-24 * 5^-m relative, far more than one rounding of a double (2^-53);
 * - n * 10^q (|q| <= 22, n < 2^53) is one correctly rounded operation, so it is the double
 *   that `+s` parses, and the read-back test is the same Math.fround(...) === v.
 */
function fastFloat32Text(v: number): string | null {
  const a = v < 0 ? -v : v;
  if (!(a >= 1e-6 && a < 1e20)) return null;
  let e = Math.floor(Math.log10(a));
  while (e < 19 && atLeastPow10(a, e + 1)) e++;
  while (!atLeastPow10(a, e)) e--;
  if (e < -6 || e > 19) return null;
  const sign = v < 0 ? "-" : "";

  // p = 8: n8 digits at decade e8 (n8 may round up to the next decade).
  let n = digits(a, 8, e);
  if (n < 0) return null;
  let ne = e;
  if (n === 1e8) n = 1e7, ne = e + 1;
  if (!readsBack(a, n, ne - 7)) {
    let n9 = digits(a, 9, e);
    if (n9 < 0) return null;
    let e9 = e;
    if (n9 === 1e9) n9 = 1e8, e9 = e + 1;
    return sign + numberText(n9, e9);
  }
  // Walk down from 7 digits while the value still reads back.
  let p = 8;
  for (let q = 7; q > 0; q--) {
    let m = digits(a, q, e);
    if (m < 0) return null;
    let me = e;
    if (m === POW10[q]) m = POW10[q - 1], me = e + 1;
    if (!readsBack(a, m, me - q + 1)) break;
    n = m, ne = me, p = q;
  }
  return sign + precisionText(n, p, ne);
}

/** |v| >= 10^e, exactly (see fastFloat32Text). */
function atLeastPow10(a: number, e: number): boolean {
  return e >= 0 ? a >= POW10[e] : a * POW10[-e] >= 1;
}

/** round(a * 10^(p-1-e)), ties up; -1 when the product is too close to a tie to be sure. */
function digits(a: number, p: number, e: number): number {
  const k = p - 1 - e;
  const scaled = k >= 0 ? a * POW10[k] : a / POW10[-k];
  const floor = Math.floor(scaled);
  const frac = scaled - floor;
  if (frac > 0.499999 && frac < 0.500001) return -1;
  return frac >= 0.5 ? floor + 1 : floor;
}

/** Math.fround(n * 10^q) === a, with n * 10^q rounded once, as parsing its text would. */
function readsBack(a: number, n: number, q: number): boolean {
  return Math.fround(q >= 0 ? n * POW10[q] : n / POW10[-q]) === a;
}

/** What Number.prototype.toPrecision(p) prints for n * 10^(e-p+1), 10^(p-1) <= n < 10^p. */
function precisionText(n: number, p: number, e: number): string {
  const ds = String(n);
  if (e < -6 || e >= p) {
    return ds[0] + (p > 1 ? "." + ds.slice(1) : "") + (e >= 0 ? "e+" : "e-") + Math.abs(e);
  }
  if (e >= 0) return e + 1 < p ? ds.slice(0, e + 1) + "." + ds.slice(e + 1) : ds;
  return "0." + "0".repeat(-e - 1) + ds;
}

/** What String(Number) prints for n * 10^(e-8), 10^8 <= n < 10^9, -6 <= e <= 20. */
function numberText(n: number, e: number): string {
  let ds = String(n);
  let end = ds.length;
  while (end > 1 && ds.charCodeAt(end - 1) === 48) end--;
  ds = ds.slice(0, end);
  const point = e + 1; // digits before the decimal point
  if (point >= ds.length) return ds + "0".repeat(point - ds.length);
  if (point > 0) return ds.slice(0, point) + "." + ds.slice(point);
  return "0." + "0".repeat(-point) + ds;
}

/** pgvector's text form `[0.1,-0.2,...]`; throws RangeError on NaN or Infinity. */
export function toPgvector(v: Float32Array | number[]): string {
  const parts = new Array<string>(v.length);
  for (let i = 0; i < v.length; i++) parts[i] = float32Text(v[i]);
  return `[${parts.join(",")}]`;
}
