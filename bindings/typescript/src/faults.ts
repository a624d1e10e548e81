// Test-only client faults: each breaks one client requirement of the spec on purpose, so that
// the client conformance suite can prove its cases notice (`courier conform client`, the mutant
// proof). Not part of the client's API and not for applications: only the conformance driver
// (scripts/conform-driver.mjs) imports this entry point, when `COURIER_CLIENT_FAULT` names a
// fault. A fault is installed once on one client by replacing a few of its methods on that
// instance; a client without a fault runs no fault code and checks no flag.
//
// The names are those of the Rust client's faults where both clients have the requirement
// (crates/client, conformance/src/trace.rs lists which cases catch each one).

import type { Reaction } from "./backoff.js";
import { reaction } from "./backoff.js";
import type { CourierClient, Position } from "./client.js";
import { Codec } from "./codec.js";
import type * as v2 from "./gen/courier/v2/types.js";

/** The parts of a `CourierClient` the faults reach into (its private members, at run time). */
interface Internals {
  o: { backoff: { baseMs?: number; capMs?: number; reconnectNowMaxMs?: number }; offlineQueueSize: number };
  attempt: number;
  lastFrameAt: number;
  codec: Codec | undefined;
  token: string;
  tokenSource: unknown;
  forceRefresh: boolean;
  socketError: string;
  welcome: v2.Welcome | undefined;
  channels: Map<string, { position: Position | undefined; awaitingAck: boolean }>;
  outbox: Array<{ sent: boolean; firstSentAt: number | undefined }>;
  requests: Map<string, unknown>;
  delivered: Map<string, true>;
  emit(event: string, payload: unknown): void;
  subscribe(channel: string, options?: { from?: Position }): Promise<unknown>;
  dial(): Promise<void>;
  handle(env: v2.Envelope): void;
  onFrame(ws: unknown, data: unknown): void;
  id(prefix: string): string;
  sendNow(env: unknown): void;
  onWelcome(w: v2.Welcome): void;
  onClose(ws: unknown, code: number, reason: string): void;
  afterClose(code: number, reason: string, retryAfter: number | undefined, wasOpen: boolean, noSubprotocol: boolean): void;
  delayBefore(react: Reaction, retryAfter: number | undefined, wasOpen: boolean): number;
  dropConnection(code: number, reason: string, react: Reaction): void;
  startHeartbeat(w: v2.Welcome): void;
  scheduleRefresh(expiresAt: number | undefined): void;
  onSubscribeAck(ack: v2.SubscribeAck): void;
  onMessage(m: v2.Message): void;
  onError(e: v2.Error): void;
  send(env: unknown): void;
  close(): void;
}

/** One fault: the requirement it breaks and how. */
interface Fault {
  readonly requirement: string;
  readonly install: (c: Internals) => void;
}

const REPLY_TYPES = new Set(["publish_ack", "unsubscribe_ack", "rpc_response", "presence", "refreshed"]);

