//! Reading pcap and pcapng files: the two formats tcpdump, tshark and
//! dumpcap write. Only what a TCP capture needs is read (the global header
//! or section and interface blocks, and packet records); every length is
//! checked against a bound before anything is allocated.

use std::io::Read;

use crate::CaptureError;

/// Largest packet record or pcapng block accepted (tcpdump's default
/// snapshot length is 256 KiB; nothing real comes near this).
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// One captured packet.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The link-layer header type (`LINKTYPE_*`) of the interface.
    pub link_type: u32,
    /// Capture time in microseconds since the Unix epoch.
    pub ts_micros: u64,
    /// The captured bytes (possibly shorter than on the wire).
    pub data: Vec<u8>,
}

/// Which file format, and its byte order.
enum Format {
    Pcap {
        big: bool,
        nanos: bool,
        link_type: u32,
    },
    PcapNg {
        big: bool,
        /// Per interface: link type and timestamp units per second.
        interfaces: Vec<(u32, u64)>,
    },
}

/// Reads packets from a pcap or pcapng stream.
pub struct PacketReader<R> {
    input: R,
    format: Format,
    /// Bytes read so far (for error positions).
    offset: u64,
}

fn u16_at(b: &[u8], i: usize, big: bool) -> u16 {
    let a = [b[i], b[i + 1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn u32_at(b: &[u8], i: usize, big: bool) -> u32 {
    let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

impl<R: Read> PacketReader<R> {
    /// Reads the file header; fails with [`CaptureError::NotACapture`] when
    /// the input is neither pcap nor pcapng.
    pub fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        read_exact(&mut input, &mut magic, 0)?;
        let le = u32::from_le_bytes(magic);
        let (big, nanos) = match le {
            0xa1b2_c3d4 => (false, false),
            0xd4c3_b2a1 => (true, false),
            0xa1b2_3c4d => (false, true),
            0x4d3c_b2a1 => (true, true),
            PCAPNG_SHB => {
                let mut reader = PacketReader {
                    input,
                    format: Format::PcapNg {
                        big: false,
                        interfaces: Vec::new(),
                    },
                    offset: 4,
                };
                reader.section_header()?;
                return Ok(reader);
            }
            _ => return Err(CaptureError::NotACapture),
        };
        let mut rest = [0u8; 20];
        read_exact(&mut input, &mut rest, 4)?;
        let link_type = u32_at(&rest, 16, big) & 0x0FFF_FFFF;
        Ok(PacketReader {
            input,
            format: Format::Pcap {
                big,
                nanos,
                link_type,
            },
            offset: 24,
        })
    }

    /// The rest of a section header block whose type was just read.
    fn section_header(&mut self) -> Result<(), CaptureError> {
        let mut head = [0u8; 8];
        read_exact(&mut self.input, &mut head, self.offset)?;
        let bom_le = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let big = match bom_le {
            PCAPNG_BOM => false,
            0x4D3C_2B1A => true,
            _ => return Err(self.malformed("bad pcapng byte-order magic")),
        };
        let total = u32_at(&head, 0, big) as usize;
        if !(28..=MAX_RECORD).contains(&total) || !total.is_multiple_of(4) {
            return Err(self.malformed("bad section header length"));
        }
        self.offset += 8;
        self.skip(total - 12)?; // type, length and BOM already read
        self.format = Format::PcapNg {
            big,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    fn malformed(&self, what: &str) -> CaptureError {
        CaptureError::Malformed {
            offset: self.offset,
            detail: what.to_string(),
        }
    }

    fn skip(&mut self, n: usize) -> Result<(), CaptureError> {
        let copied = std::io::copy(&mut (&mut self.input).take(n as u64), &mut std::io::sink())?;
        if copied != n as u64 {
            return Err(CaptureError::Truncated {
                offset: self.offset + copied,
            });
        }
        self.offset += n as u64;
        Ok(())
    }

    fn read_vec(&mut self, n: usize) -> Result<Vec<u8>, CaptureError> {
        let mut v = vec![0u8; n];
        read_exact(&mut self.input, &mut v, self.offset)?;
        self.offset += n as u64;
        Ok(v)
    }

    /// The next packet, `None` at a clean end of file.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, CaptureError> {
        match self.format {
            Format::Pcap {
                big,
                nanos,
                link_type,
            } => {
                let mut head = [0u8; 16];
                if !read_or_eof(&mut self.input, &mut head, self.offset)? {
                    return Ok(None);
                }
                self.offset += 16;
                let secs = u64::from(u32_at(&head, 0, big));
                let frac = u64::from(u32_at(&head, 4, big));
                let incl = u32_at(&head, 8, big) as usize;
                if incl > MAX_RECORD {
                    return Err(self.malformed("packet record longer than 16 MiB"));
                }
                let data = self.read_vec(incl)?;
                let micros = if nanos { frac / 1000 } else { frac };
                Ok(Some(Packet {
                    link_type,
                    ts_micros: secs * 1_000_000 + micros,
                    data,
                }))
            }
            Format::PcapNg { .. } => self.next_block_packet(),
        }
    }

    fn next_block_packet(&mut self) -> Result<Option<Packet>, CaptureError> {
        loop {
            let mut head = [0u8; 8];
            if !read_or_eof(&mut self.input, &mut head, self.offset)? {
                return Ok(None);
            }
            let le_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if le_type == PCAPNG_SHB {
                // A new section: its own byte order and interfaces.
                self.offset += 4;
                // Re-read the length with the new section's byte order.
                let mut rest = [0u8; 4];
                rest.copy_from_slice(&head[4..8]);
                let chained = std::io::Cursor::new(rest).chain(&mut self.input);
                let mut tmp = PacketReader {
                    input: chained,
                    format: Format::PcapNg {
                        big: false,
                        interfaces: Vec::new(),
                    },
                    offset: self.offset,
                };
                tmp.section_header()?;
                let (format, offset) = (tmp.format, tmp.offset);
                self.format = format;
                self.offset = offset;
                continue;
            }
            let Format::PcapNg { big, .. } = self.format else {
                unreachable!("pcapng blocks only in pcapng files")
            };
            let block_type = u32_at(&head, 0, big);
            let total = u32_at(&head, 4, big) as usize;
            if !(12..=MAX_RECORD).contains(&total) || !total.is_multiple_of(4) {
                return Err(self.malformed("bad pcapng block length"));
            }
            self.offset += 8;
            let body = self.read_vec(total - 8)?;
            let body = &body[..body.len() - 4]; // trailing length copy
            let offset = self.offset;
            let bad = |detail: &str| CaptureError::Malformed {
                offset,
                detail: detail.to_string(),
            };
            let Format::PcapNg { interfaces, .. } = &mut self.format else {
                unreachable!()
            };
            match block_type {
                PCAPNG_IDB => {
                    if body.len() < 8 {
                        return Err(bad("short interface block"));
                    }
                    if interfaces.len() >= 1024 {
                        return Err(bad("more than 1024 interfaces"));
                    }
                    let link = u32::from(u16_at(body, 0, big));
                    let resol = if_tsresol(&body[8..], big);
                    interfaces.push((link, resol));
                }
                PCAPNG_EPB => {
                    if body.len() < 20 {
                        return Err(bad("short packet block"));
                    }
                    let iface = u32_at(body, 0, big) as usize;
                    let ts =
                        (u64::from(u32_at(body, 4, big)) << 32) | u64::from(u32_at(body, 8, big));
                    let cap = u32_at(body, 12, big) as usize;
                    if cap > body.len() - 20 {
                        return Err(bad("packet longer than its block"));
                    }
                    let &(link_type, per_sec) = interfaces
                        .get(iface)
                        .ok_or_else(|| bad("packet names an undeclared interface"))?;
                    return Ok(Some(Packet {
                        link_type,
                        ts_micros: scale_micros(ts, per_sec),
                        data: body[20..20 + cap].to_vec(),
                    }));
                }
                PCAPNG_SPB => {
                    if body.len() < 4 {
                        return Err(bad("short simple packet block"));
                    }
                    let &(link_type, _) = interfaces
                        .first()
                        .ok_or_else(|| bad("packet before any interface"))?;
                    let orig = u32_at(body, 0, big) as usize;
                    let cap = orig.min(body.len() - 4);
                    return Ok(Some(Packet {
                        link_type,
                        ts_micros: 0,
                        data: body[4..4 + cap].to_vec(),
                    }));
                }
                _ => {} // statistics, name resolution, custom blocks: not needed
            }
        }
    }
}

/// Timestamp units per second from an interface block's options
/// (`if_tsresol`, code 9); 10^6 when absent.
fn if_tsresol(mut options: &[u8], big: bool) -> u64 {
    while options.len() >= 4 {
        let code = u16_at(options, 0, big);
        let len = usize::from(u16_at(options, 2, big));
        let padded = (len + 3) & !3;
        if code == 0 || options.len() < 4 + padded {
            break;
        }
        if code == 9 && len == 1 {
            let v = options[4];
            let exp = u32::from(v & 0x7F);
            let base: u64 = if v & 0x80 != 0 { 2 } else { 10 };
            return base.checked_pow(exp).unwrap_or(1_000_000).max(1);
        }
        options = &options[4 + padded..];
    }
    1_000_000
}

fn scale_micros(ts: u64, per_sec: u64) -> u64 {
    if per_sec == 1_000_000 {
        return ts;
    }
    ((u128::from(ts) * 1_000_000) / u128::from(per_sec)) as u64
}

fn read_exact(input: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<(), CaptureError> {
    if read_or_eof(input, buf, offset)? {
        Ok(())
    } else {
        Err(CaptureError::Truncated { offset })
    }
}

/// Fills `buf`; false on end of file before the first byte, a truncation
/// error after it.
fn read_or_eof(input: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<bool, CaptureError> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(CaptureError::Truncated {
                    offset: offset + got as u64,
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}
