// A tab of the shared-connection test: a `SharedCourierClient` (SharedWorker or leader tab, per
// `mode`) subscribed to the `channels` of its URL. The test reads `window.courierShared`,
// publishes through it and closes tabs.

import { SharedCourierClient } from "../../src/shared/index.js";

interface TabState {
  mode: string;
  leader: boolean;
  state: string;
  session: string;
  subscribed: string[];
  messages: Record<string, Array<{ seq: number; n: number }>>;
  recoveries: string[];
  gaps: number;
  errors: string[];
}

const params = new URLSearchParams(location.search);
const channels = (params.get("channels") ?? "").split(",").filter(Boolean);
const mode = params.get("mode") ?? "worker";
const tab: TabState = { mode: "", leader: false, state: "", session: "", subscribed: [], messages: {}, recoveries: [], gaps: 0, errors: [] };
const client = new SharedCourierClient({
  url: params.get("url")!,
  name: params.get("name") ?? "test",
  worker: mode === "worker" ? "/worker.js" : undefined,
  mode: mode === "worker" ? "auto" : "broadcast",
  encodings: [(params.get("encoding") ?? "msgpack") as "msgpack"],
  features: ["batch", "reauth", "presence"],
  backoff: { baseMs: 50, capMs: 300, reconnectNowMaxMs: 50 },
});
const w = window as unknown as {
  courierShared: TabState;
  courierPublish: (channel: string, n: number, id: string) => Promise<string>;
};
w.courierShared = tab;
w.courierPublish = async (channel, n, id) => {
  const ack = await client.publish(channel, { n, from: "tab" }, { id });
  return `${ack.seq}/${ack.duplicate}`;
};
const status = document.getElementById("status")!;
const render = (): void => {
  tab.mode = client.mode;
  tab.leader = client.leader;
  status.textContent = JSON.stringify({ ...tab, messages: Object.fromEntries(Object.entries(tab.messages).map(([c, l]) => [c, l.map((m) => m.seq).join(" ")])) }, null, 1);
};
client.on("state", (s) => ((tab.state = s), render()));
client.on("open", ({ welcome }) => ((tab.session = welcome.session_id), render()));
client.on("recovery", (r) => (tab.recoveries.push(`${r.channel}:${r.status}/${r.reason}/${r.replayed}`), render()));
client.on("gap", () => void tab.gaps++);
client.on("error", (e) => tab.errors.push(`${e.kind}: ${e.message}`));
client.on("message", (m) => {
  (tab.messages[m.channel] ??= []).push({ seq: m.seq, n: (m.payload as { n: number }).n });
  render();
});
for (const c of channels) {
  tab.messages[c] = [];
  client.subscribe(c).then(
    () => (tab.subscribed.push(c), render()),
    (e: unknown) => tab.errors.push(String(e)),
  );
}
// Leadership can change while the page runs.
setInterval(render, 100);
