// The Courier client: one logical session over a sequence of WebSocket connections. It offers
// versions and encodings, authenticates with the first message and refreshes credentials,
// reconnects per close code with jittered backoff, resumes every channel from its last
// position, detects gaps, drops duplicates, queues publishes while offline and resends them
// with their original ids, and applies backpressure through `bufferedAmount`.

import { backoffDelay, reaction, type BackoffOptions, type Reaction } from "./backoff.js";
import { Codec, DecodeError } from "./codec.js";
import { ClientError, RequestError } from "./errors.js";
import { Emitter } from "./emitter.js";
import type * as v2 from "./gen/courier/v2/types.js";
import type { Payload } from "./runtime/wire.js";
import { formatSubprotocol, parseMismatchReason, parseSubprotocol, type Encoding, type Subprotocol, type Version } from "./subprotocol.js";
import { defaultWebSocket, frameData, type WebSocketFactory, type WebSocketLike } from "./transport.js";

/**
 * Why the client asks for credentials: `connect` before a connection (the first and every
 * reconnect), `expired` after a 4300–4399 close (CLOSE-REFRESH: a new token is required),
 * `expiring` before `token_expires_at_ms` (AUTH-REFRESH-EARLY), `reauth` on the server's
 * `reauth_request` (AUTH-REAUTH-CLIENT), `refresh` when the application calls `refresh()`.
 */
export type TokenReason = "connect" | "expired" | "expiring" | "reauth" | "refresh";

/**
 * Credentials for `hello` and `refresh`: a token, or a function fetching a fresh one, told why
 * it is asked. `undefined` (or `""`) means "no credentials": anonymous on `connect`, a terminal
 * error on `expired`, no `refresh` otherwise.
 */
export type TokenSource = string | ((request: { reason: TokenReason }) => string | undefined | Promise<string | undefined>);

/** Client configuration. Every field but `url` is optional; defaults follow the spec. */
export interface ClientOptions {
  /** WebSocket URL of the server (`wss://host/ws`); it carries no credentials (AUTH-FIRST-MESSAGE). */
  url: string;
  /** Credentials; a function is called before every connection and refresh. Default: anonymous. */
  token?: TokenSource;
  /** Encodings to offer, most preferred first. Default `["msgpack", "json", "proto"]`. */
  encodings?: readonly Encoding[];
  /** Versions to offer, most preferred first. Default `[2, 1]`. */
  versions?: readonly Version[];
  /**
   * The exact subprotocols to offer, in this order (`["courier.v2.json", "courier.v1.json"]`);
   * when set, `versions` and `encodings` are not used. Every name must be a Courier subprotocol.
   */
  subprotocols?: readonly string[];
  /** Optional features to ask for. Default `["batch", "reauth"]` (both handled transparently). */
  features?: readonly string[];
  /** `hello.client`. Default `courier-ts/0.1.0`. */
  clientName?: string;
  /** Reconnect backoff (base 1000 ms, cap 30 s, no attempt limit, reconnect-now 0–1000 ms). */
  backoff?: BackoffOptions;
  /** Publishes kept while disconnected (CLIENT-OFFLINE-QUEUE). Default 1000. */
  offlineQueueSize?: number;
  /** Time a request (subscribe, rpc, ...) waits for its reply, in ms. Default 10 000. */
  requestTimeoutMs?: number;
  /** Recently delivered (channel, id) pairs remembered for deduplication. Default 10 000. */
  dedupeSize?: number;
  /** Refresh this long before `token_expires_at_ms` (AUTH-REFRESH-EARLY), in ms. Default 30 000. */
  refreshMarginMs?: number;
  /** Stop sending while the socket buffers more than this many bytes. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** WebSocket implementation. Default: the global `WebSocket`, else the `ws` package. */
  WebSocket?: WebSocketFactory;
}

/** A position in a channel's stream. */
export interface Position {
  readonly epoch: string;
  readonly seq: number;
}

