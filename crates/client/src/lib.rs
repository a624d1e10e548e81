//! Courier Rust client.
