// The browser page: the room `lobby`, its lines, a form to send one. The server's URL is
// `?server=ws://…`, by default the one `cargo run` listens on.

import { joinRoom } from "./chat.js";

const server = new URLSearchParams(location.search).get("server") ?? "ws://127.0.0.1:8080/ws";
const lines = document.getElementById("lines")!;
const state = document.getElementById("state")!;
const form = document.getElementById("send") as HTMLFormElement;
const author = document.getElementById("author") as HTMLInputElement;
const text = document.getElementById("text") as HTMLInputElement;

const room = await joinRoom(server, "lobby", (line, seq) => {
  const li = document.createElement("li");
  li.textContent = `#${seq} ${line.author}: ${line.text}`;
  lines.appendChild(li);
});
room.client.on("state", (s) => (state.textContent = s));
state.textContent = room.client.state;
room.client.on("recovery", (r) => {
  if (r.status === "RECOVERY_STATUS_FAILED") state.textContent = `some lines may be missing (${r.reason})`;
});
form.addEventListener("submit", (e) => {
  e.preventDefault();
  void room.send(author.value, text.value).then(() => (text.value = ""));
});
