//! From a link-layer packet to a TCP segment: Ethernet (with VLAN tags),
//! Linux cooked captures (SLL, SLL2), BSD loopback and raw IP; IPv4 and
//! IPv6. Anything else is skipped, never an error: a capture holds all
//! kinds of traffic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The link types understood (`LINKTYPE_*` values).
pub const LINK_TYPES: &[(u32, &str)] = &[
    (0, "BSD loopback"),
    (1, "Ethernet"),
    (12, "raw IP"),
    (101, "raw IP"),
    (108, "OpenBSD loopback"),
    (113, "Linux cooked (SLL)"),
    (228, "raw IPv4"),
    (229, "raw IPv6"),
    (276, "Linux cooked v2 (SLL2)"),
];

/// One TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (or of the SYN).
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN or RST.
    pub fin: bool,
    /// The payload.
    pub payload: &'a [u8],
}

/// Why a packet was not a TCP segment we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The link type is not one of [`LINK_TYPES`].
    LinkType(u32),
    /// Not IP, not TCP, or an IP fragment.
    NotTcp,
    /// Shorter than its headers say (snapshot length, corruption).
    Short,
}

/// Parses the link, IP and TCP headers of `data`.
pub fn tcp_segment(link_type: u32, data: &[u8]) -> Result<Segment<'_>, Skip> {
    let (ethertype, ip) = match link_type {
        1 => ethernet(data)?,
        113 => {
            let d = data.get(16..).ok_or(Skip::Short)?;
            (u16::from_be_bytes([data[14], data[15]]), d)
        }
        276 => {
            let d = data.get(20..).ok_or(Skip::Short)?;
            (u16::from_be_bytes([data[0], data[1]]), d)
        }
        0 | 108 => {
            let d = data.get(4..).ok_or(Skip::Short)?;
            // The family is in the capturing host's byte order: accept both.
            let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let fam = le.min(be);
            match fam {
                2 => (0x0800, d),
                24 | 28 | 30 => (0x86DD, d),
                _ => return Err(Skip::NotTcp),
            }
        }
        12 | 101 => match data.first().map(|b| b >> 4) {
            Some(4) => (0x0800, data),
            Some(6) => (0x86DD, data),
            _ => return Err(Skip::NotTcp),
        },
        228 => (0x0800, data),
        229 => (0x86DD, data),
        other => return Err(Skip::LinkType(other)),
    };
    let (src, dst, tcp) = match ethertype {
        0x0800 => ipv4(ip)?,
        0x86DD => ipv6(ip)?,
        _ => return Err(Skip::NotTcp),
    };
    if tcp.len() < 20 {
        return Err(Skip::Short);
    }
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let offset = usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    if offset < 20 || offset > tcp.len() {
        return Err(Skip::Short);
    }
    Ok(Segment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq,
        syn: flags & 0x02 != 0,
        ack: flags & 0x10 != 0,
        fin: flags & 0x05 != 0,
        payload: &tcp[offset..],
    })
}

fn ethernet(data: &[u8]) -> Result<(u16, &[u8]), Skip> {
    let mut at = 12;
    loop {
        let t = data.get(at..at + 2).ok_or(Skip::Short)?;
        let ethertype = u16::from_be_bytes([t[0], t[1]]);
        if ethertype == 0x8100 || ethertype == 0x88A8 {
            at += 4; // VLAN tag
            if at > 12 + 4 * 4 {
                return Err(Skip::NotTcp);
            }
            continue;
        }
        return Ok((ethertype, data.get(at + 2..).ok_or(Skip::Short)?));
    }
}

type Ends<'a> = (IpAddr, IpAddr, &'a [u8]);

fn ipv4(ip: &[u8]) -> Result<Ends<'_>, Skip> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Err(Skip::Short);
    }
    let ihl = usize::from(ip[0] & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ip[9] != 6 || frag & 0x3FFF != 0 {
        return Err(Skip::NotTcp); // not TCP, or a fragment (more or offset)
    }
    // A zero total length is TSO on the capturing host: take what is there.
    let end = if total == 0 { ip.len() } else { total };
    if ihl < 20 || end < ihl || end > ip.len() {
        return Err(Skip::Short);
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    Ok((src.into(), dst.into(), &ip[ihl..end]))
}

fn ipv6(ip: &[u8]) -> Result<Ends<'_>, Skip> {
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return Err(Skip::Short);
    }
    let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let end = if len == 0 { ip.len() } else { 40 + len };
    if end > ip.len() {
        return Err(Skip::Short);
    }
    let mut next = ip[6];
    let mut at = 40;
    // Hop-by-hop, routing and destination options headers may precede TCP.
    while matches!(next, 0 | 43 | 60) {
        let h = ip.get(at..at + 2).ok_or(Skip::Short)?;
        next = h[0];
        at += (usize::from(h[1]) + 1) * 8;
    }
    if next != 6 || at > end {
        return Err(Skip::NotTcp);
    }
    let mut s = [0u8; 16];
    let mut d = [0u8; 16];
    s.copy_from_slice(&ip[8..24]);
    d.copy_from_slice(&ip[24..40]);
    Ok((
        Ipv6Addr::from(s).into(),
        Ipv6Addr::from(d).into(),
        &ip[at..end],
    ))
}
