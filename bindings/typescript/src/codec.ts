// One codec per negotiated subprotocol: encodes envelopes to frames and decodes frames to
// envelopes with typed errors carrying the close code the spec assigns. Both versions use the
// version 2 types; on a version 1 session, version 2 types are refused and version 2 fields
// dropped, exactly as a version 1 peer sees them (ENC-V1-ISOLATION, versions.md §3).

import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";

import * as proto from "./gen/courier/v2/proto.js";
import type { Envelope, EnvelopeInit } from "./gen/courier/v2/types.js";
import * as wire from "./gen/courier/v2/wire.js";
import { EncodeError, UnknownTypeError, WireError } from "./runtime/errors.js";
import { parseJson, stringifyJson } from "./runtime/json.js";
import { decodeMsgpack, encodeMsgpack } from "./runtime/msgpack.js";
import { guardProto } from "./runtime/proto.js";
import { formatSubprotocol, isText, type Subprotocol } from "./subprotocol.js";

/** Default largest frame (64 KiB), the reference server's `max_message_bytes`. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

/** Message types that exist only in version 2. */
export const V2_ONLY_TYPES: readonly string[] = ["reauth_request", "batch"];

/** Why a frame could not be decoded; `closeCode` is what a receiver closes with. */
export type DecodeErrorKind =
  /** Larger than the frame limit: 1009 (CLOSE-OVERSIZE). */
  | "too_large"
  /** Text frame on a binary encoding or the reverse: 4000 (ENC-FRAME-TYPE). */
  | "wrong_frame_kind"
  /** Not a valid envelope in the encoding: 4000 (CLOSE-MALFORMED). */
  | "malformed"
  /** Well-formed, but a value breaks an encoding rule (53-bit integers, payload shape): 4000. */
  | "invalid"
  /** Missing or unknown `type`: 4001 (ENC-UNKNOWN-TYPE). */
  | "unknown_type";

/** A frame that could not be decoded. Close with `closeCode`; do not retry the frame. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
  readonly kind: DecodeErrorKind;
  /** The close code the spec assigns: 1009, 4000 or 4001. */
  readonly closeCode: 1009 | 4000 | 4001;
  constructor(kind: DecodeErrorKind, message: string) {
    super(message);
    this.kind = kind;
    this.closeCode = kind === "too_large" ? 1009 : kind === "unknown_type" ? 4001 : 4000;
  }
}

/** A frame as a WebSocket delivers it: text, or binary in any of the usual containers. */
export type Frame = string | Uint8Array | ArrayBuffer;

/** Codec options. */
export interface CodecOptions {
  /** Largest frame `decode` accepts, in bytes. Default 64 KiB, the reference server's limit. */
  maxMessageBytes?: number;
}

const utf8Encoder = /* @__PURE__ */ new TextEncoder();
const utf8Decoder = /* @__PURE__ */ new TextDecoder("utf-8", { fatal: true });

/** UTF-8 length of a string, without encoding it. */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // 2-byte sequences add 1, 3-byte ones 2; each surrogate half adds 1 (a pair is 4 bytes).
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
  }
  return n;
}

/**
 * Encodes and decodes envelopes of one subprotocol.
 *
 * ```ts
 * const codec = new Codec({ version: 2, encoding: "msgpack" });
 * const frame = codec.encode({ type: "ping", ts: 7 });
 * const env = codec.decode(frame); // { type: "ping", ts: 7 }
 * ```
 */
export class Codec {
  readonly subprotocol: Subprotocol;
  readonly maxMessageBytes: number;

