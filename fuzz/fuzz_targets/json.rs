//! Fuzz target `json`: a frame for courier.v1.json and courier.v2.json.
//! The input format and the checks: `courier_server::fuzz::targets::json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_server::fuzz::targets::json(data));
