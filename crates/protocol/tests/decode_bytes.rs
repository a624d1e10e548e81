//! `Codec::decode_bytes`: the same results as `decode` in every encoding,
//! and in Protobuf the payload is a slice of the frame, not a copy.

use bytes::Bytes;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{wire, Codec, DecodeError, Encoding, Subprotocol, Version};

fn publish() -> v2::Envelope {
    v2::Envelope {
        body: Some(Body::Publish(v2::Publish {
            id: "p-1".into(),
            channel: "chat".into(),
            payload: wire::payload::from_json(&serde_json::json!({"text": "hi", "n": [1, 2.5]}))
                .unwrap(),
        })),
    }
}

#[test]
fn decode_bytes_matches_decode_in_every_encoding() {
    for version in Version::ALL {
        for encoding in Encoding::ALL {
            let codec = Codec::new(Subprotocol::new(version, encoding));
            let frame = codec.encode(&publish()).unwrap();
            let a = codec.decode::<v2::Envelope>(&frame).unwrap();
            let b = codec.decode_bytes::<v2::Envelope>(frame.clone()).unwrap();
            assert_eq!(a, b, "{version} {encoding}");
            let c = codec
                .decode_frame_bytes::<v2::Envelope>(frame.clone(), Some(encoding.is_text()))
                .unwrap();
            assert_eq!(a, c, "{version} {encoding}");
            assert!(matches!(
                codec.decode_frame_bytes::<v2::Envelope>(frame.clone(), Some(!encoding.is_text())),
                Err(DecodeError::WrongFrameKind { .. })
            ));
            let small = codec.with_max_message_bytes(frame.len() - 1);
            assert!(matches!(
                small.decode_bytes::<v2::Envelope>(frame),
                Err(DecodeError::TooLarge { .. })
            ));
        }
    }
}

#[test]
fn protobuf_payloads_are_slices_of_the_frame() {
    let codec = Codec::new(Subprotocol::new(Version::V2, Encoding::Protobuf));
    let frame: Bytes = codec.encode(&publish()).unwrap();
    let range = frame.as_ptr_range();
    let env = codec.decode_bytes::<v2::Envelope>(frame.clone()).unwrap();
    let Some(Body::Publish(p)) = env.body else {
        panic!("not a publish")
    };
    assert!(range.contains(&p.payload.as_ptr()), "payload was copied");
    // `decode` from a slice has to copy.
    let env = codec.decode::<v2::Envelope>(&frame).unwrap();
    let Some(Body::Publish(p)) = env.body else {
        panic!("not a publish")
    };
    assert!(!range.contains(&p.payload.as_ptr()));
}

#[test]
fn decode_bytes_checks_payloads_like_decode() {
    let codec = Codec::new(Subprotocol::new(Version::V2, Encoding::Protobuf));
    let mut env = publish();
    if let Some(Body::Publish(p)) = &mut env.body {
        // Two values where one belongs (ENC-PAYLOAD-INVALID).
        p.payload = Bytes::from_static(&[0x01, 0x02]);
    }
    let frame = Bytes::from(prost::Message::encode_to_vec(&env));
    let err = codec.decode_bytes::<v2::Envelope>(frame).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid(_)), "{err:?}");
    assert_eq!(err.close_code(), 4000);
}
