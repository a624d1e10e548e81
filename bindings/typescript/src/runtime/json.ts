// JSON: a strict parser of text frames into the data model (integer literals stay integers,
// anything with a fraction or exponent is an `F64`, big integers become `bigint`, nesting is
// bounded) and the canonical writer (no whitespace, member order kept, numbers formatted as
// Courier's Rust codec formats them), per docs/spec/encoding.md §2 and §9.

import { encodeBase64 } from "./base64.js";
import { EncodeError, WireError } from "./errors.js";
import { MAX_FRAME_DEPTH } from "./msgpack.js";
import { F64, keysOf, type Payload, type Wire } from "./wire.js";

const I64_MIN = -(1n << 63n);
const U64_MAX = (1n << 64n) - 1n;

/** Parses one JSON text (surrounding whitespace allowed, nothing else). */
export function parseJson(text: string): Wire {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.pos !== text.length) p.fail("trailing characters after the JSON value");
  return v;
}

class Parser {
  pos = 0;
  constructor(private readonly s: string) {}

  fail(msg: string): never {
    throw new WireError(`${msg} at offset ${this.pos}`);
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }

  value(depth: number): Wire {
    const c = this.s.charCodeAt(this.pos);
    if (c === 0x22) return this.string();
    if (c === 0x7b) return this.object(depth);
    if (c === 0x5b) return this.array(depth);
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.s.startsWith("true", this.pos)) return (this.pos += 4), true;
    if (this.s.startsWith("false", this.pos)) return (this.pos += 5), false;
    if (this.s.startsWith("null", this.pos)) return (this.pos += 4), null;
    return this.fail(Number.isNaN(c) ? "unexpected end of input" : "unexpected character");
  }

  private enter(depth: number): void {
    if (depth >= MAX_FRAME_DEPTH) this.fail(`nested deeper than ${MAX_FRAME_DEPTH} levels`);
    this.pos++;
    this.ws();
  }

  private object(depth: number): Wire {
    this.enter(depth);
    const out: { [key: string]: Wire } = {};
    if (this.s.charCodeAt(this.pos) === 0x7d) return this.pos++, out;
    for (;;) {
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail("expected a string key");
      const k = this.string();
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x3a) this.fail("expected `:`");
      this.pos++;
      this.ws();
      const v = this.value(depth + 1);
      // Encoders never write a member twice; like Courier's Rust decoder, reject it (§2).
      if (Object.prototype.hasOwnProperty.call(out, k)) this.fail(`duplicate member \`${k}\``);
      if (k === "__proto__") Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      else out[k] = v;
      this.ws();
      const c = this.s.charCodeAt(this.pos++);
      if (c === 0x7d) return out;
      if (c !== 0x2c) this.fail("expected `,` or `}`");
      this.ws();
    }
  }

  private array(depth: number): Wire {
    this.enter(depth);
    const out: Wire[] = [];
    if (this.s.charCodeAt(this.pos) === 0x5d) return this.pos++, out;
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s.charCodeAt(this.pos++);
      if (c === 0x5d) return out;
      if (c !== 0x2c) this.fail("expected `,` or `]`");
      this.ws();
    }
  }

  private number(): Wire {
    const s = this.s;
    const start = this.pos;
    let float = false;
    if (s.charCodeAt(this.pos) === 0x2d) this.pos++;
    const digits = (): number => {
      const from = this.pos;
      while (this.pos < s.length && s.charCodeAt(this.pos) >= 0x30 && s.charCodeAt(this.pos) <= 0x39) this.pos++;
      return this.pos - from;
    };
    if (s.charCodeAt(this.pos) === 0x30) this.pos++;
    else if (digits() === 0) this.fail("invalid number");
    if (s.charCodeAt(this.pos) === 0x2e) {
      this.pos++;
      float = true;
      if (digits() === 0) this.fail("invalid number");
    }
    const e = s.charCodeAt(this.pos);
    if (e === 0x65 || e === 0x45) {
      this.pos++;
      float = true;
      const sign = s.charCodeAt(this.pos);
      if (sign === 0x2b || sign === 0x2d) this.pos++;
      if (digits() === 0) this.fail("invalid number");
    }
    const text = s.slice(start, this.pos);
    if (!float) {
      const n = Number(text);
      if (Number.isSafeInteger(n)) return n;
      const b = BigInt(text);
      // Integers beyond 64 bits are read as floats, as serde_json reads them.
      if (b >= I64_MIN && b <= U64_MAX) return b;
    }
    const f = Number(text);
    if (!Number.isFinite(f)) this.fail("number out of range");
    return new F64(f);
  }

  private string(): string {
    const s = this.s;
    this.pos++;
    let out = "";
    let from = this.pos;
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail("unterminated string");
      if (c === 0x22) {
        out += s.slice(from, this.pos++);
        return out;
      }
      if (c < 0x20) this.fail("control character in string");
      if (c >= 0xd800 && c <= 0xdfff) {
        // A lone surrogate in a JS string means the text was not valid UTF-8 (ws decodes
        // leniently in some runtimes); Courier strings are Unicode scalar values.
        const next = s.charCodeAt(this.pos + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) this.fail("invalid UTF-16 in string");
        this.pos += 2;
        continue;
      }
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += s.slice(from, this.pos);
      const esc = s.charCodeAt(this.pos + 1);
      this.pos += 2;
      switch (esc) {
        case 0x22: out += '"'; break;
        case 0x5c: out += "\\"; break;
        case 0x2f: out += "/"; break;
        case 0x62: out += "\b"; break;
        case 0x66: out += "\f"; break;
        case 0x6e: out += "\n"; break;
        case 0x72: out += "\r"; break;
        case 0x74: out += "\t"; break;
        case 0x75: {
          const hi = this.hex4();
          if (hi >= 0xd800 && hi <= 0xdbff) {
            if (s.charCodeAt(this.pos) !== 0x5c || s.charCodeAt(this.pos + 1) !== 0x75) this.fail("lone surrogate escape");
            this.pos += 2;
            const lo = this.hex4();
            if (lo < 0xdc00 || lo > 0xdfff) this.fail("invalid surrogate pair escape");
            out += String.fromCharCode(hi, lo);
          } else if (hi >= 0xdc00 && hi <= 0xdfff) {
            this.fail("lone surrogate escape");
          } else {
            out += String.fromCharCode(hi);
          }
          break;
        }
        default:
          this.fail("invalid escape");
      }
      from = this.pos;
    }
  }

  private hex4(): number {
    const h = this.s.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail("invalid \\u escape");
    this.pos += 4;
    return parseInt(h, 16);
  }
}

