//! Server integration tests over real loopback sockets: a raw
//! tokio-tungstenite client and the protocol `Codec` against `start()`.

mod common;

mod auth;
mod channels;
mod dedupe;
mod faults;
mod features;
mod handshake;
mod limits;
mod negotiation;
mod redis;
mod stream;
mod transport;
