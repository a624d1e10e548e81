//! Generates the Courier v1 and v2 types from `proto/` (prost + protox, no
//! `protoc`), with the encoding policy's serde and schemars attributes.

fn main() {
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    courier_codegen::Config::new()
        .courier_protocol_crate()
        .compile(
            &["courier/v1/envelope.proto", "courier/v2/envelope.proto"],
            &[proto],
        )
        .unwrap_or_else(|e| panic!("{e}"));
}
