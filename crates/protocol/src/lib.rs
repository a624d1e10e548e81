//! Courier protocol core: the generated v1 and v2 message types, the codecs
//! for JSON, MessagePack and Protobuf, subprotocol negotiation and the close
//! code table. No I/O happens here (sockets live in `courier-server` and
//! `courier-client`).
//!
//! # Examples
//!
//! ```
//! use courier_protocol::{v2, wire, Codec, Encoding, Subprotocol, Version};
//!
//! let publish = v2::Envelope {
//!     body: Some(v2::envelope::Body::Publish(v2::Publish {
//!         id: "p-1".into(),
//!         channel: "chat".into(),
//!         payload: wire::payload::from_json(&serde_json::json!({"text": "hi"})).unwrap(),
//!     })),
//! };
//! for encoding in Encoding::ALL {
//!     let codec = Codec::new(Subprotocol::new(Version::V2, encoding));
//!     let frame = codec.encode(&publish).unwrap();
//!     assert_eq!(codec.decode::<v2::Envelope>(&frame).unwrap(), publish);
//! }
//! ```

pub mod close;
pub mod codec;
pub mod compat;
pub mod examples;
pub mod schema;
pub mod subprotocol;
pub mod vectors;
pub mod wire;

/// Courier protocol version 1 (`courier.v1`), generated from `proto/courier/v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/courier.v1.rs"));
}

/// Courier protocol version 2 (`courier.v2`), generated from `proto/courier/v2`.
#[allow(clippy::all, missing_docs)]
pub mod v2 {
    include!(concat!(env!("OUT_DIR"), "/courier.v2.rs"));
}

pub use codec::{Codec, DecodeError, EncodeError, DEFAULT_MAX_MESSAGE_BYTES};
pub use compat::VersionCompat;
pub use subprotocol::{negotiate, Encoding, Subprotocol, Version};
pub use wire::envelope::WireEnvelope;
