// Live interop on loopback: the TypeScript client against the Rust reference server, in every
// encoding: subscribe, publish/ack, dedupe, resume after a forced drop, refresh and
// server-requested re-auth, and the client's reaction to each close-code range.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WebSocket as WS } from "ws";

import { CourierClient, type ClientOptions } from "../src/client.js";
import { ClientError } from "../src/errors.js";
import type * as v2 from "../src/gen/courier/v2/types.js";
import type { Encoding } from "../src/subprotocol.js";
import type { WebSocketFactory, WebSocketLike } from "../src/transport.js";
import { jwt, sleep, startServer, until, type Server } from "./server.js";

const FAST = { baseMs: 20, capMs: 200, reconnectNowMaxMs: 50 };

/** A `ws` WebSocket factory that remembers its sockets, so a test can cut one (1006). */
function trackingWs(): { factory: WebSocketFactory; sockets: WS[] } {
  const sockets: WS[] = [];
  class Tracked extends WS {
    constructor(url: string, protocols: string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { factory: Tracked as unknown as WebSocketFactory, sockets };
}

function client(url: string, o: Partial<ClientOptions> = {}): CourierClient {
  return new CourierClient({ url, backoff: FAST, WebSocket: WS as unknown as WebSocketFactory, ...o });
}

function collect(c: CourierClient): v2.Message[] {
  const got: v2.Message[] = [];
  c.on("message", (m) => got.push(m));
  return got;
}

for (const encoding of ["json", "msgpack", "proto"] as const satisfies readonly Encoding[]) {
  describe(`live ${encoding}`, () => {
    let server: Server;
    before(async () => {
      server = await startServer();
    });
    after(async () => server.stop());

    test("subscribe, publish/ack, delivery in order", async () => {
      const sub = client(server.url, { encodings: [encoding] });
      const pub = client(server.url, { encodings: [encoding] });
      const got = collect(sub);
      const ack = await sub.subscribe(`chat-${encoding}`);
      assert.equal(ack.recovery?.status, "RECOVERY_STATUS_NOT_REQUESTED");
      assert.equal(sub.subprotocol?.encoding, encoding);
      assert.equal(sub.subprotocol?.version, 2);
      const acks = [];
      for (let i = 0; i < 5; i++) acks.push(await pub.publish(`chat-${encoding}`, { i, text: "héllo", big: 2 ** 40, f: 0.5 }));
      await until(() => got.length === 5, "5 messages");
      assert.deepEqual(got.map((m) => m.seq), acks.map((a) => a.seq));
      assert.deepEqual(got[0]!.payload, { i: 0, text: "héllo", big: 2 ** 40, f: 0.5 });
      sub.close();
      pub.close();
    });

    test("dedupe: a retried publish id is acknowledged as duplicate and delivered once", async () => {
      const sub = client(server.url, { encodings: [encoding] });
      const got = collect(sub);
      await sub.subscribe(`dedupe-${encoding}`);
      const first = await sub.publish(`dedupe-${encoding}`, "once", { id: "fixed-id" });
      const again = await sub.publish(`dedupe-${encoding}`, "twice", { id: "fixed-id" });
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.equal(again.seq, first.seq);
      await sub.publish(`dedupe-${encoding}`, "marker");
      await until(() => got.length === 2, "2 messages");
      assert.deepEqual(got.map((m) => m.payload), ["once", "marker"]);
      sub.close();
    });

    test("resume after a forced drop replays exactly the missed messages", async () => {
      const { factory, sockets } = trackingWs();
      const sub = client(server.url, { encodings: [encoding], WebSocket: factory });
      const pub = client(server.url, { encodings: [encoding] });
      const got = collect(sub);
      const recoveries: string[] = [];
      sub.on("recovery", (r) => recoveries.push(`${r.status}:${r.replayed}`));
      const subscribed: string[] = [];
      sub.on("subscribed", (r) => subscribed.push(`${r.status}:${r.replayed}@${r.position.seq}`));
      const ch = `resume-${encoding}`;
      await sub.subscribe(ch);
      await pub.publish(ch, 1);
      await until(() => got.length === 1, "first message");
      const reopened = sub.once("open");
      sockets.at(-1)!.terminate(); // the network drops: no close frame (1006)
      for (let i = 2; i <= 4; i++) await pub.publish(ch, i);
      await reopened;
      await until(() => got.length === 4, "replayed messages");
      assert.deepEqual(got.map((m) => m.payload), [1, 2, 3, 4]);
      assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4]);
      assert.deepEqual(recoveries, ["RECOVERY_STATUS_RECOVERED:3"]);
      assert.deepEqual(subscribed, ["RECOVERY_STATUS_NOT_REQUESTED:0@0", "RECOVERY_STATUS_RECOVERED:3@4"]);
      await pub.publish(ch, 5);
      await until(() => got.length === 5, "live message after the replay");
      sub.close();
      pub.close();
    });

    test("publishes made while offline are sent once reconnected, with their ids", async () => {
      const { factory, sockets } = trackingWs();
      const c = client(server.url, { encodings: [encoding], WebSocket: factory });
      const got = collect(c);
      await c.subscribe(`offline-${encoding}`);
      const dropped = c.once("disconnect");
      sockets.at(-1)!.terminate();
      await dropped;
      assert.equal(c.state, "reconnecting");
      const acks = await Promise.all([1, 2, 3].map((i) => c.publish(`offline-${encoding}`, i, { id: `off-${encoding}-${i}` })));
      assert.deepEqual(acks.map((a) => a.id), [1, 2, 3].map((i) => `off-${encoding}-${i}`));
      await until(() => got.length === 3, "3 messages");
      assert.deepEqual(got.map((m) => m.payload), [1, 2, 3]);
      c.close();
    });
  });
}

