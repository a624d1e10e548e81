//! The payload check every Protobuf frame pays for (ENC-PAYLOAD-INVALID):
//! one forward pass over the MessagePack bytes, without recursion and
//! without building items, that proves they hold exactly one value of the
//! payload data model (unique string keys included).
//!
//! This runs on every decoded Protobuf frame that carries a payload, so it
//! is written for speed (in a microbenchmark of the codec benchmark's
//! 112-byte payload, about twice as fast as the item-by-item recursive
//! reader it replaced, which did not even look for repeated keys): one
//! `match` on the marker byte with a
//! fast path for short strings, map entries read as key + value in one
//! step, an explicit stack of open containers (bounded by [`MAX_DEPTH`]),
//! an inline word-at-a-time ASCII test before the full UTF-8 check, and
//! keys remembered in a small inline list, behind a 64-bit filter, until
//! their map closes.

use super::msgpack::ReadError;
use super::payload::{PayloadError, MAX_DEPTH};

/// Checks that `bytes` is exactly one well-formed payload value.
pub(crate) fn validate(bytes: &[u8]) -> Result<(), PayloadError> {
    scan(bytes).map_err(PayloadError::from)
}

/// What went wrong, as two bytes: the hot loop passes this around instead
/// of the 32-byte [`PayloadError`], which would go through memory.
#[derive(Clone, Copy)]
pub(super) enum Fail {
    Truncated,
    Marker(u8),
    Trailing,
    NonStringKey,
    Utf8,
    NonFinite,
    TooDeep,
    DuplicateKey,
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
            Fail::DuplicateKey => PayloadError::DuplicateKey,
        }
    }
}

/// An open array or map: the items (array) or entries (map) still to read,
/// and for a map where its keys start in [`Keys`] and a 64-bit filter of
/// the keys seen (one bit per key, from a cheap hash): a new key whose bit
/// is clear cannot be a repeat, so distinct keys are rarely compared.
#[derive(Clone, Copy)]
struct Open {
    left: u64,
    map: bool,
    keys_from: usize,
    filter: u64,
}

impl Open {
    const NONE: Open = Open {
        left: 0,
        map: false,
        keys_from: 0,
        filter: 0,
    };

    #[inline(always)]
    fn array(left: u64) -> Open {
        Open {
            left,
            map: false,
            keys_from: 0,
            filter: 0,
        }
    }

    #[inline(always)]
    fn map(left: u64) -> Open {
        // `keys_from` is set when the level is entered.
        Open {
            left,
            map: true,
            keys_from: 0,
            filter: 0,
        }
    }
}

/// Keys of the maps being read, innermost last; kept inline while few.
/// The first [`SMALL`] keys of a map are checked as they arrive (filter,
/// then a comparison on a filter hit); a map with more is checked once
/// more when it closes, by sorting, so a hostile map of thousands of keys
/// costs O(n log n), not O(n²).
struct Keys<'a> {
    inline: [&'a [u8]; INLINE_KEYS],
    len: usize,
    spill: Vec<&'a [u8]>,
    spilled: bool,
}

const INLINE_KEYS: usize = 16;

/// Keys per map checked on arrival.
const SMALL: usize = 16;

/// The filter bit of a key: length, first and last byte mixed.
#[inline(always)]
pub(super) fn filter_bit(k: &[u8]) -> u64 {
    let first = u32::from(k.first().copied().unwrap_or(0));
    let last = u32::from(k.last().copied().unwrap_or(0));
    let h = (k.len() as u32).wrapping_mul(0x9e37) ^ first ^ (last << 3);
    1 << (h & 63)
}

impl<'a> Keys<'a> {
    #[inline(always)]
    fn len(&self) -> usize {
        if self.spilled {
            self.spill.len()
        } else {
            self.len
        }
    }

    /// The keys from index `from` on.
    #[inline(always)]
    fn from(&self, from: usize) -> &[&'a [u8]] {
        if self.spilled {
            &self.spill[from..]
        } else {
            &self.inline[from..self.len]
        }
    }

    #[inline(always)]
    fn push(&mut self, k: &'a [u8]) {
        if !self.spilled {
            if self.len < INLINE_KEYS {
                self.inline[self.len] = k;
                self.len += 1;
                return;
            }
            self.spill.extend_from_slice(&self.inline[..self.len]);
            self.spilled = true;
        }
        self.spill.push(k);
    }

    /// Whether the keys from `from` on hold a duplicate the arrival check
    /// could not see (maps of more than [`SMALL`] keys); drops them.
    #[inline(always)]
    fn close(&mut self, from: usize) -> bool {
        let all = if self.spilled {
            &mut self.spill[..]
        } else {
            &mut self.inline[..self.len]
        };
        let keys = &mut all[from..];
        let dup = if keys.len() <= SMALL {
            false
        } else {
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
        };
        if self.spilled {
            self.spill.truncate(from);
        } else {
            self.len = from;
        }
        dup
    }
}

