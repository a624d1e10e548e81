#!/usr/bin/env python3
"""How the checked-in captures were made (run once by hand, not by CI).

Start `courier serve --listen 127.0.0.1:18231`, start
`dumpcap -i lo -f "tcp port 18231" -w OUT.pcapng`, then run
`python3 record.py session|fragmented 18231`, then stop dumpcap (SIGINT).

session: a JSON session (subscribe, publish, delivery, close).
fragmented: a MessagePack session whose publish travels as three masked
continuation frames with a ping between the first two, which the
reference client never sends but RFC 6455 allows.
"""
import base64, os, socket, struct, sys, time

def frame(opcode, payload, fin=True):
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

def mp_str(s):
    b = s.encode()
    return bytes([0xa0 | len(b)]) + b

def mp_map(pairs):
    out = bytes([0x80 | len(pairs)])
    for k, v in pairs:
        out += mp_str(k) + v
    return out

def main(kind, port):
    sp = "courier.v2.json" if kind == "session" else "courier.v2.msgpack"
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {sp}\r\n\r\n").encode())
    time.sleep(0.2)
    if kind == "session":
        for line in ['{"type":"hello","client":"record.py"}',
                     '{"type":"subscribe","id":"s1","channel":"chat"}',
                     '{"type":"publish","id":"p-1","channel":"chat","payload":{"text":"hi"}}']:
            s.sendall(frame(1, line.encode()))
            time.sleep(0.1)
    else:
        s.sendall(frame(2, mp_map([("type", mp_str("hello")), ("client", mp_str("record.py"))])))
        time.sleep(0.1)
        s.sendall(frame(2, mp_map([("type", mp_str("subscribe")), ("id", mp_str("s1")),
                                   ("channel", mp_str("chat"))])))
        time.sleep(0.1)
        pub = mp_map([("type", mp_str("publish")), ("id", mp_str("p-1")),
                      ("channel", mp_str("chat")),
                      ("payload", mp_map([("text", mp_str("fragmented"))]))])
        a, b = len(pub) // 3, 2 * len(pub) // 3
        s.sendall(frame(2, pub[:a], fin=False))
        s.sendall(frame(9, b"are you there"))
        s.sendall(frame(0, pub[a:b], fin=False))
        s.sendall(frame(0, pub[b:], fin=True))
    time.sleep(0.3)
    s.sendall(frame(8, struct.pack(">H", 1000) + b"done"))
    time.sleep(0.3)
    s.close()

main(sys.argv[1], int(sys.argv[2]))
