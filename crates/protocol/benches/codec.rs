//! Codec benchmark: encode and decode of a representative `publish`
//! envelope (~128-byte JSON object payload) in each encoding, beside a
//! baseline of the same data through plain serde_json, plain rmp-serde
//! (`to_vec_named`) and plain prost on hand-written structs. Protobuf also
//! decodes from `Bytes` (zero-copy payloads), beside prost alone and prost
//! plus the payload check every receiver must run (ENC-PAYLOAD-INVALID).
//!
//! Run: `cargo bench -p courier-protocol --bench codec`. Figures are in
//! docs/benchmarks.md ("Codecs").

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{Codec, Encoding, Subprotocol, Version};
use criterion::{criterion_group, criterion_main, Criterion};
use serde::{Deserialize, Serialize};

fn payload_json() -> serde_json::Value {
    serde_json::json!({
        "text": "Deploy finished: api-7 is live in eu-west",
        "author": "alice",
        "mentions": ["bob", "carol"],
        "priority": 2,
        "pinned": false,
        "ts": 1700000000123u64
    })
}

/// Baseline for JSON and MessagePack: the same flat object, schema-free
/// payload (what Courier's payload model is), no tag dispatch or checks.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct PlainPublish {
    r#type: String,
    id: String,
    channel: String,
    payload: serde_json::Value,
}

/// Baseline for Protobuf: the same fields, payload as raw bytes (unchecked).
#[derive(Clone, PartialEq, prost::Message)]
struct ProstPublish {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    channel: String,
    #[prost(bytes = "bytes", tag = "3")]
    payload: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProstEnvelope {
    #[prost(message, optional, tag = "10")]
    publish: Option<ProstPublish>,
}

fn bench(c: &mut Criterion) {
    let payload = courier_protocol::wire::payload::from_json(&payload_json()).unwrap();
    let envelope_payload = payload.clone();
    let envelope = v2::Envelope {
        body: Some(Body::Publish(v2::Publish {
            id: "p-0001f3a9".into(),
            channel: "team.deployments".into(),
            payload: payload.clone(),
        })),
    };
    let plain = PlainPublish {
        r#type: "publish".into(),
        id: "p-0001f3a9".into(),
        channel: "team.deployments".into(),
        payload: payload_json(),
    };
    let prost_env = ProstEnvelope {
        publish: Some(ProstPublish {
            id: "p-0001f3a9".into(),
            channel: "team.deployments".into(),
            payload,
        }),
    };

    // The check every Protobuf decode runs on the payload bytes
    // (ENC-PAYLOAD-INVALID), alone.
    c.bench_function("payload/validate", |b| {
        b.iter(|| courier_protocol::wire::payload::validate(black_box(&envelope_payload)).unwrap())
    });

    for encoding in Encoding::ALL {
        let codec = Codec::new(Subprotocol::new(Version::V2, encoding));
        let frame = codec.encode(&envelope).unwrap();
        let mut g = c.benchmark_group(format!("{encoding}"));
        eprintln!("{encoding}: courier frame {} bytes", frame.len());
        g.bench_function("courier/encode", |b| {
            b.iter(|| codec.encode(black_box(&envelope)).unwrap())
        });
        g.bench_function("courier/decode", |b| {
            b.iter(|| codec.decode::<v2::Envelope>(black_box(&frame)).unwrap())
        });
        match encoding {
            Encoding::Json => {
                let bytes = serde_json::to_vec(&plain).unwrap();
                eprintln!("{encoding}: baseline frame {} bytes", bytes.len());
                g.bench_function("baseline/encode", |b| {
                    b.iter(|| serde_json::to_vec(black_box(&plain)).unwrap())
                });
                g.bench_function("baseline/decode", |b| {
                    b.iter(|| serde_json::from_slice::<PlainPublish>(black_box(&bytes)).unwrap())
                });
            }
            Encoding::MsgPack => {
                let bytes = rmp_serde::to_vec_named(&plain).unwrap();
                eprintln!("{encoding}: baseline frame {} bytes", bytes.len());
                g.bench_function("baseline/encode", |b| {
                    b.iter(|| rmp_serde::to_vec_named(black_box(&plain)).unwrap())
                });
                g.bench_function("baseline/decode", |b| {
                    b.iter(|| rmp_serde::from_slice::<PlainPublish>(black_box(&bytes)).unwrap())
                });
            }
            Encoding::Protobuf => {
                use prost::Message as _;
                let bytes = prost_env.encode_to_vec();
                eprintln!("{encoding}: baseline frame {} bytes", bytes.len());
                g.bench_function("baseline/encode", |b| {
                    b.iter(|| black_box(&prost_env).encode_to_vec())
                });
                g.bench_function("baseline/decode", |b| {
                    b.iter(|| ProstEnvelope::decode(black_box(bytes.as_slice())).unwrap())
                });
                // From `Bytes`, as a WebSocket stack hands frames over: the
                // payload is a slice of the frame on both sides.
                let shared = Bytes::from(bytes.clone());
                g.bench_function("courier/decode_bytes", |b| {
                    b.iter(|| {
                        codec
                            .decode_bytes::<v2::Envelope>(black_box(frame.clone()))
                            .unwrap()
                    })
                });
                g.bench_function("baseline/decode_bytes", |b| {
                    b.iter(|| ProstEnvelope::decode(black_box(shared.clone())).unwrap())
                });
                // The same decode plus the payload check the spec requires
                // of every receiver (ENC-PAYLOAD-INVALID), which plain
                // prost cannot know about: the fair comparison for Courier.
                g.bench_function("baseline+check/decode_bytes", |b| {
                    b.iter(|| {
                        let env = ProstEnvelope::decode(black_box(shared.clone())).unwrap();
                        let publish = env.publish.as_ref().unwrap();
                        courier_protocol::wire::payload::validate(&publish.payload).unwrap();
                        env
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
