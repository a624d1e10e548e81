//! The AsyncAPI 3.1 document of the protocol: the WebSocket channel (`/ws`)
//! carrying every envelope type, one operation per type and direction
//! (described from the server's side: it `receive`s client messages and
//! `send`s its own), replies taken from the reply table, and each message's
//! draft-07 JSON Schema from `courier_protocol::schema`, every schema titled
//! (generators name types after it) and every envelope requiring `type`.
//! The three encodings are the `x-courier-encodings` extension (AsyncAPI
//! gives a message one content type; Courier picks it per connection); the
//! SSE transport is a second server and channel (`/sse`, `/publish`).

use std::collections::BTreeMap;

use courier_protocol::schema::{envelope_schema, Dialect};
use courier_protocol::{Subprotocol, Version};
use serde_json::{json, Map, Value};

use crate::model::{Direction, Model};
use crate::replies;

/// The media type AsyncAPI uses for draft-07 payload schemas.
pub const DRAFT07: &str = "application/schema+json;version=draft-07";

/// The AsyncAPI document and, per envelope type, its payload schema as
/// indented JSON (shown on the message pages).
pub struct AsyncApi {
    pub document: Value,
    pub schemas: BTreeMap<String, String>,
}

/// Builds the AsyncAPI document of `version`. `examples` maps each type to
/// its example envelope as JSON.
pub fn build(version: Version, model: &Model, examples: &BTreeMap<String, Value>) -> AsyncApi {
    let schema = envelope_schema(version, Dialect::Draft07);
    let mut components_schemas = Map::new();
    if let Some(defs) = schema.get("definitions").and_then(Value::as_object) {
        for (name, def) in defs {
            components_schemas.insert(name.clone(), titled(rewrite_refs(def.clone()), name));
        }
    }
    // The envelope itself: `Batch.envelopes` refers to it (`$ref: "#"` in
    // the standalone schema).
    let variants: Vec<Value> = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(rewrite_refs)
        .collect();
    let variant_of = |type_name: &str| {
        variants
            .iter()
            .find(|v| {
                v.pointer("/properties/type/const").and_then(Value::as_str) == Some(type_name)
            })
            .cloned()
    };
    components_schemas.insert(
        "Envelope".into(),
        json!({
            "title": "Envelope",
            "description": "One Courier envelope: a flat object whose `type` names the message (ENC-JSON-FLAT).",
            "oneOf": model.bodies.iter().map(|b| json!({ "$ref": format!("#/components/schemas/{}Envelope", b.message) })).collect::<Vec<_>>(),
        }),
    );

    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    let mut sse_messages = Map::new();
    let mut schemas = BTreeMap::new();
    for b in &model.bodies {
        let variant = titled(
            require_type(variant_of(&b.type_name).unwrap_or_else(|| json!({}))),
            &format!("{}Envelope", b.message),
        );
        schemas.insert(
            b.type_name.clone(),
            serde_json::to_string_pretty(&sort_keys(variant.clone())).unwrap_or_default(),
        );
        components_schemas.insert(format!("{}Envelope", b.message), variant);
        let mut message = json!({
            "name": b.type_name,
            "title": b.message,
            "summary": format!("{}: {}", capitalise(b.direction.label()), b.summary),
            "contentType": "application/json",
            "payload": {
                "schemaFormat": DRAFT07,
                "schema": { "$ref": format!("#/components/schemas/{}Envelope", b.message) },
            },
            "x-courier-direction": b.direction,
            "x-courier-since": b.since,
            "x-courier-envelope-field": b.number,
            "x-courier-protobuf": format!("courier.v{}.Envelope", version.number()),
        });
        if sse_carries(&b.type_name) {
            message["x-courier-sse-event"] = json!(b.type_name);
        }
        if let Some(m) = model.message(&b.message).filter(|m| !m.doc.is_empty()) {
            message["description"] = json!(m.doc);
        }
        if let Some(example) = examples.get(&b.type_name) {
            message["examples"] = json!([{ "name": b.type_name, "payload": example }]);
        }
        messages.insert(b.type_name.clone(), message);
        channel_messages.insert(
            b.type_name.clone(),
            json!({ "$ref": format!("#/components/messages/{}", b.type_name) }),
        );
    }

    let channel_ref = json!({ "$ref": "#/channels/courier" });
    let msg_ref = |t: &str| json!({ "$ref": format!("#/channels/courier/messages/{t}") });
    for b in &model.bodies {
        let mut actions = Vec::new();
        if matches!(b.direction, Direction::ClientToServer | Direction::Both) {
            actions.push("receive");
        }
        if matches!(b.direction, Direction::ServerToClient | Direction::Both) {
            actions.push("send");
        }
        for action in actions {
            let mut op = json!({
                "action": action,
                "channel": channel_ref,
                "summary": b.summary,
                "messages": [msg_ref(&b.type_name)],
            });
            {
                // Replies the other side sends back to this message, in this version.
                let mut reply_types: Vec<String> = Vec::new();
                for o in replies::outcomes(&b.type_name) {
                    let t = match o.kind {
                        "reply" => o.what.clone(),
                        "error" => "error".to_string(),
                        _ => continue,
                    };
                    let from_other_side = model.body(&t).is_some_and(|r| match action {
                        "receive" => r.direction != Direction::ClientToServer,
                        _ => r.direction != Direction::ServerToClient,
                    });
                    if from_other_side && !reply_types.contains(&t) {
                        reply_types.push(t);
                    }
                }
                if !reply_types.is_empty() {
                    op["reply"] = json!({
                        "channel": channel_ref,
                        "messages": reply_types.iter().map(|t| msg_ref(t)).collect::<Vec<_>>(),
                    });
                }
            }
            operations.insert(format!("{action}{}", b.message), op);
        }
        // SSE: the server's messages as events of the stream (SSE-STREAM).
        if sse_carries(&b.type_name) {
            operations.insert(
                format!("sseSend{}", b.message),
                json!({
                    "action": "send",
                    "channel": { "$ref": "#/channels/sse" },
                    "summary": format!("`{}` as an SSE event (`event: {}`, one `data:` line of compact JSON).", b.type_name, b.type_name),
                    "messages": [{ "$ref": format!("#/channels/sse/messages/{}", b.type_name) }],
                }),
            );
            sse_messages.insert(
                b.type_name.clone(),
                json!({ "$ref": format!("#/components/messages/{}", b.type_name) }),
            );
        }
    }
    // POST /publish: a publish in, a publish_ack (or an error) back (SSE-PUBLISH).
    if model.body("publish").is_some() && model.body("publish_ack").is_some() {
        operations.insert(
            "httpReceivePublish".into(),
            json!({
                "action": "receive",
                "channel": { "$ref": "#/channels/publish" },
                "summary": "A publish over HTTP (`POST /publish`, JSON body; `type` optional), for clients on the SSE transport.",
                "messages": [{ "$ref": "#/channels/publish/messages/publish" }],
                "reply": {
                    "channel": { "$ref": "#/channels/publish" },
                    "messages": [
                        { "$ref": "#/channels/publish/messages/publish_ack" },
                        { "$ref": "#/channels/publish/messages/error" },
                    ],
                },
            }),
        );
    }

    let subprotocols: Vec<&str> = Subprotocol::ALL
        .iter()
        .filter(|s| s.version == version)
        .map(|s| s.name())
        .collect();
    let v = version.number();
    let document = json!({
        "asyncapi": "3.1.0",
        "id": format!("urn:courier:protocol:v{v}"),
        "info": {
            "title": format!("Courier protocol, version {v}"),
            "version": v.to_string(),
            "description": format!(
                "The Courier realtime messaging protocol over WebSocket, version {v}. One endpoint (`/ws`) carries every \
                 message type; the subprotocol chosen in `Sec-WebSocket-Protocol` fixes the version and the encoding \
                 (JSON in text frames, MessagePack or Protobuf in binary frames). Payload schemas describe the JSON and \
                 MessagePack form. Operations are described from the server's side: it receives what clients send and \
                 sends the rest. Generated by `courier docs` from proto/courier/v{v}; do not edit."
            ),
            "license": { "name": "MIT OR Apache-2.0" },
        },
        "defaultContentType": "application/json",
        "x-courier-encodings": encodings(version),
        "servers": {
            "reference": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "description": "The reference server (`courier serve`) on its default address. Use `wss` behind TLS.",
            },
            "reference-http": {
                "host": "127.0.0.1:8080",
                "protocol": "http",
                "description": "The same server's HTTP side: the SSE transport (`GET /sse`, JSON only, docs/spec/sse.md) and `POST /publish`. Use `https` behind TLS.",
            },
        },
        "channels": {
            "courier": {
                "address": "/ws",
                "title": "Courier WebSocket endpoint",
                "description": "Every Courier session: the client offers subprotocols, sends `hello` first and receives `welcome`; then requests, replies and deliveries flow in both directions until a `disconnect` and the close frame.",
                "servers": [{ "$ref": "#/servers/reference" }],
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Sec-WebSocket-Protocol": {
                                    "type": "string",
                                    "description": format!("Comma-separated subprotocols the client accepts, most preferred first. Version {v} names: {}. The server answers with the highest common version (VER-HIGHEST-COMMON), or accepts and closes with 4002 listing what it supports (VER-ACCEPT-THEN-CLOSE).", subprotocols.join(", ")),
                                    "examples": [subprotocols.join(", ")],
                                },
                            },
                            "required": ["Sec-WebSocket-Protocol"],
                        },
                        "bindingVersion": "0.1.0",
                    },
                },
            },
            "sse": {
                "address": "/sse",
                "title": "Courier Server-Sent Events stream",
                "description": format!("`GET /sse?v={v}&channel=a&channel=b&since=a:EPOCH:SEQ` with `Authorization: Bearer` (SSE-AUTH): a `text/event-stream` whose events are the server's envelopes in JSON, `welcome` first, `message` events with `id: channel:epoch:seq` (SSE-EVENT-ID); resume with `Last-Event-ID` or `since` (SSE-RESUME). The client sends nothing on the stream: it publishes with `POST /publish`."),
                "servers": [{ "$ref": "#/servers/reference-http" }],
                "messages": sse_messages,
                "bindings": { "http": { "method": "GET", "bindingVersion": "0.3.0" } },
            },
            "publish": {
                "address": "/publish",
                "title": "Publish over HTTP",
                "description": "`POST /publish` with a JSON `publish` body; the answer is a `publish_ack` envelope (status 200) or an `error` envelope with an HTTP error status (SSE-PUBLISH).",
                "servers": [{ "$ref": "#/servers/reference-http" }],
                "messages": {
                    "publish": { "$ref": "#/components/messages/publish" },
                    "publish_ack": { "$ref": "#/components/messages/publish_ack" },
                    "error": { "$ref": "#/components/messages/error" },
                },
                "bindings": { "http": { "method": "POST", "bindingVersion": "0.3.0" } },
            },
        },
        "operations": operations,
        "components": { "messages": messages, "schemas": components_schemas },
    });
    AsyncApi { document, schemas }
}

