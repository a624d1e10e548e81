// Payload values (ENC-PAYLOAD): converting decoded trees to `Payload`, checking and normalising
// values an application hands in, and the canonical MessagePack bytes that carry a payload in
// Protobuf frames (ENC-PAYLOAD-WIRE).

import { EncodeError, WireError } from "./errors.js";
import { decodeMsgpack, encodeMsgpack } from "./msgpack.js";
import { F64, KEY_ORDER, markKeyOrder, type Payload, type Wire, wide } from "./wire.js";

/** Deepest nesting of arrays and maps a payload may have. */
export const MAX_PAYLOAD_DEPTH = 64;

const I64_MIN = -(1n << 63n);
const U64_MAX = (1n << 64n) - 1n;

/** Sets `key` on `o` as an own property, also when it is `__proto__`. */
export function setOwn(o: { [key: string]: unknown }, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/** A payload field of a decoded tree as a `Payload` (floats become numbers). */
export function payload(v: Wire, path: string): Payload {
  return fromWire(v, 0, path);
}

function fromWire(v: Wire, depth: number, path: string): Payload {
  if (v === null || typeof v !== "object") {
    if (typeof v === "bigint" && v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
      return Number(v);
    }
    return v;
  }
  if (v instanceof F64) {
    if (!Number.isFinite(v.value)) throw new WireError("payload number is NaN or infinite", path);
    return v.value;
  }
  if (v instanceof Uint8Array) return v;
  if (depth >= MAX_PAYLOAD_DEPTH) throw new WireError(`payload nested deeper than ${MAX_PAYLOAD_DEPTH} levels`, path);
  if (Array.isArray(v)) return (v as readonly Wire[]).map((x) => fromWire(x, depth + 1, path));
  const out: { [key: string]: Payload } = {};
  const o = v as { readonly [key: string]: Wire };
  for (const k of Object.keys(o)) setOwn(out, k, fromWire(o[k]!, depth + 1, path));
  return out;
}

/**
 * Checks that `v` is a payload value and returns its normal form for the writers: integers
 * beyond 32 bits as `bigint` (see `wide`), arrays and plain objects copied. Anything else (NaN, `undefined`, a `Date`, a class
 * instance, nesting deeper than 64) throws `EncodeError`.
 */
export function outPayload(v: Payload, path: string): Payload {
  return normalise(v, 0, path);
}

function normalise(v: Payload, depth: number, path: string): Payload {
  switch (typeof v) {
    case "boolean":
    case "string":
      return v;
    case "number":
      if (!Number.isFinite(v)) throw new EncodeError(`${path}: payload number ${v} is not finite`);
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? wide(v) : v;
    case "bigint":
      if (v < I64_MIN || v > U64_MAX) throw new EncodeError(`${path}: payload integer ${v} is out of the 64-bit range`);
      return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? wide(Number(v)) : v;
    case "object": {
      if (v === null || v instanceof Uint8Array) return v;
      if (depth >= MAX_PAYLOAD_DEPTH) throw new EncodeError(`${path}: payload nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
      if (Array.isArray(v)) return (v as readonly Payload[]).map((x) => normalise(x, depth + 1, path));
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new EncodeError(`${path}: only plain objects are payload maps`);
      }
      const out: { [key: string]: Payload } = {};
      const o = v as { readonly [key: string]: Payload };
      for (const k of Object.keys(o)) {
        const x = o[k];
        if (x === undefined) continue;
        setOwn(out, k, normalise(x, depth + 1, path));
      }
      // A map field written by generated code keeps its key order (see `KEY_ORDER`).
      const order = (o as { [KEY_ORDER]?: "string" | "int" })[KEY_ORDER];
      if (order !== undefined) markKeyOrder(out, order);
      return out;
    }
    default:
      throw new EncodeError(`${path}: a ${typeof v} is not a payload value`);
  }
}

/** The canonical MessagePack bytes of a payload (its form in Protobuf frames). */
export function payloadBytes(v: Payload, path: string): Uint8Array {
  return encodeMsgpack(outPayload(v, path));
}

/** Reads payload bytes of a Protobuf frame: exactly one MessagePack value (ENC-PAYLOAD-INVALID). */
export function payloadFromBytes(bytes: Uint8Array, path: string): Payload {
  try {
    return payload(decodeMsgpack(bytes), path);
  } catch (e) {
    throw new WireError(e instanceof Error ? e.message : String(e), path, "invalid");
  }
}
