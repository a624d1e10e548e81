// The React test page: `useChannel`, `usePresence` and `useConnectionState` in a component the
// test mounts and unmounts (`window.courierReact.setMounted`), under StrictMode. The test reads
// `window.courierReact` and takes a screenshot.

import { createElement as h, StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";

import { CourierClient } from "../../src/index.js";
import { CourierProvider, useChannel, useConnectionState, usePresence } from "../../src/react.js";

interface PageState {
  state: string;
  mounted: boolean;
  status: string;
  messages: Array<{ seq: number; n: number }>;
  received: number;
  recoveries: string[];
  recovery: string;
  members: string[];
  errors: string[];
  session: string;
  setMounted(on: boolean): void;
}

const params = new URLSearchParams(location.search);
const channel = params.get("channel") ?? "react";
const page: PageState = {
  state: "idle",
  mounted: true,
  status: "",
  messages: [],
  received: 0,
  recoveries: [],
  recovery: "",
  members: [],
  errors: [],
  session: "",
  setMounted: () => undefined,
};
(window as unknown as { courierReact: PageState }).courierReact = page;

const client = new CourierClient({
  url: params.get("url")!,
  encodings: [(params.get("encoding") ?? "json") as "json"],
  features: ["batch", "reauth", "presence"],
  backoff: { baseMs: 50, capMs: 300, reconnectNowMaxMs: 50 },
});
client.on("error", (e) => page.errors.push(`${e.kind}: ${e.message}`));
client.on("open", ({ welcome }) => (page.session = welcome.session_id));
client.on("recovery", (r) => page.recoveries.push(`${r.status}/${r.reason}/${r.replayed}`));

function Room(): ReturnType<typeof h> {
  const chat = useChannel(channel, {
    select: (m) => ({ seq: m.seq, n: (m.payload as { n: number }).n }),
    onMessage: () => void page.received++,
  });
  const presence = usePresence(channel);
  page.status = chat.status;
  page.messages = [...chat.messages];
  page.recovery = chat.recovery ? `${chat.recovery.status}/${chat.recovery.reason}/${chat.recovery.replayed}` : "";
  page.members = presence.members.map((m) => m.session_id);
  return h(
    "section",
    null,
    h("h2", null, `#${channel}: ${chat.status}, ${presence.members.length} present`),
    h("ol", null, ...chat.messages.map((m) => h("li", { key: m.seq }, `#${m.seq} n=${m.n}`))),
  );
}

function App(): ReturnType<typeof h> {
  const state = useConnectionState();
  const [mounted, setMounted] = useState(true);
  page.state = state;
  page.mounted = mounted;
  page.setMounted = setMounted;
  return h("main", null, h("p", { id: "status" }, `connection: ${state}`), mounted ? h(Room) : h("p", null, "unmounted"));
}

createRoot(document.getElementById("root")!).render(h(StrictMode, null, h(CourierProvider, { client }, h(App))));
