//! Packet captures of Courier sessions, read back as WebSocket messages:
//! pcap and pcapng files (`pcap.rs`), link/IP/TCP headers (`net.rs`), TCP
//! reassembly (`tcp.rs`) and the HTTP upgrade plus frames (`ws.rs`). What
//! the messages mean is the caller's business (`courier decode` decodes
//! them with `courier-protocol`); this crate knows nothing of envelopes.
//!
//! Captures are untrusted input: every length is checked before it is
//! used, memory is bounded by [`Limits`], and damage is reported (typed
//! errors for an unreadable file, [`Connection::problems`] for a damaged
//! stream), never a panic.
//!
//! ```no_run
//! let file = std::fs::File::open("session.pcapng")?;
//! let capture = courier_capture::read(std::io::BufReader::new(file), &Default::default())?;
//! for conn in &capture.connections {
//!     println!("{} -> {} {:?}", conn.client, conn.server, conn.selected);
//! }
//! # Ok::<(), courier_capture::CaptureError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;

pub mod net;
pub mod pcap;
pub mod tcp;
mod ws;

/// Why a capture could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The input starts with neither a pcap nor a pcapng magic number:
    /// pass a file written by tcpdump, tshark or dumpcap.
    #[error("not a pcap or pcapng file")]
    NotACapture,
    /// The file ends inside a header or record: it was cut short (a
    /// capture still being written?); capture again or pass what is there.
    #[error("capture truncated at byte {offset}")]
    Truncated {
        /// Where the input ended.
        offset: u64,
    },
    /// A header or block is inconsistent: the file is damaged.
    #[error("malformed capture at byte {offset}: {detail}")]
    Malformed {
        /// Where the bad structure starts.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The capture holds more than [`Limits`] allow: filter it (by port,
    /// with `tcpdump -r in -w out port N`) or raise the limit.
    #[error("capture exceeds the limit: {0}")]
    TooLarge(String),
    /// Reading the input failed.
    #[error("reading the capture: {0}")]
    Io(#[from] std::io::Error),
}

/// Bounds on what reading a capture may hold in memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Total reassembled TCP bytes over all connections. Default 256 MiB:
    /// far above any session a person reads, far below the machine.
    pub max_stream_bytes: usize,
    /// Connections tracked. Default 10 000.
    pub max_connections: usize,
    /// Largest WebSocket message after defragmentation. Default 16 MiB,
    /// 256 times the protocol's default frame limit.
    pub max_message_bytes: usize,
    /// Only connections with this server port (`None`: every port).
    pub port: Option<u16>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stream_bytes: 256 * 1024 * 1024,
            max_connections: 10_000,
            max_message_bytes: 16 * 1024 * 1024,
            port: None,
        }
    }
}

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client (masked frames).
    ClientToServer,
    /// From the server.
    ServerToClient,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ClientToServer => "client->server",
            Direction::ServerToClient => "server->client",
        })
    }
}

/// What kind of WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// A text message (JSON encodings).
    Text,
    /// A binary message (MessagePack, Protobuf).
    Binary,
    /// A close frame.
    Close {
        /// The close code, if the frame had one.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// A ping control frame.
    Ping,
    /// A pong control frame.
    Pong,
}

/// One WebSocket message, defragmented and unmasked.
#[derive(Debug, Clone)]
pub struct WsMessage {
    /// Who sent it.
    pub dir: Direction,
    /// When its last byte was captured (microseconds since the epoch).
    pub ts_micros: Option<u64>,
    /// Text, binary or control.
    pub kind: MessageKind,
    /// The (unmasked) payload.
    pub data: Vec<u8>,
    /// How many frames carried it.
    pub fragments: usize,
    /// Whether its frames were masked (RFC 6455: exactly the client's).
    pub masked: bool,
}

/// One TCP connection that started with an HTTP request.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The side that sent the request.
    pub client: SocketAddr,
    /// The side that answered.
    pub server: SocketAddr,
    /// The request method (`GET`).
    pub method: Option<String>,
    /// The request target (`/ws`).
    pub path: Option<String>,
    /// `Sec-WebSocket-Protocol` values the client offered.
    pub offered: Vec<String>,
    /// The response status (101 for an upgrade).
    pub status: Option<u16>,
    /// The subprotocol the server selected.
    pub selected: Option<String>,
    /// The messages of both directions, in capture order.
    pub messages: Vec<WsMessage>,
    /// What could not be read (lost bytes, bad frames), one line each.
    pub problems: Vec<String>,
    /// For a `text/event-stream` response (SSE): the response body as it
    /// arrived, in parts with their capture times.
    pub event_stream: Option<EventStream>,
}

