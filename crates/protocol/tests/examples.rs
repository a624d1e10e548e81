//! The examples of `courier_protocol::examples` cover every message type of
//! each version, in oneof order, with v2-only fields kept out of v1.

use courier_protocol::examples::{self, Direction};
use courier_protocol::{v1, v2, Codec, Encoding, Subprotocol, Version, WireEnvelope};

#[test]
fn one_example_per_type_in_oneof_order() {
    let v2_names: Vec<_> = examples::all(Version::V2).iter().map(|e| e.name).collect();
    assert_eq!(v2_names, v2::Envelope::TYPES);
    let v1_names: Vec<_> = examples::all(Version::V1).iter().map(|e| e.name).collect();
    assert_eq!(v1_names, v1::Envelope::TYPES);
}

#[test]
fn examples_are_deterministic() {
    for version in Version::ALL {
        assert_eq!(examples::all(version), examples::all(version));
    }
}

#[test]
fn v1_examples_survive_a_v1_round_trip_unchanged() {
    // A v2-only field in a v1 example would be stripped on the way and the
    // decoded envelope would differ.
    for encoding in Encoding::ALL {
        let codec = Codec::new(Subprotocol::new(Version::V1, encoding));
        for ex in examples::all(Version::V1) {
            let frame = codec.encode(&ex.envelope).unwrap();
            assert_eq!(
                codec.decode::<v2::Envelope>(&frame).unwrap(),
                ex.envelope,
                "{} {encoding}",
                ex.name
            );
        }
    }
}

#[test]
fn v2_examples_use_v2_only_fields() {
    let codec = Codec::new(Subprotocol::new(Version::V1, Encoding::Json));
    for name in ["welcome", "error", "disconnect"] {
        let ex = examples::get(Version::V2, name).unwrap();
        let v1 = codec
            .decode::<v2::Envelope>(&codec.encode(&ex.envelope).unwrap())
            .unwrap();
        assert_ne!(v1, ex.envelope, "{name} should carry a v2-only field");
    }
}

#[test]
fn directions() {
    assert_eq!(examples::direction_of("hello"), Direction::ClientToServer);
    assert_eq!(examples::direction_of("welcome"), Direction::ServerToClient);
    assert_eq!(examples::direction_of("ping"), Direction::Both);
    assert_eq!(examples::direction_of("batch"), Direction::Both);
    for ex in examples::all(Version::V2) {
        assert_eq!(ex.direction, examples::direction_of(ex.name));
    }
}

#[test]
fn every_json_field_is_present() {
    // Non-default values everywhere: the JSON of each example has a member for
    // every field of its body (subscribe_ack's `recovery.replayed` excepted:
    // a failed recovery replays nothing).
    let codec = Codec::new(Subprotocol::new(Version::V2, Encoding::Json));
    let counts = [
        ("hello", 3),
        ("welcome", 12),
        ("refresh", 2),
        ("refreshed", 2),
        ("reauth_request", 2),
        ("subscribe", 3),
        ("subscribe_ack", 4),
        ("unsubscribe", 2),
        ("unsubscribe_ack", 2),
        ("publish", 3),
        ("publish_ack", 5),
        ("message", 7),
        ("presence_query", 2),
        ("presence", 3),
        ("presence_event", 3),
        ("ephemeral", 3),
        ("rpc_request", 3),
        ("rpc_response", 2),
        ("ping", 1),
        ("pong", 1),
        ("error", 5),
        ("disconnect", 3),
        ("batch", 1),
    ];
    for (name, fields) in counts {
        let ex = examples::get(Version::V2, name).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&codec.encode(&ex.envelope).unwrap()).unwrap();
        assert_eq!(
            json.as_object().unwrap().len(),
            fields + 1,
            "{name}: {json}"
        );
    }
}