describe("live auth", () => {
  const secret = "ts-live-secret";
  let server: Server;
  before(async () => {
    server = await startServer(`[auth]\nhs256_secret = "${secret}"\nreauth_after_ms = 300\nreauth_deadline_ms = 1500\n`);
  });
  after(async () => server.stop());
  const token = (ttlS = 3600): string => jwt(secret, { sub: "alice", exp: Math.floor(Date.now() / 1000) + ttlS });

  test("refresh puts new credentials in force", async () => {
    let calls = 0;
    const reasons: string[] = [];
    const c = client(server.url, { token: ({ reason }) => (calls++, reasons.push(reason), token(60)), features: [] });
    const opened = c.once("open");
    await c.connect();
    const { welcome } = await opened;
    assert.equal(welcome.user, "alice");
    const r = await c.refresh();
    assert.ok((r.token_expires_at_ms ?? 0) >= (welcome.token_expires_at_ms ?? 0));
    assert.equal(calls, 2);
    assert.deepEqual(reasons, ["connect", "refresh"]);
    c.close();
  });

  test("server-requested re-auth is answered before its deadline", async () => {
    let calls = 0;
    const reasons: string[] = [];
    const c = client(server.url, { token: ({ reason }) => (calls++, reasons.push(reason), token()) });
    const closes: number[] = [];
    c.on("disconnect", (d) => closes.push(d.code));
    await c.connect();
    await until(() => calls >= 2, "a refresh after reauth_request", 5000);
    await sleep(1800); // past the 1500 ms deadline
    assert.deepEqual(closes, [], "no 4301 close");
    assert.deepEqual(reasons.slice(0, 2), ["connect", "reauth"]);
    assert.equal(c.state, "open");
    c.close();
  });

  test("4300-4399: expired credentials are refreshed, then the client reconnects and resumes", async () => {
    let calls = 0;
    const reasons: string[] = [];
    const c = client(server.url, {
      token: ({ reason }) => (reasons.push(reason), calls++ === 0 ? token(1) : token()),
      refreshMarginMs: -60_000, // no early refresh: let the server close with 4300
      features: [],
    });
    const events: string[] = [];
    c.on("disconnect", (d) => events.push(`${d.code}:${d.reaction}`));
    await c.subscribe("auth-resume");
    await until(() => events.length > 0, "the 4300 close", 5000);
    assert.equal(events[0], "4300:refresh");
    await until(() => c.state === "open", "reconnected");
    assert.ok(calls >= 2);
    assert.deepEqual(reasons.slice(0, 2), ["connect", "expired"], "CLOSE-REFRESH: new credentials, asked as such");
    c.close();
  });

  test("4000-4099: rejected credentials are terminal, no reconnect", async () => {
    const c = client(server.url, { token: "not-a-jwt" });
    const err = await c.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ClientError && err.terminal, String(err));
    assert.equal((err as ClientError).code, 4004);
    assert.equal(c.state, "closed");
  });
});

