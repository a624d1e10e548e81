// The cross-language vectors (conformance/vectors/, generated from the Rust codec): every valid
// vector decodes to its value and re-encodes to the same bytes in every encoding and version,
// every decode vector decodes to its value, every invalid vector fails with its error and code.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { Codec, DecodeError } from "../src/codec.js";
import { readEnvelope, writeEnvelope } from "../src/gen/courier/v2/wire.js";
import { parseJson, stringifyJson } from "../src/runtime/json.js";
import { F64, type Wire } from "../src/runtime/wire.js";
import type { Encoding, Version } from "../src/subprotocol.js";

const root = new URL("../../../../conformance/vectors/", import.meta.url);

type VectorEncoding = "json" | "msgpack" | "protobuf";
const ENC: Record<VectorEncoding, Encoding> = { json: "json", msgpack: "msgpack", protobuf: "proto" };

interface Valid {
  name: string;
  value: Wire;
  json: string;
  msgpack: string;
  protobuf: string;
}
interface Decode {
  name: string;
  encoding: VectorEncoding;
  input: string;
  value: Wire;
}
interface Invalid {
  name: string;
  encoding: VectorEncoding;
  frame: "text" | "binary";
  max_message_bytes: number;
  input: string;
  error: string;
  close_code: number;
}

/** Reads a vector file with the Courier parser, so large integers and floats survive. */
function load<T>(version: Version, file: string): T[] {
  const text = readFileSync(new URL(`v${version}/${file}.json`, root), "utf8");
  const doc = parseJson(text) as { vectors: unknown };
  return doc.vectors as T[];
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));

/** A tree compared by value: floats as numbers, map keys sorted (ENC-NUMBER-EQUIV). */
function canon(v: unknown): unknown {
  if (v instanceof F64) return v.value;
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(canon);
  const o = v as Record<string, unknown>;
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, canon(o[k])]));
}

/** The JSON data model of a decoded envelope (defaults omitted), for comparison with `value`. */
function model(env: Parameters<typeof writeEnvelope>[0]): unknown {
  return canon(parseJson(stringifyJson(writeEnvelope(env))));
}

for (const version of [1, 2] as const) {
  describe(`vectors v${version}`, () => {
    describe("valid", () => {
      for (const v of load<Valid>(version, "valid")) {
        test(v.name, () => {
          const expected = canon(v.value);
          const fromValue = readEnvelope(v.value);
          for (const e of ["json", "msgpack", "protobuf"] as const) {
            const codec = new Codec({ version, encoding: ENC[e] });
            const bytes = e === "json" ? new TextEncoder().encode(v.json) : unhex(v[e]);
            const frame = e === "json" ? v.json : bytes;
            const decoded = codec.decode(frame);
            assert.deepEqual(model(decoded), expected, `${e}: decoded value`);
            assert.equal(hex(codec.encodeBytes(decoded)), hex(bytes), `${e}: re-encoded bytes`);
            assert.equal(hex(codec.encodeBytes(fromValue)), hex(bytes), `${e}: bytes encoded from the value`);
          }
        });
      }
    });
    describe("decode", () => {
      for (const v of load<Decode>(version, "decode")) {
        test(v.name, () => {
          const codec = new Codec({ version, encoding: ENC[v.encoding] });
          const decoded = codec.decode(unhex(v.input), v.encoding === "json");
          assert.deepEqual(model(decoded), canon(v.value));
        });
      }
    });
    describe("invalid", () => {
      for (const v of load<Invalid>(version, "invalid")) {
        test(v.name, () => {
          const codec = new Codec({ version, encoding: ENC[v.encoding] }, { maxMessageBytes: v.max_message_bytes });
          assert.throws(
            () => codec.decode(unhex(v.input), v.frame === "text"),
            (e: unknown) => {
              assert.ok(e instanceof DecodeError, `expected a DecodeError, got ${String(e)}`);
              assert.equal(e.kind, v.error, e.message);
              assert.equal(e.closeCode, v.close_code);
              return true;
            },
          );
        });
      }
    });
  });
}
