//! Fuzzes the json decoder of both versions (ENC-NO-PANIC): any input gives
//! an envelope or a typed error, and whatever decodes re-encodes and decodes
//! to the same envelope.
#![no_main]

use courier_protocol::{v1, v2, Codec, Encoding, Subprotocol, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for version in [Version::V1, Version::V2] {
        let codec = Codec::new(Subprotocol::new(version, Encoding::Json));
        let _ = codec.decode::<v1::Envelope>(data);
        if let Ok(env) = codec.decode::<v2::Envelope>(data) {
            let frame = codec.encode(&env).expect("a decoded envelope encodes");
            let again = codec.decode::<v2::Envelope>(&frame).expect("an encoded envelope decodes");
            assert_eq!(again, env);
        }
    }
});
