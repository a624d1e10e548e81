// The tab's side of a shared connection: the `CourierLike` a tab uses. It keeps the tab's own
// subscriptions and positions, and holds the delivery guarantees itself: a message at or
// before the tab's position is dropped, one after a gap makes the tab ask the hub to subscribe
// again from its position, and messages that arrive before the hub's answer wait for it. After
// a leader change the tab registers again with the new hub, every channel from its position,
// and sends its unacknowledged publishes again with their ids (the server's dedupe window
// recognises a resend: DEDUP-WINDOW).

import type { ClientEvents, ClientState, CourierLike, Position, TokenReason, TokenSource } from "../client.js";
import { ClientError } from "../errors.js";
import { Emitter } from "../emitter.js";
import type * as v2 from "../gen/courier/v2/types.js";
import type { Payload } from "../runtime/wire.js";
import { packPayload, randomTag, unpackError, unpackPayload, type FromHub, type HubOptions, type HubRequest, type ToHub } from "./protocol.js";

/** A `ToHub` message before the tab's id is added. */
export type TabMessage = ToHub extends infer M ? (M extends ToHub ? Omit<M, "tab"> : never) : never;

interface TabChannel {
  position: Position | undefined;
  /** The hub answered the last `sub`: messages are checked against `position`. */
  acked: boolean;
  /** Messages that arrived before the answer (bounded). */
  early: v2.Message[];
  waiters: Array<{ resolve: (ack: v2.SubscribeAck) => void; reject: (e: Error) => void }>;
}

interface Pending {
  req: HubRequest;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** Messages kept while a subscription waits for the hub's answer. */
const EARLY_LIMIT = 10_000;

export class TabClient extends Emitter<ClientEvents> implements CourierLike {
  /** This tab's id among the tabs sharing the connection. */
  readonly tab = randomTag();
  private _state: ClientState = "connecting";
  private readonly channels = new Map<string, TabChannel>();
  /** Requests in flight; publishes survive a leader change, the others fail with it. */
  private readonly pending = new Map<number, Pending>();
  private rid = 0;
  private transport: ((msg: ToHub) => void) | undefined;
  private registered = false;

  constructor(
    private readonly options: HubOptions,
    private readonly token: TokenSource | undefined,
    private readonly onClose: () => void = () => undefined,
  ) {
    super();
  }

  /** The connection state of the shared connection. */
  get state(): ClientState {
    return this._state;
  }

  /** The last position this tab delivered on `channel`. */
  position(channel: string): Position | undefined {
    return this.channels.get(channel)?.position;
  }

  /** Connects the tab to a hub: `send` carries its messages; everything is registered anew. */
  attach(send: (msg: ToHub) => void): void {
    this.transport = send;
    this.register();
  }

  private send(msg: TabMessage): void {
    // Before `attach` nothing is sent: `register` sends what the tab's state needs.
    this.transport?.({ ...msg, tab: this.tab } as ToHub);
  }

  /** Registers with the (new) hub: hello, every channel from its position, publishes again. */
  register(): void {
    if (this._state === "closed" || !this.transport) return;
    this.send({ t: "hello", options: this.options, hasToken: this.token !== undefined });
    for (const [channel, c] of this.channels) {
      c.acked = false;
      this.send({ t: "sub", channel, from: c.position });
    }
    const first = !this.registered;
    this.registered = true;
    for (const [rid, p] of this.pending) {
      if (first || p.req.op === "publish") this.send({ t: "req", rid, req: p.req });
      else if (p.req.op !== "ephemeral") {
        this.pending.delete(rid);
        p.reject(new ClientError("disconnected", "the tab holding the connection went away"));
      }
    }
  }

  /** Handles a message from the hub. */
  receive(msg: FromHub): void {
    if (this._state === "closed" || (msg.to && !msg.to.includes(this.tab))) return;
    switch (msg.t) {
      case "leader":
        return this.register();
      case "state":
        if (msg.state !== this._state && msg.state !== "closed") (this._state = msg.state), this.emit("state", msg.state);
        else if (msg.state === "closed") this.close();
        return;
      case "open":
        return this.emit("open", { welcome: msg.welcome, subprotocol: msg.subprotocol });
      case "ack":
        return this.onAck(msg.channel, msg.ack);
      case "nack": {
        const c = this.channels.get(msg.channel);
        this.channels.delete(msg.channel);
        for (const w of c?.waiters.splice(0) ?? []) w.reject(unpackError(msg.error));
        return;
      }
      case "message":
        return this.deliver(msg.message);
      case "recovery":
        return this.onRecovery(msg.recovery);
      case "presence":
        if (this.channels.has(msg.event.channel)) this.emit("presence", msg.event);
        return;
      case "ephemeral":
        if (this.channels.has(msg.event.channel)) this.emit("ephemeral", msg.event);
        return;
      case "disconnect":
        return this.emit("disconnect", msg.event);
      case "error":
        return this.emit("error", unpackError(msg.error) as ClientError);
      case "res":
      case "rej": {
        const p = this.pending.get(msg.rid);
        if (!p) return;
        this.pending.delete(msg.rid);
        if (msg.t === "rej") p.reject(unpackError(msg.error));
        else p.resolve(p.req.op === "rpc" ? (msg.ok === null ? undefined : unpackPayload(msg.ok)) : msg.ok);
        return;
      }
      case "token?":
        return void this.answerToken(msg.rid, msg.reason);
    }
  }

