// Subprotocol names (`courier.v2.json`, ...) and the 4002 close reason that lists what a server
// supports (docs/spec/negotiation.md).

/** A Courier protocol version. */
export type Version = 1 | 2;

/** A wire encoding, as spelled in subprotocol names. */
export type Encoding = "json" | "msgpack" | "proto";

/** A negotiated (or offered) version and encoding. */
export interface Subprotocol {
  readonly version: Version;
  readonly encoding: Encoding;
}

/** Every encoding, in the client's default order of preference. */
export const ENCODINGS: readonly Encoding[] = ["msgpack", "json", "proto"];

/** `courier.v<version>.<encoding>` (VER-SUBPROTOCOL). */
export function formatSubprotocol(sp: Subprotocol): string {
  return `courier.v${sp.version}.${sp.encoding}`;
}

/** Parses an exact subprotocol name; anything else is `undefined`. */
export function parseSubprotocol(name: string): Subprotocol | undefined {
  const m = /^courier\.v([12])\.(json|msgpack|proto)$/.exec(name);
  if (!m) return undefined;
  return { version: Number(m[1]) as Version, encoding: m[2] as Encoding };
}

/** Whether frames of `encoding` travel as WebSocket text (only JSON does). */
export function isText(encoding: Encoding): boolean {
  return encoding === "json";
}

/**
 * The subprotocols a 4002 close reason lists (VER-MISMATCH-REASON): grouped
 * (`courier.v2.json,msgpack`) or ungrouped names; unparseable parts are skipped.
 */
export function parseMismatchReason(reason: string): Subprotocol[] {
  const at = reason.indexOf("supported:");
  if (at < 0) return [];
  const out: Subprotocol[] = [];
  for (const group of reason.slice(at + "supported:".length).trim().split(/\s+/)) {
    const dot = group.lastIndexOf(".");
    if (dot < 0) continue;
    for (const enc of group.slice(dot + 1).split(",")) {
      const sp = parseSubprotocol(`${group.slice(0, dot)}.${enc}`);
      if (sp) out.push(sp);
    }
  }
  return out;
}
