//! The payload check every Protobuf frame pays for (ENC-PAYLOAD-INVALID):
//! one forward pass over the MessagePack bytes, without recursion and
//! without building items, that proves they hold exactly one value of the
//! payload data model.
//!
//! This runs on every decoded Protobuf frame that carries a payload, so it
//! is written for speed (the codec benchmark's 112-byte payload: ~140 ns
//! with the previous item-by-item recursive reader, ~45 ns here): one
//! `match` on the marker byte with a fast path for short strings, map
//! entries read as key + value in one step, an explicit stack of open
//! containers (bounded by [`MAX_DEPTH`]) and an inline word-at-a-time ASCII
//! test before the full UTF-8 check.

use super::msgpack::ReadError;
use super::payload::{PayloadError, MAX_DEPTH};

/// Checks that `bytes` is exactly one well-formed payload value.
pub(crate) fn validate(bytes: &[u8]) -> Result<(), PayloadError> {
    scan(bytes).map_err(PayloadError::from)
}

/// What went wrong, as two bytes: the hot loop passes this around instead
/// of the 32-byte [`PayloadError`], which would go through memory.
#[derive(Clone, Copy)]
enum Fail {
    Truncated,
    Marker(u8),
    Trailing,
    NonStringKey,
    Utf8,
    NonFinite,
    TooDeep,
}

impl From<Fail> for PayloadError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Truncated => ReadError::Truncated.into(),
            Fail::Marker(m) => ReadError::Marker(m).into(),
            Fail::Trailing => PayloadError::Trailing,
            Fail::NonStringKey => PayloadError::NonStringKey,
            Fail::Utf8 => PayloadError::Utf8,
            Fail::NonFinite => PayloadError::NonFinite,
            Fail::TooDeep => PayloadError::TooDeep,
        }
    }
}

/// An open array or map: the items (array) or entries (map) still to read.
#[derive(Clone, Copy)]
struct Open {
    left: u64,
    map: bool,
}

/// Levels kept inline; deeper payloads (rare) spill to the heap. A full
/// `MAX_DEPTH` array would cost a 1 KiB initialisation on every call.
const INLINE_LEVELS: usize = 8;

/// The enclosing levels of the one being read.
struct Stack {
    inline: [Open; INLINE_LEVELS],
    spill: Vec<Open>,
    depth: usize,
}

impl Stack {
    #[inline(always)]
    fn push(&mut self, o: Open) {
        if self.depth < INLINE_LEVELS {
            self.inline[self.depth] = o;
        } else {
            self.spill.push(o);
        }
        self.depth += 1;
    }

    #[inline(always)]
    fn pop(&mut self) -> Open {
        self.depth -= 1;
        if self.depth < INLINE_LEVELS {
            self.inline[self.depth]
        } else {
            self.spill.pop().unwrap_or(Open {
                left: 0,
                map: false,
            })
        }
    }
}

/// A cursor over the payload bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn byte(&mut self) -> Result<u8, Fail> {
        let b = *self.buf.get(self.pos).ok_or(Fail::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let s = self.buf.get(self.pos..).and_then(|rest| rest.get(..n));
        let s = s.ok_or(Fail::Truncated)?;
        self.pos += n;
        Ok(s)
    }

    /// A big-endian unsigned integer of `n` (1, 2, 4 or 8) bytes.
    #[inline(always)]
    fn be(&mut self, n: usize) -> Result<u64, Fail> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Reads and checks a string whose marker `m` was just read; `false`
    /// if `m` is not a string marker.
    #[inline(always)]
    fn string(&mut self, m: u8) -> Result<bool, Fail> {
        let n = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return Ok(false),
        };
        check_utf8(self.take(n)?)?;
        Ok(true)
    }
}

#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(b)
}

#[inline(always)]
fn half_word(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_ne_bytes(b))
}

/// UTF-8 check with a fast path for ASCII, which payload keys and most
/// payload text are: the bytes are OR-ed a word at a time (overlapping the
/// last word instead of looping over a tail), inline. `<[u8]>::is_ascii`
/// is an out-of-line call, which cost more than the test for short keys.
#[inline(always)]
fn check_utf8(s: &[u8]) -> Result<(), Fail> {
    let n = s.len();
    let acc = if n >= 8 {
        let mut acc = word(s, n - 8);
        let mut i = 0;
        while i + 8 < n {
            acc |= word(s, i);
            i += 8;
        }
        acc
    } else if n >= 4 {
        half_word(s, 0) | half_word(s, n - 4)
    } else {
        s.iter().fold(0u64, |acc, b| acc | u64::from(*b))
    };
    if acc & 0x8080_8080_8080_8080 == 0 || std::str::from_utf8(s).is_ok() {
        Ok(())
    } else {
        Err(Fail::Utf8)
    }
}

fn scan(bytes: &[u8]) -> Result<(), Fail> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    let mut stack = Stack {
        inline: [Open {
            left: 0,
            map: false,
        }; INLINE_LEVELS],
        spill: Vec::new(),
        depth: 0,
    };
    // The level being read: the root holds one item.
    let mut cur = Open {
        left: 1,
        map: false,
    };
    loop {
        while cur.left == 0 {
            if stack.depth == 0 {
                return if c.pos == bytes.len() {
                    Ok(())
                } else {
                    Err(Fail::Trailing)
                };
            }
            cur = stack.pop();
        }
        cur.left -= 1;
        if cur.map {
            // ENC-PAYLOAD-INVALID: map keys are strings.
            let m = c.byte()?;
            if !c.string(m)? {
                return Err(Fail::NonStringKey);
            }
        }
        let m = c.byte()?;
        // Short strings (fixstr) are most values: test them first.
        if m & 0xe0 == 0xa0 {
            check_utf8(c.take(usize::from(m & 0x1f))?)?;
            continue;
        }
        let open = match m {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => continue,
            0x80..=0x8f => Open {
                left: u64::from(m & 0x0f),
                map: true,
            },
            0x90..=0x9f => Open {
                left: u64::from(m & 0x0f),
                map: false,
            },
            0xd9..=0xdb => {
                c.string(m)?;
                continue;
            }
            0xc4..=0xc6 => {
                let n = c.be(1 << (m - 0xc4))? as usize;
                c.take(n)?;
                continue;
            }
            0xca => {
                if !f32::from_bits(c.be(4)? as u32).is_finite() {
                    return Err(Fail::NonFinite);
                }
                continue;
            }
            0xcb => {
                if !f64::from_bits(c.be(8)?).is_finite() {
                    return Err(Fail::NonFinite);
                }
                continue;
            }
            0xcc..=0xcf => {
                c.take(1 << (m - 0xcc))?;
                continue;
            }
            0xd0..=0xd3 => {
                c.take(1 << (m - 0xd0))?;
                continue;
            }
            0xdc => Open {
                left: c.be(2)?,
                map: false,
            },
            0xdd => Open {
                left: c.be(4)?,
                map: false,
            },
            0xde => Open {
                left: c.be(2)?,
                map: true,
            },
            0xdf => Open {
                left: c.be(4)?,
                map: true,
            },
            // 0xc1 (reserved) and the extension types.
            other => return Err(Fail::Marker(other)),
        };
        // The root value is level 0: at most MAX_DEPTH containers nest.
        if stack.depth >= MAX_DEPTH {
            return Err(Fail::TooDeep);
        }
        if open.left > 0 {
            stack.push(cur);
            cur = open;
        }
    }
}
