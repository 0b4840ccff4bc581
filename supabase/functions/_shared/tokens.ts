/**
 * Token counts with OpenAI's cl100k_base encoding (the embedding models' tokenizer).
 *
 * The library is gpt-tokenizer rather than js-tiktoken: both give the same tokens (a test checks
 * this), but js-tiktoken's merge step took ~4 s of CPU for 110k characters of Japanese where
 * gpt-tokenizer took ~10 ms, and an Edge Function has 2 s of CPU per request. The encoder is
 * built lazily by the library on first use.
 *
 * One guard on top: byte-pair merging is quadratic in the length of one regex piece, and a run
 * of letters, symbols or whitespace with no break (a base64 blob, "=====...") is one piece.
 * Runs of LONG_RUN characters or more are therefore counted in chunks of LONG_RUN characters.
 * For such runs the count is a close upper estimate rather than exact; all other text is exact.
 */
import { decode, encode } from "gpt-tokenizer/encoding/cl100k_base";

const LONG_RUN = 1000;
const LONG_RUN_RE = new RegExp(
  `\\p{L}{${LONG_RUN},}|[^\\s\\p{L}\\p{N}]{${LONG_RUN},}|\\s{${LONG_RUN},}`,
  "gu",
);
/** Special-token text such as "<|endoftext|>" in a row is plain text, as the embeddings API treats it. */
const PLAIN = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };

function encodeRun(run: string, out: number[]): void {
  for (let i = 0; i < run.length;) {
    let end = Math.min(run.length, i + LONG_RUN);
    const c = run.charCodeAt(end - 1);
    if (end < run.length && c >= 0xd800 && c <= 0xdbff) end--; // keep surrogate pairs whole
    for (const t of encode(run.slice(i, end), PLAIN)) out.push(t);
    i = end;
  }
}

/** Tokens of well-formed text, long runs chunked (see the module comment). */
function tokenize(text: string): number[] {
  LONG_RUN_RE.lastIndex = 0;
  const found = LONG_RUN_RE.test(text);
  LONG_RUN_RE.lastIndex = 0; // matchAll starts where the regex's lastIndex is
  if (!found) return encode(text, PLAIN);
  const out: number[] = [];
  let last = 0;
  for (const m of text.matchAll(LONG_RUN_RE)) {
    if (m.index > last) { for (const t of encode(text.slice(last, m.index), PLAIN)) out.push(t); }
    encodeRun(m[0], out);
    last = m.index + m[0].length;
  }
  if (last < text.length) { for (const t of encode(text.slice(last), PLAIN)) out.push(t); }
  return out;
}

/** Lone surrogates become U+FFFD, as they would on the wire; other text is unchanged. */
function wellFormed(text: string): string {
  return text.isWellFormed() ? text : text.toWellFormed();
}

/** Number of cl100k_base tokens in `text`. */
export function countTokens(text: string): number {
  return tokenize(wellFormed(text)).length;
}

/**
 * Cuts `text` to at most `maxTokens` tokens. The result is a prefix of the (well-formed) text,
 * never splits a character, and `tokens` is its own count. Only the first part of a long text is
 * tokenized: a window of 8 characters per token, doubled until it holds enough tokens.
 */
export function truncateToTokens(
  text: string,
  maxTokens: number,
): { text: string; tokens: number; truncated: boolean } {
  const src = wellFormed(text);
  if (maxTokens <= 0) return { text: "", tokens: 0, truncated: src.length > 0 };
  // Every token is at least one UTF-8 byte: a text of at most maxTokens bytes always fits.
  if (utf8Length(src) <= maxTokens) {
    return { text: src, tokens: countTokens(src), truncated: false };
  }
  // Tokens well past maxTokens make sure the piece cut by the window's end does not matter.
  const margin = 512;
  let window = Math.min(src.length, maxTokens * 8);
  let tokens: number[];
  for (;;) {
    let end = window;
    const c = src.charCodeAt(end - 1);
    if (end < src.length && c >= 0xd800 && c <= 0xdbff) end--;
    tokens = tokenize(src.slice(0, end));
    if (end >= src.length) {
      if (tokens.length <= maxTokens) return { text: src, tokens: tokens.length, truncated: false };
      break;
    }
    if (tokens.length > maxTokens + margin) break;
    window = Math.min(src.length, window * 2);
  }
  let n = maxTokens;
  while (n > 0) {
    const prefix = decode(tokens.slice(0, n));
    // A cut inside a multi-byte character decodes to U+FFFD: step back to a whole character.
    if (!src.startsWith(prefix)) {
      n--;
      continue;
    }
    const count = countTokens(prefix);
    if (count <= maxTokens) return { text: prefix, tokens: count, truncated: true };
    n -= count - maxTokens;
  }
  return { text: "", tokens: 0, truncated: true };
}

/** UTF-8 length in bytes, without encoding. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** ceil(UTF-8 bytes / 4): the estimate OpenAI uses to pre-check its 300 000-token request limit. */
export function estimateTokens(text: string): number {
  return Math.ceil(utf8Length(text) / 4);
}
