// One connection across tabs (`@courier/client/shared`) in headless Chromium, with several pages
// of one origin against a real `courier serve` (through a TCP proxy the test can cut):
// - SharedWorker: three tabs with different channels use one session (the server's presence
//   lists one member for them); each tab gets its channels only, in order; tabs closing leave the
//   others' streams intact and release their channels; a cut connection resumes for every tab.
// - BroadcastChannel fallback: the first tab leads; while messages keep coming, the leader tab
//   closes, the next takes over with a new session, and every tab's streams stay complete,
//   without gaps or duplicates; a publish sent by a follower during the handover lands once.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { WebSocket as WS } from "ws";

import { CourierClient } from "../src/client.js";
import type * as v2 from "../src/gen/courier/v2/types.js";
import type { WebSocketFactory } from "../src/transport.js";
import { launchChromium, pkg, pollPage, servePages, startProxy, type Proxy } from "./chromium.js";
import { sleep, startServer, until, type Server } from "./server.js";

interface TabState {
  mode: string;
  leader: boolean;
  state: string;
  session: string;
  subscribed: string[];
  messages: Record<string, Array<{ seq: number; n: number }>>;
  recoveries: string[];
  gaps: number;
  errors: string[];
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

interface Rig {
  server: Server;
  proxy: Proxy;
  context: BrowserContext;
  pages: { url: string; close(): void };
  observer: CourierClient;
  presence: v2.PresenceEvent[];
  open(channels: string[], mode: string): Promise<Page>;
  read(tab: Page, cond: (s: TabState) => boolean, what: string): Promise<TabState>;
  publish(channel: string, n: number): Promise<void>;
  members(channel: string): Promise<string[]>;
  /** The observer's session id. */
  session(): string;
  close(): Promise<void>;
}

async function rig(name: string): Promise<Rig> {
  const server = await startServer();
  const proxy = await startProxy(server.port);
  const pages = await servePages({
    "/index.html": ["test/shared/index.html", "text/html"],
    "/page.js": ["build/shared/page.js", "text/javascript"],
    "/worker.js": ["build/shared/worker.js", "text/javascript"],
  });
  const context = await launchChromium();
  const observer = new CourierClient({ url: server.url, WebSocket: WS as unknown as WebSocketFactory, features: ["presence"] });
  const presence: v2.PresenceEvent[] = [];
  observer.on("presence", (e) => presence.push(e));
  let session = "";
  observer.on("open", (o) => (session = o.welcome.session_id));
  await observer.subscribe("a");
  await observer.subscribe("b");
  const wsUrl = `ws://127.0.0.1:${proxy.port}/ws`;
  return {
    server,
    proxy,
    context,
    pages,
    observer,
    presence,
    async open(channels, mode) {
      const tab = await context.newPage();
      await tab.goto(`${pages.url}/index.html?url=${encodeURIComponent(wsUrl)}&channels=${channels.join(",")}&mode=${mode}&name=${name}`);
      await pollPage<TabState>(tab, "courierShared", (s) => s.subscribed.length === channels.length, `the tab (${channels}) to subscribe`);
      return tab;
    },
    read: (tab, cond, what) => pollPage<TabState>(tab, "courierShared", cond, what),
    async publish(channel, n) {
      await observer.publish(channel, { n });
    },
    async members(channel) {
      return (await observer.presence(channel)).map((m) => m.session_id);
    },
    session: () => session,
    async close() {
      observer.close();
      await context.close();
      pages.close();
      proxy.close();
      await server.stop();
    },
  };
}

const seqs = (s: TabState, ch: string): number[] => (s.messages[ch] ?? []).map((m) => m.seq);
const ns = (s: TabState, ch: string): number[] => (s.messages[ch] ?? []).map((m) => m.n);

test("SharedWorker: three tabs, one session, each tab its own channels, tabs leaving", async () => {
  const r = await rig("worker");
  try {
    const t1 = await r.open(["a"], "worker");
    const t2 = await r.open(["a", "b"], "worker");
    const t3 = await r.open(["b"], "worker");
    const s1 = await r.read(t1, (s) => s.state === "open", "tab 1 open");
    assert.equal(s1.mode, "worker");
    // One session serves the three tabs: the observer and it are the only members.
    const shared = (await r.read(t3, (s) => s.session !== "", "tab 3 knows the session")).session;
    assert.equal(s1.session, shared);
    assert.deepEqual((await r.members("a")).sort(), [r.session(), shared].sort());
    assert.deepEqual((await r.members("b")).length, 2);
    assert.deepEqual(r.presence.map((e) => `${e.channel}:${e.action}`).sort(), ["a:PRESENCE_ACTION_JOIN", "b:PRESENCE_ACTION_JOIN"]);

    for (const n of range(1, 5)) await r.publish("a", n), await r.publish("b", 100 + n);
    let a1 = await r.read(t1, (s) => seqs(s, "a").length === 5, "tab 1: 5 on a");
    const a2 = await r.read(t2, (s) => seqs(s, "a").length === 5 && seqs(s, "b").length === 5, "tab 2: 5 on a and b");
    let a3 = await r.read(t3, (s) => seqs(s, "b").length === 5, "tab 3: 5 on b");
    assert.deepEqual(seqs(a1, "a"), range(1, 5));
    assert.deepEqual(a1.messages["b"], undefined, "tab 1 has no subscription to b");
    assert.deepEqual(seqs(a2, "b"), range(1, 5));
    assert.deepEqual(ns(a3, "b"), range(101, 105));
    assert.deepEqual(Object.keys(a3.messages), ["b"]);

    // Tab 2 closes: both channels are still wanted, so nothing changes for the others.
    await t2.close();
    for (const n of range(6, 10)) await r.publish("a", n), await r.publish("b", 100 + n);
    a1 = await r.read(t1, (s) => seqs(s, "a").length === 10, "tab 1: 10 on a");
    a3 = await r.read(t3, (s) => seqs(s, "b").length === 10, "tab 3: 10 on b");
    assert.deepEqual(seqs(a1, "a"), range(1, 10));
    assert.deepEqual(seqs(a3, "b"), range(1, 10));
    assert.equal(r.presence.length, 2, "no leave while other tabs use the channels");

    // Tab 1 closes: nobody wants `a` any more, the worker unsubscribes it (and only it).
    await t1.close();
    await until(() => r.presence.length === 3, "the leave of a");
    assert.equal(`${r.presence[2]!.channel}:${r.presence[2]!.action}`, "a:PRESENCE_ACTION_LEAVE");

    // A publish from a tab goes through the worker's connection.
    const ack = await t3.evaluate(() => (window as unknown as { courierPublish: (c: string, n: number, id: string) => Promise<string> }).courierPublish("b", 111, "tab-3-1"));
    assert.equal(ack, "11/false");

    // The shared connection is cut while 3 messages are published: the tab gets them once.
    r.proxy.hold = true;
    r.proxy.cut();
    await r.read(t3, (s) => s.state === "reconnecting", "tab 3 to see the cut");
    for (const n of range(112, 114)) await r.publish("b", n);
    r.proxy.hold = false;
    a3 = await r.read(t3, (s) => s.state === "open" && seqs(s, "b").length === 14, "tab 3: the replay");
    assert.deepEqual(seqs(a3, "b"), range(1, 14));
    assert.deepEqual(a3.recoveries, ["b:RECOVERY_STATUS_RECOVERED/RECOVERY_REASON_UNSPECIFIED/3"]);
    assert.equal(a3.gaps, 0);
    assert.deepEqual(a3.errors, []);
    mkdirSync(new URL("test-artifacts/", pkg), { recursive: true });
    await t3.screenshot({ path: new URL("test-artifacts/shared-worker.png", pkg).pathname, fullPage: true });
  } finally {
    await r.close();
  }
});

test("BroadcastChannel: the leader tab closes mid-stream, the next takes over without gaps or duplicates", async () => {
  const r = await rig("broadcast");
  try {
    const t1 = await r.open(["a"], "broadcast");
    const t2 = await r.open(["a", "b"], "broadcast");
    const t3 = await r.open(["b"], "broadcast");
    let s1 = await r.read(t1, (s) => s.state === "open" && s.leader, "tab 1 to lead");
    assert.equal(s1.mode, "broadcast");
    let s2 = await r.read(t2, (s) => s.session !== "", "tab 2 to know the session");
    assert.equal(s2.leader, false);
    assert.equal(s2.session, s1.session, "the followers use the leader's session");
    assert.equal((await r.members("a")).length, 2);
    assert.equal((await r.members("b")).length, 2);

    // 40 messages per channel; the leader leaves after the 15th, a follower publishes meanwhile.
    const total = 40;
    let published = 0;
    const feed = (async () => {
      for (const n of range(1, total)) {
        await r.publish("a", n);
        await r.publish("b", 100 + n);
        published = n;
        await sleep(15);
      }
    })();
    await until(() => published >= 15, "15 messages");
    await t1.close();
    const followerAck = t3.evaluate(() => (window as unknown as { courierPublish: (c: string, n: number, id: string) => Promise<string> }).courierPublish("b", 999, "tab-3-handover"));
    await feed;

    s2 = await r.read(t2, (s) => s.leader && seqs(s, "a").length >= total && seqs(s, "b").length >= total + 1, "tab 2 to lead and receive everything");
    const s3 = await r.read(t3, (s) => seqs(s, "b").length >= total + 1, "tab 3 to receive everything");
    assert.deepEqual(seqs(s2, "a"), range(1, total), "tab 2, channel a: no gap, no duplicate");
    assert.deepEqual(seqs(s2, "b"), range(1, total + 1), "tab 2, channel b: no gap, no duplicate");
    assert.deepEqual(seqs(s3, "b"), range(1, total + 1), "tab 3: no gap, no duplicate");
    assert.deepEqual(ns(s3, "b").filter((n) => n === 999), [999], "the follower's publish landed once");
    assert.match(await followerAck, /^\d+\/(true|false)$/);
    assert.notEqual(s2.session, s1.session, "the new leader opened its own session");
    assert.equal(s3.session, s2.session);
    assert.deepEqual([s2.gaps, s3.gaps], [0, 0]);
    assert.deepEqual([...s2.errors, ...s3.errors], []);
    // The old session is gone; the new one holds both channels for the two tabs.
    await until(() => r.presence.filter((e) => e.action === "PRESENCE_ACTION_LEAVE").length === 2, "the old session to leave a and b");
    assert.deepEqual((await r.members("a")).length, 2);
  } finally {
    await r.close();
  }
});
