//! Compiles `proto/` into Rust payload types with Courier's encoding policy (serde for JSON and
//! MessagePack, prost for Protobuf). Add your `.proto` files to the list.

fn main() {
    courier_codegen::Config::new()
        // The Courier version the payloads travel in.
        .courier_version(2)
        .compile(&["proto/__PKG__/v1/app.proto"], &["proto"])
        .unwrap_or_else(|e| panic!("{e}"));
}
