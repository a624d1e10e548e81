// The WebSocket the client runs on: the global one in browsers (and Node 22+), the `ws` package
// in Node 20. Only the standard browser API is used, so both behave alike.

/** The part of the browser `WebSocket` API the client uses. */
export interface WebSocketLike {
  readonly protocol: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A `WebSocket` constructor (browser `WebSocket`, or `ws`'s). */
export type WebSocketFactory = new (url: string, protocols: string[]) => WebSocketLike;

/** The global `WebSocket` if there is one, else the `ws` package (an optional dependency). */
export async function defaultWebSocket(): Promise<WebSocketFactory> {
  const g = globalThis as { WebSocket?: unknown };
  if (typeof g.WebSocket === "function") return g.WebSocket as WebSocketFactory;
  // A computed specifier keeps bundlers from pulling `ws` into browser builds.
  const name = "ws";
  const mod = (await import(name)) as { WebSocket?: unknown; default?: unknown };
  return (mod.WebSocket ?? mod.default) as WebSocketFactory;
}

/** Frame data as the codec takes it: text stays a string, binary becomes bytes. */
export function frameData(data: unknown): string | Uint8Array | undefined {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) {
    // `ws` delivers fragmented messages as Buffer[] with binaryType "fragments" only; be safe.
    const parts = data.filter((p): p is Uint8Array => p instanceof Uint8Array);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) out.set(p, (at += p.length) - p.length);
    return out;
  }
  return undefined;
}
