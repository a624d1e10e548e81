// The messages between the tabs of one origin and the hub that owns the shared connection (in a
// SharedWorker, or in the leader tab), and how values cross the structured clone between them:
// errors keep their kind and code, payload maps written by generated code keep their key order.

import type { ClientEvents, ClientOptions, ClientState, Position, TokenReason } from "../client.js";
import { ClientError, RequestError, type ClientErrorKind } from "../errors.js";
import type * as v2 from "../gen/courier/v2/types.js";
import { KEY_ORDER, markKeyOrder, type KeyOrder, type Payload } from "../runtime/wire.js";
import type { Subprotocol } from "../subprotocol.js";

/** The client options a hub can receive: everything but functions (`token`, `WebSocket`). */
export type HubOptions = Omit<ClientOptions, "token" | "WebSocket">;

/** A request a tab asks the hub to carry out on the connection. */
export type HubRequest =
  | { op: "publish"; channel: string; payload: PackedPayload; id: string }
  | { op: "rpc"; method: string; payload: PackedPayload }
  | { op: "presence"; channel: string }
  | { op: "ephemeral"; channel: string; payload: PackedPayload };

/** Tab → hub. Every message names its tab. */
export type ToHub = { tab: string } & (
  | { t: "hello"; options: HubOptions; hasToken: boolean }
  | { t: "sub"; channel: string; from: Position | undefined }
  | { t: "unsub"; channel: string }
  | { t: "req"; rid: number; req: HubRequest }
  | { t: "token"; rid: number; token: string | undefined; error: string | undefined }
  | { t: "bye" }
);

/** Hub → tabs. `to` lists the tabs concerned; absent, every tab. `hub` names the hub. */
export type FromHub = { hub: string; to?: string[] } & (
  | { t: "leader" }
  | { t: "state"; state: ClientState }
  | { t: "open"; welcome: v2.Welcome; subprotocol: Subprotocol }
  | { t: "ack"; channel: string; ack: v2.SubscribeAck }
  | { t: "nack"; channel: string; error: PackedError }
  | { t: "message"; message: v2.Message }
  | { t: "recovery"; recovery: ClientEvents["recovery"] }
  | { t: "presence"; event: v2.PresenceEvent }
  | { t: "ephemeral"; event: v2.Ephemeral }
  | { t: "disconnect"; event: ClientEvents["disconnect"] }
  | { t: "error"; error: PackedError }
  | { t: "res"; rid: number; ok: PackedPayload | v2.PublishAck | v2.PresenceMember[] | null }
  | { t: "rej"; rid: number; error: PackedError }
  | { t: "token?"; rid: number; reason: TokenReason }
);

/** An error as it crosses the clone. */
export interface PackedError {
  name: string;
  message: string;
  kind?: ClientErrorKind;
  terminal?: boolean;
  code?: number;
  request?: { code: v2.ErrorCode; message: string; channel: string; retryAfterMs: number | undefined };
}

export function packError(e: unknown): PackedError {
  if (e instanceof ClientError) {
    const c = e.cause;
    return {
      name: e.name,
      message: e.message,
      kind: e.kind,
      terminal: e.terminal,
      code: e.code,
      request: c ? { code: c.code, message: c.message.replace(`${c.code}: `, ""), channel: c.channel, retryAfterMs: c.retryAfterMs } : undefined,
    };
  }
  if (e instanceof RequestError) {
    return { name: e.name, message: e.message, request: { code: e.code, message: e.message.replace(`${e.code}: `, ""), channel: e.channel, retryAfterMs: e.retryAfterMs } };
  }
  return { name: "Error", message: e instanceof Error ? e.message : String(e) };
}

export function unpackError(p: PackedError): Error {
  const r = p.request ? new RequestError(p.request.code, p.request.message, p.request.channel, p.request.retryAfterMs) : undefined;
  if (p.kind) return new ClientError(p.kind, p.message, p.terminal ?? false, p.code, r);
  return r ?? new Error(p.message);
}

/**
 * A payload as it crosses the clone. A map object written by generated code carries a
 * non-enumerable key-order mark the clone would drop, and without it integer-like keys would be
 * written in JavaScript's order instead of key order: such objects travel as a `Map` whose first
 * key is the number 0 (payload keys are strings) holding the order.
 */
export type PackedPayload = unknown;

export function packPayload(v: Payload): PackedPayload {
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return (v as readonly Payload[]).map(packPayload);
  const o = v as { readonly [key: string]: Payload };
  const order = (o as { [KEY_ORDER]?: KeyOrder })[KEY_ORDER];
  if (order === undefined) {
    const out: { [key: string]: PackedPayload } = {};
    for (const k of Object.keys(o)) Object.defineProperty(out, k, { value: packPayload(o[k]!), enumerable: true, writable: true, configurable: true });
    return out;
  }
  const m = new Map<string | number, unknown>([[0, order]]);
  for (const k of Object.keys(o)) m.set(k, packPayload(o[k]!));
  return m;
}

export function unpackPayload(v: PackedPayload): Payload {
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v as Payload;
  if (Array.isArray(v)) return v.map(unpackPayload);
  const out: { [key: string]: Payload } = {};
  const set = (k: string, x: unknown): void =>
    void Object.defineProperty(out, k, { value: unpackPayload(x), enumerable: true, writable: true, configurable: true });
  if (v instanceof Map) {
    for (const [k, x] of v as Map<unknown, unknown>) if (typeof k === "string") set(k, x);
    markKeyOrder(out, (v as Map<unknown, unknown>).get(0) as KeyOrder);
    return out;
  }
  const o = v as { [key: string]: unknown };
  for (const k of Object.keys(o)) set(k, o[k]);
  return out;
}

/** Where a hub's messages go: a SharedWorker port, a BroadcastChannel, or a tab in the same page. */
export interface Link {
  post(msg: FromHub): void;
}

/** A random id for a tab or a hub. */
export function randomTag(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
