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
  // Round-tripping is monotone in the digit count, and most float32 values need 8 digits: try 8,
  // then walk down while it still holds. The shortest such string has no trailing zeros, and
  // its exponent form ("1e-7") is one pgvector reads. About 0.2 µs a value.
  let s = v.toPrecision(8);
  if (Math.fround(+s) !== v) return String(+v.toPrecision(9));
  for (let p = 7; p > 0; p--) {
    const t = v.toPrecision(p);
    if (Math.fround(+t) !== v) break;
    s = t;
  }
  return s;
}

/** pgvector's text form `[0.1,-0.2,...]`; throws RangeError on NaN or Infinity. */
export function toPgvector(v: Float32Array | number[]): string {
  const parts = new Array<string>(v.length);
  for (let i = 0; i < v.length; i++) parts[i] = float32Text(v[i]);
  return `[${parts.join(",")}]`;
}
