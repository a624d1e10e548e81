// MessagePack: a strict reader of frames into the data model (ints and floats kept apart, only
// string map keys, no extension types, bounded nesting and allocation), and the canonical
// writer, `@msgpack/msgpack`'s encoder (smallest headers, integers minimal, other numbers
// float 64), which produces the bytes Courier's Rust codec produces (docs/spec/encoding.md §4).

import { Encoder } from "@msgpack/msgpack";

import { WireError } from "./errors.js";
import { F64, type Payload, type Wire } from "./wire.js";

/** Deepest nesting of arrays and maps a frame may have (encoding.md §7). */
export const MAX_FRAME_DEPTH = 128;

const utf8 = /* @__PURE__ */ new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
let encoder: Encoder | undefined;

/** Encodes a value of the data model canonically. */
export function encodeMsgpack(value: Payload): Uint8Array {
  encoder ??= new Encoder({ useBigInt64: true, ignoreUndefined: true, maxDepth: MAX_FRAME_DEPTH * 2 });
  return encoder.encode(value);
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
