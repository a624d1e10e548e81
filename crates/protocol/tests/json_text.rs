//! The JSON text of payloads (`wire::payload::write_json_text`, what the
//! JSON codec writes into frames) is held to the serde route it replaced
//! (`payload::Embedded` through `serde_json`, still what any other
//! serializer gets): the same bytes for every valid payload, in every
//! MessagePack form a sender may use, the same error on any other bytes; and
//! each error pinned on a hand-made input.

mod common;

use common::strategies::{config, v1_envelope, v2_envelope};
use courier_protocol::wire::msgpack::ReadError;
use courier_protocol::wire::payload::{
    to_json, validate, write_json_text, Embedded, PayloadError, MAX_DEPTH,
};
use courier_protocol::{v2, Codec, Encoding, Subprotocol, Version};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

/// The serde route: what JSON frames held before the transcoder.
fn serde_route(payload: &[u8]) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&Embedded(payload)).map_err(|e| e.to_string())
}

fn transcoded(payload: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    write_json_text(&mut out, payload).map(|()| out)
}

/// Both routes agree: the same text, or the same error message.
fn agree(payload: &[u8]) -> Result<(), TestCaseError> {
    let new = transcoded(payload).map_err(|e| e.to_string());
    let old = serde_route(payload);
    prop_assert_eq!(
        new.as_deref().map(String::from_utf8_lossy),
        old.as_deref().map(String::from_utf8_lossy),
        "payload {:02x?}",
        payload
    );
    Ok(())
}

/// A length header, chosen by `pick`: the fix form (where `fix` allows the
/// length) one time in four, else one of the 8-, 16- and 32-bit forms that
/// fit (senders other than Courier's canonical writer may use any of them).
fn header(out: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, markers: [u8; 3], pick: u8) {
    if let Some((base, max)) = fix {
        if len <= max && pick.is_multiple_of(4) {
            out.push(base | len as u8);
            return;
        }
    }
    let widths = [
        (markers[0], 1usize, 0xff),
        (markers[1], 2, 0xffff),
        (markers[2], 4, usize::MAX),
    ];
    let fits: Vec<_> = widths
        .iter()
        .filter(|(m, _, max)| *m != 0 && len <= *max)
        .collect();
    let (m, n, _) = fits[usize::from(pick) % fits.len()];
    out.push(*m);
    out.extend_from_slice(&(len as u64).to_be_bytes()[8 - n..]);
}

fn str_bytes(s: &str, pick: u8) -> Vec<u8> {
    let mut out = Vec::new();
    header(
        &mut out,
        s.len(),
        Some((0xa0, 31)),
        [0xd9, 0xda, 0xdb],
        pick,
    );
    out.extend_from_slice(s.as_bytes());
    out
}

/// Text with what JSON must escape, what it must not, and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '\u{1}', '\u{1f}', ' ', '\u{7f}',
        'é', '\u{2028}', '😀',
    ]);
    let ch = prop_oneof![4 => proptest::char::range('a', 'z'), 2 => special, 1 => any::<char>()];
    prop_oneof![
        3 => vec(ch.clone(), 0..12),
        1 => vec(ch, 12..80),
    ]
    .prop_map(|cs| cs.into_iter().collect())
}

/// Finite floats, with the ones float printing gets wrong most easily.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
        1 => prop::sample::select(vec![
            0.0, -0.0, 1.0, -1.0, 0.1, 1.5, 1e15, 1e16, 1e17, 1e21, 1e22, -1e300, f64::MAX,
            f64::MIN_POSITIVE, 5e-324, 1e-7, 123456789.125, 9007199254740993.0,
        ]),
    ]
}

