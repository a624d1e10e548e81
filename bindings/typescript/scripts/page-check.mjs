// `node scripts/page-check.mjs WEB_DIR WS_URL`: a `courier init` project's browser page in
// headless Chromium (Debian's, as the package's browser tests use it). Serves WEB_DIR (after its
// `npm run build`) on loopback, opens index.html?server=WS_URL in two tabs, sends a line from one
// through the page's form and waits for it in the other. Used by `cargo xtask init-smoke`.

import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const [dir, ws] = process.argv.slice(2);
if (!dir || !ws) {
  console.error("usage: node scripts/page-check.mjs WEB_DIR WS_URL");
  process.exit(2);
}
const types = { ".html": "text/html", ".js": "text/javascript" };
const http = createServer((req, res) => {
  const path = normalize(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/+/, "");
  let body;
  try {
    body = readFileSync(join(dir, path));
  } catch {
    return void res.writeHead(404).end();
  }
  res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(body);
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const page = `http://127.0.0.1:${http.address().port}/index.html?server=${encodeURIComponent(ws)}`;
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "courier-page-check-")), {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const errors = [];
  const [a, b] = [await context.newPage(), await context.newPage()];
  for (const t of [a, b]) {
    t.on("pageerror", (e) => errors.push(String(e)));
    await t.goto(page);
    await t.waitForFunction(() => document.getElementById("state")?.textContent === "open", null, { timeout: 15_000 });
  }
  await a.fill("#author", "ada");
  await a.fill("#text", "hello from Chromium");
  await a.click("button");
  await b.waitForFunction(() => [...document.querySelectorAll("#lines li")].some((li) => li.textContent?.endsWith("ada: hello from Chromium")), null, { timeout: 15_000 });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("page check passed: a line sent from one tab arrived in the other");
} finally {
  await context.close();
  http.close();
}