const FAULTS: Record<string, Fault> = {
  // Delivers a message past a gap as if it were the next one: no resubscription.
  "deliver-gaps": {
    requirement: "SEQ-CLIENT-GAP-DETECTION",
    install(c) {
      const orig = c.onMessage.bind(c);
      c.onMessage = (m) => {
        const ch = c.channels.get(m.channel);
        const p = ch?.position;
        if (ch && p && !ch.awaitingAck && (m.epoch !== p.epoch || m.seq > p.seq + 1)) ch.position = { epoch: m.epoch, seq: m.seq - 1 };
        orig(m);
      };
    },
  },
  // Delivers a message at or below the tracked position again.
  "deliver-old": {
    requirement: "SEQ-CLIENT-DROP-OLD",
    install(c) {
      const orig = c.onMessage.bind(c);
      c.onMessage = (m) => {
        const ch = c.channels.get(m.channel);
        const p = ch?.position;
        if (ch && p && !ch.awaitingAck && m.epoch === p.epoch && m.seq <= p.seq) c.emit("message", m);
        else orig(m);
      };
    },
  },
  // Forgets every delivered id: repeated ids are delivered again.
  "deliver-duplicates": {
    requirement: "DEDUP-CLIENT-DROP",
    install(c) {
      const orig = c.onMessage.bind(c);
      c.onMessage = (m) => {
        c.delivered.clear();
        orig(m);
      };
    },
  },
  // Leaves the tracked position behind a message it dropped as a duplicate by id.
  "duplicate-keeps-position": {
    requirement: "DEDUP-CLIENT-ADVANCE",
    install(c) {
      const orig = c.onMessage.bind(c);
      c.onMessage = (m) => {
        const ch = c.channels.get(m.channel);
        const before = ch?.position;
        const dup = m.id !== "" && c.delivered.has(`${m.channel}\u0000${m.id}`);
        orig(m);
        if (ch && dup && !ch.awaitingAck) ch.position = before;
      };
    },
  },
  // Delivers messages of a channel after unsubscribing from it.
  "deliver-after-unsubscribe": {
    requirement: "ORDER-UNSUBSCRIBE-FINAL",
    install(c) {
      const orig = c.onMessage.bind(c);
      c.onMessage = (m) => (c.channels.has(m.channel) ? orig(m) : c.emit("message", m));
    },
  },
  // Resubscribes after a reconnect without `resume`.
  "resubscribe-without-resume": {
    requirement: "RESUME-CLIENT-RESUBSCRIBE",
    install(c) {
      const orig = c.onWelcome.bind(c);
      c.onWelcome = (w) => {
        for (const ch of c.channels.values()) ch.position = undefined;
        orig(w);
      };
    },
  },
  // Subscribes as if new when the application asks to start from a position it kept.
  "ignore-subscribe-from": {
    requirement: "RESUME-CLIENT-FROM",
    install(c) {
      const orig = c.subscribe.bind(c);
      c.subscribe = (channel) => orig(channel);
    },
  },
  // Reports a failed recovery as recovered.
  "hide-failed-recovery": {
    requirement: "RESUME-CLIENT-REPORT",
    install(c) {
      const orig = c.onSubscribeAck.bind(c);
      c.onSubscribeAck = (ack) =>
        orig(
          ack.recovery?.status === "RECOVERY_STATUS_FAILED"
            ? { ...ack, recovery: { ...ack.recovery, status: "RECOVERY_STATUS_RECOVERED", reason: "RECOVERY_REASON_UNSPECIFIED" } }
            : ack,
        );
    },
  },
  // Reconnects (with backoff) after a terminal close.
  "reconnect-after-terminal": {
    requirement: "CLOSE-TERMINAL-NO-RECONNECT",
    install(c) {
      const orig = c.afterClose.bind(c);
      c.afterClose = (code, reason, retryAfter, wasOpen, noSubprotocol) =>
        reaction(code) === "terminal" && !noSubprotocol ? orig(1006, reason, retryAfter, wasOpen, false) : orig(code, reason, retryAfter, wasOpen, noSubprotocol);
    },
  },
  // Ignores a `disconnect` notice: the close (or its absence) decides.
  "ignore-disconnect-notice": {
    requirement: "CLOSE-NOTICE-WINS",
    install(c) {
      const orig = c.handle.bind(c);
      c.handle = (env) => (env.type === "disconnect" ? undefined : orig(env));
    },
  },
  // Waits the whole backoff ceiling, or the whole reconnect-now window, every time: no jitter.
  "no-jitter": {
    requirement: "CLIENT-BACKOFF-JITTER",
    install(c) {
      const orig = c.delayBefore.bind(c);
      c.delayBefore = (react, retryAfter, wasOpen) => {
        const delay = orig(react, retryAfter, wasOpen);
        if (retryAfter !== undefined) return delay;
        const { baseMs = 1000, capMs = 30_000, reconnectNowMaxMs = 1000 } = c.o.backoff;
        if ((react === "reconnect" || react === "refresh") && wasOpen && c.attempt === 0) return reconnectNowMaxMs;
        return Math.min(capMs, baseMs * 2 ** Math.min(c.attempt, 52));
      };
    },
  },
  // Resets the failure count as soon as a session opens, not once it stayed open for the interval.
  "reset-backoff-on-open": {
    requirement: "CLIENT-BACKOFF-SHORT-SESSION",
    install(c) {
      const orig = c.onWelcome.bind(c);
      c.onWelcome = (w) => {
        c.attempt = 0;
        orig(w);
      };
    },
  },
  // Waits its own delay instead of the notice's `retry_after_ms`.
  "ignore-retry-after": {
    requirement: "CLOSE-RETRY-AFTER",
    install(c) {
      const orig = c.delayBefore.bind(c);
      c.delayBefore = (react, _retryAfter, wasOpen) => orig(react, undefined, wasOpen);
    },
  },
  // Backs off for the cap after a 1001 or 42xx close instead of reconnecting at once.
  "reconnect-now-waits": {
    requirement: "CLOSE-RECONNECT-NOW",
    install(c) {
      const orig = c.delayBefore.bind(c);
      c.delayBefore = (react, retryAfter, wasOpen) =>
        react === "reconnect" && retryAfter === undefined ? (c.o.backoff.capMs ?? 30_000) : orig(react, retryAfter, wasOpen);
    },
  },
  // Reconnects after a 43xx close with the credentials it had.
  "keep-token-after-expiry": {
    requirement: "CLOSE-REFRESH",
    install(c) {
      const orig = c.dial.bind(c);
      c.dial = () => {
        if (!c.forceRefresh || !c.token) return orig();
        c.forceRefresh = false;
        const source = c.tokenSource;
        c.tokenSource = c.token;
        return orig().finally(() => (c.tokenSource = source));
      };
    },
  },
  // Never declares a silent link dead.
  "no-heartbeat-deadline": {
    requirement: "HB-CLIENT-DEADLINE",
    install(c) {
      c.startHeartbeat = () => undefined;
    },
  },
  // Resends queued publishes with new ids.
  "new-id-on-resend": {
    requirement: "CLIENT-OFFLINE-QUEUE",
    install(c) {
      const orig = c.onWelcome.bind(c);
      c.onWelcome = (w) => {
        for (const p of c.outbox) {
          const q = p as unknown as { env: { id: string } };
          if (p.firstSentAt !== undefined) q.env = { ...q.env, id: `${q.env.id}-again` };
        }
        orig(w);
      };
    },
  },
  // Queues publishes without bound.
  "unbounded-offline-queue": {
    requirement: "CLIENT-OFFLINE-QUEUE",
    install(c) {
      c.o.offlineQueueSize = Number.MAX_SAFE_INTEGER;
    },
  },
  // Never answers `ping`.
  "no-pong": {
    requirement: "HB-PONG",
    install(c) {
      const orig = c.handle.bind(c);
      c.handle = (env) => (env.type === "ping" ? undefined : orig(env));
    },
  },
  // Forgets, silently, the publishes sent but not acknowledged when a connection ends.
  "drop-unacked-publishes": {
    requirement: "CLIENT-OFFLINE-QUEUE",
    install(c) {
      const orig = c.afterClose.bind(c);
      c.afterClose = (...args) => {
        for (let i = c.outbox.length - 1; i >= 0; i--) if (c.outbox[i]!.sent) c.outbox.splice(i, 1);
        orig(...args);
      };
    },
  },
  // Does not hold a handshake that selected an unoffered subprotocol against the server. Node's
  // `ws` refuses such a handshake itself, so the client cannot speak it; this fault takes the
  // refusal for a lost connection and connects again.
  "accept-unoffered-subprotocol": {
    requirement: "VER-CLIENT-VERIFY",
    install(c) {
      const orig = c.onClose.bind(c);
      c.onClose = (ws, code, reason) => {
        c.socketError = c.socketError.replace(/invalid subprotocol/gi, "");
        orig(ws, code, reason);
      };
    },
  },
  // Ignores `reauth_request`.
  "ignore-reauth": {
    requirement: "AUTH-REAUTH-CLIENT",
    install(c) {
      const orig = c.handle.bind(c);
      c.handle = (env) => (env.type === "reauth_request" ? undefined : orig(env));
    },
  },
  // Never refreshes before `token_expires_at_ms`.
  "no-early-refresh": {
    requirement: "AUTH-REFRESH-EARLY",
    install(c) {
      c.scheduleRefresh = () => undefined;
    },
  },
  // Sends requests over `max_message_bytes` instead of refusing them.
  "send-oversize": {
    requirement: "LIMIT-MESSAGE-SIZE",
    install(c) {
      const orig = c.send.bind(c);
      c.send = (env) => {
        const w = c.welcome;
        c.welcome = undefined;
        try {
          orig(env);
        } finally {
          c.welcome = w;
        }
      };
    },
  },
  // Closes the connection on a reply whose id matches no request in flight.
  "reject-unknown-reply": {
    requirement: "ORDER-UNKNOWN-IDS-IGNORED",
    install(c) {
      const orig = c.handle.bind(c);
      c.handle = (env) => {
        const id = "id" in env && typeof env.id === "string" ? env.id : "";
        const known = c.requests.has(id) || (env.type === "publish_ack" && c.outbox.some((p) => (p as unknown as { env: { id: string } }).env.id === id));
        if (REPLY_TYPES.has(env.type) && !known) c.dropConnection(4003, `unknown reply id ${id}`, "backoff");
        else orig(env);
      };
    },
  },
  // Subscribes again, at once, to a channel the server refused.
  "retry-forbidden": {
    requirement: "AUTHZ-NO-AUTO-RETRY",
    install(c) {
      const orig = c.onError.bind(c);
      c.onError = (e) => {
        const refused = e.code === "ERROR_CODE_FORBIDDEN" && e.channel !== "" && c.channels.get(e.channel)?.awaitingAck === true;
        orig(e);
        if (refused) c.subscribe(e.channel).catch(() => undefined);
      };
    },
  },
  // Ends the session on the application's request with 1001 instead of 1000.
  "close-with-going-away": {
    requirement: "CLOSE-CLIENT-NORMAL",
    install(c) {
      const orig = c.close.bind(c);
      c.close = () => {
        const ws = (c as unknown as { ws: { close(code: number, reason: string): void; onclose: unknown } | undefined }).ws;
        if (ws) {
          ws.onclose = null;
          ws.close(1001, "client closed");
        }
        orig();
      };
    },
  },
  // Requirements the Rust client's faults do not cover.
  // Takes only `ping` for a sign of life: a link busy with messages but without pings is dropped.
  "only-ping-is-alive": {
    requirement: "HB-ANY-FRAME",
    install(c) {
      let ping = false;
      const handle = c.handle.bind(c);
      c.handle = (env) => ((ping ||= env.type === "ping"), handle(env));
      const onFrame = c.onFrame.bind(c);
      c.onFrame = (ws, data) => {
        const before = c.lastFrameAt;
        ping = false;
        onFrame(ws, data);
        if (!ping) c.lastFrameAt = before;
      };
    },
  },
  // Gives every rpc_request the same id.
  "reuse-rpc-id": {
    requirement: "RPC-ID-UNIQUE",
    install(c) {
      const orig = c.id.bind(c);
      c.id = (prefix) => (prefix === "c" ? "c-1" : orig(prefix));
    },
  },
  // Stops for good after close codes that call for a backoff (1011–1014, 3000–3999, 4400–4999).
  "terminal-on-other-codes": {
    requirement: "CLOSE-RANGES",
    install(c) {
      const orig = c.afterClose.bind(c);
      c.afterClose = (code, reason, retryAfter, wasOpen, noSubprotocol) =>
        orig((code >= 1011 && code <= 1014) || (code >= 3000 && code <= 3999) || code >= 4400 ? 4000 : code, reason, retryAfter, wasOpen, noSubprotocol);
    },
  },
  // Backs off for the whole cap after a 4100–4199 close, not min(cap, base × 2^n).
  "backoff-at-cap": {
    requirement: "CLOSE-BACKOFF",
    install(c) {
      const orig = c.afterClose.bind(c);
      const delay = c.delayBefore.bind(c);
      let backoffClose = false;
      c.afterClose = (code, ...rest) => ((backoffClose = code >= 4100 && code <= 4199), orig(code, ...rest));
      c.delayBefore = (react, retryAfter, wasOpen) => (backoffClose && retryAfter === undefined ? (c.o.backoff.capMs ?? 30_000) : delay(react, retryAfter, wasOpen));
    },
  },
  // Refuses server frames over `max_message_bytes` (a client must take up to twice that).
  "frame-limit-is-max-message": {
    requirement: "LIMIT-SERVER-FRAME",
    install(c) {
      const orig = c.onWelcome.bind(c);
      c.onWelcome = (w) => {
        orig(w);
        const max = w.limits?.max_message_bytes ?? 0;
        if (c.codec && max > 0) c.codec = new Codec(c.codec.subprotocol, { maxMessageBytes: max });
      };
    },
  },
  // Sends `hello` twice on each connection.
  "hello-twice": {
    requirement: "HELLO-ONCE",
    install(c) {
      const orig = c.sendNow.bind(c);
      c.sendNow = (env) => (orig(env), (env as { type: string }).type === "hello" ? orig(env) : undefined);
    },
  },
  // Sends a `ping` before `hello`.
  "ping-before-hello": {
    requirement: "HELLO-FIRST",
    install(c) {
      const orig = c.sendNow.bind(c);
      c.sendNow = (env) => {
        if ((env as { type: string }).type === "hello") orig({ type: "ping", ts: Date.now() });
        orig(env);
      };
    },
  },
  // Answers each `subscribe_ack` with one of its own, a type only servers send.
  "send-server-type": {
    requirement: "SESSION-CLIENT-TYPES",
    install(c) {
      const orig = c.onSubscribeAck.bind(c);
      c.onSubscribeAck = (ack) => {
        orig(ack);
        c.send({ ...ack, type: "subscribe_ack" });
      };
    },
  },
};

/** Every fault's name and the requirement it breaks, in a stable order. */
export const CLIENT_FAULTS: ReadonlyArray<{ readonly name: string; readonly requirement: string }> = Object.entries(FAULTS).map(([name, f]) => ({
  name,
  requirement: f.requirement,
}));

/** Installs fault `name` on `client` (before `connect`); throws on an unknown name. */
export function injectFault(client: CourierClient, name: string): void {
  const fault = FAULTS[name];
  if (!fault) throw new Error(`unknown client fault ${JSON.stringify(name)}; known: ${Object.keys(FAULTS).join(", ")}`);
  fault.install(client as unknown as Internals);
}
