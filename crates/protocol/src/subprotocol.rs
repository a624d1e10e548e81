//! Protocol versions, wire encodings and their WebSocket subprotocol names
//! (`courier.v2.json`), with the negotiation rule (VER-HIGHEST-COMMON).

use std::fmt;
use std::str::FromStr;

/// A protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// Version 1: one envelope per frame.
    V1 = 1,
    /// Version 2: batches, server-requested re-auth, retry hints.
    V2 = 2,
}

impl Version {
    /// Every version, newest first.
    pub const ALL: [Version; 2] = [Version::V2, Version::V1];

    /// The version number (1 or 2).
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The version numbered `n`, if it exists.
    pub fn from_number(n: u32) -> Option<Version> {
        match n {
            1 => Some(Version::V1),
            2 => Some(Version::V2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// A wire encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON in text frames.
    Json,
    /// MessagePack (named maps) in binary frames.
    MsgPack,
    /// Protocol Buffers in binary frames.
    Protobuf,
}

impl Encoding {
    /// Every encoding, in the reference client's default preference order.
    pub const ALL: [Encoding; 3] = [Encoding::Json, Encoding::MsgPack, Encoding::Protobuf];

    /// The name used in subprotocols and test names (`json`, `msgpack`, `proto`).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::MsgPack => "msgpack",
            Encoding::Protobuf => "proto",
        }
    }

    /// ENC-FRAME-TYPE: JSON travels in text frames, the others in binary.
    pub fn is_text(self) -> bool {
        matches!(self, Encoding::Json)
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version and an encoding, named `courier.v{N}.{encoding}` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subprotocol {
    /// Protocol version.
    pub version: Version,
    /// Wire encoding.
    pub encoding: Encoding,
}

impl Subprotocol {
    /// Every subprotocol, newest version first.
    pub const ALL: [Subprotocol; 6] = [
        Subprotocol::new(Version::V2, Encoding::Json),
        Subprotocol::new(Version::V2, Encoding::MsgPack),
        Subprotocol::new(Version::V2, Encoding::Protobuf),
        Subprotocol::new(Version::V1, Encoding::Json),
        Subprotocol::new(Version::V1, Encoding::MsgPack),
        Subprotocol::new(Version::V1, Encoding::Protobuf),
    ];

    /// A subprotocol from its parts.
    pub const fn new(version: Version, encoding: Encoding) -> Self {
        Subprotocol { version, encoding }
    }

    /// The WebSocket subprotocol name, e.g. `courier.v2.msgpack`.
    pub fn name(self) -> &'static str {
        match (self.version, self.encoding) {
            (Version::V1, Encoding::Json) => "courier.v1.json",
            (Version::V1, Encoding::MsgPack) => "courier.v1.msgpack",
            (Version::V1, Encoding::Protobuf) => "courier.v1.proto",
            (Version::V2, Encoding::Json) => "courier.v2.json",
            (Version::V2, Encoding::MsgPack) => "courier.v2.msgpack",
            (Version::V2, Encoding::Protobuf) => "courier.v2.proto",
        }
    }
}

impl fmt::Display for Subprotocol {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that is not a Courier subprotocol name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Courier subprotocol (expected courier.v1|v2.json|msgpack|proto)")]
pub struct UnknownSubprotocol(pub String);

impl FromStr for Subprotocol {
    type Err = UnknownSubprotocol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subprotocol::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| UnknownSubprotocol(s.to_string()))
    }
}

/// VER-HIGHEST-COMMON: picks the highest version both sides support, and
/// for it the client's first-offered encoding the server supports. Offers
/// that are not Courier names are ignored.
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    supported: &[Subprotocol],
) -> Option<Subprotocol> {
    let offered: Vec<Subprotocol> = offers
        .into_iter()
        .filter_map(|o| o.parse().ok())
        .filter(|p| supported.contains(p))
        .collect();
    let best = offered.iter().map(|p| p.version).max()?;
    offered.into_iter().find(|p| p.version == best)
}

/// The reason text of a VER-MISMATCH-REASON close: lists what is supported,
/// grouped by version so it fits the 123-byte close reason, e.g.
/// `unsupported version; supported: courier.v2.json,msgpack,proto courier.v1.json`.
pub fn mismatch_reason(supported: &[Subprotocol]) -> String {
    let mut groups: Vec<String> = Vec::new();
    for v in Version::ALL {
        let encs: Vec<&str> = supported
            .iter()
            .filter(|p| p.version == v)
            .map(|p| p.encoding.as_str())
            .collect();
        if !encs.is_empty() {
            groups.push(format!("courier.{v}.{}", encs.join(",")));
        }
    }
    format!("unsupported version; supported: {}", groups.join(" "))
}

/// Reads the subprotocols listed in a [`mismatch_reason`] text.
pub fn parse_mismatch_reason(reason: &str) -> Vec<Subprotocol> {
    let Some((_, list)) = reason.split_once("supported:") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for group in list.split_whitespace() {
        let Some((prefix, encs)) = group.rsplit_once('.') else {
            continue;
        };
        for enc in encs.split(',') {
            if let Ok(p) = format!("{prefix}.{enc}").parse() {
                out.push(p);
            }
        }
    }
    out
}
