//! Fuzz target `proto`: a frame for courier.v1.proto and courier.v2.proto.
//! The input format and the checks: `courier_server::fuzz::targets::proto`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_server::fuzz::targets::proto(data));