  private async answerToken(rid: number, reason: TokenReason): Promise<void> {
    try {
      const t = this.token;
      const token = typeof t === "function" ? await t({ reason }) : t;
      this.send({ t: "token", rid, token, error: undefined });
    } catch (e) {
      this.send({ t: "token", rid, token: undefined, error: e instanceof Error ? e.message : String(e) });
    }
  }

  private onAck(channel: string, ack: v2.SubscribeAck): void {
    const c = this.channels.get(channel);
    if (!c) return;
    const pos: Position = { epoch: ack.position?.epoch ?? "", seq: ack.position?.seq ?? 0 };
    const rec = ack.recovery ?? { status: "RECOVERY_STATUS_UNSPECIFIED", reason: "RECOVERY_REASON_UNSPECIFIED", replayed: 0 };
    // As CourierClient: after a recovered resume the replay continues from the tab's position.
    if (!(rec.status === "RECOVERY_STATUS_RECOVERED" && c.position)) c.position = pos;
    c.acked = true;
    const outcome = { channel, status: rec.status, reason: rec.reason, replayed: rec.replayed, position: pos };
    this.emit("subscribed", outcome);
    if (rec.status !== "RECOVERY_STATUS_NOT_REQUESTED") this.emit("recovery", outcome);
    for (const w of c.waiters.splice(0)) w.resolve(ack);
    for (const m of c.early.splice(0)) this.deliver(m);
  }

  private onRecovery(r: ClientEvents["recovery"]): void {
    const c = this.channels.get(r.channel);
    if (!c || !c.acked) return; // a tab waiting for its own answer hears the outcome there
    if (r.status === "RECOVERY_STATUS_FAILED") {
      const p = c.position;
      // Nothing was lost for a tab already at or past the connection's new position.
      if (p && p.epoch === r.position.epoch && p.seq >= r.position.seq) return;
      c.position = { ...r.position };
    }
    this.emit("subscribed", r);
    this.emit("recovery", r);
  }

  private deliver(m: v2.Message): void {
    const c = this.channels.get(m.channel);
    if (!c) return; // ORDER-UNSUBSCRIBE-FINAL
    if (!c.acked || !c.position) {
      if (c.early.length >= EARLY_LIMIT) c.early.shift(); // a gap, found after the answer
      c.early.push(m);
      return;
    }
    const p = c.position;
    if (m.epoch === p.epoch && m.seq <= p.seq) return; // SEQ-CLIENT-DROP-OLD (and other tabs' replays)
    if (m.epoch !== p.epoch || m.seq > p.seq + 1) {
      // SEQ-CLIENT-GAP-DETECTION: ask again from this tab's position; keep what follows.
      this.emit("gap", { channel: m.channel, position: p, received: { epoch: m.epoch, seq: m.seq } });
      c.acked = false;
      c.early.push(m);
      this.send({ t: "sub", channel: m.channel, from: p });
      return;
    }
    c.position = { epoch: m.epoch, seq: m.seq };
    this.emit("message", m);
  }

  subscribe(channel: string, options: { from?: Position } = {}): Promise<v2.SubscribeAck> {
    if (this._state === "closed") return Promise.reject(new ClientError("closed", "the client was closed"));
    let c = this.channels.get(channel);
    if (!c) this.channels.set(channel, (c = { position: undefined, acked: false, early: [], waiters: [] }));
    const ch = c;
    const from = options.from;
    if (from && (!ch.position || from.epoch !== ch.position.epoch || from.seq < ch.position.seq)) ch.position = { ...from };
    const p = new Promise<v2.SubscribeAck>((resolve, reject) => ch.waiters.push({ resolve, reject }));
    ch.acked = false;
    this.send({ t: "sub", channel, from: ch.position });
    return p;
  }

  unsubscribe(channel: string): Promise<void> {
    if (this.channels.delete(channel)) this.send({ t: "unsub", channel });
    return Promise.resolve();
  }

  private call<T>(req: HubRequest): Promise<T> {
    if (this._state === "closed") return Promise.reject(new ClientError("closed", "the client was closed"));
    const rid = ++this.rid;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(rid, { req, resolve: resolve as (v: unknown) => void, reject });
      try {
        this.send({ t: "req", rid, req });
      } catch (e) {
        // Not cloneable: not a payload value.
        this.pending.delete(rid);
        reject(new ClientError("encode", e instanceof Error ? e.message : String(e)));
      }
    });
  }

  publish(channel: string, payload: Payload, options: { id?: string } = {}): Promise<v2.PublishAck> {
    return this.call<v2.PublishAck>({ op: "publish", channel, payload: packPayload(payload), id: options.id ?? randomTag() });
  }

  rpc(method: string, payload: Payload): Promise<Payload | undefined> {
    return this.call<Payload | undefined>({ op: "rpc", method, payload: packPayload(payload) });
  }

  presence(channel: string): Promise<v2.PresenceMember[]> {
    return this.call<v2.PresenceMember[]>({ op: "presence", channel });
  }

  ephemeral(channel: string, payload: Payload): void {
    this.call({ op: "ephemeral", channel, payload: packPayload(payload) }).catch(() => undefined);
  }

  /** Leaves the shared connection; the connection closes when the last tab leaves. */
  close(): void {
    if (this._state === "closed") return;
    try {
      this.send({ t: "bye" });
    } catch {
      // The hub is gone already.
    }
    this._state = "closed";
    this.emit("state", "closed");
    const err = new ClientError("closed", "the client was closed");
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const c of this.channels.values()) for (const w of c.waiters.splice(0)) w.reject(err);
    this.channels.clear();
    this.onClose();
  }
}
