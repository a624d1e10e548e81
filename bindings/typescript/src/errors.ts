// Errors the client reports. `ClientError.kind` says what happened; `terminal` ones end the
// client (it will not reconnect), the others fail one operation.

import type * as v2 from "./gen/courier/v2/types.js";

/** What went wrong, machine-readable. */
export type ClientErrorKind =
  /** The client was closed by the application. */
  | "closed"
  /** The server closed with a terminal code (1002, 1007, 1009, 4000–4099); see `code`. */
  | "closed_by_server"
  /** Reconnecting failed `maxAttempts` times in a row. */
  | "gave_up"
  /** Credentials could not be obtained or were refused. */
  | "auth"
  /** The server broke the protocol (an unoffered subprotocol, an unexpected reply). */
  | "protocol"
  /** A frame from the server could not be decoded; the client reconnects. */
  | "decode"
  /** The connection dropped while the operation was in flight; retry it if it is idempotent. */
  | "disconnected"
  /** No reply within `requestTimeoutMs`. */
  | "timeout"
  /** The offline queue is full: slow down or wait for the connection. */
  | "queue_full"
  /** A queued publish outlived the dedupe window and was not resent (CLIENT-OFFLINE-EXPIRY). */
  | "expired"
  /** The message is larger than the server's `max_message_bytes`. */
  | "too_large"
  /** A value could not be encoded (see the message): fix the value. */
  | "encode"
  /** The server answered a request with an `error` (see `cause`). */
  | "request"
  /** The options are unusable (bad URL). */
  | "config";

/** An error of the client. */
export class ClientError extends Error {
  override readonly name = "ClientError";
  constructor(
    readonly kind: ClientErrorKind,
    message: string,
    /** True when the client has stopped for good. */
    readonly terminal = false,
    /** The close code, for closes. */
    readonly code?: number,
    /** The server's error reply, for `request`. */
    override readonly cause?: RequestError,
  ) {
    super(message);
  }
}

/** The server answered a request with an `error` envelope (ERR-SESSION-CONTINUES). */
export class RequestError extends Error {
  override readonly name = "RequestError";
  constructor(
    /** The `ErrorCode`, e.g. `ERROR_CODE_FORBIDDEN`. */
    readonly code: v2.ErrorCode,
    message: string,
    /** The channel the request named, if any. */
    readonly channel: string,
    /** Wait at least this long before retrying (ERR-RETRY-AFTER), when the server says so. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(`${code}: ${message}`);
  }
}
