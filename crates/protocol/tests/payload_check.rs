//! The payload check (`wire::payload::validate`, ENC-PAYLOAD-INVALID) is a
//! hand-optimised single pass; these tests hold it to a plain recursive
//! reference written from the spec's rules, on valid payloads, on mutated
//! ones and on arbitrary bytes, and pin each error on a hand-made input.

mod common;

use courier_protocol::wire::msgpack::{self, Item, ReadError};
use courier_protocol::wire::payload::{
    from_json, to_json, validate, write_json_text, PayloadError, MAX_DEPTH,
};
use proptest::prelude::*;

/// The rules, read item by item: one value of the data model (unique
/// string map keys, valid UTF-8, finite floats, no extension types, at
/// most `MAX_DEPTH` nested containers), nothing after it.
fn reference(bytes: &[u8]) -> bool {
    fn value(buf: &mut &[u8], depth: usize) -> bool {
        match msgpack::read(buf) {
            Err(_) => false,
            Ok(Item::Str(s)) => std::str::from_utf8(s).is_ok(),
            Ok(Item::Float(f)) => f.is_finite(),
            Ok(Item::Array(n)) => depth < MAX_DEPTH && (0..n).all(|_| value(buf, depth + 1)),
            Ok(Item::Map(n)) => {
                let mut keys = std::collections::HashSet::new();
                depth < MAX_DEPTH && (0..n).all(|_| {
                    matches!(msgpack::read(buf), Ok(Item::Str(k)) if std::str::from_utf8(k).is_ok() && keys.insert(k))
                        && value(buf, depth + 1)
                })
            }
            Ok(_) => true,
        }
    }
    let mut buf = bytes;
    value(&mut buf, 0) && buf.is_empty()
}

/// A map of `n` keys `k0`, `k1`, ... with null values; `dup` makes the key
/// at the second index equal to the one at the first.
fn big_map(n: usize, dup: Option<(usize, usize)>) -> Vec<u8> {
    let mut v = vec![0xde, (n >> 8) as u8, n as u8];
    for i in 0..n {
        let key = match dup {
            Some((a, b)) if i == b => format!("k{a}"),
            _ => format!("k{i}"),
        };
        v.push(0xa0 | key.len() as u8);
        v.extend_from_slice(key.as_bytes());
        v.push(0xc0);
    }
    v
}

fn nested(depth: usize, leaf: &[u8]) -> Vec<u8> {
    let mut v = vec![0x91; depth];
    v.extend_from_slice(leaf);
    v
}