/// Levels kept inline; deeper payloads (rare) spill to the heap. A full
/// `MAX_DEPTH` array would cost a 1 KiB initialisation on every call.
const INLINE_LEVELS: usize = 8;

/// The enclosing levels of the one being read (here) or written (the JSON
/// transcoder): the one stack of both passes over payload markers.
pub(super) struct Stack<T: Copy> {
    inline: [T; INLINE_LEVELS],
    spill: Vec<T>,
    /// Levels held.
    pub(super) depth: usize,
    /// What `pop` returns when the stack is empty (never, for a caller
    /// that checks `depth` first).
    bottom: T,
}

impl<T: Copy> Stack<T> {
    pub(super) fn new(bottom: T) -> Self {
        Stack {
            inline: [bottom; INLINE_LEVELS],
            spill: Vec::new(),
            depth: 0,
            bottom,
        }
    }

    #[inline(always)]
    pub(super) fn push(&mut self, l: T) {
        if self.depth < INLINE_LEVELS {
            self.inline[self.depth] = l;
        } else {
            self.spill.push(l);
        }
        self.depth += 1;
    }

    #[inline(always)]
    pub(super) fn pop(&mut self) -> T {
        self.depth -= 1;
        if self.depth < INLINE_LEVELS {
            self.inline[self.depth]
        } else {
            self.spill.pop().unwrap_or(self.bottom)
        }
    }
}

/// A cursor over the payload bytes (shared with the JSON transcoder).
pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    pub(super) fn byte(&mut self) -> Result<u8, Fail> {
        let b = *self.buf.get(self.pos).ok_or(Fail::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline(always)]
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let s = self.buf.get(self.pos..).and_then(|rest| rest.get(..n));
        let s = s.ok_or(Fail::Truncated)?;
        self.pos += n;
        Ok(s)
    }

    /// A big-endian unsigned integer of `n` (1, 2, 4 or 8) bytes.
    #[inline(always)]
    pub(super) fn be(&mut self, n: usize) -> Result<u64, Fail> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Reads and checks a string whose marker `m` was just read; `None`
    /// if `m` is not a string marker.
    #[inline(always)]
    fn string(&mut self, m: u8) -> Result<Option<&'a [u8]>, Fail> {
        let n = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return Ok(None),
        };
        let s = self.take(n)?;
        check_utf8(s)?;
        Ok(Some(s))
    }
}

/// Eight bytes at `at` as one word, for tests of whether any byte matches
/// (byte order does not matter to them); shared with the JSON transcoder.
#[inline(always)]
pub(super) fn word(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(b)
}

#[inline(always)]
pub(super) fn half_word(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_ne_bytes(b))
}

/// UTF-8 check with a fast path for ASCII, which payload keys and most
/// payload text are: the bytes are OR-ed a word at a time (overlapping the
/// last word instead of looping over a tail), inline. `<[u8]>::is_ascii`
/// is an out-of-line call, which cost more than the test for short keys.
#[inline(always)]
pub(super) fn check_utf8(s: &[u8]) -> Result<(), Fail> {
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
    let mut stack = Stack::new(Open::NONE);
    let mut keys = Keys {
        inline: [&[]; INLINE_KEYS],
        len: 0,
        spill: Vec::new(),
        spilled: false,
    };
    // The level being read: the root holds one item.
    let mut cur = Open::array(1);
    loop {
        while cur.left == 0 {
            if cur.map && keys.close(cur.keys_from) {
                return Err(Fail::DuplicateKey);
            }
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
            let k = c.string(m)?.ok_or(Fail::NonStringKey)?;
            // ENC-PAYLOAD-INVALID: a map's keys are unique.
            if keys.len() - cur.keys_from < SMALL {
                let bit = filter_bit(k);
                if cur.filter & bit != 0 && keys.from(cur.keys_from).contains(&k) {
                    return Err(Fail::DuplicateKey);
                }
                cur.filter |= bit;
            }
            keys.push(k);
        }
        let m = c.byte()?;
        // Short strings (fixstr) are most values: test them first.
        if m & 0xe0 == 0xa0 {
            check_utf8(c.take(usize::from(m & 0x1f))?)?;
            continue;
        }
        let open = match m {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => continue,
            0x80..=0x8f => Open::map(u64::from(m & 0x0f)),
            0x90..=0x9f => Open::array(u64::from(m & 0x0f)),
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
            0xdc => Open::array(c.be(2)?),
            0xdd => Open::array(c.be(4)?),
            0xde => Open::map(c.be(2)?),
            0xdf => Open::map(c.be(4)?),
            // 0xc1 (reserved) and the extension types.
            other => return Err(Fail::Marker(other)),
        };
        // The root value is level 0: at most MAX_DEPTH containers nest.
        if stack.depth >= MAX_DEPTH {
            return Err(Fail::TooDeep);
        }
        if open.left > 0 {
            stack.push(cur);
            cur = Open {
                keys_from: keys.len(),
                ..open
            };
        }
    }
}
