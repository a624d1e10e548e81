// The data model that JSON and MessagePack frames decode to, and the field readers and writers
// generated code calls (docs/spec/encoding.md §2). The parsers keep what the JSON value model
// loses: integers stay integers (`number`, or `bigint` beyond 2^53-1) and every float is an
// `F64`, so a float in an integer field is caught (ENC-INT-FORM).

import { decodeBase64 } from "./base64.js";
import { EncodeError, WireError } from "./errors.js";

/** A number written as a float on the wire (`1.0`, `1e3`, MessagePack float 32/64). */
export class F64 {
  constructor(readonly value: number) {}
}

/**
 * An application payload: a value of the JSON data model plus byte strings and integers beyond
 * 2^53-1 (as `bigint`), nested at most 64 arrays and maps deep (ENC-PAYLOAD).
 */
export type Payload =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly Payload[]
  | { readonly [key: string]: Payload };

/** A decoded JSON or MessagePack tree, before validation against a message type. */
export type Wire = Payload | F64 | readonly Wire[] | { readonly [key: string]: Wire };

/** A map of the data model being written (member order is the output order). */
export type WireObject = { [key: string]: Payload };

/** A decoded map. */
export type WireMap = { readonly [key: string]: Wire };

/**
 * Marks an object written for a proto `map` field: its keys are written in key order (ENC-CANONICAL),
 * code point order for `"string"` keys, numeric order for `"int"` keys. A JavaScript object cannot
 * hold that order itself (integer-like keys always come first), so the writers sort marked objects.
 * A registered symbol, so that two copies of the runtime agree; not enumerable, so `JSON.stringify`
 * and spreads ignore it.
 */
export const KEY_ORDER: unique symbol = Symbol.for("@courier/client.keyOrder");

/** How the keys of a marked object sort. */
export type KeyOrder = "string" | "int";

/** Marks `o` as a map whose keys are written in `order`. */
export function markKeyOrder(o: object, order: KeyOrder): void {
  Object.defineProperty(o, KEY_ORDER, { value: order, enumerable: false });
}

/**
 * Orders strings by Unicode code point, which is UTF-8 byte order and so Rust's `str` order; `<`
 * compares UTF-16 code units, which puts U+E000..U+FFFF after astral characters.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (astral code points) move above the rest of the BMP.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Orders decimal integer strings numerically (exactly, beyond 2^53 too). */
export function compareIntKeys(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The keys of `o` in the order the writers write them: map key order when marked, else as held. */
export function keysOf(o: object): string[] {
  const keys = Object.keys(o);
  const order = (o as { [KEY_ORDER]?: KeyOrder })[KEY_ORDER];
  if (order === "int") keys.sort(compareIntKeys);
  else if (order === "string") keys.sort(compareCodePoints);
  return keys;
}

/** Largest integer a JavaScript number holds exactly (ENC-INT53). */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function isMap(v: Wire | undefined): v is WireMap {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof F64);
}

function describe(v: Wire | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "binary";
  if (v instanceof F64) return "a float";
  return `a ${typeof v}`;
}

/** The value as a map, or a `WireError`. */
export function map(v: Wire | undefined, path: string): WireMap {
  if (!isMap(v)) throw new WireError(`expected a map, found ${describe(v)}`, path);
  return v;
}

/** The member `key` of `o` (own members only), or `undefined`. */
export function get(o: WireMap, key: string): Wire | undefined {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/**
 * A map value or oneof member of a scalar type, which `null` cannot stand for: a map entry or a
 * oneof member is written even at its default, so there is no default to fall back on.
 */
export function nonNull(v: Wire, path: string): Wire {
  if (v === null) throw new WireError("expected a value, found null", path);
  return v;
}

/** A `string` field; missing or null reads as "" (ENC-DEFAULTS-OMITTED). */
export function str(v: Wire | undefined, path: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new WireError(`expected a string, found ${describe(v)}`, path);
  return v;
}

/** A `bool` field. */
export function bool(v: Wire | undefined, path: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new WireError(`expected a boolean, found ${describe(v)}`, path);
  return v;
}

/** A `bytes` field: MessagePack bin, or base64 text in either alphabet (ENC-BYTES). */
export function bytes(v: Wire | undefined, path: string): Uint8Array {
  if (v === undefined || v === null) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") return decodeBase64(v, path);
  throw new WireError(`expected bytes, found ${describe(v)}`, path);
}

function int(v: Wire | undefined, path: string, min: number, max: number): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "bigint") throw new WireError("integer out of range (ENC-INT53)", path);
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new WireError(`expected an integer, found ${describe(v)} (ENC-INT-FORM)`, path);
  }
  if (v < min || v > max) throw new WireError(`integer ${v} out of range (ENC-INT-FORM)`, path);
  return v;
}

