// The canonical MessagePack writer against bytes written out by hand from Courier's Rust writer
// (crates/protocol/src/wire/msgpack.rs): smallest headers, integers in their smallest form,
// integral floats within 2^53 as integers, -0 and other floats as float 64, map-field key order.

import assert from "node:assert/strict";
import { test } from "node:test";

import { EncodeError } from "../src/runtime/errors.js";
import { encodeMsgpack } from "../src/runtime/msgpack.js";
import { markKeyOrder, type Payload } from "../src/runtime/wire.js";

const hex = (v: Payload): string => Buffer.from(encodeMsgpack(v)).toString("hex");

test("integers take their smallest form", () => {
  const cases: [Payload, string][] = [
    [0, "00"], [127, "7f"], [128, "cc80"], [255, "ccff"], [256, "cd0100"], [65535, "cdffff"],
    [65536, "ce00010000"], [4294967295, "ceffffffff"], [4294967296, "cf0000000100000000"],
    [Number.MAX_SAFE_INTEGER, "cf001fffffffffffff"], [-1, "ff"], [-32, "e0"], [-33, "d0df"],
    [-128, "d080"], [-129, "d1ff7f"], [-32768, "d18000"], [-32769, "d2ffff7fff"],
    [-2147483648, "d280000000"], [-2147483649, "d3ffffffff7fffffff"],
    [-Number.MAX_SAFE_INTEGER, "d3ffe0000000000001"],
    [18446744073709551615n, "cfffffffffffffffff"], [-9223372036854775808n, "d38000000000000000"], [5n, "05"],
  ];
  for (const [v, want] of cases) assert.equal(hex(v), want, String(v));
});

test("floats: integral values as integers, -0 and fractions as float 64", () => {
  assert.equal(hex(-0), "cb8000000000000000");
  assert.equal(hex(1.5), "cb3ff8000000000000");
  assert.equal(hex(2 ** 53), "cb4340000000000000");
  assert.equal(hex(1e300), "cb7e37e43c8800759c");
  assert.throws(() => encodeMsgpack(Number.NaN), EncodeError);
  assert.throws(() => encodeMsgpack(2n ** 64n), EncodeError);
});

test("headers of strings, binaries, arrays and maps", () => {
  assert.equal(hex("a".repeat(31)).slice(0, 2), "bf");
  assert.equal(hex("a".repeat(32)).slice(0, 4), "d920");
  assert.equal(hex("a".repeat(256)).slice(0, 6), "da0100");
  assert.equal(hex("é"), "a2c3a9");
  assert.equal(hex("😀"), "a4f09f9880");
  assert.equal(hex(new Uint8Array(3)), "c403000000");
  assert.equal(hex(new Uint8Array(256)).slice(0, 6), "c50100");
  assert.equal(hex(new Array<Payload>(15).fill(null)).slice(0, 2), "9f");
  assert.equal(hex(new Array<Payload>(16).fill(null)).slice(0, 6), "dc0010");
  const big: { [key: string]: Payload } = {};
  for (let i = 0; i < 16; i++) big[`k${i}`] = i;
  assert.equal(hex(big).slice(0, 6), "de0010");
  assert.equal(hex([null, true, false]), "93c0c3c2");
});

test("objects keep member order; marked map objects sort their keys", () => {
  assert.equal(hex({ b: 1, a: 2 }), "82a16201a16102");
  const strings: { [key: string]: Payload } = { b: 1, "10": 2, "9": 3 };
  markKeyOrder(strings, "string");
  assert.equal(hex(strings), "83a2313002a13903a16201"); // "10" < "9" < "b"
  const ints: { [key: string]: Payload } = { "7": 1, "-5": 2 };
  markKeyOrder(ints, "int");
  assert.equal(hex(ints), "82a22d3502a13701"); // -5 before 7
  assert.equal(hex({ a: undefined, b: 1 } as unknown as Payload), "81a16201");
});