/** Connection state, reported by the `state` event. */
export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** Events and their payloads. */
export interface ClientEvents {
  /** The connection state changed. */
  state: ClientState;
  /** A session opened; the server's `welcome` and the negotiated subprotocol. */
  open: { welcome: v2.Welcome; subprotocol: Subprotocol };
  /** A channel message, in order, without gaps or duplicates. */
  message: v2.Message;
  /**
   * Every `subscribe_ack` the client applied: the first subscription, and each resubscription
   * after a reconnect or a gap, with its recovery outcome (`RECOVERY_STATUS_NOT_REQUESTED` for a
   * subscription without `resume`) and the ack's position.
   */
  subscribed: { channel: string; status: v2.RecoveryStatus; reason: v2.RecoveryReason; replayed: number; position: Position };
  /** The outcome of a (re)subscription; `failed` means messages may have been lost (RESUME-CLIENT-REPORT). */
  recovery: { channel: string; status: v2.RecoveryStatus; reason: v2.RecoveryReason; replayed: number; position: Position };
  /** A gap was detected; the client resubscribes from `position` (SEQ-CLIENT-GAP-DETECTION). */
  gap: { channel: string; position: Position; received: Position };
  /** A member joined or left a channel. */
  presence: v2.PresenceEvent;
  /** A transient message. */
  ephemeral: v2.Ephemeral;
  /**
   * The connection closed; `reaction` is what the client does about it. When it reconnects,
   * `retryInMs` is the wait and `attempt` the number of the coming attempt (1 for the first
   * retry since the last stable session); both are `undefined` when it stops.
   */
  disconnect: { code: number; reason: string; reaction: Reaction; retryInMs: number | undefined; attempt: number | undefined };
  /** An error: `terminal` ones end the client; others report a failed operation. */
  error: ClientError;
}

/**
 * What the React hooks and the tab-shared client need of a client: `CourierClient` and
 * `SharedCourierClient` (`@courier/client/shared`) both have it.
 */
export interface CourierLike {
  readonly state: ClientState;
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void;
  subscribe(channel: string, options?: { from?: Position }): Promise<v2.SubscribeAck>;
  unsubscribe(channel: string): Promise<void>;
  publish(channel: string, payload: Payload, options?: { id?: string }): Promise<v2.PublishAck>;
  presence(channel: string): Promise<v2.PresenceMember[]>;
  rpc(method: string, payload: Payload): Promise<Payload | undefined>;
  ephemeral(channel: string, payload: Payload): void;
  close(): void;
}

interface ChannelState {
  /** The last delivered message's position (SEQ-CLIENT-GAP-DETECTION). */
  position: Position | undefined;
  /** Waiting for a `subscribe_ack`: messages are discarded meanwhile. */
  awaitingAck: boolean;
  subscribers: Array<{ resolve: (ack: v2.SubscribeAck) => void; reject: (e: Error) => void }>;
}

interface PendingPublish {
  readonly env: v2.PublishInit & { id: string; channel: string };
  readonly resolve: (ack: v2.PublishAck) => void;
  readonly reject: (e: Error) => void;
  /** When it was first sent, for CLIENT-OFFLINE-EXPIRY. */
  firstSentAt: number | undefined;
  sent: boolean;
}

