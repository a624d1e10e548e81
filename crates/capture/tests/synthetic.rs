//! Captures built byte by byte: the same WebSocket session over every
//! supported link type, IPv4 and IPv6, pcap in both byte orders and time
//! resolutions, with out-of-order and retransmitted segments and a
//! fragmented masked message; then thousands of damaged copies, which must
//! all end in a result or a typed error (ENC-NO-PANIC's rule for files).

use courier_capture::{read, CaptureError, Direction, Limits, MessageKind};

fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

fn ipv4(src: [u8; 4], dst: [u8; 4], seg: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(seg);
    ip
}

fn ipv6(src: u8, dst: u8, seg: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[6, 64]);
    ip.extend_from_slice(&[0; 15]);
    ip.push(src);
    ip.extend_from_slice(&[0; 15]);
    ip.push(dst);
    ip.extend_from_slice(seg);
    ip
}

/// Wraps an IP packet in a link-layer header.
fn link(link_type: u32, v6: bool, ip: Vec<u8>) -> Vec<u8> {
    let proto: u16 = if v6 { 0x86DD } else { 0x0800 };
    let mut out = match link_type {
        1 => {
            let mut h = vec![0; 12];
            h.extend_from_slice(&[0x81, 0x00, 0, 1]); // a VLAN tag
            h.extend_from_slice(&proto.to_be_bytes());
            h
        }
        113 => {
            let mut h = vec![0; 14];
            h.extend_from_slice(&proto.to_be_bytes());
            h
        }
        276 => {
            let mut h = proto.to_be_bytes().to_vec();
            h.extend_from_slice(&[0; 18]);
            h
        }
        0 => (if v6 { 30u32 } else { 2u32 }).to_le_bytes().to_vec(),
        _ => Vec::new(), // 101: raw
    };
    out.extend_from_slice(&ip);
    out
}

