// `@courier/client/shared-worker`: the SharedWorker side of a shared connection. A worker
// script calls `serveSharedWorker()`; every tab that opens it with `SharedCourierClient`
// (`worker` option) gets a port to one hub, which owns the connection while any tab is left.

import { Hub } from "./hub.js";
import type { Link, ToHub } from "./protocol.js";
import { watchTab } from "./locks.js";

interface ConnectEvent {
  readonly ports: readonly MessagePort[];
}

/** Serves the tabs that connect to this SharedWorker. Call it once, at the top of the script. */
export function serveSharedWorker(): void {
  const scope = globalThis as unknown as { onconnect: ((e: ConnectEvent) => void) | null };
  let hub: Hub | undefined;
  const current = (): Hub =>
    (hub ??= new Hub({
      watch: watchTab,
      // The last tab left: the connection is closed; a later tab starts a new one.
      onEmpty: () => (hub = undefined),
    }));
  scope.onconnect = (e) => {
    const port = e.ports[0];
    if (!port) return;
    const link: Link = { post: (m) => port.postMessage(m) };
    port.onmessage = (ev: MessageEvent<ToHub>) => current().receive(ev.data, link);
    port.start();
  };
}