/// The envelope types an SSE stream carries (docs/spec/sse.md): `welcome`
/// first (SSE-STREAM), a `subscribe_ack` or `error` per channel
/// (SSE-CHANNELS), `message` deliveries (SSE-EVENT-ID), `ping` heartbeats
/// (SSE-HEARTBEAT) and the closing `disconnect` (SSE-END).
const SSE_EVENTS: [&str; 6] = [
    "welcome",
    "subscribe_ack",
    "error",
    "message",
    "ping",
    "disconnect",
];

fn sse_carries(type_name: &str) -> bool {
    SSE_EVENTS.contains(&type_name)
}

/// The `x-courier-encodings` extension: the content type and WebSocket
/// frame of each subprotocol of `version`. Every message's `payload` schema
/// describes the JSON and MessagePack form (one data model, docs/spec/
/// encoding.md §2); the Protobuf form is the message named by the message's
/// `x-courier-protobuf` (the envelope, body at `x-courier-envelope-field`).
fn encodings(version: Version) -> Value {
    Subprotocol::ALL
        .iter()
        .filter(|s| s.version == version)
        .map(|s| {
            let (content_type, frame, schema) = match s.encoding {
                courier_protocol::Encoding::Json => ("application/json", "text", "payload"),
                courier_protocol::Encoding::MsgPack => ("application/vnd.msgpack", "binary", "payload"),
                courier_protocol::Encoding::Protobuf => ("application/x-protobuf", "binary", "x-courier-protobuf"),
            };
            json!({ "subprotocol": s.name(), "contentType": content_type, "frame": frame, "schema": schema })
        })
        .collect()
}