interface PendingRequest {
  readonly resolve: (env: v2.Envelope) => void;
  readonly reject: (e: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

const now = (): number => Date.now();

/**
 * A Courier client.
 *
 * ```ts
 * const client = new CourierClient({ url: "wss://example.com/ws", token: () => getJwt() });
 * client.on("message", (m) => console.log(m.channel, m.seq, m.payload));
 * await client.subscribe("chat");
 * await client.publish("chat", { text: "hi" });
 * ```
 */
export class CourierClient extends Emitter<ClientEvents> implements CourierLike {
  private readonly o: Required<Omit<ClientOptions, "token" | "WebSocket" | "backoff" | "subprotocols">> & { backoff: BackoffOptions; subprotocols: string[] | undefined };
  private tokenSource: TokenSource | undefined;
  private factory: WebSocketFactory | undefined;
  private ws: WebSocketLike | undefined;
  private codec: Codec | undefined;
  private welcome: v2.Welcome | undefined;
  private _state: ClientState = "idle";
  private attempt = 0;
  private openedAt = 0;
  private lastFrameAt = 0;
  private notice: { code: number; reason: string; retry: number | undefined } | undefined;
  private token = "";
  private forceRefresh = false;
  private readonly channels = new Map<string, ChannelState>();
  private readonly outbox: PendingPublish[] = [];
  private readonly requests = new Map<string, PendingRequest>();
  private readonly delivered = new Map<string, true>();
  private readonly sendQueue: Array<string | Uint8Array> = [];
  private timers: Array<ReturnType<typeof setTimeout>> = [];
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private nextId = 0;
  private socketError = "";

  constructor(options: ClientOptions) {
    super();
    this.tokenSource = options.token;
    this.factory = options.WebSocket;
    this.o = {
      url: options.url,
      encodings: options.encodings ?? ["msgpack", "json", "proto"],
      versions: options.versions ?? [2, 1],
      subprotocols: options.subprotocols ? [...options.subprotocols] : undefined,
      features: options.features ?? ["batch", "reauth"],
      clientName: options.clientName ?? "courier-ts/0.1.0",
      backoff: options.backoff ?? {},
      offlineQueueSize: options.offlineQueueSize ?? 1000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      dedupeSize: options.dedupeSize ?? 10_000,
      refreshMarginMs: options.refreshMarginMs ?? 30_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 1 << 20,
    };
    const bad = this.o.subprotocols?.find((name) => !parseSubprotocol(name));
    if (bad !== undefined) throw new ClientError("config", `not a Courier subprotocol: ${JSON.stringify(bad)}`);
  }

  /** The connection state. */
  get state(): ClientState {
    return this._state;
  }

  /** The negotiated subprotocol of the open session, if any. */
  get subprotocol(): Subprotocol | undefined {
    return this._state === "open" ? this.codec?.subprotocol : undefined;
  }

  /** The tracked position of a channel (the last message delivered). */
  position(channel: string): Position | undefined {
    return this.channels.get(channel)?.position;
  }

  /** Bytes waiting to be sent: the socket's buffer plus frames held back by backpressure. */
  get bufferedAmount(): number {
    let held = 0;
    for (const f of this.sendQueue) held += typeof f === "string" ? f.length : f.length;
    return (this.ws?.bufferedAmount ?? 0) + held;
  }

  /** Opens the session (idempotent); resolves once the first `welcome` arrived. */
  connect(): Promise<void> {
    if (this._state === "closed") return Promise.reject(new ClientError("closed", "the client was closed"));
    const opened = new Promise<void>((resolve, reject) => {
      const offOpen = this.on("open", () => (offOpen(), offErr(), resolve()));
      const offErr = this.on("error", (e) => {
        if (e.terminal) (offOpen(), offErr(), reject(e));
      });
    });
    if (this._state === "idle") void this.dial();
    else if (this._state === "open") return Promise.resolve();
    return opened;
  }

  /** Ends the session with 1000 and stops reconnecting (CLOSE-CLIENT-NORMAL). */
  close(): void {
    if (this._state === "closed") return;
    this.setState("closed");
    this.clearTimers();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      try {
        ws.close(1000, "client closed");
      } catch {
        // Already closing.
      }
    }
    const err = new ClientError("closed", "the client was closed");
    for (const p of this.outbox.splice(0)) p.reject(err);
    for (const [id, r] of this.requests) (clearTimeout(r.timer), this.requests.delete(id), r.reject(err));
    for (const c of this.channels.values()) for (const s of c.subscribers.splice(0)) s.reject(err);
  }

  /**
   * Subscribes to a channel; resolves with the `subscribe_ack`. After a reconnect, the client
   * resubscribes by itself with `resume` (RESUME-CLIENT-RESUBSCRIBE).
   *
   * `from` resumes from a position known from elsewhere (stored by the application, or handed
   * over by another tab): messages after it are replayed (RESUME-EXACT-RANGE) and the `recovery`
   * event says whether that succeeded. On a channel already subscribed, `from` behind the
   * current position subscribes again from there, and the replayed messages are delivered again.
   */
  subscribe(channel: string, options: { from?: Position } = {}): Promise<v2.SubscribeAck> {
    let c = this.channels.get(channel);
    if (!c) this.channels.set(channel, (c = { position: undefined, awaitingAck: true, subscribers: [] }));
    const ch = c;
    const from = options.from;
    if (from && (!ch.position || from.epoch !== ch.position.epoch || from.seq < ch.position.seq)) {
      ch.position = { epoch: from.epoch, seq: from.seq };
      // The caller asked for these messages again: forget that they were delivered.
      const prefix = `${channel}\u0000`;
      for (const key of [...this.delivered.keys()]) if (key.startsWith(prefix)) this.delivered.delete(key);
    }
    const p = new Promise<v2.SubscribeAck>((resolve, reject) => ch.subscribers.push({ resolve, reject }));
    if (this._state === "open") this.sendSubscribe(channel, ch);
    else if (this._state === "idle") void this.dial();
    return p;
  }

  /** Unsubscribes; no message of the channel is delivered afterwards (ORDER-UNSUBSCRIBE-FINAL). */
  async unsubscribe(channel: string): Promise<void> {
    if (!this.channels.delete(channel) || this._state !== "open") return;
    await this.request({ type: "unsubscribe", id: this.id("u"), channel });
  }

  /**
   * Publishes a payload; resolves with the `publish_ack`. While disconnected the publish waits
   * in the offline queue and is sent, with the same id, once a session is open; a full queue
   * rejects at once (CLIENT-OFFLINE-QUEUE).
   */
  publish(channel: string, payload: Payload, options: { id?: string } = {}): Promise<v2.PublishAck> {
    if (this._state === "closed") return Promise.reject(new ClientError("closed", "the client was closed"));
    if (this.outbox.length >= this.o.offlineQueueSize) {
      return Promise.reject(new ClientError("queue_full", `offline queue full (${this.o.offlineQueueSize} publishes)`));
    }
    const id = options.id ?? randomId();
    return new Promise<v2.PublishAck>((resolve, reject) => {
      const pending: PendingPublish = { env: { id, channel, payload }, resolve, reject, firstSentAt: undefined, sent: false };
      this.outbox.push(pending);
      if (this._state === "open") this.sendPublish(pending);
      else if (this._state === "idle") void this.dial();
    });
  }

  /** Calls a server method (the `rpc` feature); fails on timeout or when the connection drops. */
  async rpc(method: string, payload: Payload): Promise<Payload | undefined> {
    const env = await this.request({ type: "rpc_request", id: this.id("c"), method, payload });
    return env.type === "rpc_response" ? env.payload : undefined;
  }

  /** Asks who is present on a subscribed channel (the `presence` feature). */
  async presence(channel: string): Promise<v2.PresenceMember[]> {
    const env = await this.request({ type: "presence_query", id: this.id("q"), channel });
    return env.type === "presence" ? env.members : [];
  }

  /** Sends a transient message to a channel's other subscribers (the `ephemeral` feature). */
  ephemeral(channel: string, payload: Payload): void {
    this.send({ type: "ephemeral", channel, payload });
  }

  /** Fetches fresh credentials and puts them in force without reconnecting (AUTH-REFRESH). */
  refresh(): Promise<v2.Refreshed> {
    return this.refreshFor("refresh");
  }

  private async refreshFor(reason: TokenReason): Promise<v2.Refreshed> {
    const token = await this.fetchToken(reason);
    if (!token) throw new ClientError("auth", "no credentials to refresh with");
    this.token = token;
    const env = await this.request({ type: "refresh", id: this.id("r"), token: this.token });
    if (env.type !== "refreshed") throw new ClientError("protocol", "unexpected reply to refresh");
    this.scheduleRefresh(env.token_expires_at_ms);
    return env;
  }

  // ---- connection lifecycle -------------------------------------------------------------

  private setState(s: ClientState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit("state", s);
  }

  private offers(): string[] {
    if (this.o.subprotocols) return [...this.o.subprotocols];
    const out: string[] = [];
    for (const version of this.o.versions) for (const encoding of this.o.encodings) out.push(formatSubprotocol({ version, encoding }));
    return out;
  }

  private async fetchToken(reason: TokenReason): Promise<string> {
    const t = this.tokenSource;
    return (typeof t === "function" ? await t({ reason }) : t) ?? "";
  }

  private async dial(): Promise<void> {
    if (this._state === "closed") return;
    this.setState(this.attempt === 0 && !this.welcome ? "connecting" : "reconnecting");
    try {
      this.factory ??= await defaultWebSocket();
      if (this.forceRefresh || typeof this.tokenSource === "function" || !this.token) {
        // CLOSE-REFRESH: a 43xx close needs new credentials before reconnecting.
        if (this.forceRefresh && typeof this.tokenSource !== "function") {
          throw new ClientError("auth", "credentials expired and no token function can provide new ones", true);
        }
        const token = await this.fetchToken(this.forceRefresh ? "expired" : "connect");
        if (this.forceRefresh && !token) {
          throw new ClientError("auth", "no new credentials could be obtained after a credentials close", true);
        }
        this.token = token;
        this.forceRefresh = false;
      }
    } catch (e) {
      this.fail(e instanceof ClientError ? e : new ClientError("auth", `credentials: ${String(e)}`, true));
      return;
    }
    if ((this._state as ClientState) === "closed") return;
    const offers = this.offers();
    let ws: WebSocketLike;
    try {
      ws = new this.factory(this.o.url, offers);
    } catch (e) {
      this.fail(new ClientError("config", `cannot open ${this.o.url}: ${String(e)}`, true));
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.notice = undefined;
    this.welcome = undefined;
    ws.onopen = () => this.onOpen(ws, offers);
    ws.onmessage = (ev) => this.onFrame(ws, ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    this.socketError = "";
    ws.onerror = (ev) => {
      // The close event that follows carries the code; keep the message for VER-CLIENT-VERIFY.
      const m = (ev as { message?: unknown } | undefined)?.message;
      this.socketError = typeof m === "string" ? m : "";
    };
  }

  private onOpen(ws: WebSocketLike, offers: string[]): void {
    if (ws !== this.ws) return;
    this.lastFrameAt = now();
    const sp = parseSubprotocol(ws.protocol);
    if (!ws.protocol) return; // VER-CLIENT-VERIFY: send nothing; the 4002 close follows.
    if (!sp || !offers.includes(ws.protocol)) {
      this.fail(new ClientError("protocol", `server selected ${ws.protocol}, which was not offered`, true));
      return;
    }
    this.codec = new Codec(sp, { maxMessageBytes: 2 * 1024 * 1024 });
    this.sendNow({ type: "hello", token: this.token, client: this.o.clientName, features: [...this.o.features] });
  }

  private onFrame(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.ws || !this.codec) return;
    this.lastFrameAt = now(); // HB-ANY-FRAME
    const frame = frameData(data);
    if (frame === undefined) return;
    let env: v2.Envelope;
    try {
      env = this.codec.decode(frame);
    } catch (e) {
      const err = e instanceof DecodeError ? e : new DecodeError("malformed", String(e));
      // A bad frame from one server instance is not the application's fault: close with the
      // spec's code and reconnect with backoff (close-codes.md §2).
      this.emit("error", new ClientError("decode", err.message));
      this.dropConnection(err.closeCode, err.message.slice(0, 120), "backoff");
      return;
    }
    this.handle(env);
  }

  private handle(env: v2.Envelope): void {
    switch (env.type) {
      case "welcome":
        return this.onWelcome(env);
      case "batch":
        for (const e of env.envelopes) this.handle(e); // BATCH-ORDER
        return;
      case "ping":
        this.sendNow({ type: "pong", ts: env.ts }); // HB-PONG
        return;
      case "message":
        return this.onMessage(env);
      case "subscribe_ack":
        return this.onSubscribeAck(env);
      case "publish_ack": {
        const i = this.outbox.findIndex((p) => p.env.id === env.id && p.sent);
        if (i >= 0) this.outbox.splice(i, 1)[0]!.resolve(env);
        return;
      }
      case "error":
        return this.onError(env);
      case "disconnect":
        this.notice = { code: env.code, reason: env.reason, retry: env.retry_after_ms }; // CLOSE-NOTICE-WINS
        return;
      case "reauth_request":
        void this.onReauth(env);
        return;
      case "presence_event":
        if (this.channels.has(env.channel)) this.emit("presence", env);
        return;
      case "ephemeral":
        if (this.channels.has(env.channel)) this.emit("ephemeral", env);
        return;
      default: {
        const r = "id" in env ? this.requests.get(env.id) : undefined;
        if (r) (clearTimeout(r.timer), this.requests.delete((env as { id: string }).id), r.resolve(env));
      }
    }
  }

  private onWelcome(w: v2.Welcome): void {
    this.welcome = w;
    this.openedAt = now();
    this.setState("open");
    const sp = this.codec!.subprotocol;
    this.codec = new Codec(sp, { maxMessageBytes: 2 * Math.max(w.limits?.max_message_bytes ?? 0, 64 * 1024) });
    this.startHeartbeat(w);
    this.scheduleRefresh(w.token_expires_at_ms);
    // CLIENT-BACKOFF-JITTER: the attempt counter resets once the session proved stable; a session
    // closed earlier leaves it growing (CLIENT-BACKOFF-SHORT-SESSION).
    this.later(() => {
      if (this.welcome === w) this.attempt = 0;
    }, w.heartbeat_interval_ms);
    this.emit("open", { welcome: w, subprotocol: sp });
    for (const [name, c] of this.channels) this.sendSubscribe(name, c); // RESUME-CLIENT-RESUBSCRIBE
    const expiry = w.dedupe_window_ms;
    for (const p of [...this.outbox]) {
      if (p.firstSentAt !== undefined && expiry > 0 && now() - p.firstSentAt > expiry) {
        // CLIENT-OFFLINE-EXPIRY: a resend might no longer be recognised as a duplicate.
        this.outbox.splice(this.outbox.indexOf(p), 1);
        p.reject(new ClientError("expired", `publish ${p.env.id} is older than the dedupe window; not resent`));
        continue;
      }
      this.sendPublish(p);
    }
  }

  private onClose(ws: WebSocketLike, closeCode: number, closeReason: string): void {
    if (ws !== this.ws) return;
    this.ws = undefined;
    this.stopHeartbeat();
    const wasOpen = this.welcome !== undefined;
    this.welcome = undefined;
    const notice = this.notice;
    const code = notice?.code ?? closeCode ?? 1006;
    const reason = notice?.reason ?? closeReason ?? "";
    // Node's `ws` refuses a handshake that selects no subprotocol before the 4002 close can be
    // read; that is the same verdict (VER-CLIENT-VERIFY), without the server's list.
    if (!wasOpen && /no subprotocol/i.test(this.socketError)) {
      this.afterClose(4002, "the server selected no subprotocol: no common version and encoding", undefined, false, true);
      return;
    }
    // ... and one that selects a subprotocol it did not offer, with this message.
    if (!wasOpen && /invalid subprotocol/i.test(this.socketError)) {
      this.fail(new ClientError("protocol", "the server selected a subprotocol that was not offered", true));
      return;
    }
    this.afterClose(code, reason, notice?.retry, wasOpen, ws.protocol === "");
  }

  private afterClose(code: number, reason: string, retryAfter: number | undefined, wasOpen: boolean, noSubprotocol: boolean): void {
    // Unacknowledged publishes go back to the queue; requests in flight fail; frames encoded
    // for the old connection are dropped (they are resent from the queue and the channels).
    for (const p of this.outbox) p.sent = false;
    this.sendQueue.length = 0;
    const lost = new ClientError("disconnected", `connection closed (${code})`);
    for (const [id, r] of this.requests) (clearTimeout(r.timer), this.requests.delete(id), r.reject(lost));
    for (const c of this.channels.values()) c.awaitingAck = true;
    if (this._state === "closed") return;
    let react = reaction(code);
    if (noSubprotocol && code !== 1006) react = "terminal"; // VER-CLIENT-VERIFY
    if (react === "terminal") {
      this.emit("disconnect", { code, reason, reaction: react, retryInMs: undefined, attempt: undefined });
      const supported = code === 4002 ? parseMismatchReason(reason).map(formatSubprotocol) : [];
      const detail = supported.length ? ` (server supports ${supported.join(", ")})` : "";
      this.fail(new ClientError("closed_by_server", `closed with ${code}: ${reason}${detail}`, true, code));
      return;
    }
    const maxAttempts = this.o.backoff.maxAttempts ?? Infinity;
    if (this.attempt >= maxAttempts) {
      this.emit("disconnect", { code, reason, reaction: "terminal", retryInMs: undefined, attempt: undefined });
      this.fail(new ClientError("gave_up", `gave up after ${this.attempt} failed attempts (last close ${code}: ${reason})`, true, code));
      return;
    }
    const delay = this.delayBefore(react, retryAfter, wasOpen);
    this.attempt++;
    if (react === "refresh") this.forceRefresh = true;
    this.emit("disconnect", { code, reason, reaction: react, retryInMs: delay, attempt: this.attempt });
    this.setState("reconnecting");
    this.later(() => void this.dial(), delay);
  }

  /** The wait before the next attempt, after a close calling for `react`. */
  private delayBefore(react: Reaction, retryAfter: number | undefined, wasOpen: boolean): number {
    if (retryAfter !== undefined) return retryAfter; // CLOSE-RETRY-AFTER
    if ((react === "reconnect" || react === "refresh") && wasOpen && this.attempt === 0) {
      // CLOSE-RECONNECT-NOW (and a refresh, whose new credentials make waiting pointless).
      return Math.floor(Math.random() * (this.o.backoff.reconnectNowMaxMs ?? 1000));
    }
    return backoffDelay(this.attempt, this.o.backoff); // CLIENT-BACKOFF-JITTER
  }

  /** Closes the current connection ourselves and reacts as to a close with `code`. */
  private dropConnection(code: number, reason: string, react: Reaction): void {
    const ws = this.ws;
    if (!ws) return;
    ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
    try {
      ws.close(code >= 4000 || code === 1000 ? code : 4000, reason);
    } catch {
      // Already closed.
    }
    this.ws = undefined;
    this.stopHeartbeat();
    const wasOpen = this.welcome !== undefined;
    this.welcome = undefined;
    // Our own close codes name the server's fault; map them onto the reaction wanted.
    const effective = react === "reconnect" ? 4200 : react === "backoff" ? 1006 : code;
    this.afterClose(effective, reason, undefined, wasOpen, false);
  }

  private fail(e: ClientError): void {
    this.emit("error", e);
    if (e.terminal) this.close();
  }

  // ---- heartbeats and timers ----------------------------------------------------------------

  private startHeartbeat(w: v2.Welcome): void {
    this.stopHeartbeat();
    const deadline = w.heartbeat_interval_ms + w.heartbeat_grace_ms;
    if (deadline <= 0) return;
    // Timers may be throttled (background tabs): the check compares timestamps, so a late tick
    // only detects late, and before declaring the link dead it lets queued frames be processed
    // (a frozen tab may hold frames that prove the link alive).
    const tick = Math.max(50, Math.min(1000, Math.floor(deadline / 4)));
    this.heartbeat = setInterval(() => {
      if (now() - this.lastFrameAt <= deadline) return;
      setTimeout(() => {
        if (this.welcome === w && now() - this.lastFrameAt > deadline) {
          this.dropConnection(4200, "heartbeat timeout", "reconnect"); // HB-CLIENT-DEADLINE
        }
      }, 20);
    }, tick);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private scheduleRefresh(expiresAt: number | undefined): void {
    if (expiresAt === undefined || typeof this.tokenSource !== "function") return;
    const w = this.welcome;
    const delay = Math.max(0, expiresAt - now() - this.o.refreshMarginMs);
    this.later(() => {
      if (this.welcome !== w || this._state !== "open") return;
      this.refreshFor("expiring").catch((e: unknown) => this.emit("error", toClientError(e, "auth")));
    }, delay);
  }

  private async onReauth(r: v2.ReauthRequest): Promise<void> {
    // AUTH-REAUTH-CLIENT: new credentials before the deadline, else the 4301 close follows.
    try {
      await this.refreshFor("reauth");
    } catch (e) {
      this.emit("error", toClientError(e, "auth"));
      if (r.deadline_ms > 0) this.emit("error", new ClientError("auth", "re-authentication failed; expect close 4301"));
    }
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers = this.timers.filter((x) => x !== t);
      fn();
    }, ms);
    this.timers.push(t);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.stopHeartbeat();
  }

  // ---- channels ---------------------------------------------------------------------------

  private sendSubscribe(channel: string, c: ChannelState): void {
    c.awaitingAck = true;
    const env: v2.EnvelopeInit = c.position
      ? { type: "subscribe", id: this.id("s"), channel, resume: { ...c.position } }
      : { type: "subscribe", id: this.id("s"), channel };
    this.send(env);
  }

  private onSubscribeAck(ack: v2.SubscribeAck): void {
    const c = this.channels.get(ack.channel);
    if (!c) return; // ORDER-UNKNOWN-IDS-IGNORED / unsubscribed meanwhile
    const pos: Position = { epoch: ack.position?.epoch ?? "", seq: ack.position?.seq ?? 0 };
    const rec = ack.recovery ?? { status: "RECOVERY_STATUS_UNSPECIFIED", reason: "RECOVERY_REASON_UNSPECIFIED", replayed: 0 };
    // SEQ-CLIENT-GAP-DETECTION: after a recovered resume the replay continues from the resume
    // position; otherwise delivery continues from the ack's position.
    if (!(rec.status === "RECOVERY_STATUS_RECOVERED" && c.position)) c.position = pos;
    c.awaitingAck = false;
    const outcome = { channel: ack.channel, status: rec.status, reason: rec.reason, replayed: rec.replayed, position: pos };
    this.emit("subscribed", outcome);
    if (rec.status !== "RECOVERY_STATUS_NOT_REQUESTED") this.emit("recovery", outcome);
    for (const s of c.subscribers.splice(0)) s.resolve(ack);
  }

  private onMessage(m: v2.Message): void {
    const c = this.channels.get(m.channel);
    if (!c || c.awaitingAck || !c.position) return; // ORDER-UNSUBSCRIBE-FINAL, discard until the ack
    const p = c.position;
    if (m.epoch === p.epoch && m.seq <= p.seq) return; // SEQ-CLIENT-DROP-OLD
    if (m.epoch !== p.epoch || m.seq > p.seq + 1) {
      this.emit("gap", { channel: m.channel, position: p, received: { epoch: m.epoch, seq: m.seq } });
      this.sendSubscribe(m.channel, c);
      return;
    }
    // DEDUP-CLIENT-ADVANCE: the position advances also over a message dropped as a duplicate.
    c.position = { epoch: m.epoch, seq: m.seq };
    if (m.id) {
      // DEDUP-CLIENT-DROP: a bounded record of recently delivered (channel, id).
      const key = `${m.channel}\u0000${m.id}`;
      if (this.delivered.has(key)) return;
      this.delivered.set(key, true);
      if (this.delivered.size > this.o.dedupeSize) this.delivered.delete(this.delivered.keys().next().value as string);
    }
    this.emit("message", m);
  }

  private onError(e: v2.Error): void {
    const err = new RequestError(e.code, e.message, e.channel, e.retry_after_ms);
    const r = this.requests.get(e.id);
    if (e.id && r) {
      clearTimeout(r.timer);
      this.requests.delete(e.id);
      r.reject(err);
      return;
    }
    const i = e.id ? this.outbox.findIndex((p) => p.env.id === e.id && p.sent) : -1;
    if (i >= 0) {
      this.outbox.splice(i, 1)[0]!.reject(err);
      return;
    }
    const c = e.channel ? this.channels.get(e.channel) : undefined;
    if (c && c.awaitingAck && c.subscribers.length > 0) {
      // A refused subscribe (AUTHZ-NO-AUTO-RETRY): report it and forget the channel.
      this.channels.delete(e.channel);
      for (const s of c.subscribers.splice(0)) s.reject(err);
      return;
    }
    if (c && c.awaitingAck && e.code === "ERROR_CODE_FORBIDDEN") this.channels.delete(e.channel);
    this.emit("error", new ClientError("request", err.message, false, undefined, err));
  }

  // ---- sending ----------------------------------------------------------------------------

  private id(prefix: string): string {
    return `${prefix}-${(++this.nextId).toString(36)}`;
  }

  private sendPublish(p: PendingPublish): void {
    p.firstSentAt ??= now();
    p.sent = true;
    try {
      this.send({ type: "publish", ...p.env });
    } catch (e) {
      this.outbox.splice(this.outbox.indexOf(p), 1);
      p.reject(toClientError(e, "encode"));
    }
  }

  private request(env: v2.EnvelopeInit & { id: string }): Promise<v2.Envelope> {
    if (this._state !== "open") return Promise.reject(new ClientError("disconnected", "not connected"));
    return new Promise<v2.Envelope>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(env.id);
        reject(new ClientError("timeout", `${env.type} ${env.id} timed out`));
      }, this.o.requestTimeoutMs);
      this.requests.set(env.id, { resolve, reject, timer });
      try {
        this.send(env);
      } catch (e) {
        clearTimeout(timer);
        this.requests.delete(env.id);
        reject(toClientError(e, "encode"));
      }
    });
  }

  /** Encodes and sends in order, holding frames back while the socket's buffer is full. */
  private send(env: v2.EnvelopeInit): void {
    if (!this.codec || !this.ws) return;
    const frame = this.codec.encode(env);
    const limit = this.welcome?.limits?.max_message_bytes ?? 0;
    const size = typeof frame === "string" ? new TextEncoder().encode(frame).length : frame.length;
    if (limit > 0 && size > limit) {
      // LIMIT-MESSAGE-SIZE: refuse locally instead of being closed with 1009.
      throw new ClientError("too_large", `${env.type} of ${size} bytes exceeds max_message_bytes ${limit}`);
    }
    this.sendQueue.push(frame);
    this.flush();
  }

  /** Sends at once, ahead of held-back frames (hello, pong). */
  private sendNow(env: v2.EnvelopeInit): void {
    if (!this.codec || !this.ws) return;
    this.ws.send(this.codec.encode(env));
  }

  private flushing = false;
  private flush(): void {
    const ws = this.ws;
    while (ws && this.sendQueue.length > 0 && ws.readyState === 1) {
      if (ws.bufferedAmount > this.o.maxBufferedBytes) {
        if (!this.flushing) {
          this.flushing = true;
          setTimeout(() => ((this.flushing = false), this.flush()), 10);
        }
        return;
      }
      ws.send(this.sendQueue.shift()!);
    }
    if (!ws) this.sendQueue.length = 0;
  }
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

function toClientError(e: unknown, kind: ClientError["kind"]): ClientError {
  return e instanceof ClientError ? e : new ClientError(kind, e instanceof Error ? e.message : String(e));
}