#[test]
fn each_rule_has_its_error() {
    let read = |e: ReadError| Err(PayloadError::Read(e));
    let cases: &[(&str, Vec<u8>, Result<(), PayloadError>)] = &[
        ("null", vec![0xc0], Ok(())),
        ("empty map", vec![0x80], Ok(())),
        (
            "map of str16 key",
            [&[0x81, 0xda, 0, 1, b'k'][..], &[0x01]].concat(),
            Ok(()),
        ),
        ("float32 1.5", vec![0xca, 0x3f, 0xc0, 0, 0], Ok(())),
        ("bin8", vec![0xc4, 2, 0xff, 0x00], Ok(())),
        (
            "non-ASCII text",
            [&[0xa2][..], "é".as_bytes()].concat(),
            Ok(()),
        ),
        (
            "long non-ASCII text",
            [&[0xd9, 21][..], "ééééééééé✓".as_bytes()].concat(),
            Ok(()),
        ),
        (
            "long text cut inside a character",
            [&[0xd9, 20][..], &"ééééééééé✓".as_bytes()[..20]].concat(),
            Err(PayloadError::Utf8),
        ),
        ("empty input", vec![], read(ReadError::Truncated)),
        (
            "truncated str",
            vec![0xa5, b'a'],
            read(ReadError::Truncated),
        ),
        (
            "truncated array",
            vec![0x92, 0x01],
            read(ReadError::Truncated),
        ),
        (
            "truncated u64",
            vec![0xcf, 0, 0],
            read(ReadError::Truncated),
        ),
        ("reserved marker", vec![0xc1], read(ReadError::Marker(0xc1))),
        ("fixext1", vec![0xd4, 1, 0], read(ReadError::Marker(0xd4))),
        (
            "ext8 in a map",
            vec![0x81, 0xa1, b'k', 0xc7, 1, 1, 0],
            read(ReadError::Marker(0xc7)),
        ),
        ("two values", vec![0x01, 0x02], Err(PayloadError::Trailing)),
        (
            "int key",
            vec![0x81, 0x01, 0x02],
            Err(PayloadError::NonStringKey),
        ),
        (
            "bin key",
            vec![0x81, 0xc4, 1, b'k', 0x02],
            Err(PayloadError::NonStringKey),
        ),
        (
            "invalid UTF-8 value",
            vec![0xa2, 0xc3, 0x28],
            Err(PayloadError::Utf8),
        ),
        (
            "invalid UTF-8 key",
            vec![0x81, 0xa1, 0xff, 0xc0],
            Err(PayloadError::Utf8),
        ),
        (
            "NaN float64",
            vec![0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
            Err(PayloadError::NonFinite),
        ),
        (
            "infinite float32",
            vec![0xca, 0x7f, 0x80, 0, 0],
            Err(PayloadError::NonFinite),
        ),
        ("64 levels", nested(MAX_DEPTH, &[0xc0]), Ok(())),
        (
            "65 levels",
            nested(MAX_DEPTH + 1, &[0xc0]),
            Err(PayloadError::TooDeep),
        ),
        (
            "65th level empty",
            nested(MAX_DEPTH, &[0x90]),
            Err(PayloadError::TooDeep),
        ),
        (
            "huge announced map",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
            read(ReadError::Truncated),
        ),
        (
            "repeated key",
            vec![0x82, 0xa1, b'k', 0x01, 0xa1, b'k', 0x02],
            Err(PayloadError::DuplicateKey),
        ),
        (
            "same key in sibling maps",
            vec![0x92, 0x81, 0xa1, b'k', 0x01, 0x81, 0xa1, b'k', 0x02],
            Ok(()),
        ),
        (
            "same key in parent and child",
            vec![0x82, 0xa1, b'k', 0x81, 0xa1, b'k', 0x01, 0xa1, b'j', 0x02],
            Ok(()),
        ),
        (
            "repeated key after a nested map",
            vec![
                0x83, 0xa1, b'k', 0x81, 0xa1, b'j', 0x01, 0xa1, b'j', 0x02, 0xa1, b'k', 0x03,
            ],
            Err(PayloadError::DuplicateKey),
        ),
        ("20 keys", big_map(20, None), Ok(())),
        (
            "20 keys, first and last equal",
            big_map(20, Some((0, 19))),
            Err(PayloadError::DuplicateKey),
        ),
        ("5000 keys", big_map(5000, None), Ok(())),
        (
            "5000 keys, two equal",
            big_map(5000, Some((1234, 4321))),
            Err(PayloadError::DuplicateKey),
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(&validate(bytes), want, "{name}: {bytes:02x?}");
        assert_eq!(
            reference(bytes),
            want.is_ok(),
            "reference disagrees on {name}"
        );
    }
}

/// The JSON view (`to_json`), the JSON text JSON frames carry
/// (`write_json_text`) and the writer (`from_json`) apply `validate`'s depth
/// bound exactly: a 65th level that the view let through once could not be
/// converted back (payload fuzz target, fuzz/regressions/payload).
#[test]
fn json_view_and_writer_share_the_depth_bound() {
    let deepest = nested(MAX_DEPTH, &[0xc0]);
    let view = to_json(&deepest).expect("64 levels have a JSON view");
    assert_eq!(from_json(&view).expect("and convert back"), deepest);
    let mut text = Vec::new();
    write_json_text(&mut text, &deepest).expect("64 levels have JSON text");
    assert_eq!(text, serde_json::to_vec(&view).unwrap());
    for too_deep in [nested(MAX_DEPTH, &[0x90]), nested(MAX_DEPTH + 1, &[0xc0])] {
        assert!(validate(&too_deep).is_err());
        assert!(
            to_json(&too_deep).is_err(),
            "no JSON view beyond {MAX_DEPTH} levels"
        );
        assert_eq!(
            write_json_text(&mut Vec::new(), &too_deep),
            Err(PayloadError::TooDeep),
            "no JSON text beyond {MAX_DEPTH} levels"
        );
    }
}

#[test]
fn deep_payloads_leave_the_inline_levels_correctly() {
    // Maps and arrays alternating 40 deep, each holding a sibling after the
    // nested value: closing a level must resume its parent where it was.
    let depth = 40;
    let mut v = Vec::new();
    for i in 0..depth {
        if i % 2 == 0 {
            v.extend_from_slice(&[0x82, 0xa1, b'a']);
        } else {
            v.push(0x92);
        }
    }
    v.push(0xc0);
    for i in (0..depth).rev() {
        if i % 2 == 0 {
            v.extend_from_slice(&[0xa1, b'b', 0x07]);
        } else {
            v.push(0xc3);
        }
    }
    assert_eq!(validate(&v), Ok(()));
    // A non-string key at the outermost level, after all the nesting.
    let last_key = v.len() - 3;
    v[last_key] = 0x05;
    v.remove(last_key + 1);
    assert_eq!(validate(&v), Err(PayloadError::NonStringKey));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn valid_payloads_pass(payload in common::strategies::payload()) {
        prop_assume!(!payload.is_empty());
        prop_assert_eq!(validate(&payload), Ok(()));
    }

    #[test]
    fn mutated_payloads_agree_with_the_reference(
        payload in common::strategies::payload(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        prop_assume!(!payload.is_empty());
        let mut bytes = payload.to_vec();
        for (at, byte) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
        prop_assert_eq!(validate(&bytes).is_ok(), reference(&bytes), "{:02x?}", bytes);
        let cut = &bytes[..cut.index(bytes.len())];
        prop_assert_eq!(validate(cut).is_ok(), reference(cut), "{:02x?}", cut);
    }

    #[test]
    fn arbitrary_bytes_agree_with_the_reference(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(validate(&bytes).is_ok(), reference(&bytes));
    }
}
