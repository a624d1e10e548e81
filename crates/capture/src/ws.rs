//! One reassembled TCP connection to WebSocket messages: the HTTP upgrade
//! (request path, offered and selected subprotocols), then frames in each
//! direction, unmasked and defragmented into messages.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use crate::tcp::Stream;
use crate::{Connection, Direction, EventStream, MessageKind, WsMessage};

/// Why parsing a direction stopped early; kept on the connection as text.
fn problem(conn: &mut Connection, dir: Direction, what: impl std::fmt::Display) {
    conn.problems.push(format!("{dir}: {what}"));
}

/// Fills `conn` from the two streams (`up`: client to server).
pub fn parse(conn: &mut Connection, up: &Stream, down: &Stream, max_message: usize) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let up_start = match req.parse(&up.data) {
        Ok(httparse::Status::Complete(n)) => {
            conn.method = req.method.map(str::to_string);
            conn.path = req.path.map(str::to_string);
            for h in req.headers.iter() {
                if h.name.eq_ignore_ascii_case("sec-websocket-protocol") {
                    let v = String::from_utf8_lossy(h.value);
                    conn.offered.extend(
                        v.split(',')
                            .map(|p| p.trim().to_string())
                            .filter(|p| !p.is_empty()),
                    );
                }
            }
            n
        }
        Ok(httparse::Status::Partial) => {
            problem(
                conn,
                Direction::ClientToServer,
                "HTTP request head incomplete",
            );
            return;
        }
        Err(e) => {
            problem(
                conn,
                Direction::ClientToServer,
                format_args!("bad HTTP request: {e}"),
            );
            return;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let (mut sse, mut chunked) = (false, false);
    let down_start = match resp.parse(&down.data) {
        Ok(httparse::Status::Complete(n)) => {
            conn.status = resp.code;
            for h in resp.headers.iter() {
                let value = String::from_utf8_lossy(h.value).trim().to_ascii_lowercase();
                if h.name.eq_ignore_ascii_case("sec-websocket-protocol") {
                    conn.selected = Some(String::from_utf8_lossy(h.value).trim().to_string());
                } else if h.name.eq_ignore_ascii_case("content-type") {
                    sse = value.starts_with("text/event-stream");
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.contains("chunked");
                }
            }
            n
        }
        Ok(httparse::Status::Partial) => {
            problem(
                conn,
                Direction::ServerToClient,
                "HTTP response head incomplete",
            );
            return;
        }
        Err(e) => {
            problem(
                conn,
                Direction::ServerToClient,
                format_args!("bad HTTP response: {e}"),
            );
            return;
        }
    };
    if sse && conn.status == Some(200) {
        conn.event_stream = Some(EventStream {
            chunked,
            parts: down.parts_from(down_start),
        });
    }
    if conn.status != Some(101) {
        return; // not upgraded: no frames follow
    }
    frames(conn, up, up_start, Direction::ClientToServer, max_message);
    frames(
        conn,
        down,
        down_start,
        Direction::ServerToClient,
        max_message,
    );
    // Both directions in capture order (stable: a direction keeps its order).
    conn.messages.sort_by_key(|m| m.ts_micros);
}

fn frames(conn: &mut Connection, stream: &Stream, start: usize, dir: Direction, max: usize) {
    let data = &stream.data;
    let mut pos = start;
    // The message being reassembled: kind, bytes, fragment count.
    let mut partial: Option<(MessageKind, Vec<u8>, usize)> = None;
    while pos < data.len() {
        let mut cursor = Cursor::new(&data[pos..]);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(h)) => h,
            Ok(None) => {
                problem(
                    conn,
                    dir,
                    format_args!("stream ends inside a frame header at byte {pos}"),
                );
                return;
            }
            Err(e) => {
                problem(
                    conn,
                    dir,
                    format_args!("bad frame header at byte {pos}: {e}"),
                );
                return;
            }
        };
        let body = pos + cursor.position() as usize;
        let left = (data.len() - body) as u64;
        if len > left {
            problem(
                conn,
                dir,
                format_args!("stream ends inside a frame of {len} bytes ({left} captured)"),
            );
            return;
        }
        let end = body + len as usize;
        pos = end;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            problem(
                conn,
                dir,
                "frame with RSV bits set (a compression extension?): not decoded",
            );
            return;
        }
        let held = partial.as_ref().map_or(0, |p| p.1.len());
        if held as u64 + len > max as u64 {
            problem(conn, dir, format_args!("message over the {max}-byte limit"));
            return;
        }
        let mut payload = data[body..end].to_vec();
        if let Some(mask) = header.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
        }
        let ts = stream.time_of(end);
        let masked = header.mask.is_some();
        let kind = match header.opcode {
            OpCode::Data(Data::Continue) => {
                let Some((_, bytes, n)) = partial.as_mut() else {
                    problem(
                        conn,
                        dir,
                        "continuation frame without a message to continue",
                    );
                    return;
                };
                bytes.extend_from_slice(&payload);
                *n += 1;
                if header.is_final {
                    let (kind, data, fragments) = partial.take().expect("checked above");
                    conn.messages.push(WsMessage {
                        dir,
                        ts_micros: ts,
                        kind,
                        data,
                        fragments,
                        masked,
                    });
                }
                continue;
            }
            OpCode::Data(Data::Text) => MessageKind::Text,
            OpCode::Data(Data::Binary) => MessageKind::Binary,
            OpCode::Control(Control::Close) => {
                let (code, reason) = match payload.len() {
                    0 => (None, String::new()),
                    1 => (None, "(1-byte close payload)".into()),
                    _ => (
                        Some(u16::from_be_bytes([payload[0], payload[1]])),
                        String::from_utf8_lossy(&payload[2..]).into_owned(),
                    ),
                };
                MessageKind::Close { code, reason }
            }
            OpCode::Control(Control::Ping) => MessageKind::Ping,
            OpCode::Control(Control::Pong) => MessageKind::Pong,
            OpCode::Data(Data::Reserved(n)) | OpCode::Control(Control::Reserved(n)) => {
                problem(conn, dir, format_args!("reserved opcode {n}"));
                return;
            }
        };
        if matches!(kind, MessageKind::Text | MessageKind::Binary) {
            if partial.is_some() {
                problem(
                    conn,
                    dir,
                    "new message before the previous one's last fragment",
                );
                return;
            }
            if !header.is_final {
                partial = Some((kind, payload, 1));
                continue;
            }
        }
        conn.messages.push(WsMessage {
            dir,
            ts_micros: ts,
            kind,
            data: payload,
            fragments: 1,
            masked,
        });
    }
    if partial.is_some() {
        problem(conn, dir, "stream ends inside a fragmented message");
    }
}
