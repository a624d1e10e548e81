//! Compiles the chat payload definitions with the Courier encoding policy.
//! A user's `build.rs` looks exactly like this.

fn main() {
    courier_codegen::Config::new()
        // The Courier version the payloads travel in; `import
        // "courier/v2/..."` resolves to `courier_protocol::v2`.
        .courier_version(2)
        .compile(
            &[
                "proto/chat/v1/chat.proto",
                "proto/chat/moderation/v1/moderation.proto",
            ],
            &["proto"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
}