fn frame(opcode: u8, fin: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else {
        f.push(m | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

const HELLO: &[u8] = br#"{"type":"hello","client":"synthetic"}"#;
const WELCOME: &[u8] = br#"{"type":"welcome","version":2}"#;

/// The session's TCP segments, client first: (from client, seq, flags, payload).
fn segments() -> Vec<(bool, u32, u8, Vec<u8>)> {
    let req = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: courier.v2.json, courier.v2.msgpack\r\n\r\n".to_vec();
    let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: courier.v2.json\r\n\r\n".to_vec();
    let k = Some([1, 2, 3, 4]);
    // hello in two fragments with a ping between them.
    let mut msg = frame(1, false, k, &HELLO[..10]);
    msg.extend(frame(9, true, k, b"p"));
    msg.extend(frame(0, true, k, &HELLO[10..]));
    let (a, b) = msg.split_at(msg.len() / 2);
    let c0 = u32::MAX - 20; // client sequence numbers wrap mid-session
    let c1 = c0.wrapping_add(1);
    let c2 = c1.wrapping_add(req.len() as u32);
    let c3 = c2.wrapping_add(a.len() as u32);
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    let s1 = 5001u32;
    let s2 = s1 + resp.len() as u32;
    vec![
        (true, c0, 0x02, vec![]),    // SYN
        (false, 5000, 0x12, vec![]), // SYN-ACK
        (true, c1, 0x18, req),
        (false, s1, 0x18, resp),
        (true, c3, 0x18, b.to_vec()), // second half first
        (true, c2, 0x18, a.to_vec()),
        (true, c2, 0x18, a.to_vec()), // retransmitted
        (false, s2, 0x18, frame(1, true, None, WELCOME)),
        (
            true,
            c3.wrapping_add(b.len() as u32),
            0x18,
            frame(8, true, k, &close),
        ),
    ]
}

fn pcap(link_type: u32, v6: bool, big: bool, nanos: bool) -> Vec<u8> {
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&w16(2));
    out.extend_from_slice(&w16(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&w32(65535));
    out.extend_from_slice(&w32(link_type));
    for (i, (from_client, seq, flags, payload)) in segments().into_iter().enumerate() {
        let (sp, dp) = if from_client {
            (40000, 8080)
        } else {
            (8080, 40000)
        };
        let seg = tcp(sp, dp, seq, flags, &payload);
        let ip = if v6 {
            let (s, d) = if from_client { (1, 2) } else { (2, 1) };
            ipv6(s, d, &seg)
        } else {
            let (s, d) = if from_client {
                ([10, 0, 0, 1], [10, 0, 0, 2])
            } else {
                ([10, 0, 0, 2], [10, 0, 0, 1])
            };
            ipv4(s, d, &seg)
        };
        let data = link(link_type, v6, ip);
        out.extend_from_slice(&w32(1_700_000_000));
        out.extend_from_slice(&w32(i as u32 * if nanos { 1000 } else { 1 }));
        out.extend_from_slice(&w32(data.len() as u32));
        out.extend_from_slice(&w32(data.len() as u32));
        out.extend_from_slice(&data);
    }
    out
}

#[test]
fn every_link_type_and_byte_order_gives_the_same_session() {
    for link_type in [1, 113, 276, 0, 101] {
        for v6 in [false, true] {
            for (big, nanos) in [(false, false), (true, true)] {
                let file = pcap(link_type, v6, big, nanos);
                let cap = read(file.as_slice(), &Limits::default()).unwrap();
                let what = format!("link {link_type} v6 {v6} big {big}");
                assert_eq!(cap.connections.len(), 1, "{what}");
                let c = &cap.connections[0];
                assert!(c.problems.is_empty(), "{what}: {:?}", c.problems);
                assert_eq!(c.client.port(), 40000, "{what}");
                assert_eq!(c.path.as_deref(), Some("/ws"));
                assert_eq!(c.offered, ["courier.v2.json", "courier.v2.msgpack"]);
                assert_eq!(
                    (c.status, c.selected.as_deref()),
                    (Some(101), Some("courier.v2.json"))
                );
                let kinds: Vec<_> = c.messages.iter().map(|m| (m.dir, m.kind.clone())).collect();
                assert_eq!(
                    kinds,
                    [
                        (Direction::ClientToServer, MessageKind::Ping),
                        (Direction::ClientToServer, MessageKind::Text),
                        (Direction::ServerToClient, MessageKind::Text),
                        (
                            Direction::ClientToServer,
                            MessageKind::Close {
                                code: Some(1000),
                                reason: "bye".into()
                            }
                        ),
                    ],
                    "{what}"
                );
                let hello = &c.messages[1];
                assert_eq!(hello.data, HELLO, "{what}");
                assert_eq!((hello.fragments, hello.masked), (2, true));
                assert_eq!(c.messages[2].data, WELCOME);
                // The hello completed with the 6th packet (index 5).
                assert_eq!(hello.ts_micros, Some(1_700_000_000_000_000 + 5), "{what}");
            }
        }
    }
}

#[test]
fn the_port_filter_and_limits() {
    let file = pcap(1, false, false, false);
    let only = |port| Limits {
        port: Some(port),
        ..Default::default()
    };
    assert_eq!(
        read(file.as_slice(), &only(8080))
            .unwrap()
            .connections
            .len(),
        1
    );
    let other = read(file.as_slice(), &only(9999)).unwrap();
    assert!(other.connections.is_empty() && other.skipped == other.packets);
    let tight = Limits {
        max_stream_bytes: 100,
        ..Default::default()
    };
    assert!(matches!(
        read(file.as_slice(), &tight),
        Err(CaptureError::TooLarge(_))
    ));
    let small = Limits {
        max_message_bytes: 8,
        ..Default::default()
    };
    let cap = read(file.as_slice(), &small).unwrap();
    assert!(
        cap.connections[0]
            .problems
            .iter()
            .any(|p| p.contains("limit")),
        "{:?}",
        cap.connections[0].problems
    );
    assert!(matches!(
        read(&b"not a capture"[..], &Limits::default()),
        Err(CaptureError::NotACapture)
    ));
    assert!(matches!(
        read(&file[..30], &Limits::default()),
        Err(CaptureError::Truncated { .. })
    ));
}

#[test]
fn damaged_copies_never_panic() {
    let good = pcap(1, false, false, false);
    let mut state = 0x2545_f491_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for round in 0..3000 {
        let mut bad = good.clone();
        for _ in 0..1 + round % 6 {
            let i = next() as usize % bad.len();
            bad[i] = next() as u8;
        }
        if round % 7 == 0 {
            bad.truncate(next() as usize % bad.len());
        }
        let _ = read(bad.as_slice(), &Limits::default());
    }
}