  constructor(subprotocol: Subprotocol, options: CodecOptions = {}) {
    this.subprotocol = subprotocol;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** The subprotocol name (`courier.v2.json`). */
  get name(): string {
    return formatSubprotocol(this.subprotocol);
  }

  /** Encodes one envelope: a string (text frame) for JSON, bytes otherwise. Throws `EncodeError`. */
  encode(env: EnvelopeInit): string | Uint8Array {
    const e = this.forVersion(env);
    switch (this.subprotocol.encoding) {
      case "json":
        return stringifyJson(wire.writeEnvelope(e));
      case "msgpack":
        return encodeMsgpack(wire.writeEnvelope(e));
      case "proto": {
        const w = new BinaryWriter();
        proto.encodeEnvelope(e, w);
        return w.finish();
      }
    }
  }

  /** Encodes one envelope as bytes (UTF-8 for JSON), e.g. to compare with test vectors. */
  encodeBytes(env: EnvelopeInit): Uint8Array {
    const f = this.encode(env);
    return typeof f === "string" ? utf8Encoder.encode(f) : f;
  }

  /**
   * Decodes one frame. A string is a text frame and bytes a binary frame, checked against the
   * encoding (ENC-FRAME-TYPE) unless `text` says otherwise (`null`: the transport has no frame
   * kinds, bytes of a JSON frame are UTF-8). Throws `DecodeError`.
   */
  decode(frame: Frame, text?: boolean | null): Envelope {
    const bytes = frame instanceof ArrayBuffer ? new Uint8Array(frame) : frame;
    const isTextFrame = text === undefined ? typeof bytes === "string" : text;
    const enc = this.subprotocol.encoding;
    if (isTextFrame !== null && isTextFrame !== isText(enc)) {
      throw new DecodeError("wrong_frame_kind", `${formatSubprotocol(this.subprotocol)} expects ${isText(enc) ? "text" : "binary"} frames`);
    }
    const size = typeof bytes === "string" ? utf8Length(bytes) : bytes.length;
    if (size > this.maxMessageBytes) {
      throw new DecodeError("too_large", `frame of ${size} bytes exceeds the limit of ${this.maxMessageBytes} bytes`);
    }
    let env: Envelope;
    try {
      switch (enc) {
        case "json": {
          let s: string;
          if (typeof bytes === "string") s = bytes;
          else {
            try {
              s = utf8Decoder.decode(bytes);
            } catch {
              throw new WireError("frame is not valid UTF-8");
            }
          }
          env = wire.readEnvelope(parseJson(s));
          break;
        }
        case "msgpack":
          env = wire.readEnvelope(decodeMsgpack(typeof bytes === "string" ? utf8Encoder.encode(bytes) : bytes));
          break;
        case "proto": {
          const b = typeof bytes === "string" ? utf8Encoder.encode(bytes) : bytes;
          env = guardProto(() => {
            const r = new BinaryReader(b);
            return proto.decodeEnvelope(r, r.len, 0);
          });
          break;
        }
      }
    } catch (e) {
      if (e instanceof UnknownTypeError) throw new DecodeError("unknown_type", e.message);
      if (e instanceof WireError) throw new DecodeError(e.kind, `${e.kind} ${enc} frame: ${e.message}`);
      throw new DecodeError("malformed", `malformed ${enc} frame: ${e instanceof Error ? e.message : String(e)}`);
    }
    return this.checkVersion(env);
  }

  /** The envelope as a peer of this session's version may receive it. */
  private forVersion(env: EnvelopeInit): EnvelopeInit {
    if (this.subprotocol.version === 2) return env;
    if (V2_ONLY_TYPES.includes(env.type)) {
      throw new EncodeError(`message type \`${env.type}\` does not exist in protocol 1`);
    }
    return stripV2(env) as EnvelopeInit;
  }

  private checkVersion(env: Envelope): Envelope {
    if (this.subprotocol.version === 2) return env;
    if (V2_ONLY_TYPES.includes(env.type)) throw new DecodeError("unknown_type", `unknown message type \`${env.type}\``);
    return stripV2(env) as Envelope;
  }
}

/** Drops every field version 1 does not define (a v1 decoder ignores them as unknown). */
function stripV2(env: EnvelopeInit): EnvelopeInit {
  switch (env.type) {
    case "error":
    case "disconnect": {
      if (env.retry_after_ms === undefined) return env;
      const { retry_after_ms: _, ...rest } = env;
      return rest;
    }
    case "welcome": {
      if (!env.limits?.max_batch && !env.dedupe_max_per_channel) return env;
      const { dedupe_max_per_channel: _, ...rest } = env;
      return env.limits?.max_batch ? { ...rest, limits: { ...env.limits, max_batch: 0 } } : rest;
    }
    default:
      return env;
  }
}
