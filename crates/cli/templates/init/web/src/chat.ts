// The application's realtime logic, without the DOM (the page and the smoke test share it):
// join a room, send and read typed chat lines, call the server's `greet` method.

import { CourierClient, type ClientOptions } from "@courier/client";

import type { ChatMessage } from "./gen/__PKG__/v1/types.js";
import { readChatMessage, readGreetReply, writeChatMessage, writeGreetRequest } from "./gen/__PKG__/v1/wire.js";

export interface Room {
  readonly client: CourierClient;
  /** Sends a line; resolves with its sequence number in the room. */
  send(author: string, text: string): Promise<number>;
  /** Calls `greet` on the server. */
  greet(name: string): Promise<string>;
  close(): void;
}

/** Connects to `url` and joins `room.<name>`; `onLine` gets every line, in order, once. */
export async function joinRoom(
  url: string,
  name: string,
  onLine: (line: ChatMessage, seq: number) => void,
  options: Partial<ClientOptions> = {},
): Promise<Room> {
  const channel = `room.${name}`;
  // `rpc` (for greet) and `presence` are optional features a session asks for.
  const client = new CourierClient({ url, features: ["batch", "reauth", "rpc", "presence"], ...options });
  client.on("message", (m) => {
    // readChatMessage validates the payload (a WireError for a malformed one).
    if (m.channel === channel) onLine(readChatMessage(m.payload ?? {}), m.seq);
  });
  await client.subscribe(channel);
  return {
    client,
    async send(author, text) {
      const id = crypto.randomUUID();
      const ack = await client.publish(channel, writeChatMessage({ id, author, text, sent_at_ms: Date.now() }), { id });
      return ack.seq;
    },
    async greet(who) {
      const reply = await client.rpc("greet", writeGreetRequest({ name: who }));
      return readGreetReply(reply ?? {}).greeting;
    },
    close: () => client.close(),
  };
}
