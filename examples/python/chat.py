#!/usr/bin/env python3
"""A Courier chat in Python: the JSON encoding over a WebSocket, no Courier library.

Run `courier serve` (the repository README says how to get it), then:

    apt-get install python3-websockets   # or: pip install websockets
    python3 chat.py [ws://127.0.0.1:8080/ws]

It offers `courier.v2.json`, sends `hello` first (HELLO-FIRST), subscribes to `chat`, publishes
one message, prints the acknowledgement and the delivery, answers the server's `ping`s with
`pong` (HB-PONG) and closes with 1000. Every envelope is one flat JSON object whose `type` names
it (docs/spec/encoding.md); docs/spec/ and `courier docs` describe every message.
"""

import asyncio
import json
import sys

import websockets


async def main(url: str) -> None:
    async with websockets.connect(url, subprotocols=["courier.v2.json"]) as ws:
        if ws.subprotocol != "courier.v2.json":
            raise SystemExit(f"the server chose {ws.subprotocol!r}")  # VER-CLIENT-VERIFY

        async def send(envelope: dict) -> None:
            await ws.send(json.dumps(envelope))

        async def receive() -> dict:
            while True:
                envelope = json.loads(await ws.recv())
                if envelope["type"] == "ping":  # answer heartbeats, keep reading
                    await send({"type": "pong", "ts": envelope.get("ts", 0)})
                    continue
                if envelope["type"] == "disconnect":
                    raise SystemExit(f"disconnected: {envelope.get('code')} {envelope.get('reason', '')}")
                return envelope

        await send({"type": "hello", "client": "python-example"})  # add "token": "..." with auth
        welcome = await receive()
        print("welcome", welcome["session_id"], "version", welcome["version"])

        await send({"type": "subscribe", "id": "s1", "channel": "chat"})
        ack = await receive()
        if ack["type"] != "subscribe_ack":
            raise SystemExit(f"subscribe refused: {ack}")

        await send({"type": "publish", "id": "py-1", "channel": "chat", "payload": {"text": "hello from Python"}})
        acked = received = None
        while acked is None or received is None:
            envelope = await receive()
            # Batches (the `batch` feature) are not requested in hello, so each envelope comes alone.
            if envelope["type"] == "publish_ack":
                acked = envelope
                print("stored as", envelope["epoch"], envelope["seq"])
            elif envelope["type"] == "message":
                received = envelope
                print("received", envelope["channel"], envelope["seq"], json.dumps(envelope["payload"]))
            elif envelope["type"] == "error":
                raise SystemExit(f"error: {envelope}")
        await ws.close(code=1000)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/ws"))
