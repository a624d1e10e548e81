// The shared-connection hub and tab clients in Node, against `courier serve`, with links that
// pass every message through `structuredClone` as a MessagePort or BroadcastChannel does:
// a tab joining late from an old position gets the replay while the other tab sees no
// duplicate; a hub replaced by another (leader change) resumes each tab from its own position;
// `subscribe(channel, { from })` on a plain client; payload maps keep their key order across
// the clone.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { WebSocket as WS } from "ws";

import { CourierClient } from "../src/client.js";
import type * as v2 from "../src/gen/courier/v2/types.js";
import { encodeMsgpack } from "../src/runtime/msgpack.js";
import { markKeyOrder, type Payload } from "../src/runtime/wire.js";
import { Hub } from "../src/shared/hub.js";
import { packPayload, unpackPayload, type FromHub, type Link } from "../src/shared/protocol.js";
import { TabClient } from "../src/shared/tab.js";
import type { WebSocketFactory } from "../src/transport.js";
import { startServer, until, type Server } from "./server.js";

const factory = WS as unknown as WebSocketFactory;
let server: Server;
before(async () => (server = await startServer()));
after(() => server.stop());

/** A tab attached to `hub` through cloning links. */
function tabOn(hub: Hub): { tab: TabClient; got: v2.Message[]; attach(h: Hub): void } {
  const tab = new TabClient({ url: server.url, backoff: { baseMs: 20, capMs: 200 } }, undefined);
  const got: v2.Message[] = [];
  tab.on("message", (m) => got.push(m));
  const link: Link = { post: (m: FromHub) => setTimeout(() => tab.receive(structuredClone(m)), 0) };
  const attach = (h: Hub): void => tab.attach((m) => setTimeout(() => h.receive(structuredClone(m), link), 0));
  attach(hub);
  return { tab, got, attach };
}

const seqs = (l: v2.Message[]): number[] => l.map((m) => m.seq);

test("a tab resuming from an old position gets the replay; the other tab no duplicate", async () => {
  const publisher = new CourierClient({ url: server.url, WebSocket: factory });
  const hub = new Hub({ WebSocket: factory });
  try {
    const a = tabOn(hub);
    await a.tab.subscribe("hub.replay");
    for (let n = 1; n <= 6; n++) await publisher.publish("hub.replay", { n });
    await until(() => a.got.length === 6, "tab a: 6 messages");
    const epoch = a.got[0]!.epoch;
    // Tab b knew the channel up to seq 2 (from an earlier page, say).
    const b = tabOn(hub);
    const ack = await b.tab.subscribe("hub.replay", { from: { epoch, seq: 2 } });
    assert.equal(ack.recovery?.status, "RECOVERY_STATUS_RECOVERED");
    await until(() => b.got.length === 4, "tab b: the replay of 3..6");
    for (let n = 7; n <= 8; n++) await publisher.publish("hub.replay", { n });
    await until(() => a.got.length === 8 && b.got.length === 6, "both: 7 and 8");
    assert.deepEqual(seqs(a.got), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(seqs(b.got), [3, 4, 5, 6, 7, 8]);
  } finally {
    publisher.close();
    hub.close();
  }
});

test("a new hub (leader change) resumes every tab from its own position", async () => {
  const publisher = new CourierClient({ url: server.url, WebSocket: factory });
  const first = new Hub({ WebSocket: factory });
  const second = new Hub({ WebSocket: factory });
  try {
    const a = tabOn(first);
    const b = tabOn(first);
    await a.tab.subscribe("hub.leader");
    for (let n = 1; n <= 3; n++) await publisher.publish("hub.leader", { n });
    await until(() => a.got.length === 3, "tab a: 3");
    await b.tab.subscribe("hub.leader");
    for (let n = 4; n <= 5; n++) await publisher.publish("hub.leader", { n });
    await until(() => a.got.length === 5 && b.got.length === 2, "a: 5, b: 2");
    // The leader goes away; messages keep coming; a new hub takes over.
    first.close();
    for (let n = 6; n <= 9; n++) await publisher.publish("hub.leader", { n });
    b.attach(second); // b registers first: the hub subscribes from b's position...
    a.attach(second); // ...and a, at the same position, joins it
    await until(() => a.got.length === 9 && b.got.length === 6, "both resumed");
    assert.deepEqual(seqs(a.got), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(seqs(b.got), [4, 5, 6, 7, 8, 9]);
    assert.equal(a.tab.state, "open");
  } finally {
    publisher.close();
    second.close();
  }
});

test("subscribe(channel, { from }) on a client replays from that position", async () => {
  const publisher = new CourierClient({ url: server.url, WebSocket: factory });
  const c = new CourierClient({ url: server.url, WebSocket: factory });
  try {
    const got: v2.Message[] = [];
    c.on("message", (m) => got.push(m));
    await c.subscribe("hub.from");
    for (let n = 1; n <= 4; n++) await publisher.publish("hub.from", { n }, { id: `f-${n}` });
    await until(() => got.length === 4, "4 messages");
    // Asked again from seq 1: 2..4 are delivered again (the dedupe record of the channel is reset).
    const ack = await c.subscribe("hub.from", { from: { epoch: got[0]!.epoch, seq: 1 } });
    assert.equal(ack.recovery?.replayed, 3);
    await until(() => got.length === 7, "the replay");
    assert.deepEqual(seqs(got), [1, 2, 3, 4, 2, 3, 4]);
  } finally {
    publisher.close();
    c.close();
  }
});

test("payload maps keep their key order across the structured clone", () => {
  const ints: { [k: string]: Payload } = { "10": "ten", "9": "nine", "-1": "minus one" };
  markKeyOrder(ints, "int");
  const value: Payload = { z: 1, a: [ints, new Uint8Array([1, 2])], big: 1n << 60n };
  const back = unpackPayload(structuredClone(packPayload(value)));
  assert.deepEqual(encodeMsgpack(back), encodeMsgpack(value));
  // Without the packing the mark is lost and the integer keys come out in JavaScript's order.
  assert.notDeepEqual(encodeMsgpack(structuredClone(value)), encodeMsgpack(value));
});
