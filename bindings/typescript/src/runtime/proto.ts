// Helpers for the generated Protobuf code: wire-type and bounds checks, 64-bit range checks
// (ENC-INT53) and a bounded nesting depth, so hostile bytes end in a `WireError`.

import type { BinaryReader } from "@bufbuild/protobuf/wire";

import { UnknownTypeError, WireError } from "./errors.js";

/** Deepest message nesting a Protobuf frame may have (as prost's recursion limit). */
export const MAX_PROTO_DEPTH = 100;

const MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Fails when messages nest deeper than `MAX_PROTO_DEPTH`. */
export function checkDepth(depth: number): void {
  if (depth > MAX_PROTO_DEPTH) throw new WireError(`messages nested deeper than ${MAX_PROTO_DEPTH} levels`);
}

/** Fails when a known field arrives with another wire type than its declaration's. */
export function expectWire(wt: number, expected: number, path: string): void {
  if (wt !== expected) throw new WireError(`wire type ${wt}, expected ${expected}`, path);
}

/** Reads a length prefix and returns where the sub-message ends, within `end`. */
export function sub(r: BinaryReader, end: number): number {
  const len = r.uint32();
  const e = r.pos + len;
  if (e > end) throw new WireError("length prefix runs past the enclosing message");
  return e;
}

/** Fails unless the reader stopped exactly at `end`. */
export function endAt(r: BinaryReader, end: number): void {
  if (r.pos !== end) throw new WireError("field runs past the end of its message");
}

/** A `uint64` read from Protobuf, within 2^53-1. */
export function pbU53(v: bigint | string, path: string): number {
  const b = BigInt(v);
  if (b > MAX) throw new WireError("integer exceeds 2^53-1 (ENC-INT53)", path, "invalid");
  return Number(b);
}

/** An `int64` read from Protobuf, within ±(2^53-1). */
export function pbI53(v: bigint | string, path: string): number {
  const b = BigInt(v);
  if (b > MAX || b < -MAX) throw new WireError("integer exceeds 2^53-1 (ENC-INT53)", path, "invalid");
  return Number(b);
}

/** Runs a decoder, turning the wire library's errors (truncation, bad varint) into `WireError`. */
export function guardProto<T>(decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof WireError || e instanceof UnknownTypeError) throw e;
    throw new WireError(e instanceof Error ? e.message : String(e));
  }
}
