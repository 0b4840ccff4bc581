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

/**
 * pgvector's text form `[0.1,-0.2,...]`: each component as the shortest decimal that reads back
 * as the same float32 (at most 9 significant digits); throws RangeError on NaN or Infinity.
 *
 * The digits are those of slowFloat32Text (the definition); fastDigits computes the same
 * digits without toPrecision, number-to-string conversion or parsing, and the text is written
 * as bytes into one buffer. About 40 ns a value where the definition takes 200 ns;
 * bench/verify_pgvector.ts checks both give the same string for every float32 in the range
 * embeddings use.
 */
export function toPgvector(v: Float32Array | number[]): string {
  const need = v.length * MAX_VALUE_BYTES + 2;
  if (buffer.length < need) buffer = new Uint8Array(need);
  const out = buffer;
  let pos = 0;
  out[pos++] = 0x5b; // [
  for (let i = 0; i < v.length; i++) {
    if (i > 0) out[pos++] = 0x2c; // ,
    pos = writeFloat32(out, pos, v[i]);
  }
  out[pos++] = 0x5d; // ]
  return ASCII.decode(out.subarray(0, pos));
}

/** Longest component text plus its comma ("-1.17549435e-38,", "-0.00000123456789,"). */
const MAX_VALUE_BYTES = 20;
let buffer = new Uint8Array(1536 * MAX_VALUE_BYTES + 2);
const ASCII = new TextDecoder();

