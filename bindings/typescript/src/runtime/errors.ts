// Typed errors of the runtime: what went wrong decoding or encoding, and the close code the
// specification assigns (docs/spec/close-codes.md).

/**
 * A frame or value is not valid in its encoding (syntax, integer form or range, payload
 * shape). A peer receiving one closes with 4000 (CLOSE-MALFORMED); application code decoding
 * a typed payload reports it as bad input.
 */
export class WireError extends Error {
  override readonly name = "WireError";
  /** Where in the message the problem is (`Message.seq`), when known. */
  readonly path: string;
  /**
   * `malformed`: the bytes are not a valid encoding of the message; `invalid`: they are, but a
   * value breaks a rule the schema cannot express (a Protobuf `uint64` beyond 2^53-1, payload
   * bytes that are not one MessagePack value). Both close with 4000.
   */
  readonly kind: "malformed" | "invalid";
  constructor(message: string, path = "", kind: "malformed" | "invalid" = "malformed") {
    super(path ? `${path}: ${message}` : message);
    this.path = path;
    this.kind = kind;
  }
}

/**
 * An envelope without a `type` (or with no body in Protobuf), or with one this version does not
 * define. A peer receiving one closes with 4001 (ENC-UNKNOWN-TYPE): it cannot know what it was
 * asked to do.
 */
export class UnknownTypeError extends Error {
  override readonly name = "UnknownTypeError";
  /** The `type` found; empty when there was none. */
  readonly type: string;
  constructor(type: string) {
    super(type ? `unknown message type \`${type}\`` : "envelope has no type");
    this.type = type;
  }
}

/**
 * A value cannot be encoded: an integer out of range or not an integer, NaN in a payload, a
 * value outside the payload data model, a type the session's version lacks. A caller bug: fix
 * the value rather than retrying.
 */
export class EncodeError extends Error {
  override readonly name = "EncodeError";
}