/// The body of an SSE response, undecoded.
#[derive(Debug, Clone)]
pub struct EventStream {
    /// Whether the body is `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `(capture time in microseconds, bytes)` in stream order.
    pub parts: Vec<(Option<u64>, Vec<u8>)>,
}

/// What a capture held.
#[derive(Debug, Default)]
pub struct Capture {
    /// Connections that began with an HTTP request, in order of first packet.
    pub connections: Vec<Connection>,
    /// Packets read.
    pub packets: u64,
    /// Packets that were not TCP (or not on the selected port).
    pub skipped: u64,
    /// Link types met that are not understood, with packet counts.
    pub unknown_links: Vec<(u32, u64)>,
}

struct Flow {
    a: SocketAddr,
    b: SocketAddr,
    a_to_b: tcp::Stream,
    b_to_a: tcp::Stream,
    /// `a` sent a SYN without ACK: `a` is the client.
    a_opened: Option<bool>,
}

/// Reads a whole capture and returns its HTTP connections with their
/// WebSocket messages.
pub fn read(input: impl Read, limits: &Limits) -> Result<Capture, CaptureError> {
    let mut reader = pcap::PacketReader::new(input)?;
    let mut flows: Vec<Flow> = Vec::new();
    let mut index: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    let mut capture = Capture::default();
    let mut total = 0usize;
    let mut unknown: HashMap<u32, u64> = HashMap::new();
    while let Some(packet) = reader.next_packet()? {
        capture.packets += 1;
        let seg = match net::tcp_segment(packet.link_type, &packet.data) {
            Ok(s) => s,
            Err(skip) => {
                if let net::Skip::LinkType(l) = skip {
                    *unknown.entry(l).or_default() += 1;
                }
                capture.skipped += 1;
                continue;
            }
        };
        if let Some(port) = limits.port {
            if seg.src.port() != port && seg.dst.port() != port {
                capture.skipped += 1;
                continue;
            }
        }
        let opening = seg.syn && !seg.ack;
        let key = (seg.src, seg.dst);
        let existing = index.get(&key).copied();
        let reused = existing.is_some_and(|i| {
            let f = &flows[i];
            opening && (!f.a_to_b.data.is_empty() || !f.b_to_a.data.is_empty())
        });
        let i = match existing {
            Some(i) if !reused => i,
            _ => {
                if flows.len() >= limits.max_connections {
                    return Err(CaptureError::TooLarge(format!(
                        "more than {} TCP connections",
                        limits.max_connections
                    )));
                }
                flows.push(Flow {
                    a: seg.src,
                    b: seg.dst,
                    a_to_b: tcp::Stream::default(),
                    b_to_a: tcp::Stream::default(),
                    a_opened: None,
                });
                let i = flows.len() - 1;
                index.insert((seg.src, seg.dst), i);
                index.insert((seg.dst, seg.src), i);
                i
            }
        };
        let flow = &mut flows[i];
        let from_a = seg.src == flow.a;
        if opening && flow.a_opened.is_none() {
            flow.a_opened = Some(from_a);
        }
        let stream = if from_a {
            &mut flow.a_to_b
        } else {
            &mut flow.b_to_a
        };
        total += stream.add(seg.seq, seg.syn, seg.payload, packet.ts_micros);
        if seg.fin {
            stream.closed = true;
        }
        if total > limits.max_stream_bytes {
            return Err(CaptureError::TooLarge(format!(
                "more than {} bytes of TCP data",
                limits.max_stream_bytes
            )));
        }
    }
    let mut unknown: Vec<_> = unknown.into_iter().collect();
    unknown.sort_unstable();
    capture.unknown_links = unknown;
    for mut flow in flows {
        flow.a_to_b.finish();
        flow.b_to_a.finish();
        // The client is who opened the connection, else who sent a request.
        let a_client = flow.a_opened.unwrap_or_else(|| {
            !flow.b_to_a.data.starts_with(b"GET ") && flow.a_to_b.data.starts_with(b"GET ")
        });
        let (client, server, up, down) = if a_client {
            (flow.a, flow.b, &flow.a_to_b, &flow.b_to_a)
        } else {
            (flow.b, flow.a, &flow.b_to_a, &flow.a_to_b)
        };
        if up.data.is_empty() || !up.data[0].is_ascii_uppercase() {
            continue; // not an HTTP connection
        }
        let mut conn = Connection {
            client,
            server,
            method: None,
            path: None,
            offered: Vec::new(),
            status: None,
            selected: None,
            messages: Vec::new(),
            problems: Vec::new(),
            event_stream: None,
        };
        if up.lost || down.lost {
            conn.problems
                .push("TCP bytes missing from the capture (a hole in the sequence)".into());
        }
        ws::parse(&mut conn, up, down, limits.max_message_bytes);
        capture.connections.push(conn);
    }
    Ok(capture)
}
