//! `wire::msgpack::skip` (the pre-pass every MessagePack frame goes
//! through) reads marker bytes directly for speed; it must agree with the
//! item reader `wire::msgpack::read` on where a value ends and on what it
//! rejects, for any input.

mod common;

use courier_protocol::wire::msgpack::{self, Item, ReadError};
use proptest::prelude::*;

/// Skips one value with the item reader: where it ends, or the error.
fn reference(bytes: &[u8]) -> Result<usize, ReadError> {
    let mut buf = bytes;
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        match msgpack::read(&mut buf)? {
            Item::Array(n) => pending += u64::from(n),
            Item::Map(n) => pending += 2 * u64::from(n),
            _ => {}
        }
    }
    Ok(bytes.len() - buf.len())
}

fn fast(bytes: &[u8]) -> Result<usize, ReadError> {
    let mut buf = bytes;
    msgpack::skip(&mut buf)?;
    Ok(bytes.len() - buf.len())
}

#[test]
fn every_marker_with_every_short_tail() {
    // Each marker followed by 0..=9 bytes of 0x00 or 0xff: covers every
    // header width, truncation point and rejected marker.
    for m in 0..=255u8 {
        for fill in [0x00, 0xff, 0x01] {
            for tail in 0..10 {
                let mut input = vec![m];
                input.extend(std::iter::repeat_n(fill, tail));
                assert_eq!(fast(&input), reference(&input), "{input:02x?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn agrees_on_mutated_values(
        payload in common::strategies::payload(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        extra in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut bytes = payload.to_vec();
        if !bytes.is_empty() {
            for (at, byte) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
        }
        bytes.extend(&extra);
        prop_assert_eq!(fast(&bytes), reference(&bytes), "{:02x?}", bytes);
    }

    #[test]
    fn agrees_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
        prop_assert_eq!(fast(&bytes), reference(&bytes));
    }
}
