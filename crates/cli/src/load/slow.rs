//! Slow subscribers for `courier load --slow N`: subscribed like the others
//! but reading one frame per `--slow-read-ms` (0: never reading), so the
//! server's slow-consumer handling (LIMIT-SLOW-CONSUMER, 4100) is measured
//! alongside the fast subscribers, which are the ones the latency and
//! delivery figures count.

use std::time::Duration;

use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::Codec;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{decode, Ws};

/// How one slow subscriber's connection ended.
#[derive(Debug, Default, Clone)]
pub(super) struct SlowOutcome {
    /// Frames it read.
    pub frames: u64,
    /// The code of the `disconnect` notice or close frame it read, if any.
    pub code: Option<u16>,
    /// The connection ended without a close it could read (reset, 1006).
    pub dropped: bool,
}

/// Reads one frame every `every` (never when zero) until the connection
/// ends or `stop` changes.
pub(super) async fn run(
    mut ws: Ws,
    codec: Codec,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> SlowOutcome {
    let mut out = SlowOutcome::default();
    if every.is_zero() {
        let _ = stop.changed().await;
        return out;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => return out,
            _ = tokio::time::sleep(every) => {}
        }
        let msg = tokio::select! {
            _ = stop.changed() => return out,
            m = ws.next() => m,
        };
        match msg {
            None | Some(Err(_)) => {
                out.dropped = out.code.is_none();
                return out;
            }
            Some(Ok(WsMessage::Close(frame))) => {
                out.code = out.code.or(frame.map(|f| u16::from(f.code)));
                return out;
            }
            Some(Ok(msg)) => {
                out.frames += 1;
                if let Some(Ok(v2::Envelope {
                    body: Some(Body::Disconnect(d)),
                })) = decode(&codec, msg)
                {
                    out.code = u16::try_from(d.code).ok();
                }
            }
        }
    }
}
