// The hub: the one `CourierClient` the tabs of an origin share (in a SharedWorker, or in the
// leader tab), with each tab's subscriptions. A channel is subscribed while at least one tab
// wants it; its messages go to those tabs only. A tab that asks for a channel from a position
// behind the connection's is served by subscribing again from there (the replay reaches every
// tab of the channel, and each drops what it already has), so a tab joining, or every tab
// re-registering with a new leader, misses nothing the server still holds.

import { CourierClient, type Position, type TokenReason } from "../client.js";
import { ClientError } from "../errors.js";
import type * as v2 from "../gen/courier/v2/types.js";
import type { WebSocketFactory } from "../transport.js";
import { packError, packPayload, randomTag, unpackPayload, type FromHub, type HubOptions, type HubRequest, type Link, type PackedPayload, type ToHub } from "./protocol.js";

/** The distribution of `FromHub` messages without the hub's id. */
type Out = FromHub extends infer M ? (M extends FromHub ? Omit<M, "hub" | "to"> : never) : never;

interface Peer {
  readonly link: Link;
  hasToken: boolean;
  readonly channels: Set<string>;
}

interface HubChannel {
  /** Tabs that want the channel. */
  readonly tabs: Set<string>;
  /** Subscribes of the hub in flight; while > 0 new requests wait in `waiting`. */
  inFlight: number;
  readonly waiting: Array<{ tab: string; from: Position | undefined }>;
}

/** Options of a hub beyond the client's. */
export interface HubConfig {
  /** WebSocket implementation for the client (tests; default the global one). */
  WebSocket?: WebSocketFactory;
  /** Called once no tab is left (the hub has closed its client). */
  onEmpty?: () => void;
  /** Watches a tab's lifetime: calls `gone` once the tab has closed (Web Locks). */
  watch?: (tab: string, gone: () => void) => void;
}

/** How long the hub waits for a tab's token before asking another. */
const TOKEN_TIMEOUT_MS = 10_000;

export class Hub {
  readonly id = randomTag();
  private client: CourierClient | undefined;
  private readonly peers = new Map<string, Peer>();
  private readonly channels = new Map<string, HubChannel>();
  private readonly tokenWaits = new Map<number, { resolve: (t: string | undefined) => void; reject: (e: Error) => void }>();
  private nextRid = 0;
  private closed = false;

  constructor(private readonly config: HubConfig = {}) {}

  /** Handles one message of a tab, arriving over `link`. */
  receive(msg: ToHub, link: Link): void {
    if (this.closed) return;
    if (msg.t === "hello") return this.hello(msg.tab, msg.options, msg.hasToken, link);
    const peer = this.peers.get(msg.tab);
    if (!peer) {
      // A tab that has not said hello to this hub (it started while the leader changed).
      link.post({ hub: this.id, to: [msg.tab], t: "leader" });
      return;
    }
    switch (msg.t) {
      case "sub":
        peer.channels.add(msg.channel);
        return this.subscribe(msg.tab, msg.channel, msg.from);
      case "unsub":
        peer.channels.delete(msg.channel);
        return this.release(msg.tab, msg.channel);
      case "req":
        return void this.request(msg.tab, msg.rid, msg.req);
      case "token": {
        const w = this.tokenWaits.get(msg.rid);
        this.tokenWaits.delete(msg.rid);
        if (msg.error !== undefined) w?.reject(new Error(msg.error));
        else w?.resolve(msg.token);
        return;
      }
      case "bye":
        return this.drop(msg.tab);
    }
  }

  /** Stops without telling the tabs anything (the leader tab is closing; another takes over). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    c?.close();
  }

  private post(to: string[] | undefined, msg: Out): void {
    if (this.closed) return;
    const full = { ...msg, hub: this.id } as FromHub;
    if (to === undefined) {
      // One post per distinct link (a BroadcastChannel serves many tabs).
      const links = new Set<Link>();
      for (const p of this.peers.values()) links.add(p.link);
      for (const l of links) l.post(full);
      return;
    }
    const byLink = new Map<Link, string[]>();
    for (const tab of to) {
      const p = this.peers.get(tab);
      if (!p) continue;
      const list = byLink.get(p.link);
      if (list) list.push(tab);
      else byLink.set(p.link, [tab]);
    }
    for (const [link, tabs] of byLink) link.post({ ...full, to: tabs });
  }

  private hello(tab: string, options: HubOptions, hasToken: boolean, link: Link): void {
    const known = this.peers.get(tab);
    // A known tab says hello again when it re-registers: its channels follow as `sub`s.
    if (known) known.hasToken = hasToken;
    else {
      this.peers.set(tab, { link, hasToken, channels: new Set() });
      this.config.watch?.(tab, () => this.drop(tab));
    }
    const client = this.ensureClient(options);
    this.post([tab], { t: "state", state: client.state });
    const sp = client.subprotocol;
    if (sp && this.welcome) this.post([tab], { t: "open", welcome: this.welcome, subprotocol: sp });
  }

  private welcome: v2.Welcome | undefined;

  private ensureClient(options: HubOptions): CourierClient {
    if (this.client) return this.client;
    const client = new CourierClient({
      ...options,
      WebSocket: this.config.WebSocket,
      token: ({ reason }) => this.token(reason),
    });
    this.client = client;
    client.on("state", (state) => this.post(undefined, { t: "state", state }));
    client.on("open", (o) => {
      this.welcome = o.welcome;
      this.post(undefined, { t: "open", welcome: o.welcome, subprotocol: o.subprotocol });
    });
    client.on("disconnect", (event) => this.post(undefined, { t: "disconnect", event }));
    client.on("error", (e) => this.post(undefined, { t: "error", error: packError(e) }));
    client.on("message", (message) => this.toChannel(message.channel, { t: "message", message }));
    client.on("presence", (event) => this.toChannel(event.channel, { t: "presence", event }));
    client.on("ephemeral", (event) => this.toChannel(event.channel, { t: "ephemeral", event }));
    client.on("recovery", (recovery) => {
      // A resubscription after a reconnect: every tab of the channel hears how it went. The
      // outcome of a subscribe the hub made for a tab reaches that tab as its `ack`; a failed one
      // also reaches the others, whose position may now be behind the connection's.
      const c = this.channels.get(recovery.channel);
      if (c && c.inFlight > 0 && recovery.status === "RECOVERY_STATUS_RECOVERED") return;
      this.toChannel(recovery.channel, { t: "recovery", recovery });
    });
    return client;
  }

  private toChannel(channel: string, msg: Out): void {
    const c = this.channels.get(channel);
    if (c && c.tabs.size > 0) this.post([...c.tabs], msg);
  }

  /** A token for the connection, from the first tab that has a token function. */
  private async token(reason: TokenReason): Promise<string> {
    const asked = new Set<string>();
    for (;;) {
      const entry = [...this.peers].find(([tab, p]) => p.hasToken && !asked.has(tab));
      if (!entry) {
        if (asked.size > 0) throw new ClientError("auth", "no tab provided a token");
        return "";
      }
      const [tab] = entry;
      asked.add(tab);
      const rid = ++this.nextRid;
      try {
        const t = await new Promise<string | undefined>((resolve, reject) => {
          this.tokenWaits.set(rid, { resolve, reject });
          setTimeout(() => (this.tokenWaits.delete(rid), reject(new Error("timeout"))), TOKEN_TIMEOUT_MS);
          this.post([tab], { t: "token?", rid, reason });
        });
        return t ?? "";
      } catch {
        // That tab could not: ask the next.
      }
    }
  }

