import assert from "node:assert/strict";
import { Tiktoken } from "js-tiktoken/lite";
import cl100k from "js-tiktoken/ranks/cl100k_base";
import {
  countTokens,
  estimateTokens,
  truncateToTokens,
  utf8Length,
} from "../../supabase/functions/_shared/tokens.ts";

// Short samples only: js-tiktoken is the reference here, and it is slow on long pieces.
const SAMPLES = [
  "hello world",
  "The quick brown fox jumps over the lazy dog.",
  "日本語のテキストです。",
  "emoji 😀🎉 and flags 🇫🇷",
  "  leading spaces\n\n\ttabs\r\n",
  "<|endoftext|> is plain text here",
  "ünïcödé façade naïve résumé",
  "1234567890 3.14159 -42",
  "https://example.com/a?b=c&d=e#frag",
  "def f(x):\n    return x ** 2  # comment",
  "x".repeat(300),
  "Ελληνικά και Русский текст",
];

Deno.test("countTokens agrees with js-tiktoken's cl100k_base on a sample table", () => {
  const reference = new Tiktoken(cl100k);
  for (const s of SAMPLES) {
    assert.equal(countTokens(s), reference.encode(s, [], []).length, JSON.stringify(s));
  }
});

Deno.test("countTokens: known counts", () => {
  const table: Array<[string, number]> = [["", 0], ["hello world", 2], ["hello", 1], [" ", 1]];
  for (const [s, n] of table) assert.equal(countTokens(s), n, JSON.stringify(s));
});

Deno.test("estimateTokens is ceil(UTF-8 bytes / 4)", () => {
  const table: Array<[string, number, number]> = [
    // text, bytes, estimate
    ["", 0, 0],
    ["abcd", 4, 1],
    ["abcde", 5, 2],
    ["é", 2, 1],
    ["日本", 6, 2],
    ["😀", 4, 1],
    ["😀😀a", 9, 3],
    ["\ud800", 3, 1], // a lone surrogate goes on the wire as U+FFFD
  ];
  for (const [s, bytes, est] of table) {
    assert.equal(utf8Length(s), bytes, JSON.stringify(s));
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
    assert.equal(estimateTokens(s), est, JSON.stringify(s));
  }
});

Deno.test("truncateToTokens leaves short text alone", () => {
  const r = truncateToTokens("hello world", 8191);
  assert.deepEqual(r, { text: "hello world", tokens: 2, truncated: false });
});

Deno.test("truncateToTokens cuts a long text to exactly 8191 tokens, as a prefix", () => {
  const long = Array.from({ length: 12_000 }, (_, i) => `word${i % 97} `).join("");
  assert.ok(countTokens(long) > 8191);
  const r = truncateToTokens(long, 8191);
  assert.equal(r.truncated, true);
  assert.equal(r.tokens, 8191);
  assert.equal(countTokens(r.text), 8191);
  assert.ok(long.startsWith(r.text));
});

Deno.test("truncateToTokens never splits a character (CJK and emoji)", () => {
  const cases = ["日本語のテキストです。".repeat(2000), "😀🎉🇫🇷 ".repeat(5000), "é".repeat(30_000)];
  for (const text of cases) {
    const r = truncateToTokens(text, 1000);
    assert.equal(r.truncated, true);
    assert.ok(r.tokens <= 1000 && r.tokens >= 990, `tokens ${r.tokens}`);
    assert.equal(countTokens(r.text), r.tokens);
    assert.ok(text.startsWith(r.text));
    assert.ok(r.text.isWellFormed());
    assert.ok(!r.text.includes("\uFFFD"));
  }
});

Deno.test("truncateToTokens: text that only just fits is not truncated", () => {
  const text = "hello ".repeat(100).trim(); // 100 tokens
  const n = countTokens(text);
  assert.deepEqual(truncateToTokens(text, n), { text, tokens: n, truncated: false });
  const cut = truncateToTokens(text, n - 1);
  assert.equal(cut.truncated, true);
  assert.equal(cut.tokens, n - 1);
});

Deno.test("long runs without breaks are counted in 1000-character chunks (no quadratic blow-up)", () => {
  for (const run of ["a".repeat(200_000), "=".repeat(50_000), " ".repeat(50_000), "😀".repeat(20_000)]) {
    // Chunked counting is what keeps these linear: the count is that of the chunks.
    const n = countTokens(run);
    assert.equal(n, (run.length / 1000) * countTokens(run.slice(0, 1000)));
    const r = truncateToTokens(run, 8191);
    if (n <= 8191) assert.deepEqual(r, { text: run, tokens: n, truncated: false });
    else assert.ok(r.truncated && r.tokens <= 8191 && r.tokens > 8000, `tokens ${r.tokens}`);
    assert.ok(run.startsWith(r.text));
  }
});

Deno.test("lone surrogates become U+FFFD and do not break truncation", () => {
  const text = "ab\ud800cd ".repeat(5000);
  const r = truncateToTokens(text, 100);
  assert.ok(r.tokens <= 100 && r.tokens >= 95);
  assert.ok(r.text.isWellFormed());
  assert.ok(text.toWellFormed().startsWith(r.text));
});
