// `@courier/client/react` in headless Chromium: a page built by the test script (esbuild, React
// 19 under StrictMode) mounts a component with `useChannel`, `usePresence` and
// `useConnectionState` against a real `courier serve`, through a TCP proxy the test can cut.
// Checked: one subscription despite StrictMode's double mount; messages in order; a cut
// connection resumes while mounted (recovered, missed messages replayed, no gap, no duplicate);
// a server restart is reported (epoch changed) and delivery continues; unmounting unsubscribes
// (the server reports the member leaving, and later messages are not delivered).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { WebSocket as WS } from "ws";

import { CourierClient } from "../src/client.js";
import type * as v2 from "../src/gen/courier/v2/types.js";
import type { WebSocketFactory } from "../src/transport.js";
import { launchChromium, pkg, pollPage, servePages, startProxy } from "./chromium.js";
import { sleep, startServer, until } from "./server.js";

interface PageState {
  state: string;
  mounted: boolean;
  status: string;
  messages: Array<{ seq: number; n: number }>;
  received: number;
  recoveries: string[];
  recovery: string;
  members: string[];
  errors: string[];
  session: string;
}

test("React hooks: subscribe once, resume while mounted, survive a restart, unsubscribe on unmount", async () => {
  let server = await startServer();
  const port = server.port;
  const proxy = await startProxy(port);
  const pages = await servePages({
    "/index.html": ["test/react/index.html", "text/html"],
    "/page.js": ["build/react/page.js", "text/javascript"],
  });
  const context = await launchChromium();
  // The observer sees the page's joins and leaves, and publishes.
  const observer = new CourierClient({
    url: server.url,
    WebSocket: WS as unknown as WebSocketFactory,
    features: ["presence"],
    backoff: { baseMs: 50, capMs: 300 },
  });
  const presence: v2.PresenceEvent[] = [];
  observer.on("presence", (e) => presence.push(e));
  let n = 0;
  const publish = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) await observer.publish("react", { n: ++n });
  };
  try {
    await observer.subscribe("react");
    const tab = context.pages()[0] ?? (await context.newPage());
    const wsUrl = `ws://127.0.0.1:${proxy.port}/ws`;
    await tab.goto(`${pages.url}/index.html?url=${encodeURIComponent(wsUrl)}&channel=react&encoding=msgpack`);
    const poll = (cond: (s: PageState) => boolean, what: string): Promise<PageState> => pollPage<PageState>(tab, "courierReact", cond, what);

    let s = await poll((p) => p.state === "open" && p.status === "subscribed" && p.members.length === 2, "the component to subscribe and see two members");
    assert.ok(s.members.includes(s.session), "the page's own session is a member");
    // StrictMode mounted the component twice; the channel was subscribed once.
    await until(() => presence.length >= 1, "the observer to see the page join");
    await sleep(200);
    assert.deepEqual(presence.map((e) => e.action), ["PRESENCE_ACTION_JOIN"]);

    await publish(3);
    s = await poll((p) => p.messages.length === 3, "3 messages");

    // Cut the page's connection and keep it out while 3 more are published: on reconnecting it
    // resumes from seq 3 and receives 4..6 exactly once, without remounting.
    proxy.hold = true;
    proxy.cut();
    await poll((p) => p.state === "reconnecting", "the page to notice the cut");
    await publish(3);
    proxy.hold = false;
    s = await poll((p) => p.state === "open" && p.messages.length === 6, "the replay after the cut");
    assert.deepEqual(s.recoveries, ["RECOVERY_STATUS_RECOVERED/RECOVERY_REASON_UNSPECIFIED/3"]);
    assert.equal(s.recovery, "RECOVERY_STATUS_RECOVERED/RECOVERY_REASON_UNSPECIFIED/3", "useChannel reports the recovery");
    assert.deepEqual(s.messages.map((m) => m.seq), [1, 2, 3, 4, 5, 6]);

    // A restart loses the server's memory: reported as possible loss, then delivery continues.
    await server.stop();
    server = await startServer("", `127.0.0.1:${port}`);
    s = await poll((p) => p.state === "open" && p.recoveries.length === 2, "the page to resubscribe after the restart");
    assert.equal(s.recovery, "RECOVERY_STATUS_FAILED/RECOVERY_REASON_EPOCH_CHANGED/0");
    await until(() => observer.state === "open", "the observer to reconnect");
    await sleep(200);
    await publish(2);
    s = await poll((p) => p.messages.length === 8, "2 messages after the restart");
    assert.deepEqual(s.messages.map((m) => m.n), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(s.messages.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 1, 2]);
    // usePresence asked again after the resubscription.
    s = await poll((p) => p.members.length === 2, "presence after the restart");

    // Unmount: the last user of the channel is gone, so the client unsubscribes.
    presence.length = 0;
    await tab.evaluate(() => (window as unknown as { courierReact: { setMounted(on: boolean): void } }).courierReact.setMounted(false));
    await until(() => presence.some((e) => e.action === "PRESENCE_ACTION_LEAVE"), "the server to report the page leaving");
    assert.equal(presence[0]!.member?.session_id, s.session);
    assert.deepEqual((await observer.presence("react")).length, 1);
    const before = (await poll((p) => !p.mounted, "the unmount")).received;
    await publish(2);
    await sleep(300);
    s = await poll(() => true, "the page state");
    assert.equal(s.received, before, "no message is delivered after the unmount");
    assert.equal(s.state, "open", "the connection stays open for other components");
    assert.deepEqual(s.errors, []);

    mkdirSync(new URL("test-artifacts/", pkg), { recursive: true });
    await tab.evaluate(() => (window as unknown as { courierReact: { setMounted(on: boolean): void } }).courierReact.setMounted(true));
    await poll((p) => p.status === "subscribed" && p.members.length === 2, "the remount");
    await tab.screenshot({ path: new URL("test-artifacts/react.png", pkg).pathname, fullPage: true });
  } finally {
    observer.close();
    await context.close();
    pages.close();
    proxy.close();
    await server.stop();
  }
});
