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
  constructor(message: string, path = "") {
    super(path ? `${path}: ${message}` : message);
    this.path = path;
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
