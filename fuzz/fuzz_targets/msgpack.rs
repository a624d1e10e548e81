//! Fuzz target `msgpack`: a frame for courier.v1.msgpack and courier.v2.msgpack.
//! The input format and the checks: `courier_server::fuzz::targets::msgpack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_server::fuzz::targets::msgpack(data));
