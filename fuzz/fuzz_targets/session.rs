//! Fuzz target `session`: the frame → session path of the reference server (subprotocol byte, then length-prefixed frames).
//! The input format and the checks: `courier_server::fuzz::targets::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_server::fuzz::targets::session(data));
