//! insta snapshots of the canonical encoding of every example, per version:
//! any change to the bytes Courier puts on the wire shows up in review.
//! Update with `INSTA_UPDATE=always cargo test -p courier-protocol --test snapshots`
//! (or `cargo insta review`) after an intended change.

use courier_protocol::vectors::hex;
use courier_protocol::{examples, Codec, Encoding, Subprotocol, Version};

#[test]
fn canonical_encodings() {
    for version in Version::ALL {
        for ex in examples::all(version) {
            let enc = |e| {
                Codec::new(Subprotocol::new(version, e))
                    .encode(&ex.envelope)
                    .unwrap()
            };
            let text = format!(
                "json: {}\nmsgpack: {}\nprotobuf: {}\n",
                String::from_utf8(enc(Encoding::Json).to_vec()).unwrap(),
                hex(&enc(Encoding::MsgPack)),
                hex(&enc(Encoding::Protobuf)),
            );
            insta::assert_snapshot!(format!("{version}_{}", ex.name), text);
        }
    }
}