/// One payload value in any MessagePack form the data model allows.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        prop::sample::select(vec![vec![0xc0], vec![0xc2], vec![0xc3]]),
        (0u8..=0x7f).prop_map(|b| vec![b]),
        (-32i8..0).prop_map(|i| vec![i as u8]),
        // uint 8/16/32/64 and int 8/16/32/64, any value of the width.
        (0u8..4, any::<u64>()).prop_map(|(k, v)| {
            let n = 1usize << k;
            let mut out = vec![0xcc + k];
            out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
            out
        }),
        (0u8..4, any::<u64>()).prop_map(|(k, v)| {
            let n = 1usize << k;
            let mut out = vec![0xd0 + k];
            out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
            out
        }),
        float().prop_map(|f| {
            let mut out = vec![0xcb];
            out.extend_from_slice(&f.to_bits().to_be_bytes());
            out
        }),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| {
                let mut out = vec![0xca];
                out.extend_from_slice(&f.to_bits().to_be_bytes());
                out
            }),
        (text(), any::<u8>()).prop_map(|(s, pick)| str_bytes(&s, pick)),
        (vec(any::<u8>(), 0..20), any::<u8>()).prop_map(|(b, pick)| {
            let mut out = Vec::new();
            header(&mut out, b.len(), None, [0xc4, 0xc5, 0xc6], pick);
            out.extend_from_slice(&b);
            out
        }),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            (vec(inner.clone(), 0..6), any::<u8>()).prop_map(|(items, pick)| {
                let mut out = Vec::new();
                header(
                    &mut out,
                    items.len(),
                    Some((0x90, 15)),
                    [0, 0xdc, 0xdd],
                    pick,
                );
                items.iter().for_each(|i| out.extend_from_slice(i));
                out
            }),
            (btree_map(text(), (inner, any::<u8>()), 0..6), any::<u8>()).prop_map(
                |(entries, pick)| {
                    let mut out = Vec::new();
                    header(
                        &mut out,
                        entries.len(),
                        Some((0x80, 15)),
                        [0, 0xde, 0xdf],
                        pick,
                    );
                    for (k, (v, kpick)) in &entries {
                        out.extend_from_slice(&str_bytes(k, *kpick));
                        out.extend_from_slice(v);
                    }
                    out
                }
            ),
        ]
    })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn valid_payloads_read_as_before(payload in value()) {
        prop_assert_eq!(validate(&payload), Ok(()));
        prop_assert!(transcoded(&payload).is_ok());
        agree(&payload)?;
        // And the text is the JSON value `to_json` (the serde route into a
        // `serde_json::Value`) sees.
        let text = transcoded(&payload).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&text).unwrap();
        prop_assert_eq!(parsed, to_json(&payload).unwrap());
    }

    #[test]
    fn mutated_payloads_fail_or_read_as_before(
        payload in value(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = payload.clone();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        agree(&bytes)?;
        agree(&payload[..cut.index(payload.len() + 1)])?;
    }

    #[test]
    fn arbitrary_bytes_fail_or_read_as_before(bytes in vec(any::<u8>(), 0..64)) {
        agree(&bytes)?;
    }

    #[test]
    fn json_frames_are_what_serde_json_writes(env in v2_envelope(), env1 in v1_envelope()) {
        // `serde_json::to_vec` takes the serde route for payloads; the codec
        // the transcoder. Every body, every payload field.
        let c = Codec::new(Subprotocol::new(Version::V2, Encoding::Json));
        prop_assert_eq!(c.encode(&env).unwrap().to_vec(), serde_json::to_vec(&env).unwrap());
        let c1 = Codec::new(Subprotocol::new(Version::V1, Encoding::Json));
        prop_assert_eq!(c1.encode(&env1).unwrap().to_vec(), serde_json::to_vec(&env1).unwrap());
    }

    #[test]
    fn publish_frames_with_any_payload_are_what_serde_json_writes(payload in value()) {
        let env = publish(payload);
        let c = Codec::new(Subprotocol::new(Version::V2, Encoding::Json));
        prop_assert_eq!(c.encode(&env).unwrap().to_vec(), serde_json::to_vec(&env).unwrap());
    }
}

fn publish(payload: Vec<u8>) -> v2::Envelope {
    v2::Envelope {
        body: Some(v2::envelope::Body::Publish(v2::Publish {
            id: "p-1".into(),
            channel: "chat".into(),
            payload: payload.into(),
        })),
    }
}

/// `n` arrays nested around `inner`.
fn nested(n: usize, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x91; n];
    v.extend_from_slice(inner);
    v
}