/** An `int32` field. */
export const i32 = (v: Wire | undefined, path: string): number => int(v, path, -0x80000000, 0x7fffffff);
/** A `uint32` field. */
export const u32 = (v: Wire | undefined, path: string): number => int(v, path, 0, 0xffffffff);
/** An `int64` field, within ±(2^53-1) (ENC-INT53). */
export const i53 = (v: Wire | undefined, path: string): number => int(v, path, -MAX_SAFE, MAX_SAFE);
/** A `uint64` field, within 2^53-1 (ENC-INT53). */
export const u53 = (v: Wire | undefined, path: string): number => int(v, path, 0, MAX_SAFE);

/** A `double` or `float` field: any finite number. */
export function num(v: Wire | undefined, path: string): number {
  if (v === undefined || v === null) return 0;
  const n = v instanceof F64 ? v.value : v;
  if (typeof n !== "number" || !Number.isFinite(n)) throw new WireError(`expected a number, found ${describe(v)}`, path);
  return n;
}

/**
 * An enum field by value name or number (ENC-ENUM-NAMES); a name or number this version does
 * not define reads as the zero value (ENC-UNKNOWN-ENUM).
 */
export function enumByName<E extends string>(
  v: Wire | undefined,
  names: { readonly [n: number]: E | undefined },
  numbers: { readonly [K in E]: number },
  path: string,
): E {
  const zero = names[0] as E;
  if (v === undefined || v === null) return zero;
  if (typeof v === "string") return Object.prototype.hasOwnProperty.call(numbers, v) ? (v as E) : zero;
  const n = i32(v, path);
  return names[n] ?? zero;
}

/** The value of an enum number read from Protobuf; unknown numbers read as `zero`. */
export function enumByNumber<E extends string>(n: number, names: { readonly [n: number]: E | undefined }, zero: E): E {
  return names[n] ?? zero;
}

/** A repeated field; missing or null reads as [], a null element is an error. */
export function list<T>(v: Wire | undefined, path: string, item: (x: Wire) => T): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new WireError(`expected an array, found ${describe(v as Wire)}`, path);
  // Elements are values, not fields: null is not their default (ENC-DEFAULTS-OMITTED).
  return (v as readonly Wire[]).map((x) => {
    if (x === null) throw new WireError("null element in a repeated field", path);
    return item(x);
  });
}

function outInt(v: number, path: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new EncodeError(`${path}: ${String(v)} is not an integer in [${min}, ${max}]`);
  }
  return v;
}

/** Checks an `int32` before writing. */
export const outI32 = (v: number, path: string): number => outInt(v, path, -0x80000000, 0x7fffffff);
/** Checks a `uint32` before writing. */
export const outU32 = (v: number, path: string): number => outInt(v, path, 0, 0xffffffff);
/**
 * An integer as the writers want it: beyond 32 bits as a `bigint`, so that a tree handed to any
 * MessagePack encoder keeps it an integer (some write a large `number` as a float 64).
 */
export function wide(v: number): number | bigint {
  return v > 0xffffffff || v < -0x80000000 ? BigInt(v) : v;
}

/** Checks an `int64` before writing: senders never exceed ±(2^53-1) (ENC-INT53). */
export const outI53 = (v: number, path: string): number | bigint => wide(outInt(v, path, -MAX_SAFE, MAX_SAFE));
/** Checks a `uint64` before writing (ENC-INT53). */
export const outU53 = (v: number, path: string): number | bigint => wide(outInt(v, path, 0, MAX_SAFE));

/** Checks a `double` / `float` before writing. */
export function outNum(v: number, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new EncodeError(`${path}: ${String(v)} is not a finite number`);
  return v;
}

/** Checks an enum value name before writing it. */
export function outEnum<E extends string>(v: E, numbers: { readonly [K in E]: number }, path: string): E {
  if (!Object.prototype.hasOwnProperty.call(numbers, v)) throw new EncodeError(`${path}: unknown enum value ${String(v)}`);
  return v;
}

/**
 * Checks that at most one member of a oneof to write is set (the `XInit` types allow one) and
 * returns whether one is.
 */
export function oneMember(o: object, members: readonly string[], path: string): boolean {
  const set = members.filter((k) => (o as { [key: string]: unknown })[k] !== undefined);
  if (set.length > 1) throw new EncodeError(`${path}: oneof members ${set.join(", ")} are all set; set one`);
  return set.length === 1;
}

/** The number of an enum value name, for Protobuf. */
export function enumNumber<E extends string>(v: E, numbers: { readonly [K in E]: number }, path: string): number {
  return numbers[outEnum(v, numbers, path)];
}
