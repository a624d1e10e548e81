#!/usr/bin/env node
// The conformance driver of the TypeScript client under Node:
//   courier conform client -- node bindings/typescript/scripts/conform-driver.mjs
// checks `@courier/client` against the spec's client requirements. It speaks the driver contract
// of docs/conformance-client.md: commands as JSON lines on stdin, events as JSON lines on stdout,
// logs on stderr. It uses the built package (`npm run build`, or `npm ci`) through its public
// exports, as an application does.
//
// `COURIER_CLIENT_FAULT=<name>` installs one of the client faults of `@courier/client/faults` (the
// suite's proof that its cases notice a broken client); nothing else reads it.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { ClientError, CourierClient, RequestError, formatSubprotocol } from "@courier/client";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const fault = process.env.COURIER_CLIENT_FAULT || undefined;
const injectFault = fault ? (await import("@courier/client/faults")).injectFault : undefined;

// ---- JSON with integers beyond 2^53 − 1 (payloads are JSON values; an integer stays one) -----

const BIG = "\u0000big:";

/** JSON.parse, but integer literals beyond Number's safe range become bigint (the client's Payload). */
function parseJson(text) {
  let out = "";
  let from = 0;
  // Integer literals outside strings with 16 digits or more: quoted with a marker, restored below.
  const re = /"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![.\deE])/g;
  for (let m; (m = re.exec(text)); ) {
    if (m[0].startsWith('"')) continue;
    out += `${text.slice(from, m.index)}"\\u0000big:${m[0]}"`;
    from = m.index + m[0].length;
  }
  return JSON.parse(out + text.slice(from), (_key, v) => {
    if (typeof v !== "string" || !v.startsWith(BIG)) return v;
    const n = BigInt(v.slice(BIG.length));
    return Number.isSafeInteger(Number(n)) ? Number(n) : n;
  });
}

/** JSON text of an event; bigint payload values are written as integer literals. */
function toJson(value) {
  const text = JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? `${BIG}${v}` : v));
  return text.replace(/"\\u0000big:(-?\d+)"/g, "$1");
}

/** A payload as JSON, or null when it holds bytes, which JSON cannot carry. */
function payloadJson(p) {
  const renderable = (v) =>
    v === null || ["boolean", "number", "bigint", "string"].includes(typeof v) || (Array.isArray(v) ? v.every(renderable) : typeof v === "object" && !(v instanceof Uint8Array) && Object.values(v).every(renderable));
  return p === undefined || !renderable(p) ? null : p;
}

// ---- the pipes -----------------------------------------------------------------------------

const emit = (event) => process.stdout.write(`${toJson(event)}\n`);
const log = (...args) => console.error("conform-driver:", ...args);
const ok = (ref, fields = {}) => emit({ event: "result", ref, ok: true, ...fields });
const err = (ref, kind, message) => emit({ event: "result", ref, ok: false, error: { kind, message } });

const TOKEN_REASONS = { connect: "connect", expired: "expired", expiring: "expiring", reauth: "reauth" };
const RECOVERY = { RECOVERY_STATUS_NOT_REQUESTED: "not_requested", RECOVERY_STATUS_RECOVERED: "recovered", RECOVERY_STATUS_FAILED: "failed" };
const REASONS = {
  RECOVERY_REASON_HISTORY_EXPIRED: "history_expired",
  RECOVERY_REASON_EPOCH_CHANGED: "epoch_changed",
  RECOVERY_REASON_POSITION_AHEAD: "position_ahead",
  RECOVERY_REASON_NO_HISTORY: "no_history",
};

/** The contract's error kind for what a client call threw. */
function errorKind(e) {
  const server = e instanceof RequestError ? e : e instanceof ClientError && e.cause instanceof RequestError ? e.cause : undefined;
  if (server) return server.code === "ERROR_CODE_FORBIDDEN" ? "forbidden" : "server";
  if (!(e instanceof ClientError)) return "other";
  switch (e.kind) {
    case "queue_full":
    case "too_large":
    case "timeout":
      return e.kind;
    case "closed":
    case "closed_by_server":
    case "gave_up":
      return "stopped";
    default:
      return "other"; // disconnected (a request in flight when the link dropped), expired, encode, ...
  }
}

/** Runs `call` without blocking the stdin loop; its outcome becomes the `result` of `ref`. */
function settle(ref, call, fields) {
  call().then(
    (v) => ok(ref, fields(v)),
    (e) => err(ref, errorKind(e), e instanceof Error ? e.message : String(e)),
  );
}

// ---- the client ----------------------------------------------------------------------------

let client;
/** The `ref` of a `connect` waiting for its first session. */
let connecting;
let lastClose = { code: null, reason: "" };

