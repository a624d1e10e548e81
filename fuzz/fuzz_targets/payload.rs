//! Fuzzes the payload model (ENC-PAYLOAD-INVALID, ENC-NO-PANIC): validation,
//! the JSON view, and that a valid payload survives JSON and back.
#![no_main]

use courier_protocol::wire::payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let valid = payload::validate(data).is_ok();
    match payload::to_json(data) {
        Ok(value) => {
            let back = payload::from_json(&value).expect("a JSON view converts back");
            assert!(payload::validate(&back).is_ok());
        }
        Err(_) => assert!(!valid, "a valid payload has a JSON view"),
    }
});