/// Gives a schema a `title` (its component name) unless it has one: code
/// generators (Modelina and others) name types after it instead of
/// `AnonymousSchema_11`.
fn titled(mut v: Value, name: &str) -> Value {
    if let Value::Object(map) = &mut v {
        map.entry("title").or_insert_with(|| json!(name));
    }
    v
}

/// Makes `type` a required member of an envelope variant: it is the
/// discriminator every reader dispatches on (ENC-JSON-FLAT).
fn require_type(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        let required = map.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(list) = required {
            if !list.iter().any(|r| r == "type") {
                list.insert(0, json!("type"));
            }
        }
    }
    v
}

/// `#/definitions/X` → `#/components/schemas/X`; `#` (the envelope) →
/// `#/components/schemas/Envelope`.
fn rewrite_refs(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                *r = match r.strip_prefix("#/definitions/") {
                    Some(name) => format!("#/components/schemas/{name}"),
                    None if r == "#" => "#/components/schemas/Envelope".into(),
                    None => r.clone(),
                };
            }
            for (_, child) in map.iter_mut() {
                *child = rewrite_refs(child.take());
            }
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                *child = rewrite_refs(child.take());
            }
        }
        _ => {}
    }
    v
}

/// The same value with every object's keys in sorted order, whichever map
/// type serde_json was built with.
pub fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
