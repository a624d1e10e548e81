//! The record of one case: every frame sent and received on each of its
//! connections (decoded to JSON for the reports), the case's notes, and the
//! closes the server initiated, so that a failure caused by a close nobody
//! asked for is reported as such first. The workspace's one transcript: the
//! docs' live session transcripts (`courier-docs`) are recorded in it too,
//! keeping each frame's bytes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use std::sync::Arc;

/// One recorded event of a case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// Milliseconds since the case started.
    pub t_ms: u64,
    /// The connection's label (`c1`, `pub2`, ...).
    pub conn: String,
    /// `send`, `recv` or `note`.
    pub dir: &'static str,
    /// `handshake`, `text`, `binary`, `close`, `ping`, `pong`, `note`.
    pub kind: &'static str,
    /// The frame decoded to JSON, or a description.
    pub text: String,
    /// The frame's bytes, in a transcript that keeps them
    /// ([`Transcript::keeping_frames`]).
    #[serde(skip)]
    pub bytes: Option<bytes::Bytes>,
}

/// The frames of one case, in the order they were sent and received.
#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    keep_frames: bool,
    entries: Mutex<Kept>,
    closes: Mutex<Vec<ServerClose>>,
}

/// A close the server initiated on one of the case's connections.
#[derive(Debug, Clone)]
pub struct ServerClose {
    /// The connection's label.
    pub conn: String,
    /// Milliseconds since the case started.
    pub t_ms: u64,
    /// The close code (`None`: the connection ended without a close frame).
    pub code: Option<u16>,
    /// The close reason.
    pub reason: String,
    /// Whether the case asked for it (read it as the close it expected).
    pub expected: bool,
}

impl ServerClose {
    /// `c2 closed by the server with 4200 "heartbeat timeout" at 1.2 s`.
    pub fn describe(&self) -> String {
        let code = match self.code {
            Some(c) => format!("{c} {:?}", self.reason),
            None => "no close frame (1006)".to_string(),
        };
        let meaning = self
            .code
            .and_then(close_meaning)
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        format!(
            "connection `{}` was closed by the server with {code}{meaning} at {:.1} s",
            self.conn,
            self.t_ms as f64 / 1000.0
        )
    }
}

/// What a close code means, for failure messages.
pub fn close_meaning(code: u16) -> Option<&'static str> {
    Some(match code {
        1001 => "going away",
        1009 => "message too big",
        4000 => "bad frame",
        4001 => "unknown type",
        4002 => "unsupported version",
        4003 => "protocol violation",
        4004 => "authentication failed",
        4005 => "no hello in time",
        4006 => "forbidden",
        4100 => "slow consumer",
        4101 => "rate limited",
        4102 => "overloaded",
        4200 => "heartbeat timeout: a connection did not answer ping",
        4201 => "reconnect",
        4300 => "token expired",
        4301 => "re-authentication timeout",
        _ => return None,
    })
}

/// The head and the tail of a long transcript (a load case must not hold
/// megabytes, and its end is where failures show).
#[derive(Debug, Default)]
struct Kept {
    head: Vec<Entry>,
    tail: VecDeque<Entry>,
    omitted: usize,
}

const HEAD_ENTRIES: usize = 300;
const TAIL_ENTRIES: usize = 1200;

impl Transcript {
    /// An empty transcript starting now.
    pub fn new() -> Arc<Transcript> {
        Transcript::with(false)
    }

    /// An empty transcript that keeps every frame whole, with its bytes
    /// (for a short scripted session shown as is: the docs' transcripts).
    pub fn keeping_frames() -> Arc<Transcript> {
        Transcript::with(true)
    }

    fn with(keep_frames: bool) -> Arc<Transcript> {
        Arc::new(Transcript {
            start: Instant::now(),
            keep_frames,
            entries: Mutex::new(Kept::default()),
            closes: Mutex::new(Vec::new()),
        })
    }

    /// Records one entry.
    pub fn record(&self, conn: &str, dir: &'static str, kind: &'static str, text: String) {
        self.push(conn, dir, kind, text, None);
    }

    /// Records one data frame: `text` describes it; its bytes are kept when
    /// the transcript keeps frames.
    pub fn record_frame(
        &self,
        conn: &str,
        dir: &'static str,
        kind: &'static str,
        text: String,
        bytes: &bytes::Bytes,
    ) {
        let bytes = self.keep_frames.then(|| bytes.clone());
        self.push(conn, dir, kind, text, bytes);
    }

    fn push(
        &self,
        conn: &str,
        dir: &'static str,
        kind: &'static str,
        mut text: String,
        bytes: Option<bytes::Bytes>,
    ) {
        if text.len() > 600 && !self.keep_frames {
            let mut cut = 600;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let entry = Entry {
            t_ms: self.elapsed_ms(),
            conn: conn.to_string(),
            dir,
            kind,
            text,
            bytes,
        };
        let mut k = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if k.head.len() < HEAD_ENTRIES {
            k.head.push(entry);
            return;
        }
        if k.tail.len() == TAIL_ENTRIES {
            k.tail.pop_front();
            k.omitted += 1;
        }
        k.tail.push_back(entry);
    }

    /// A note from the case itself (what it is about to check).
    pub fn note(&self, text: impl Into<String>) {
        self.record("*", "note", "note", text.into());
    }

    /// Everything recorded (the first and last entries of a long case).
    pub fn entries(&self) -> Vec<Entry> {
        let k = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = k.head.clone();
        if k.omitted > 0 {
            let t_ms = k.tail.front().map(|e| e.t_ms).unwrap_or(0);
            let text = format!("… {} entries omitted …", k.omitted);
            out.push(Entry {
                t_ms,
                conn: "*".into(),
                dir: "note",
                kind: "note",
                text,
                bytes: None,
            });
        }
        out.extend(k.tail.iter().cloned());
        out
    }

    /// Records a close the server initiated on connection `conn`.
    pub fn server_closed(&self, conn: &str, code: Option<u16>, reason: &str) {
        let t_ms = self.elapsed_ms();
        let mut c = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        c.push(ServerClose {
            conn: conn.to_string(),
            t_ms,
            code,
            reason: reason.to_string(),
            expected: false,
        });
    }

    /// Marks the server's close of `conn` as one the case asked for.
    pub fn close_expected(&self, conn: &str) {
        let mut c = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        for close in c.iter_mut().filter(|c| c.conn == conn) {
            close.expected = true;
        }
    }

    /// Closes the server initiated that no part of the case asked for.
    pub fn unexpected_closes(&self) -> Vec<ServerClose> {
        let c = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        c.iter().filter(|c| !c.expected).cloned().collect()
    }

    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}
