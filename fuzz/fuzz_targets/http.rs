//! Fuzz target `http`: one HTTP/1.1 connection to the reference server (request parsing, /sse, /publish, the WebSocket upgrade).
//! The input format and the checks: `courier_server::fuzz::targets::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_server::fuzz::targets::http(data));
