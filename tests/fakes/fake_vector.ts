/** The model whose fake vectors depend on the text alone (the project's default model). */
export const FAKE_BASE_MODEL = "text-embedding-3-small";

/**
 * The fake OpenAI server's embedding: a pure, deterministic function of the text, L2-normalized,
 * so a test can check that a row holds exactly the vector of its final content. Not semantic.
 * Another model than FAKE_BASE_MODEL gives other vectors for the same text (as real models do),
 * so a test can tell which model wrote a vector.
 */
export function fakeVector(text: string, dims: number, model: string = FAKE_BASE_MODEL): Float32Array {
  // Seed a small PRNG (sfc32) with two independent 32-bit hashes of the UTF-8 text.
  const bytes = new TextEncoder().encode(model === FAKE_BASE_MODEL ? text : `${model}\u0000${text}`);
  let a = hash(bytes, 0x811c9dc5), b = hash(bytes, 0x9e3779b9), c = bytes.length ^ 0x5bd1e995, d = 1;
  const next = () => {
    a >>>= 0, b >>>= 0, c >>>= 0, d >>>= 0;
    const t = (a + b | 0) + d | 0;
    d = d + 1 | 0;
    a = b ^ b >>> 9;
    b = c + (c << 3) | 0;
    c = c << 21 | c >>> 11;
    c = c + t | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  const raw = new Float64Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    raw[i] = next() * 2 - 1;
    norm += raw[i] * raw[i];
  }
  norm = Math.sqrt(norm) || 1;
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) out[i] = raw[i] / norm;
  return out;
}

function hash(bytes: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}
