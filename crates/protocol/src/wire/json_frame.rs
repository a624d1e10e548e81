//! The JSON codec's serializer: serde_json writing the envelope, with each
//! payload written into the same output by the transcoder (`json_text.rs`)
//! instead of through serde.
//!
//! [`to_writer`] runs serde_json with a [`Formatter`] whose
//! `write_byte_array` is the transcoder, and `payload::serialize` hands the
//! payload bytes to `serialize_bytes` only while [`to_writer`] runs on this
//! thread. The flag is thread-local because serde offers a `Serialize` impl
//! no way to reach the writer of one particular serializer (serde_json's
//! `RawValue` would need the text built aside and parsed once more); every
//! other serializer (MessagePack, `serde_json::Value`, a plain
//! `serde_json::to_vec`) still gets the serde route, `payload::Embedded`.

use std::cell::Cell;
use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

use super::json_text::transcode;

/// Where [`to_writer`] is: not running, running, or about to receive a
/// payload through `serialize_bytes`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Off,
    On,
    Payload,
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State::Off) };
}

/// Called by `payload::serialize`: whether to hand the payload bytes to
/// `serialize_bytes` for [`PayloadFormatter`] (only while [`to_writer`] runs
/// on this thread; any other serializer gets the serde route).
#[inline]
pub(crate) fn claim_payload() -> bool {
    STATE.with(|s| {
        let on = s.get() == State::On;
        if on {
            s.set(State::Payload);
        }
        on
    })
}

/// Restores the previous state when [`to_writer`] ends, even by a panic.
struct Running(State);

impl Drop for Running {
    fn drop(&mut self) {
        STATE.with(|s| s.set(self.0));
    }
}

/// Serializes `value` as compact JSON into `out`, exactly as
/// `serde_json::to_writer` would, with its payloads transcoded into `out`
/// by [`transcode`].
pub(crate) fn to_writer<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> serde_json::Result<()> {
    let _running = Running(STATE.with(|s| s.replace(State::On)));
    let mut ser = serde_json::Serializer::with_formatter(out, PayloadFormatter);
    value.serialize(&mut ser)
}

/// serde_json's compact formatter, except that a byte array claimed as a
/// payload ([`claim_payload`]) is written as the payload's JSON text.
struct PayloadFormatter;

impl Formatter for PayloadFormatter {
    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        let claimed = STATE.with(|s| {
            let claimed = s.get() == State::Payload;
            if claimed {
                s.set(State::On);
            }
            claimed
        });
        if claimed {
            transcode(w, value)
        } else {
            CompactFormatter.write_byte_array(w, value)
        }
    }
}