function writeFloat32(out: Uint8Array, pos: number, x: number): number {
  const v = Math.fround(x);
  if (!Number.isFinite(v)) throw new RangeError(`vector holds a non-finite value (${v})`);
  if (v === 0) {
    out[pos] = 0x30;
    return pos + 1;
  }
  const a = v < 0 ? -v : v;
  if (a >= 1e-6 && a < 1e19 && fastDigits(a)) {
    if (v < 0) out[pos++] = 0x2d; // -
    return found.shortest9
      ? writePlain(out, pos, found.n, 9, found.e)
      : writePrecision(out, pos, found.n, found.p, found.e);
  }
  const s = slowFloat32Text(v);
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

/**
 * The definition: try 8 significant digits (toPrecision: the p-digit decimal nearest to the
 * value, ties away from zero); if that does not read back as the same float32, 9 digits (which
 * always do), printed as String(Number) prints them; else walk down from 7 digits while it
 * still reads back, printed as toPrecision prints them.
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
/** The doubles nearest 10^0 .. 10^-6. */
const NEG_POW10 = Array.from({ length: 7 }, (_, i) => Number(`1e-${i}`));

/** fastDigits' answer: the value is n * 10^(e-p+1) with p digits (shortest9: 9 digits, String form). */
const found = { n: 0, p: 0, e: 0, shortest9: false };

/**
 * slowFloat32Text's digits for 1e-6 <= a < 1e19 (a a positive float32), in `found`; false
 * when a p-digit rounding is too close to a tie to be sure (then the caller uses the
 * definition). Why the answer is the definition's:
 * - the decade e (10^e <= a < 10^(e+1)) comes from comparing a with the doubles nearest 10^e:
 *   a float32 (24-bit significand) differs from 10^-m by at least 2^-24 * 5^-m relative (m <= 6
 *   here), far more than the double's own rounding (2^-53), so each comparison is exact;
 * - a * 10^k (|k| <= 22, 10^k exact) is one correctly rounded operation below 1e9, so its error
 *   is below 1.2e-7, and rounding it gives the p-digit rounding of the exact value unless its
 *   fraction is within 1e-6 of .5;
 * - n * 10^q (|q| <= 22, n < 2^53) is one correctly rounded operation, so it is exactly the
 *   double that parsing the digits gives, and the read-back test is the definition's own.
 */
function fastDigits(a: number): boolean {
  let e: number;
  if (a < 1) {
    e = -1;
    while (a < NEG_POW10[-e]) e--;
  } else {
    e = 0;
    while (a >= POW10[e + 1]) e++;
  }
  let n = roundDigits(a, 8, e);
  if (n < 0) return false;
  let ne = e;
  if (n === 1e8) n = 1e7, ne = e + 1;
  if (!readsBack(a, n, ne - 7)) {
    let n9 = roundDigits(a, 9, e);
    if (n9 < 0) return false;
    let e9 = e;
    if (n9 === 1e9) n9 = 1e8, e9 = e + 1;
    found.n = n9, found.p = 9, found.e = e9, found.shortest9 = true;
    return true;
  }
  let p = 8;
  for (let q = 7; q > 0; q--) {
    let m = roundDigits(a, q, e);
    if (m < 0) return false;
    let me = e;
    if (m === POW10[q]) m = POW10[q - 1], me = e + 1;
    if (!readsBack(a, m, me - q + 1)) break;
    n = m, ne = me, p = q;
  }
  found.n = n, found.p = p, found.e = ne, found.shortest9 = false;
  return true;
}

/** round(a * 10^(p-1-e)), ties up; -1 when the product is too close to a tie to be sure. */
function roundDigits(a: number, p: number, e: number): number {
  const k = p - 1 - e;
  const scaled = k >= 0 ? a * POW10[k] : a / POW10[-k];
  const floor = Math.floor(scaled);
  const frac = scaled - floor;
  if (frac > 0.499999 && frac < 0.500001) return -1;
  return frac >= 0.5 ? floor + 1 : floor;
}

/** Math.fround(n * 10^q) === a, with n * 10^q rounded once, as parsing its text would be. */
function readsBack(a: number, n: number, q: number): boolean {
  return Math.fround(q >= 0 ? n * POW10[q] : n / POW10[-q]) === a;
}

const DIGITS = new Uint8Array(10);

/** The `count` decimal digits of n (n < 2^31) into DIGITS[0..count). */
function splitDigits(n: number, count: number) {
  for (let j = count - 1; j >= 0; j--) {
    const q = (n / 10) | 0;
    DIGITS[j] = 0x30 + n - q * 10;
    n = q;
  }
}

function writeZeros(out: Uint8Array, pos: number, count: number): number {
  for (let j = 0; j < count; j++) out[pos++] = 0x30;
  return pos;
}

/** As Number.prototype.toPrecision(p) prints n * 10^(e-p+1), 10^(p-1) <= n < 10^p. */
function writePrecision(out: Uint8Array, pos: number, n: number, p: number, e: number): number {
  splitDigits(n, p);
  if (e < -6 || e >= p) {
    out[pos++] = DIGITS[0];
    if (p > 1) {
      out[pos++] = 0x2e;
      for (let j = 1; j < p; j++) out[pos++] = DIGITS[j];
    }
    out[pos++] = 0x65; // e
    out[pos++] = e >= 0 ? 0x2b : 0x2d;
    const x = e < 0 ? -e : e;
    if (x >= 10) out[pos++] = 0x30 + ((x / 10) | 0);
    out[pos++] = 0x30 + (x % 10);
    return pos;
  }
  if (e >= 0) {
    for (let j = 0; j <= e; j++) out[pos++] = DIGITS[j];
    if (e + 1 < p) {
      out[pos++] = 0x2e;
      for (let j = e + 1; j < p; j++) out[pos++] = DIGITS[j];
    }
    return pos;
  }
  out[pos++] = 0x30;
  out[pos++] = 0x2e;
  pos = writeZeros(out, pos, -e - 1);
  for (let j = 0; j < p; j++) out[pos++] = DIGITS[j];
  return pos;
}

/** As String(Number) prints n * 10^(e-p+1), 10^(p-1) <= n < 10^p, for -6 <= e <= 19. */
function writePlain(out: Uint8Array, pos: number, n: number, p: number, e: number): number {
  splitDigits(n, p);
  let k = p;
  while (k > 1 && DIGITS[k - 1] === 0x30) k--;
  const point = e + 1; // digits before the decimal point
  if (point >= k) {
    for (let j = 0; j < k; j++) out[pos++] = DIGITS[j];
    return writeZeros(out, pos, point - k);
  }
  if (point > 0) {
    for (let j = 0; j < point; j++) out[pos++] = DIGITS[j];
    out[pos++] = 0x2e;
    for (let j = point; j < k; j++) out[pos++] = DIGITS[j];
    return pos;
  }
  out[pos++] = 0x30;
  out[pos++] = 0x2e;
  pos = writeZeros(out, pos, -point);
  for (let j = 0; j < k; j++) out[pos++] = DIGITS[j];
  return pos;
}