function connect(cmd) {
  const tokens = Array.isArray(cmd.tokens) ? cmd.tokens : [];
  let asked = 0;
  const token = ({ reason }) => {
    const t = tokens.length > 0 ? tokens[Math.min(asked, tokens.length - 1)] : null;
    asked++;
    emit({ event: "token", reason: TOKEN_REASONS[reason] ?? "other" });
    return typeof t === "string" ? t : undefined;
  };
  const o = cmd.options ?? {};
  const num = (v) => (typeof v === "number" ? v : undefined);
  const backoff = {};
  if (num(o.backoff_base_ms) !== undefined) backoff.baseMs = o.backoff_base_ms;
  if (num(o.backoff_cap_ms) !== undefined) backoff.capMs = o.backoff_cap_ms;
  if (num(o.reconnect_now_max_ms) !== undefined) backoff.reconnectNowMaxMs = o.reconnect_now_max_ms;
  if (num(o.max_attempts) !== undefined) backoff.maxAttempts = o.max_attempts;
  const options = { url: cmd.url, token, features: Array.isArray(cmd.features) ? cmd.features : [], backoff };
  if (Array.isArray(cmd.subprotocols)) options.subprotocols = cmd.subprotocols;
  if (num(o.offline_queue) !== undefined) options.offlineQueueSize = o.offline_queue;
  if (num(o.request_timeout_ms) !== undefined) options.requestTimeoutMs = o.request_timeout_ms;
  const c = new CourierClient(options); // throws on a subprotocol it cannot offer
  if (injectFault) injectFault(c, fault);

  c.on("open", ({ welcome, subprotocol }) => {
    emit({ event: "connected", subprotocol: formatSubprotocol(subprotocol), session_id: welcome.session_id });
    if (connecting !== undefined) ok(connecting);
    connecting = undefined;
  });
  c.on("subscribed", (s) => {
    const recovery = RECOVERY[s.status] ?? "not_requested";
    const reason = recovery === "failed" ? (REASONS[s.reason] ?? "unspecified") : null;
    emit({ event: "subscribed", channel: s.channel, position: s.position, recovery, reason, replayed: s.replayed });
  });
  c.on("message", (m) => emit({ event: "message", channel: m.channel, epoch: m.epoch, seq: m.seq, id: m.id, payload: payloadJson(m.payload) }));
  c.on("gap", (g) => emit({ event: "gap", channel: g.channel, last: g.position, received: g.received }));
  c.on("disconnect", (d) => {
    lastClose = { code: d.code, reason: d.reason };
    emit({ event: "disconnected", code: d.code, reason: d.reason });
    if (d.attempt !== undefined) emit({ event: "reconnecting", attempt: d.attempt, delay_ms: d.retryInMs });
  });
  c.on("error", (e) => {
    if (!e.terminal) return log(`error (${e.kind}): ${e.message}`);
    // `closed_by_server` follows the disconnect of its close; the others stop without a close code.
    const byServer = e.kind === "closed_by_server";
    emit({ event: "terminal", code: byServer ? (e.code ?? lastClose.code) : null, reason: byServer ? lastClose.reason : "", message: e.message });
    if (connecting !== undefined) err(connecting, "stopped", e.message);
    connecting = undefined;
  });
  return c;
}

function command(cmd) {
  const ref = cmd.ref;
  if (cmd.cmd === "exit") process.exit(0);
  if (cmd.cmd === "connect") {
    if (client) return err(ref, "other", "already connected");
    try {
      client = connect(cmd);
    } catch (e) {
      return err(ref, e instanceof ClientError && e.kind === "config" ? "unsupported" : "other", String(e?.message ?? e));
    }
    connecting = ref;
    client.connect().catch(() => undefined); // the outcome arrives as `open` or a terminal `error`
    return;
  }
  if (!client) return err(ref, "stopped", "no client: connect first");
  switch (cmd.cmd) {
    case "subscribe":
      // `resume`: a position the application kept; the client starts from it.
      return settle(ref, () => client.subscribe(cmd.channel, cmd.resume ? { from: { epoch: cmd.resume.epoch, seq: cmd.resume.seq } } : {}), (ack) => ({ position: { epoch: ack.position?.epoch ?? "", seq: ack.position?.seq ?? 0 } }));
    case "unsubscribe":
      // Done once the client has let go of the channel (at once: no message of it is delivered
      // from now on, ORDER-UNSUBSCRIBE-FINAL); the promise waits for the server's ack besides.
      client.unsubscribe(cmd.channel).catch((e) => log(`unsubscribe ${cmd.channel}: ${e?.message ?? e}`));
      return ok(ref);
    case "publish":
      return settle(
        ref,
        () => client.publish(cmd.channel, cmd.payload ?? null, typeof cmd.id === "string" ? { id: cmd.id } : {}),
        (a) => ({ epoch: a.epoch, seq: a.seq, duplicate: a.duplicate }),
      );
    case "rpc":
      return settle(ref, () => client.rpc(cmd.method, cmd.payload ?? null), (p) => ({ payload: payloadJson(p) }));
    case "close": {
      const open = client.state === "open";
      client.close();
      if (open) emit({ event: "disconnected", code: 1000, reason: "client closed" });
      if (connecting !== undefined) err(connecting, "stopped", "closed before a session opened");
      connecting = undefined;
      return ok(ref);
    }
    default:
      return err(ref, "unsupported", `unknown command ${JSON.stringify(cmd.cmd)}`);
  }
}

// Load what the client loads on its first connection (Node 20 has no global WebSocket: the client
// imports `ws` then) before `ready`, so that the suite's timing sees the client, not module loading.
if (typeof globalThis.WebSocket !== "function") await import("ws").catch(() => undefined);

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = parseJson(line);
  } catch {
    return log(`not JSON: ${line}`);
  }
  try {
    command(cmd);
  } catch (e) {
    log(`${cmd.cmd}: ${e?.stack ?? e}`);
    if (typeof cmd.ref === "number") err(cmd.ref, "other", String(e?.message ?? e));
  }
});
lines.on("close", () => process.exit(0));
emit({ event: "ready", client: `courier-ts/${pkg.version}` });
