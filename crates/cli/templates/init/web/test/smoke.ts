// `npm test`: starts the server (`cargo run` in the project root, unless SERVER_URL names a
// running one), joins the lobby as two clients, sends a typed line and reads it back, and calls
// `greet`. Exits non-zero on any failure.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";

import { joinRoom } from "../src/chat.js";
import type { ChatMessage } from "../src/gen/__PKG__/v1/types.js";

async function startServer(): Promise<{ url: string; child?: ChildProcess }> {
  const given = process.env["SERVER_URL"];
  if (given) return { url: given };
  const child = spawn("cargo", ["run", "--quiet", "--", "--listen", "127.0.0.1:0"], { cwd: "..", stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    // The first run compiles the server.
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${out}`)), 15 * 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m) (clearTimeout(timer), resolve(m[1]!));
    });
    child.on("exit", (code) => (clearTimeout(timer), reject(new Error(`the server exited with ${code}: ${out}`))));
  });
  return { url, child };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const server = await startServer();
try {
  const seen: Array<{ line: ChatMessage; seq: number }> = [];
  const alice = await joinRoom(server.url, "lobby", () => undefined);
  const bob = await joinRoom(server.url, "lobby", (line, seq) => seen.push({ line, seq }));
  const seq = await alice.send("alice", "hello from the smoke test");
  await until(() => seen.length === 1, "bob to receive the line");
  assert.equal(seen[0]!.seq, seq);
  assert.equal(seen[0]!.line.author, "alice");
  assert.equal(seen[0]!.line.text, "hello from the smoke test");
  assert.equal(await bob.greet("bob"), "Hello, bob!");
  alice.close();
  bob.close();
  console.log(`smoke test passed against ${server.url}`);
} finally {
  server.child?.kill("SIGTERM");
}