describe("live close ranges", () => {
  test("4100-4199: rate limited, backs off and reconnects", async () => {
    const server = await startServer("max_messages_per_second = 2\nmax_burst = 4\n");
    try {
      const c = client(server.url, { encodings: ["json"] });
      const events: string[] = [];
      c.on("disconnect", (d) => events.push(`${d.code}:${d.reaction}`));
      await c.connect();
      for (let i = 0; i < 8; i++) c.publish("rate", i).catch(() => {});
      await until(() => events.length > 0, "the 4101 close");
      assert.equal(events[0], "4101:backoff");
      await until(() => c.state === "open", "reconnected after backoff");
      c.close();
    } finally {
      await server.stop();
    }
  });

  test("1001 (reconnect range): server restart, reconnect and report the lost epoch", async () => {
    let server = await startServer();
    const port = server.port;
    const c = client(server.url, { encodings: ["msgpack"] });
    const got = collect(c);
    const events: string[] = [];
    c.on("disconnect", (d) => events.push(`${d.code}:${d.reaction}:${d.attempt}`));
    const recoveries: v2.RecoveryReason[] = [];
    c.on("recovery", (r) => recoveries.push(r.reason));
    await c.subscribe("restart");
    await c.publish("restart", "before");
    await until(() => got.length === 1, "first message");
    await server.stop();
    server = await startServer("", `127.0.0.1:${port}`);
    try {
      await until(() => c.state === "open" && recoveries.length === 1, "resubscribed after restart");
      assert.equal(events[0], "1001:reconnect:1");
      assert.deepEqual(recoveries, ["RECOVERY_REASON_EPOCH_CHANGED"]);
      await c.publish("restart", "after");
      await until(() => got.length === 2, "message after restart");
      assert.equal(got[1]!.seq, 1);
      c.close();
    } finally {
      await server.stop();
    }
  });

  test("4002: no common version is terminal and names what the server supports", async () => {
    const server = await startServer('subprotocols = ["courier.v2.json"]\n');
    try {
      const c = client(server.url, { versions: [1], encodings: ["json"] });
      const err = await c.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ClientError && err.terminal);
      assert.equal(err.code, 4002);
      // Browsers read the server's list from the close reason; Node's `ws` refuses the
      // handshake first (see client.ts), so the list is only checked when present.
      assert.match(err.message, /courier\.v2\.json|no subprotocol/);
    } finally {
      await server.stop();
    }
  });

  test("subprotocols: exactly the names given are offered, the server picks among them", async () => {
    const server = await startServer();
    try {
      const offered: string[][] = [];
      class Recording extends WS {
        constructor(url: string, protocols: string[]) {
          super(url, protocols);
          offered.push(protocols);
        }
      }
      const names = ["courier.v2.proto", "courier.v1.json", "courier.v2.json"];
      const c = client(server.url, { subprotocols: names, WebSocket: Recording as unknown as WebSocketFactory });
      await c.connect();
      assert.deepEqual(offered, [names]);
      assert.deepEqual(c.subprotocol, { version: 2, encoding: "proto" }); // VER-HIGHEST-COMMON, first of v2
      c.close();
      assert.throws(() => client(server.url, { subprotocols: ["courier.v3.json"] }), (e: unknown) => e instanceof ClientError && e.kind === "config");
    } finally {
      await server.stop();
    }
  });

  test("version 1 session works end to end", async () => {
    const server = await startServer();
    try {
      const c = client(server.url, { versions: [1], encodings: ["proto"] });
      const got = collect(c);
      await c.subscribe("v1");
      assert.equal(c.subprotocol?.version, 1);
      await c.publish("v1", { hello: "v1" });
      await until(() => got.length === 1, "message");
      c.close();
    } finally {
      await server.stop();
    }
  });
});

// Keep the type import used when tests are filtered.
export type { WebSocketLike };
