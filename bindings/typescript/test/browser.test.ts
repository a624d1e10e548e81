// Real browser: headless Chromium (Debian's, driven by playwright-core) loads a page that uses
// the client, connects to the reference server, receives messages, and keeps receiving without
// loss after the server restarts. A screenshot is saved under test-artifacts/.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { WebSocket as WS } from "ws";

import { CourierClient } from "../src/client.js";
import type { WebSocketFactory } from "../src/transport.js";
import { launchChromium, pkg, servePages } from "./chromium.js";
import { startServer, until } from "./server.js";

interface PageState {
  state: string;
  messages: Array<{ seq: number; payload: unknown }>;
  recoveries: string[];
  errors: string[];
}

test("headless Chromium receives messages across a server restart", async () => {
  let server = await startServer();
  const port = server.port;
  const page = await servePages({
    "/index.html": ["test/browser/index.html", "text/html"],
    "/page.js": ["build/browser/page.js", "text/javascript"],
  });
  const context = await launchChromium();
  const publisher = new CourierClient({ url: server.url, WebSocket: WS as unknown as WebSocketFactory, backoff: { baseMs: 50, capMs: 500 } });
  try {
    const tab = context.pages()[0] ?? (await context.newPage());
    await tab.goto(`${page.url}/index.html?url=${encodeURIComponent(server.url)}&channel=browser&encoding=msgpack`);
    const read = (): Promise<PageState> => tab.evaluate(() => (window as unknown as { courier: PageState }).courier);
    let s: PageState = await read();
    const poll = async (cond: (s: PageState) => boolean, what: string): Promise<void> => {
      const end = Date.now() + 15_000;
      while (!cond((s = await read()))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await poll((p) => p.state === "open" && p.recoveries.length === 0 && p.messages.length === 0, "the page to connect");
    // The page's subscribe_ack has no visible effect; give it a moment before publishing.
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 1; i <= 5; i++) await publisher.publish("browser", { n: i, phase: "before restart" });
    await poll((p) => p.messages.length === 5, "5 messages");

    await server.stop();
    server = await startServer("", `127.0.0.1:${port}`);
    await poll((p) => p.state === "open" && p.recoveries.length === 1, "the page to reconnect and resubscribe");
    assert.deepEqual(s.recoveries, ["RECOVERY_STATUS_FAILED/RECOVERY_REASON_EPOCH_CHANGED"]);
    await until(() => publisher.state === "open", "the publisher to reconnect");
    for (let i = 6; i <= 10; i++) await publisher.publish("browser", { n: i, phase: "after restart" });
    await poll((p) => p.messages.length === 10, "10 messages");
    assert.deepEqual(
      s.messages.map((m) => (m.payload as { n: number }).n),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.deepEqual(s.messages.map((m) => m.seq), [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
    assert.deepEqual(s.errors, []);
    mkdirSync(new URL("test-artifacts/", pkg), { recursive: true });
    await tab.screenshot({ path: new URL("test-artifacts/browser.png", pkg).pathname, fullPage: true });
  } finally {
    publisher.close();
    await context.close();
    page.close();
    await server.stop();
  }
});
