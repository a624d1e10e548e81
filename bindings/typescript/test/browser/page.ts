// The browser test page: a Courier client in a real page, subscribed to one channel, showing
// what it receives. The test reads `window.courier` and takes a screenshot.

import { CourierClient } from "../../src/index.js";

interface PageState {
  state: string;
  subprotocol: string;
  messages: Array<{ seq: number; epoch: string; payload: unknown }>;
  recoveries: string[];
  errors: string[];
}

const params = new URLSearchParams(location.search);
const state: PageState = { state: "idle", subprotocol: "", messages: [], recoveries: [], errors: [] };
(window as unknown as { courier: PageState }).courier = state;

const list = document.getElementById("messages")!;
const status = document.getElementById("status")!;
const render = (): void => {
  status.textContent = `${state.state} ${state.subprotocol} · ${state.messages.length} messages · ${state.recoveries.join(", ")}`;
};

const client = new CourierClient({
  url: params.get("url")!,
  encodings: [(params.get("encoding") ?? "json") as "json"],
  backoff: { baseMs: 50, capMs: 500, reconnectNowMaxMs: 100 },
});
client.on("state", (s) => ((state.state = s), render()));
client.on("open", ({ subprotocol }) => ((state.subprotocol = `courier.v${subprotocol.version}.${subprotocol.encoding}`), render()));
client.on("recovery", (r) => (state.recoveries.push(`${r.status}/${r.reason}`), render()));
client.on("error", (e) => state.errors.push(e.message));
client.on("message", (m) => {
  state.messages.push({ seq: m.seq, epoch: m.epoch, payload: m.payload });
  const li = document.createElement("li");
  li.textContent = `#${m.seq} ${JSON.stringify(m.payload)}`;
  list.appendChild(li);
  render();
});
client.subscribe(params.get("channel") ?? "browser").catch((e: unknown) => state.errors.push(String(e)));
