//! A minimal MessagePack reader and canonical writer for payload values.
//!
//! Canonical means: the smallest representation of every integer (unsigned
//! markers for non-negative values, signed for negative), `float 64` for
//! non-integral numbers, the shortest `str`/`bin`/array/map header. This is
//! what `@msgpack/msgpack` writes, so Rust and TypeScript agree byte for byte.

/// One MessagePack item header (containers are not descended into).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
}

/// Why bytes are not a well-formed payload value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The input ends inside a value.
    #[error("truncated MessagePack value")]
    Truncated,
    /// A marker outside the JSON data model (ext types, reserved 0xc1).
    #[error("MessagePack marker 0x{0:02x} is not allowed in a payload")]
    Marker(u8),
}

#[inline]
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], ReadError> {
    if buf.len() < n {
        return Err(ReadError::Truncated);
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

#[inline]
fn be(buf: &mut &[u8], n: usize) -> Result<u64, ReadError> {
    Ok(take(buf, n)?
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Reads one item header from `buf`, advancing it.
#[inline]
pub fn read<'a>(buf: &mut &'a [u8]) -> Result<Item<'a>, ReadError> {
    let m = take(buf, 1)?[0];
    Ok(match m {
        0x00..=0x7f => Item::Uint(u64::from(m)),
        0x80..=0x8f => Item::Map(u32::from(m & 0x0f)),
        0x90..=0x9f => Item::Array(u32::from(m & 0x0f)),
        0xa0..=0xbf => Item::Str(take(buf, usize::from(m & 0x1f))?),
        0xc0 => Item::Nil,
        0xc2 => Item::Bool(false),
        0xc3 => Item::Bool(true),
        0xc4..=0xc6 => {
            let n = be(buf, 1 << (m - 0xc4))? as usize;
            Item::Bin(take(buf, n)?)
        }
        0xca => Item::Float(f64::from(f32::from_bits(be(buf, 4)? as u32))),
        0xcb => Item::Float(f64::from_bits(be(buf, 8)?)),
        0xcc..=0xcf => Item::Uint(be(buf, 1 << (m - 0xcc))?),
        0xd0 => Item::Int(i64::from(be(buf, 1)? as u8 as i8)),
        0xd1 => Item::Int(i64::from(be(buf, 2)? as u16 as i16)),
        0xd2 => Item::Int(i64::from(be(buf, 4)? as u32 as i32)),
        0xd3 => Item::Int(be(buf, 8)? as i64),
        0xd9..=0xdb => {
            let n = be(buf, 1 << (m - 0xd9))? as usize;
            Item::Str(take(buf, n)?)
        }
        0xdc => Item::Array(be(buf, 2)? as u32),
        0xdd => Item::Array(be(buf, 4)? as u32),
        0xde => Item::Map(be(buf, 2)? as u32),
        0xdf => Item::Map(be(buf, 4)? as u32),
        0xe0..=0xff => Item::Int(i64::from(m as i8)),
        other => return Err(ReadError::Marker(other)),
    })
}

/// Writes `v` in the smallest unsigned form.
pub fn write_uint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0x7f => out.push(v as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, v as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Writes `v`: non-negative as unsigned, negative in the smallest signed form.
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        return write_uint(out, v as u64);
    }
    if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Largest integer a JavaScript number holds exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Writes a number: integral values within ±2^53 as integers (as JavaScript
/// encoders do), everything else as `float 64`.
pub fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.fract() == 0.0 && v.abs() <= MAX_SAFE_INTEGER as f64 && !(v == 0.0 && v.is_sign_negative())
    {
        write_int(out, v as i64);
    } else {
        out.push(0xcb);
        out.extend_from_slice(&v.to_bits().to_be_bytes());
    }
}

fn write_len(out: &mut Vec<u8>, fix: Option<(u8, u32)>, markers: [u8; 3], n: u32) {
    if let Some((base, max)) = fix {
        if n <= max {
            out.push(base | n as u8);
            return;
        }
    }
    if n <= 0xff && markers[0] != 0 {
        out.extend_from_slice(&[markers[0], n as u8]);
    } else if n <= 0xffff {
        out.push(markers[1]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(markers[2]);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Writes a `str`.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_len(out, Some((0xa0, 31)), [0xd9, 0xda, 0xdb], s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// Writes a `bin`.
pub fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    write_len(out, None, [0xc4, 0xc5, 0xc6], b.len() as u32);
    out.extend_from_slice(b);
}

/// The header of an array of `n` items.
pub fn array_header(n: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(5);
    write_len(&mut v, Some((0x90, 15)), [0, 0xdc, 0xdd], n);
    v
}

/// The header of a map of `n` entries.
pub fn map_header(n: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(5);
    write_len(&mut v, Some((0x80, 15)), [0, 0xde, 0xdf], n);
    v
}

/// Skips exactly one value (of any shape), iteratively: no recursion, so
/// hostile nesting cannot exhaust the stack. Rejects the markers [`read`]
/// rejects. Runs on every MessagePack frame before it is decoded, so it
/// works on marker bytes directly instead of building an [`Item`] per
/// value (which cost ~10% of a frame's decode).
pub fn skip(buf: &mut &[u8]) -> Result<(), ReadError> {
    let b = *buf;
    let mut pos = 0usize;
    // A big-endian length of `n` bytes at `pos`.
    let len = |pos: &mut usize, n: usize| -> Result<u64, ReadError> {
        let bytes = b.get(*pos..*pos + n).ok_or(ReadError::Truncated)?;
        *pos += n;
        Ok(bytes.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    };
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let m = *b.get(pos).ok_or(ReadError::Truncated)?;
        pos += 1;
        let body = match m {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 0,
            0x80..=0x8f => {
                pending += 2 * u64::from(m & 0x0f);
                0
            }
            0x90..=0x9f => {
                pending += u64::from(m & 0x0f);
                0
            }
            0xa0..=0xbf => u64::from(m & 0x1f),
            0xc4..=0xc6 => len(&mut pos, 1 << (m - 0xc4))?,
            0xd9..=0xdb => len(&mut pos, 1 << (m - 0xd9))?,
            0xca => 4,
            0xcb => 8,
            0xcc..=0xcf => 1 << (m - 0xcc),
            0xd0..=0xd3 => 1 << (m - 0xd0),
            0xdc | 0xdd => {
                pending += len(&mut pos, 2 << (m - 0xdc))?;
                0
            }
            0xde | 0xdf => {
                pending += 2 * len(&mut pos, 2 << (m - 0xde))?;
                0
            }
            other => return Err(ReadError::Marker(other)),
        };
        let end = usize::try_from(body).ok().and_then(|n| pos.checked_add(n));
        pos = end.filter(|e| *e <= b.len()).ok_or(ReadError::Truncated)?;
    }
    *buf = &b[pos..];
    Ok(())
}
