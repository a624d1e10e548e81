//! Fuzz target `payload`: payload bytes: validation, the JSON view and back.
//! The input format and the checks: `courier_server::fuzz::targets::payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_server::fuzz::targets::payload(data));