#[test]
fn each_error_is_the_serde_routes() {
    let cases: Vec<(&str, Vec<u8>, PayloadError)> = vec![
        ("empty", vec![], ReadError::Truncated.into()),
        ("cut string", vec![0xa3, b'a'], ReadError::Truncated.into()),
        ("cut str8 length", vec![0xd9], ReadError::Truncated.into()),
        ("cut float", vec![0xcb, 0, 0], ReadError::Truncated.into()),
        ("cut array", vec![0x92, 0x01], ReadError::Truncated.into()),
        (
            "cut array16 header",
            vec![0xdc, 0x00],
            ReadError::Truncated.into(),
        ),
        (
            "reserved marker",
            vec![0xc1],
            ReadError::Marker(0xc1).into(),
        ),
        (
            "fixext 1",
            vec![0xd4, 0x01, 0x00],
            ReadError::Marker(0xd4).into(),
        ),
        (
            "ext 8 in an array",
            vec![0x91, 0xc7, 0x00, 0x01],
            ReadError::Marker(0xc7).into(),
        ),
        (
            "integer key",
            vec![0x81, 0x01, 0xc0],
            PayloadError::NonStringKey,
        ),
        (
            "bin key",
            vec![0x81, 0xc4, 0x01, b'k', 0xc0],
            PayloadError::NonStringKey,
        ),
        (
            "cut float key",
            vec![0x81, 0xcb, 0x00],
            ReadError::Truncated.into(),
        ),
        (
            "ext key",
            vec![0x81, 0xd4, 0x01, 0x00, 0xc0],
            ReadError::Marker(0xd4).into(),
        ),
        (
            "bad UTF-8 value",
            vec![0xa2, 0xc3, 0x28],
            PayloadError::Utf8,
        ),
        (
            "bad UTF-8 with an escape",
            vec![0xa3, b'"', 0xff, b'a'],
            PayloadError::Utf8,
        ),
        (
            "bad UTF-8 key",
            vec![0x81, 0xa1, 0xff, 0xc0],
            PayloadError::Utf8,
        ),
        (
            "lone surrogate",
            vec![0xa3, 0xed, 0xa0, 0x80],
            PayloadError::Utf8,
        ),
        (
            "NaN",
            [&[0xcb][..], &f64::NAN.to_bits().to_be_bytes()].concat(),
            PayloadError::NonFinite,
        ),
        (
            "f32 infinity",
            [&[0xca][..], &f32::INFINITY.to_bits().to_be_bytes()].concat(),
            PayloadError::NonFinite,
        ),
        (
            "65 arrays",
            nested(MAX_DEPTH + 1, &[0xc0]),
            PayloadError::TooDeep,
        ),
        (
            "an empty 65th array",
            nested(MAX_DEPTH, &[0x90]),
            PayloadError::TooDeep,
        ),
        (
            "an empty 65th map",
            nested(MAX_DEPTH, &[0x80]),
            PayloadError::TooDeep,
        ),
        // A huge count costs nothing up front: the bytes run out first.
        (
            "array32 of 4 billion",
            vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
            ReadError::Truncated.into(),
        ),
        (
            "map32 of 4 billion",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
            ReadError::Truncated.into(),
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(transcoded(&bytes), Err(want.clone()), "{name}");
        assert_eq!(
            serde_route(&bytes),
            Err(want.to_string()),
            "{name}: serde route"
        );
        // The codec reports it as an encode error with the same message
        // (an empty payload field is an absent one, not an error).
        if bytes.is_empty() {
            continue;
        }
        let c = Codec::new(Subprotocol::new(Version::V2, Encoding::Json));
        let err = c.encode(&publish(bytes)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot encode: {want}"),
            "{name}: codec"
        );
    }
}

/// What the serde route did with bytes `validate` rejects but which still
/// read as one value, the transcoder does too (the JSON text of a decoded
/// envelope never gets here: its payloads were validated).
#[test]
fn unchecked_rules_are_left_as_before() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bytes after the value", vec![0x01, 0x02], "1"),
        (
            "a repeated key",
            vec![0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0x02],
            r#"{"a":1,"a":2}"#,
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(transcoded(&bytes).as_deref(), Ok(want.as_bytes()), "{name}");
        assert_eq!(
            serde_route(&bytes).as_deref(),
            Ok(want.as_bytes()),
            "{name}: serde route"
        );
    }
}

#[test]
fn text_pins() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xc0], "null"),
        (vec![0x93, 0xc3, 0xc2, 0x90], "[true,false,[]]"),
        (vec![0x81, 0xa1, b'k', 0x80], r#"{"k":{}}"#),
        (vec![0xd0, 0x05], "5"),
        (vec![0xd0, 0x80], "-128"),
        (vec![0xd1, 0x80, 0x00], "-32768"),
        (
            vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
            "-9223372036854775808",
        ),
        (
            vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            "18446744073709551615",
        ),
        (vec![0xe0], "-32"),
        (
            [&[0xcb][..], &(-0.0f64).to_bits().to_be_bytes()].concat(),
            "-0.0",
        ),
        (
            [&[0xcb][..], &1.0f64.to_bits().to_be_bytes()].concat(),
            "1.0",
        ),
        (
            [&[0xca][..], &0.1f32.to_bits().to_be_bytes()].concat(),
            "0.10000000149011612",
        ),
        (vec![0xc4, 0x03, 1, 2, 3], r#""AQID""#),
        (
            str_bytes("a\"b\\c/\n\t\u{1}\u{7f}é", 1),
            "\"a\\\"b\\\\c/\\n\\t\\u0001\u{7f}é\"",
        ),
    ];
    for (bytes, want) in cases {
        let got = transcoded(&bytes).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want, "{bytes:02x?}");
        assert_eq!(
            serde_route(&bytes).unwrap(),
            got,
            "{bytes:02x?}: serde route"
        );
    }
}

/// The deepest payload `validate` accepts has JSON text; the transcoder
/// spills levels past its inline ones and comes back out in order.
#[test]
fn deepest_payload_has_text() {
    let mut v = Vec::new();
    for i in 0..MAX_DEPTH {
        v.extend_from_slice(if i % 2 == 0 {
            &[0x82, 0xa1, b'a'][..]
        } else {
            &[0x92][..]
        });
    }
    v.push(0xc0);
    for i in (0..MAX_DEPTH).rev() {
        v.extend_from_slice(if i % 2 == 0 {
            &[0xa1, b'b', 0x07][..]
        } else {
            &[0xc3][..]
        });
    }
    assert_eq!(validate(&v), Ok(()));
    let text = transcoded(&v).unwrap();
    assert_eq!(Ok(text), serde_route(&v));
}
