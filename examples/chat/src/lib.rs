//! Example chat protocol built on Courier: payload types generated from
//! `proto/chat/**.proto` by `courier-codegen` in `build.rs`.
//!
//! Modules mirror proto packages (`chat.v1` is `chat::v1`), as with
//! prost-build: generated code refers to other packages by relative paths.

pub mod fixtures;

/// The chat payload packages.
pub mod chat {
    /// Version 1 of the chat payloads (`package chat.v1`).
    #[allow(clippy::all)] // generated code: prost's layout, not ours to lint
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chat.v1.rs"));
    }

    /// Moderation events (`package chat.moderation.v1`).
    pub mod moderation {
        /// Version 1 of the moderation payloads.
        #[allow(clippy::all)] // generated code
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chat.moderation.v1.rs"));
        }
    }
}
