// Proto `map` fields in the data model and in Protobuf (docs/codegen.md, "The JSON shape"): keys
// are strings on the wire (JSON objects have no other keys), integer keys in decimal and bool keys
// `"true"`/`"false"`; readers accept what Courier's Rust reader accepts (`+7`, `007`) and keep the
// canonical form, writers sort keys (code point order, integers numerically) so that one value
// always encodes to the same bytes (ENC-CANONICAL).

import { EncodeError, WireError } from "./errors.js";
import { setOwn } from "./payload.js";
import { compareCodePoints, compareIntKeys, map, markKeyOrder, type Payload, type Wire, type WireObject } from "./wire.js";

/** A map field's value as generated types hold it (`{ [key: number]: V }` for 32-bit integer keys). */
export type MapLike<V> = { readonly [key: string]: V | undefined } | { readonly [key: number]: V | undefined };

/** The key type of a map field, as far as its encoding cares. */
export type MapKey = "string" | "bool" | "i32" | "u32" | "i64" | "u64";

const RANGE: { readonly [K in MapKey]?: readonly [bigint, bigint] } = {
  i32: [-(1n << 31n), (1n << 31n) - 1n],
  u32: [0n, (1n << 32n) - 1n],
  i64: [-(1n << 63n), (1n << 63n) - 1n],
  u64: [0n, (1n << 64n) - 1n],
};

/**
 * The canonical form of map key `k` of type `kind`, or `undefined` when `k` is not one. Integers
 * follow Rust's `str::parse`: an optional sign (`+` only for unsigned types), then digits.
 */
export function canonicalKey(kind: MapKey, k: string): string | undefined {
  if (kind === "string") return k;
  if (kind === "bool") return k === "true" || k === "false" ? k : undefined;
  const range = RANGE[kind]!;
  if (!(kind[0] === "u" ? /^\+?[0-9]+$/ : /^[+-]?[0-9]+$/).test(k)) return undefined;
  const n = BigInt(k);
  return n < range[0] || n > range[1] ? undefined : n.toString();
}

/**
 * Reads a map field from the data model: missing or null is the empty map (ENC-DEFAULTS-OMITTED),
 * a key that is not of the key type is a `WireError`, a repeated key keeps the last value.
 */
export function mapOf<V>(v: Wire | undefined, kind: MapKey, path: string, value: (x: Wire) => V): { [key: string]: V } {
  const out: { [key: string]: V } = {};
  if (v === undefined || v === null) return out;
  const o = map(v, path);
  for (const k of Object.keys(o)) {
    const key = canonicalKey(kind, k);
    if (key === undefined) throw new WireError(`invalid ${kind} map key \`${k}\``, path);
    setOwn(out, key, value(o[k]!));
  }
  return out;
}

/**
 * The entries of a map field to write, keys canonical and in key order; entries whose value is
 * `undefined` are left out. A key not of the key type, or two keys naming one integer (`7`, `07`),
 * is an `EncodeError`.
 */
export function mapEntries<V>(map: MapLike<V>, kind: MapKey, path: string): [string, V][] {
  const m = map as { readonly [key: string]: V | undefined };
  if (typeof m !== "object" || m === null || Array.isArray(m) || m instanceof Map) {
    throw new EncodeError(`${path}: a map field is written from a plain object keyed by ${kind === "string" ? "string" : kind}`);
  }
  const out: [string, V][] = [];
  const seen = new Set<string>();
  for (const k of Object.keys(m)) {
    const v = m[k];
    if (v === undefined) continue;
    const key = canonicalKey(kind, k);
    if (key === undefined) throw new EncodeError(`${path}: \`${k}\` is not a ${kind} map key`);
    if (seen.has(key)) throw new EncodeError(`${path}: map key ${key} is given twice`);
    seen.add(key);
    out.push([key, v]);
  }
  const ints = kind !== "string" && kind !== "bool";
  out.sort((a, b) => (ints ? compareIntKeys(a[0], b[0]) : compareCodePoints(a[0], b[0])));
  return out;
}

/**
 * Writes a map field to the data model: an object marked to be written in key order, or
 * `undefined` for an empty map (ENC-DEFAULTS-OMITTED).
 */
export function outMap<V>(
  m: MapLike<V>,
  kind: MapKey,
  path: string,
  value: (x: V) => Payload,
): WireObject | undefined {
  const entries = mapEntries(m, kind, path);
  if (entries.length === 0) return undefined;
  const o: WireObject = {};
  for (const [k, v] of entries) setOwn(o, k, value(v));
  markKeyOrder(o, kind === "string" || kind === "bool" ? "string" : "int");
  return o;
}

/** Sets entry `k` of a map field being decoded from Protobuf (a repeated key keeps the last value). */
export function setEntry(m: object, k: string, v: unknown): void {
  setOwn(m as { [key: string]: unknown }, k, v);
}
