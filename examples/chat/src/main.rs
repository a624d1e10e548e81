//! Runnable tour of typed payloads: builds chat payloads, publishes them in
//! Courier envelopes in all three encodings and reads them back typed.
//!
//! ```sh
//! cargo run -p courier-example-chat
//! ```

use std::collections::HashMap;

use courier_example_chat::chat::v1::{
    chat_message, Author, ChatMessage, MessageKind, ReadMarker, TypingState,
};
use courier_protocol::{v2, wire, Codec, Encoding, Subprotocol, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let message = ChatMessage {
        id: "m-1".into(),
        author: Some(Author {
            id: "u-ada".into(),
            display_name: "Ada".into(),
        }),
        mentions: vec!["u-grace".into()],
        kind: MessageKind::User as i32,
        edited_at: Some(1_700_000_000_123),
        attachments: vec![chat_message::Attachment {
            name: "notes.txt".into(),
            mime_type: "text/plain".into(),
            data: "hello".into(),
            size: 5,
            kind: chat_message::attachment::Kind::File as i32,
        }],
        body: Some(chat_message::Body::Text("hi @grace, notes attached".into())),
        metadata: HashMap::from([("client".into(), "example/1.0".into())]),
        flags: vec![chat_message::Flag::Pinned as i32],
        ..Default::default()
    };
    let typing = TypingState {
        user_id: "u-ada".into(),
        typing: true,
        at_ms: 1_700_000_000_000,
    };
    let marker = ReadMarker {
        room: "lobby".into(),
        user_id: "u-grace".into(),
        position: Some(v2::StreamPosition {
            epoch: "k3x9".into(),
            seq: 41,
        }),
        ..Default::default()
    };

    // A typed value becomes a payload (canonical MessagePack of its
    // JSON-model form), which any Courier envelope can carry.
    let envelopes = [
        v2::Envelope {
            body: Some(v2::envelope::Body::Publish(v2::Publish {
                id: message.id.clone(),
                channel: "room.lobby".into(),
                payload: wire::to_payload(&message)?,
            })),
        },
        v2::Envelope {
            body: Some(v2::envelope::Body::Ephemeral(v2::Ephemeral {
                channel: "room.lobby".into(),
                payload: wire::to_payload(&typing)?,
                publisher: String::new(),
            })),
        },
        v2::Envelope {
            body: Some(v2::envelope::Body::Publish(v2::Publish {
                id: "rm-1".into(),
                channel: "user.u-grace.read".into(),
                payload: wire::to_payload(&marker)?,
            })),
        },
    ];

    for encoding in Encoding::ALL {
        let codec = Codec::new(Subprotocol::new(Version::V2, encoding));
        println!("== {}", codec.subprotocol().name());
        for envelope in &envelopes {
            let frame = codec.encode(envelope)?;
            println!("{}", show(&frame, encoding));
            let back: v2::Envelope = codec.decode(&frame)?;
            // Reading the payload back typed gives the same value whatever
            // the encoding. (The raw payload bytes can differ after JSON:
            // JSON has no byte strings, so `data` came back as base64 text,
            // which typed `bytes` fields accept.)
            match &back.body {
                Some(v2::envelope::Body::Publish(p)) if p.channel.starts_with("room.") => {
                    let got: ChatMessage = wire::from_payload(&p.payload)?;
                    assert_eq!(got, message);
                    println!(
                        "   -> ChatMessage {} by {}",
                        got.id,
                        got.author.map(|a| a.display_name).unwrap_or_default()
                    );
                }
                Some(v2::envelope::Body::Publish(p)) => {
                    let got: ReadMarker = wire::from_payload(&p.payload)?;
                    assert_eq!(got, marker);
                    println!(
                        "   -> ReadMarker at seq {}",
                        got.position.map(|p| p.seq).unwrap_or_default()
                    );
                }
                Some(v2::envelope::Body::Ephemeral(e)) => {
                    let got: TypingState = wire::from_payload(&e.payload)?;
                    assert_eq!(got, typing);
                    println!("   -> TypingState typing={}", got.typing);
                }
                _ => unreachable!("only publish and ephemeral envelopes are built above"),
            }
        }
    }
    Ok(())
}

/// A frame as text: JSON as is, binary encodings as hex.
fn show(frame: &[u8], encoding: Encoding) -> String {
    if encoding.is_text() {
        String::from_utf8_lossy(frame).into_owned()
    } else {
        frame.iter().map(|b| format!("{b:02x}")).collect()
    }
}