/**
 * Formats a float as Courier's Rust codec (serde_json) does: the shortest digits that read back
 * to the same double, `1.0` for integral values below 1e16, exponent form (`1e+16`, `1.5e-7`)
 * outside 1e-5..1e16.
 */
export function formatFloat(v: number): string {
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  const sign = v < 0 ? "-" : "";
  const [mant, exp] = Math.abs(v).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const len = digits.length;
  const kk = Number(exp) + 1; // 10^(kk-1) <= |v| < 10^kk
  const k = kk - len; // |v| = digits × 10^k
  let out: string;
  if (k >= 0 && kk <= 16) out = digits + "0".repeat(k) + ".0";
  else if (kk > 0 && kk <= 16) out = `${digits.slice(0, kk)}.${digits.slice(kk)}`;
  else if (kk > -5 && kk <= 0) out = `0.${"0".repeat(-kk)}${digits}`;
  else {
    const e = kk - 1;
    out = `${len === 1 ? digits : `${digits[0]}.${digits.slice(1)}`}e${e >= 0 ? "+" : ""}${e}`;
  }
  return sign + out;
}

/** Writes a value of the data model as canonical JSON (ENC-CANONICAL). */
export function stringifyJson(v: Payload): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return v.toString();
    case "number":
      if (!Number.isFinite(v)) throw new EncodeError(`${v} cannot be written in JSON`);
      // Integral values within 2^53 are integers, like the MessagePack form (msgpack.rs).
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? String(v) : formatFloat(v);
    case "object": {
      if (v === null) return "null";
      if (v instanceof Uint8Array) return `"${encodeBase64(v)}"`;
      if (Array.isArray(v)) return `[${(v as readonly Payload[]).map(stringifyJson).join(",")}]`;
      const o = v as { readonly [key: string]: Payload };
      let out = "{";
      for (const k of keysOf(o)) {
        const x = o[k];
        if (x === undefined) continue;
        if (out.length > 1) out += ",";
        out += `${JSON.stringify(k)}:${stringifyJson(x)}`;
      }
      return `${out}}`;
    }
    default:
      throw new EncodeError(`a ${typeof v} cannot be written in JSON`);
  }
}
