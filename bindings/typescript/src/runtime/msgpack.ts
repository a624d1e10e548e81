// MessagePack: a strict reader of frames into the data model (ints and floats kept apart, only
// string map keys, no extension types, bounded nesting and allocation), and the canonical writer:
// smallest headers, integers in their smallest form, other numbers (and -0) as float 64, map
// fields in key order, exactly the bytes Courier's Rust codec writes (docs/spec/encoding.md §4).

import { EncodeError, WireError } from "./errors.js";
import { F64, keysOf, type Payload, type Wire } from "./wire.js";

/** Deepest nesting of arrays and maps a frame may have (encoding.md §7). */
export const MAX_FRAME_DEPTH = 128;

const utf8 = /* @__PURE__ */ new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = /* @__PURE__ */ new TextEncoder();

// One writer, reused: allocating a buffer per frame cost more than encoding a small one.
let shared: Writer | undefined;

/** Encodes a value of the data model canonically; a value outside it throws `EncodeError`. */
export function encodeMsgpack(value: Payload): Uint8Array {
  const w = shared ?? new Writer();
  shared = undefined; // a nested call (from a getter) gets a writer of its own
  try {
    w.pos = 0;
    w.value(value, 0);
    return w.buf.slice(0, w.pos);
  } finally {
    // Keep a modest buffer only: one huge frame should not pin its memory.
    if (w.buf.length <= 64 * 1024) shared = w;
  }
}

class Writer {
  buf = new Uint8Array(1024);
  view = new DataView(this.buf.buffer);
  pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private u8(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** A marker and a big-endian length or value of `size` bytes (1, 2, 4 or 8). */
  private head(marker: number, size: 1 | 2 | 4, n: number): void {
    this.room(1 + size);
    this.buf[this.pos++] = marker;
    if (size === 1) this.view.setUint8(this.pos, n);
    else if (size === 2) this.view.setUint16(this.pos, n);
    else this.view.setUint32(this.pos, n);
    this.pos += size;
  }

  /** A length header: `fix` form below `fixMax`, then 8 (when `m8` is given), 16 and 32 bits. */
  private len(n: number, fix: number, fixMax: number, m8: number, m16: number, m32: number): void {
    if (n <= fixMax) this.u8(fix | n);
    else if (n <= 0xff && m8 !== 0) this.head(m8, 1, n);
    else if (n <= 0xffff) this.head(m16, 2, n);
    else this.head(m32, 4, n);
  }

  private int(v: bigint | number): void {
    if (typeof v === "number" && v >= -0x80000000 && v <= 0xffffffff) {
      if (v >= 0) {
        if (v <= 0x7f) this.u8(v);
        else if (v <= 0xff) this.head(0xcc, 1, v);
        else if (v <= 0xffff) this.head(0xcd, 2, v);
        else this.head(0xce, 4, v);
      } else if (v >= -32) this.u8(v & 0xff);
      else if (v >= -0x80) this.head(0xd0, 1, v & 0xff);
      else if (v >= -0x8000) this.head(0xd1, 2, v & 0xffff);
      else this.head(0xd2, 4, v >>> 0);
      return;
    }
    const b = BigInt(v);
    if (b < -(1n << 63n) || b >= 1n << 64n) throw new EncodeError(`integer ${b} is outside the 64-bit range`);
    if (b >= -0x80000000n && b <= 0xffffffffn) return this.int(Number(b));
    this.room(9);
    this.buf[this.pos++] = b >= 0n ? 0xcf : 0xd3;
    if (b >= 0n) this.view.setBigUint64(this.pos, b);
    else this.view.setBigInt64(this.pos, b);
    this.pos += 8;
  }

  private str(s: string): void {
    const n = s.length;
    if (n <= 31) {
      // Short ASCII strings (keys, words) are most of a payload: no encoder call for them.
      let ascii = true;
      for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) ascii = false;
      if (ascii) {
        this.room(1 + n);
        this.buf[this.pos++] = 0xa0 | n;
        for (let i = 0; i < n; i++) this.buf[this.pos++] = s.charCodeAt(i);
        return;
      }
    }
    const b = utf8Encoder.encode(s);
    this.len(b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    this.bytes(b);
  }

  private bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  value(v: Payload | undefined, depth: number): void {
    switch (typeof v) {
      case "undefined":
        return this.u8(0xc0);
      case "boolean":
        return this.u8(v ? 0xc3 : 0xc2);
      case "string":
        return this.str(v);
      case "bigint":
        return this.int(v);
      case "number":
        if (!Number.isFinite(v)) throw new EncodeError(`${v} cannot be written in MessagePack`);
        // Integral values within 2^53 as integers, as Rust's msgpack::write_float; -0 stays a float.
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) return this.int(v);
        this.room(9);
        this.buf[this.pos++] = 0xcb;
        this.view.setFloat64(this.pos, v);
        this.pos += 8;
        return;
      case "object":
        break;
      default:
        throw new EncodeError(`a ${typeof v} cannot be written in MessagePack`);
    }
    if (v === null) return this.u8(0xc0);
    if (v instanceof Uint8Array) {
      this.len(v.length, 0, -1, 0xc4, 0xc5, 0xc6);
      return this.bytes(v);
    }
    if (depth >= MAX_FRAME_DEPTH * 2) throw new EncodeError(`value nested deeper than ${MAX_FRAME_DEPTH * 2} levels`);
    if (Array.isArray(v)) {
      const a = v as readonly Payload[];
      this.len(a.length, 0x90, 15, 0, 0xdc, 0xdd);
      for (const x of a) this.value(x, depth + 1);
      return;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) throw new EncodeError("only plain objects are MessagePack maps");
    const o = v as { readonly [key: string]: Payload | undefined };
    const keys = keysOf(o);
    let n = 0;
    for (const k of keys) if (o[k] !== undefined) n++;
    this.len(n, 0x80, 15, 0, 0xde, 0xdf);
    for (const k of keys) {
      const x = o[k];
      if (x === undefined) continue;
      this.str(k);
      this.value(x, depth + 1);
    }
  }
}

