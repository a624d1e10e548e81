//! Payloads written as JSON text straight from their MessagePack bytes, for
//! the JSON encoding of envelopes (ENC-PAYLOAD-WIRE).
//!
//! Payloads are held as canonical MessagePack (ENC-PAYLOAD), so every JSON
//! encode transcodes one. The serde route (`payload::Embedded` through
//! serde_json) built an item per value, re-checked every string with
//! `str::from_utf8` and escaped it byte by byte: about 45% of a `publish`
//! encode in a profile. This is the same conversion in the style of
//! `scan.rs`: one forward pass over marker bytes with an explicit stack of
//! open containers (no recursion, no value tree), strings tested a word at a
//! time for anything to escape or any non-ASCII byte and copied whole when
//! there is none. Numbers, escapes and separators are written by serde_json's
//! own `CompactFormatter`, so the text is byte for byte what the serde route
//! wrote (`tests/json_text.rs` holds the two to each other).
//!
//! `json_frame.rs` puts it into the codec's serde_json output.

use std::io;

use base64::Engine as _;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

use super::msgpack;
use super::payload::{PayloadError, MAX_DEPTH};
use super::scan::{check_utf8, half_word, word, Cursor, Fail, Stack};

/// Writes the JSON text of the payload value at the start of `bytes` into
/// `w`. What the serde route did, this does too: the value is checked as it
/// is written (UTF-8, finite numbers, string keys, markers, depth), while
/// bytes after the value are not looked at and repeated keys are written as
/// they are. Payloads inside envelopes were checked by
/// `wire::payload::validate` when they were decoded (and `to_payload` /
/// `from_json` only write valid ones), but `payload` is a public `Bytes`
/// field anyone can fill, so nothing here relies on that: bad bytes end in
/// an error, never a panic or an endless loop (each item takes at least one
/// byte, and containers nest at most [`MAX_DEPTH`] deep).
pub(crate) fn transcode<W: ?Sized + io::Write>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let mut f = CompactFormatter;
    let mut c = Cursor { buf: bytes, pos: 0 };
    let mut stack = Stack::new(Level::ROOT);
    // The level being written: the root holds one item and no brackets.
    let mut cur = Level::ROOT;
    loop {
        while cur.left == 0 {
            if stack.depth == 0 {
                return Ok(());
            }
            w.write_all(if cur.map { b"}" } else { b"]" })?;
            cur = stack.pop();
        }
        cur.left -= 1;
        if cur.first {
            cur.first = false;
        } else {
            w.write_all(b",")?;
        }
        if cur.map {
            let m = c.byte()?;
            let n = match m {
                0xa0..=0xbf => usize::from(m & 0x1f),
                0xd9..=0xdb => c.be(1 << (m - 0xd9))? as usize,
                _ => return Err(non_string_key(&bytes[c.pos - 1..])),
            };
            write_str(w, &mut f, c.take(n)?)?;
            w.write_all(b":")?;
        }
        let m = c.byte()?;
        // Short strings (fixstr) are most values: test them first.
        if m & 0xe0 == 0xa0 {
            write_str(w, &mut f, c.take(usize::from(m & 0x1f))?)?;
            continue;
        }
        let (n, map) = match m {
            0x00..=0x7f => {
                f.write_u64(w, u64::from(m))?;
                continue;
            }
            0xe0..=0xff => {
                f.write_i64(w, i64::from(m as i8))?;
                continue;
            }
            0xc0 => {
                f.write_null(w)?;
                continue;
            }
            0xc2 | 0xc3 => {
                f.write_bool(w, m == 0xc3)?;
                continue;
            }
            0x80..=0x8f => (u64::from(m & 0x0f), true),
            0x90..=0x9f => (u64::from(m & 0x0f), false),
            0xd9..=0xdb => {
                let n = c.be(1 << (m - 0xd9))? as usize;
                write_str(w, &mut f, c.take(n)?)?;
                continue;
            }
            0xc4..=0xc6 => {
                let n = c.be(1 << (m - 0xc4))? as usize;
                write_bin(w, c.take(n)?)?;
                continue;
            }
            0xca => {
                write_float(w, &mut f, f64::from(f32::from_bits(c.be(4)? as u32)))?;
                continue;
            }
            0xcb => {
                write_float(w, &mut f, f64::from_bits(c.be(8)?))?;
                continue;
            }
            0xcc..=0xcf => {
                f.write_u64(w, c.be(1 << (m - 0xcc))?)?;
                continue;
            }
            0xd0..=0xd3 => {
                // Sign-extend the big-endian two's complement of 1-8 bytes.
                let bits = 8 << (m - 0xd0);
                let raw = c.be(1 << (m - 0xd0))?;
                f.write_i64(w, ((raw << (64 - bits)) as i64) >> (64 - bits))?;
                continue;
            }
            0xdc => (c.be(2)?, false),
            0xdd => (c.be(4)?, false),
            0xde => (c.be(2)?, true),
            0xdf => (c.be(4)?, true),
            // 0xc1 (reserved) and the extension types.
            other => return Err(Fail::Marker(other).into()),
        };
        // The root value is level 0: at most MAX_DEPTH containers nest, the
        // bound `validate` and `from_json` apply (empty ones count too).
        if stack.depth >= MAX_DEPTH {
            return Err(Fail::TooDeep.into());
        }
        if n == 0 {
            w.write_all(if map { b"{}" } else { b"[]" })?;
            continue;
        }
        w.write_all(if map { b"{" } else { b"[" })?;
        stack.push(cur);
        cur = Level {
            left: n,
            map,
            first: true,
        };
    }
}

