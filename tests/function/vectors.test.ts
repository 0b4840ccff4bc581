import assert from "node:assert/strict";
import {
  decodeBase64Float32,
  encodeBase64Float32,
  toPgvector,
} from "../../supabase/functions/_shared/vectors.ts";

function seeded(seed: number) {
  return () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
}

Deno.test("decodeBase64Float32: known little-endian bytes", () => {
  // 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0
  const b64 = btoa(String.fromCharCode(0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0));
  assert.deepEqual(Array.from(decodeBase64Float32(b64)), [1, -2]);
  assert.throws(() => decodeBase64Float32(btoa("abc")), RangeError);
  assert.equal(decodeBase64Float32("").length, 0);
});

Deno.test("base64 float32 round-trip", () => {
  const rnd = seeded(7);
  const v = Float32Array.from({ length: 1536 }, () => rnd() * 2 - 1);
  v[0] = 0, v[1] = -0, v[2] = 1e-38, v[3] = 3.4e38;
  const back = decodeBase64Float32(encodeBase64Float32(v));
  assert.deepEqual(Array.from(back), Array.from(v));
});

Deno.test("toPgvector: format and shortest round-trip text", () => {
  const table: Array<[number[], string]> = [
    [[0.1, -0.2, 0.3], "[0.1,-0.2,0.3]"],
    [[0, -0, 1, -1], "[0,0,1,-1]"],
    [[1e-7, 123456.789], "[1e-7,123456.79]"],
    [[], "[]"],
  ];
  for (const [v, want] of table) {
    assert.equal(toPgvector(v), want);
    assert.equal(toPgvector(Float32Array.from(v)), want);
  }
});

Deno.test("toPgvector: every component reads back as the same float32", () => {
  const rnd = seeded(42);
  const v = Float32Array.from({ length: 3072 }, () => (rnd() * 2 - 1) * 10 ** Math.floor(rnd() * 8 - 6));
  const text = toPgvector(v);
  assert.match(text, /^\[[-0-9.e,+]+\]$/);
  const parts = text.slice(1, -1).split(",");
  assert.equal(parts.length, v.length);
  for (let i = 0; i < v.length; i++) {
    assert.equal(Math.fround(Number(parts[i])), v[i], `component ${i}: ${parts[i]}`);
    // shortest: one digit fewer would not read back
    const digits = parts[i].replace(/^-/, "").replace(/e.*$/, "").replace(".", "").replace(/^0+/, "").length;
    if (digits > 1) {
      const shorter = Number(Math.abs(v[i]).toPrecision(digits - 1));
      assert.notEqual(Math.fround(shorter), Math.abs(v[i]), `component ${i} could be shorter: ${parts[i]}`);
    }
  }
});

Deno.test("toPgvector: NaN and Infinity are refused", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(() => toPgvector([0.5, bad]), RangeError);
  }
});
