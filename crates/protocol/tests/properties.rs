//! Property tests: round trips in every codec and version, cross-codec
//! equivalence, v1 wire compatibility, schema validity of every JSON
//! encoding, and no panic on arbitrary or mutated input (ENC-NO-PANIC).

mod common;

use common::strategies::{config, v1_envelope, v2_envelope};
use courier_protocol::{v1, v2, Codec, Encoding, Subprotocol, Version};
use proptest::prelude::*;
use prost::Message as _;

fn codec(version: Version, encoding: Encoding) -> Codec {
    Codec::new(Subprotocol::new(version, encoding))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn v2_round_trips_in_every_encoding(env in v2_envelope()) {
        for encoding in Encoding::ALL {
            let c = codec(Version::V2, encoding);
            let frame = c.encode(&env).unwrap();
            prop_assert_eq!(c.decode::<v2::Envelope>(&frame).unwrap(), env.clone(), "{}", encoding);
        }
    }

    #[test]
    fn v1_round_trips_in_every_encoding(env in v1_envelope()) {
        for encoding in Encoding::ALL {
            let c = codec(Version::V1, encoding);
            let frame = c.encode(&env).unwrap();
            prop_assert_eq!(c.decode::<v2::Envelope>(&frame).unwrap(), env.clone(), "{}", encoding);
            // The v1 types read the same frame to the same message: v1 is a
            // wire subset of v2 in all three encodings.
            let as_v1: v1::Envelope = c.decode(&frame).unwrap();
            prop_assert_eq!(c.encode(&as_v1).unwrap(), frame);
        }
    }

    #[test]
    fn v1_types_see_v2_protobuf_frames_as_v1_does(env in v1_envelope()) {
        let bytes = env.encode_to_vec();
        let v1 = v1::Envelope::decode(bytes.as_slice()).unwrap();
        prop_assert_eq!(v1.encode_to_vec(), bytes);
    }

    #[test]
    fn encodings_carry_the_same_information(env in v2_envelope()) {
        // Decoding each encoding gives one value; its JSON form is the JSON
        // encoding (what a relaying server relies on, ENC-PAYLOAD-RELAY).
        let json = codec(Version::V2, Encoding::Json).encode(&env).unwrap();
        for encoding in [Encoding::MsgPack, Encoding::Protobuf] {
            let c = codec(Version::V2, encoding);
            let back: v2::Envelope = c.decode(&c.encode(&env).unwrap()).unwrap();
            prop_assert_eq!(codec(Version::V2, Encoding::Json).encode(&back).unwrap(), json.clone(), "{}", encoding);
        }
    }

    #[test]
    fn json_encodings_validate_against_the_schema(env in v2_envelope(), v1env in v1_envelope()) {
        thread_local! {
            static SCHEMAS: [jsonschema::Validator; 2] =
                [common::schema_validator(Version::V1), common::schema_validator(Version::V2)];
        }
        SCHEMAS.with(|[s1, s2]| {
            let value = |v, e: &v2::Envelope| -> serde_json::Value {
                serde_json::from_slice(&codec(v, Encoding::Json).encode(e).unwrap()).unwrap()
            };
            let v = value(Version::V2, &env);
            prop_assert!(s2.is_valid(&v), "v2 schema rejects {}", v);
            let v = value(Version::V1, &v1env);
            prop_assert!(s1.is_valid(&v), "v1 schema rejects {}", v);
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), text in any::<bool>()) {
        for version in Version::ALL {
            for encoding in Encoding::ALL {
                let c = codec(version, encoding);
                let _ = c.decode_frame::<v2::Envelope>(&bytes, Some(text));
                let _ = c.decode::<v2::Envelope>(&bytes);
                let _ = c.decode::<v1::Envelope>(&bytes);
            }
        }
        let _ = courier_protocol::wire::payload::validate(&bytes);
        let _ = courier_protocol::wire::payload::to_json(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(env in v2_envelope(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        for encoding in Encoding::ALL {
            let c = codec(Version::V2, encoding);
            let mut frame = c.encode(&env).unwrap().to_vec();
            for (at, byte) in &edits {
                let i = at.index(frame.len());
                frame[i] = *byte;
            }
            if let Ok(back) = c.decode::<v2::Envelope>(&frame) {
                // Whatever decodes re-encodes and decodes again.
                let again = c.encode(&back).unwrap();
                prop_assert_eq!(c.decode::<v2::Envelope>(&again).unwrap(), back);
            }
            let _ = codec(Version::V1, encoding).decode::<v2::Envelope>(&frame);
        }
    }
}
