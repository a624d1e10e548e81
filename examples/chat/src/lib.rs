//! Example chat protocol built on Courier: payload types generated from
//! `proto/chat/v1/chat.proto` by `courier-codegen` in `build.rs`.

/// The `chat.v1` payload types.
pub mod chat {
    /// Version 1 of the chat payloads (`package chat.v1`).
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chat.v1.rs"));
    }
}
