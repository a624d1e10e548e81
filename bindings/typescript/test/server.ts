// Runs the Rust reference server (`courier serve`) for live tests: on loopback, a free port,
// a TOML config written to a temp dir; waits for its `courier: listening on` line.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The `courier` binary: $COURIER_BIN, else the workspace's debug build. */
export const COURIER_BIN =
  process.env["COURIER_BIN"] ?? fileURLToPath(new URL("../../../../target/debug/courier", import.meta.url));

export interface Server {
  readonly url: string;
  readonly port: number;
  /** Stops the server gracefully (SIGTERM: disconnect 1001, CLOSE-SHUTDOWN) and waits for exit. */
  stop(): Promise<void>;
}

/** Starts `courier serve` with `toml` as its configuration, on `listen` (default a free port). */
export async function startServer(toml = "", listen = "127.0.0.1:0"): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), "courier-ts-"));
  const config = join(dir, "courier.toml");
  writeFileSync(config, toml);
  const child: ChildProcess = spawn(COURIER_BIN, ["serve", "--config", config, "--listen", listen, "--log", "warn"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`courier serve did not start: ${out}`)), 15_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /courier: listening on (ws:\/\/\S+)/.exec(out);
      if (m) (clearTimeout(timer), resolve(m[1]!));
    });
    child.on("exit", (code) => (clearTimeout(timer), reject(new Error(`courier serve exited with ${code}: ${out}`))));
  });
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const kill = setTimeout(() => child.kill("SIGKILL"), 8000);
        child.once("exit", () => (clearTimeout(kill), resolve()));
        child.kill("SIGTERM");
      }),
  };
}

/** An HS256 JWT for the test secret. */
export function jwt(secret: string, claims: Record<string, unknown>): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until true or `ms` elapse (then throws with `what`). */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