impl From<Fail> for io::Error {
    #[cold]
    fn from(f: Fail) -> io::Error {
        invalid(f.into())
    }
}

/// A payload error carried through `io::Write`-shaped APIs (serde_json's
/// `Formatter`); [`write_json_text`] takes it back out.
#[cold]
fn invalid(e: PayloadError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The error for a key that is not a string: the key item is read first,
/// as the serde route did, so a cut-short or forbidden key reports that.
#[cold]
fn non_string_key(mut at: &[u8]) -> io::Error {
    invalid(match msgpack::read(&mut at) {
        Err(e) => e.into(),
        Ok(_) => PayloadError::NonStringKey,
    })
}

/// [`transcode`] into a `Vec`, with the error typed again.
pub(crate) fn write_json_text(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), PayloadError> {
    transcode(out, payload).map_err(|e| {
        let text = e.to_string();
        match e.into_inner().map(|inner| inner.downcast::<PayloadError>()) {
            Some(Ok(p)) => *p,
            // A `Vec` never fails to write; keep the message if it did.
            _ => PayloadError::Typed(text),
        }
    })
}

#[inline(always)]
fn write_float<W: ?Sized + io::Write>(
    w: &mut W,
    f: &mut CompactFormatter,
    v: f64,
) -> io::Result<()> {
    if !v.is_finite() {
        return Err(Fail::NonFinite.into());
    }
    f.write_f64(w, v)
}

/// A byte string: its padded standard base64 string (ENC-PAYLOAD-WIRE),
/// which holds nothing to escape. Rare in payloads, so it may allocate.
#[cold]
fn write_bin<W: ?Sized + io::Write>(w: &mut W, b: &[u8]) -> io::Result<()> {
    w.write_all(b"\"")?;
    w.write_all(
        base64::engine::general_purpose::STANDARD
            .encode(b)
            .as_bytes(),
    )?;
    w.write_all(b"\"")
}

/// A string (value or key) with its quotes. The common case (ASCII with
/// nothing to escape) is one copy; anything else takes [`write_escaped`].
#[inline(always)]
fn write_str<W: ?Sized + io::Write>(
    w: &mut W,
    f: &mut CompactFormatter,
    s: &[u8],
) -> io::Result<()> {
    if !plain(s) {
        return write_escaped(w, f, s);
    }
    w.write_all(b"\"")?;
    w.write_all(s)?;
    w.write_all(b"\"")
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of the bytes of `x` that are non-ASCII, below 0x20, `"` or
/// `\` (the bytes serde_json escapes, and those that need the UTF-8 check).
/// Each term may also flag a byte above a flagged one (a borrow), never
/// when no byte is flagged: exact for "is there any".
#[inline(always)]
fn special(x: u64) -> u64 {
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    let q = x ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = x ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash | x) & HIGH
}

/// Whether `s` is ASCII with nothing to escape, a word at a time (the last
/// word overlaps instead of a byte loop over the tail).
#[inline(always)]
fn plain(s: &[u8]) -> bool {
    let n = s.len();
    let flags = if n >= 8 {
        let mut acc = special(word(s, n - 8));
        let mut i = 0;
        while i + 8 < n {
            acc |= special(word(s, i));
            i += 8;
        }
        acc
    } else if n >= 4 {
        special(half_word(s, 0) | (half_word(s, n - 4) << 32))
    } else {
        s.iter().fold(0, |acc, &b| {
            acc | u64::from(ESCAPE[usize::from(b)] | (b & 0x80))
        })
    };
    flags == 0
}

/// A string with non-ASCII bytes or bytes to escape: checked as UTF-8, then
/// escaped as serde_json's `format_escaped_str` does (same table, same
/// `CharEscape` through the same formatter).
#[inline(never)]
fn write_escaped<W: ?Sized + io::Write>(
    w: &mut W,
    f: &mut CompactFormatter,
    s: &[u8],
) -> io::Result<()> {
    check_utf8(s)?;
    w.write_all(b"\"")?;
    let mut start = 0;
    for (i, &byte) in s.iter().enumerate() {
        let escape = match ESCAPE[usize::from(byte)] {
            0 => continue,
            b'b' => CharEscape::Backspace,
            b't' => CharEscape::Tab,
            b'n' => CharEscape::LineFeed,
            b'f' => CharEscape::FormFeed,
            b'r' => CharEscape::CarriageReturn,
            b'"' => CharEscape::Quote,
            b'\\' => CharEscape::ReverseSolidus,
            _ => CharEscape::AsciiControl(byte),
        };
        w.write_all(&s[start..i])?;
        f.write_char_escape(w, escape)?;
        start = i + 1;
    }
    w.write_all(&s[start..])?;
    w.write_all(b"\"")
}

/// serde_json's escape table (`ser.rs`): `b'x'` escapes a byte as `\x`,
/// `b'u'` as `\u00XX`, 0 leaves it alone.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// An open array or map: items (entries) left, and whether the next one is
/// the first (no comma before it).
#[derive(Clone, Copy)]
struct Level {
    left: u64,
    map: bool,
    first: bool,
}

impl Level {
    const ROOT: Level = Level {
        left: 1,
        map: false,
        first: true,
    };
}
