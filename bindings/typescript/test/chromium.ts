// The browser harness of the tests: serves built pages on loopback, launches Debian's headless
// chromium through playwright-core, polls a page's state, and cuts connections through a TCP
// proxy (to make a browser reconnect without restarting the server).

import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer, connect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
/** The package directory. */
export const pkg = new URL("../../", import.meta.url);

/** Serves `files` (URL path → [file under the package, content type]) on loopback. */
export async function servePages(files: Record<string, [string, string]>): Promise<{ url: string; close(): void }> {
  const http: HttpServer = createServer((req, res) => {
    const f = files[new URL(req.url ?? "/", "http://x").pathname];
    if (!f) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": f[1] }).end(readFileSync(new URL(f[0], pkg)));
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, close: () => void http.close() };
}

/** A headless chromium with a fresh profile. */
export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "courier-chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Reads `window[name]` of `tab` until `cond` holds (15 s), returning the last state read. */
export async function pollPage<S>(tab: Page, name: string, cond: (s: S) => boolean, what: string, ms = 15_000): Promise<S> {
  const end = Date.now() + ms;
  for (;;) {
    const s = (await tab.evaluate((n) => JSON.parse(JSON.stringify((window as unknown as Record<string, unknown>)[n] ?? null)) as unknown, name)) as S;
    if (s !== null && cond(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A TCP proxy to `port` on loopback: `cut()` drops every connection, `hold` refuses new ones. */
export interface Proxy {
  readonly port: number;
  /** While true, new connections are closed at once. */
  hold: boolean;
  /** Destroys every open connection (the peers see an abnormal close, 1006). */
  cut(): void;
  close(): void;
}

export async function startProxy(port: number): Promise<Proxy> {
  const open = new Set<Socket>();
  const proxy: Proxy = {
    port: 0,
    hold: false,
    cut: () => {
      for (const s of open) s.destroy();
      open.clear();
    },
    close: () => (proxy.cut(), server.close()),
  };
  const server = createTcpServer((inbound) => {
    if (proxy.hold) return void inbound.destroy();
    const outbound = connect(port, "127.0.0.1");
    open.add(inbound).add(outbound);
    const drop = (): void => {
      inbound.destroy();
      outbound.destroy();
      open.delete(inbound);
      open.delete(outbound);
    };
    inbound.on("error", drop).on("close", drop).pipe(outbound);
    outbound.on("error", drop).on("close", drop).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  (proxy as { port: number }).port = (server.address() as AddressInfo).port;
  return proxy;
}
