// `@courier/client/shared`: one Courier connection for all the tabs of an origin. Opt-in:
//
//   const client = new SharedCourierClient({ url, token, worker: "/courier-worker.js" });
//
// With a SharedWorker (the `worker` script calls `serveSharedWorker()`), the worker owns the
// connection. Without one (no `worker` option, or a browser without SharedWorker), the tabs
// elect a leader with the Web Locks API and talk over a BroadcastChannel; when the leader tab
// closes, the next tab takes over, opens a new connection and every tab resumes its channels
// from its own position. Each tab has its own subscriptions and the same guarantees as a
// `CourierClient`: in order, no gaps, no duplicates.

import type { ClientOptions } from "../client.js";
import { Hub } from "./hub.js";
import { holdLock, locks, tabLock, watchTab } from "./locks.js";
import type { FromHub, HubOptions, Link, ToHub } from "./protocol.js";
import { TabClient } from "./tab.js";

export { serveSharedWorker } from "./worker.js";

/** Options of a `SharedCourierClient`: a `CourierClient`'s, and how tabs share. */
export interface SharedClientOptions extends ClientOptions {
  /**
   * Tabs whose clients have the same `name` (and origin) share a connection; all of them must
   * use the same options (the first tab's open the connection). Default: the `url`.
   */
  name?: string;
  /**
   * The SharedWorker: the URL of a script that calls `serveSharedWorker()` (opened as a module
   * worker), or a function creating it (`() => new SharedWorker(new URL("./worker.ts",
   * import.meta.url), { type: "module" })`, the form bundlers recognise). Without it, or where
   * SharedWorker is missing, the tabs share through a BroadcastChannel and a leader tab.
   */
  worker?: string | URL | ((name: string) => SharedWorker);
  /** `auto` (default): the worker when possible, else the leader tab. `broadcast` forces the latter. */
  mode?: "auto" | "broadcast";
}

/** How a `SharedCourierClient` shares: `worker`, `broadcast` (leader tab) or `local` (no sharing possible). */
export type SharingMode = "worker" | "broadcast" | "local";

/**
 * A `CourierLike` client whose connection is shared by every tab of the origin that creates
 * one with the same `name`. `close()` leaves; the connection closes with the last tab.
 */
export class SharedCourierClient extends TabClient {
  /** How this tab shares the connection. */
  readonly mode: SharingMode;
  private leaderHub: Hub | undefined;
  private readonly stop = new AbortController();
  private readonly cleanups: Array<() => void> = [];
  private readonly factory: ClientOptions["WebSocket"];

  constructor(options: SharedClientOptions) {
    const { token, WebSocket: factory, name, worker, mode, ...rest } = options;
    let cleanup = (): void => undefined;
    super(rest as HubOptions, token, () => cleanup());
    cleanup = () => {
      this.stop.abort();
      this.leaderHub?.close();
      for (const c of this.cleanups.splice(0)) c();
    };
    this.factory = factory;
    const key = `@courier/client:${name ?? options.url}`;
    const g = globalThis as { SharedWorker?: unknown; BroadcastChannel?: unknown };
    if (worker !== undefined && mode !== "broadcast" && typeof g.SharedWorker === "function") {
      this.mode = "worker";
      this.viaWorker(key, worker);
    } else if (typeof g.BroadcastChannel === "function" && locks()) {
      this.mode = "broadcast";
      this.viaBroadcast(key);
    } else {
      this.mode = "local";
      this.becomeLeader(undefined);
    }
  }

  /** True while this tab holds the connection (broadcast mode). */
  get leader(): boolean {
    return this.leaderHub !== undefined;
  }

  private viaWorker(key: string, worker: NonNullable<SharedClientOptions["worker"]>): void {
    const w = typeof worker === "function" ? worker(key) : new SharedWorker(worker, { type: "module", name: key });
    const port = w.port;
    port.onmessage = (ev: MessageEvent<FromHub>) => this.receive(ev.data);
    port.start();
    const life = holdLock(tabLock(this.tab), this.stop.signal);
    this.cleanups.push(life.release, () => port.close());
    // The hub learns that the tab is gone from its lock; `bye` (sent by close) is quicker.
    void life.held.then(() => this.attach((m) => port.postMessage(m)), () => undefined);
  }

  private viaBroadcast(key: string): void {
    const bc = new BroadcastChannel(key);
    const bcLink: Link = { post: (m) => bc.postMessage(m) };
    bc.onmessage = (ev: MessageEvent<FromHub | ToHub>) => {
      const m = ev.data;
      if ("hub" in m) this.receive(m);
      else this.leaderHub?.receive(m, bcLink);
    };
    const life = holdLock(tabLock(this.tab), this.stop.signal);
    this.cleanups.push(life.release, () => bc.close());
    void life.held.then(
      () => {
        // A follower until the leader lock is granted: the lock is queued, so the next tab in
        // line takes over as soon as the leader's tab goes away.
        this.attach((m) => bc.postMessage(m));
        const leadership = holdLock(`${key}:leader`, this.stop.signal);
        this.cleanups.push(leadership.release);
        leadership.held.then(() => this.becomeLeader(bcLink, bc), () => undefined);
      },
      () => undefined,
    );
  }

  private becomeLeader(bcLink: Link | undefined, bc?: BroadcastChannel): void {
    if (this.state === "closed") return;
    const hub = new Hub({ watch: watchTab, WebSocket: this.factory });
    this.leaderHub = hub;
    const local: Link = { post: (m) => queueMicrotask(() => this.receive(m)) };
    this.attach((m) => hub.receive(m, local));
    // Every other tab registers again with this hub, channels from their positions.
    if (bcLink && bc) bc.postMessage({ hub: hub.id, t: "leader" } satisfies FromHub);
  }
}
