// @courier/client: the Courier protocol for TypeScript. Generated types (`v2`), byte-exact codecs
// for JSON, MessagePack and Protobuf (`Codec`), and a reconnecting, resuming client.

export * as v2 from "./gen/courier/v2/types.js";
export { reaction, backoffDelay, type Reaction, type BackoffOptions } from "./backoff.js";
export { CourierClient, type ClientEvents, type CourierLike, type ClientOptions, type ClientState, type Position, type TokenReason, type TokenSource } from "./client.js";
export { Codec, DecodeError, DEFAULT_MAX_MESSAGE_BYTES, V2_ONLY_TYPES, type CodecOptions, type DecodeErrorKind, type Frame } from "./codec.js";
export { ClientError, RequestError, type ClientErrorKind } from "./errors.js";
export { EncodeError, WireError, UnknownTypeError } from "./runtime/errors.js";
export type { Payload } from "./runtime/wire.js";
export {
  ENCODINGS,
  formatSubprotocol,
  parseMismatchReason,
  parseSubprotocol,
  type Encoding,
  type Subprotocol,
  type Version,
} from "./subprotocol.js";
export type { WebSocketFactory, WebSocketLike } from "./transport.js";
