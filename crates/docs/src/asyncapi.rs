//! The AsyncAPI 3.0 document of the WebSocket API: one channel (`/ws`)
//! carrying every envelope type, one operation per type and direction
//! (described from the server's side: it `receive`s client messages and
//! `send`s its own), replies taken from the reply table, and each message's
//! draft-07 JSON Schema from `courier_protocol::schema`.

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
            components_schemas.insert(name.clone(), rewrite_refs(def.clone()));
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
            "description": "One Courier envelope: a flat object whose `type` names the message (ENC-JSON-FLAT).",
            "oneOf": model.bodies.iter().map(|b| json!({ "$ref": format!("#/components/schemas/{}Envelope", b.message) })).collect::<Vec<_>>(),
        }),
    );

    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    let mut schemas = BTreeMap::new();
    for b in &model.bodies {
        let variant = variant_of(&b.type_name).unwrap_or_else(|| json!({}));
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
        });
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
    }

    let subprotocols: Vec<&str> = Subprotocol::ALL
        .iter()
        .filter(|s| s.version == version)
        .map(|s| s.name())
        .collect();
    let v = version.number();
    let document = json!({
        "asyncapi": "3.0.0",
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
        "servers": {
            "reference": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "description": "The reference server (`courier serve`) on its default address. Use `wss` behind TLS.",
            },
        },
        "channels": {
            "courier": {
                "address": "/ws",
                "title": "Courier WebSocket endpoint",
                "description": "Every Courier session: the client offers subprotocols, sends `hello` first and receives `welcome`; then requests, replies and deliveries flow in both directions until a `disconnect` and the close frame.",
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
        },
        "operations": operations,
        "components": { "messages": messages, "schemas": components_schemas },
    });
    AsyncApi { document, schemas }
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