/** Decodes exactly one MessagePack value; anything malformed or trailing throws `WireError`. */
export function decodeMsgpack(bytes: Uint8Array): Wire {
  const r = new Reader(bytes);
  const v = r.value(0);
  if (r.pos !== bytes.length) throw new WireError("trailing bytes after the MessagePack value");
  return v;
}

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) throw new WireError("truncated MessagePack value");
    this.pos += n;
    return at;
  }
  private u8(): number {
    return this.buf[this.need(1)]!;
  }
  private u16(): number {
    return this.view.getUint16(this.need(2));
  }
  private u32(): number {
    return this.view.getUint32(this.need(4));
  }
  private str(n: number): string {
    const at = this.need(n);
    try {
      return utf8.decode(this.buf.subarray(at, at + n));
    } catch {
      throw new WireError("string is not valid UTF-8");
    }
  }
  private bin(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.slice(at, at + n);
  }
  private u64(): number | bigint {
    const v = this.view.getBigUint64(this.need(8));
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  private i64(): number | bigint {
    const v = this.view.getBigInt64(this.need(8));
    return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  value(depth: number): Wire {
    const m = this.u8();
    if (m <= 0x7f) return m;
    if (m >= 0xe0) return m - 0x100;
    if (m >= 0xa0 && m <= 0xbf) return this.str(m & 0x1f);
    if (m >= 0x80 && m <= 0x8f) return this.map(m & 0x0f, depth);
    if (m >= 0x90 && m <= 0x9f) return this.array(m & 0x0f, depth);
    switch (m) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.u8());
      case 0xc5: return this.bin(this.u16());
      case 0xc6: return this.bin(this.u32());
      case 0xca: return new F64(this.view.getFloat32(this.need(4)));
      case 0xcb: return new F64(this.view.getFloat64(this.need(8)));
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return this.u64();
      case 0xd0: return this.view.getInt8(this.need(1));
      case 0xd1: return this.view.getInt16(this.need(2));
      case 0xd2: return this.view.getInt32(this.need(4));
      case 0xd3: return this.i64();
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16(), depth);
      case 0xdd: return this.array(this.u32(), depth);
      case 0xde: return this.map(this.u16(), depth);
      case 0xdf: return this.map(this.u32(), depth);
      default:
        throw new WireError(`MessagePack marker 0x${m.toString(16)} is not allowed (extension or reserved)`);
    }
  }

  private enter(n: number, minBytes: number, depth: number): void {
    if (depth >= MAX_FRAME_DEPTH) throw new WireError(`nested deeper than ${MAX_FRAME_DEPTH} levels`);
    // Every element takes at least one byte: a length beyond the input is a lie, and checking
    // it first keeps allocation proportional to the frame (ENC-NO-PANIC).
    if (n * minBytes > this.buf.length - this.pos) throw new WireError("truncated MessagePack value");
  }

  private array(n: number, depth: number): Wire[] {
    this.enter(n, 1, depth);
    const out: Wire[] = new Array<Wire>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(n: number, depth: number): { [key: string]: Wire } {
    this.enter(n, 2, depth);
    const out: { [key: string]: Wire } = {};
    for (let i = 0; i < n; i++) {
      const k = this.value(depth + 1);
      if (typeof k !== "string") throw new WireError("map keys must be strings");
      if (Object.prototype.hasOwnProperty.call(out, k)) throw new WireError(`duplicate map key \`${k}\``);
      const v = this.value(depth + 1);
      if (k === "__proto__") Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      else out[k] = v;
    }
    return out;
  }
}