  private subscribe(tab: string, channel: string, from: Position | undefined): void {
    const client = this.client;
    if (!client) return;
    let c = this.channels.get(channel);
    if (!c) this.channels.set(channel, (c = { tabs: new Set(), inFlight: 0, waiting: [] }));
    c.tabs.add(tab);
    if (c.inFlight > 0) {
      c.waiting.push({ tab, from });
      return;
    }
    const have = client.position(channel);
    if (have && !(from && from.epoch === have.epoch && from.seq < have.seq)) {
      // Subscribed already, and the tab needs nothing before the connection's position.
      const recovery: v2.Recovery = !from
        ? { status: "RECOVERY_STATUS_NOT_REQUESTED", reason: "RECOVERY_REASON_UNSPECIFIED", replayed: 0 }
        : from.epoch === have.epoch
          ? { status: "RECOVERY_STATUS_RECOVERED", reason: "RECOVERY_REASON_UNSPECIFIED", replayed: 0 }
          : { status: "RECOVERY_STATUS_FAILED", reason: "RECOVERY_REASON_EPOCH_CHANGED", replayed: 0 };
      this.post([tab], { t: "ack", channel, ack: { id: "", channel, position: { ...have }, recovery } });
      return;
    }
    const hc = c;
    hc.inFlight++;
    client.subscribe(channel, from ? { from } : {}).then(
      (ack) => {
        hc.inFlight--;
        if (this.channels.get(channel) !== hc) return;
        if (hc.tabs.has(tab)) this.post([tab], { t: "ack", channel, ack });
        this.drain(channel, hc);
      },
      (e: unknown) => {
        hc.inFlight--;
        if (this.channels.get(channel) !== hc) return;
        // Refused (forbidden, bad name): every tab waiting for it hears so.
        this.channels.delete(channel);
        const tabs = [tab, ...hc.waiting.splice(0).map((w) => w.tab)];
        for (const t of tabs) this.peers.get(t)?.channels.delete(channel);
        this.post(tabs, { t: "nack", channel, error: packError(e) });
      },
    );
  }

  private drain(channel: string, c: HubChannel): void {
    for (const w of c.waiting.splice(0)) if (c.tabs.has(w.tab)) this.subscribe(w.tab, channel, w.from);
  }

  private release(tab: string, channel: string): void {
    const c = this.channels.get(channel);
    if (!c) return;
    c.tabs.delete(tab);
    if (c.tabs.size > 0) return;
    this.channels.delete(channel);
    this.client?.unsubscribe(channel).catch(() => undefined);
  }

  private drop(tab: string): void {
    const p = this.peers.get(tab);
    if (!p) return;
    for (const ch of p.channels) this.release(tab, ch);
    this.peers.delete(tab);
    if (this.peers.size === 0) {
      this.close();
      this.config.onEmpty?.();
    }
  }

  private async request(tab: string, rid: number, req: HubRequest): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      let ok: PackedPayload | v2.PublishAck | v2.PresenceMember[] | null;
      switch (req.op) {
        case "publish":
          ok = await client.publish(req.channel, unpackPayload(req.payload), { id: req.id });
          break;
        case "rpc": {
          const r = await client.rpc(req.method, unpackPayload(req.payload));
          ok = r === undefined ? null : packPayload(r);
          break;
        }
        case "presence":
          ok = await client.presence(req.channel);
          break;
        case "ephemeral":
          client.ephemeral(req.channel, unpackPayload(req.payload));
          ok = null;
          break;
      }
      this.post([tab], { t: "res", rid, ok });
    } catch (e) {
      this.post([tab], { t: "rej", rid, error: packError(e) });
    }
  }
}
