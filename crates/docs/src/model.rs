//! The documentation's view of the definitions: every message, field, enum
//! and envelope body type with its doc comment, in the shape the templates
//! and the AsyncAPI writer use, projected from courier-codegen's model of the
//! definitions (`courier_codegen::model`, the one the Rust and TypeScript
//! generators render from).

use courier_codegen::model::{self as defs, Cardinality, Value};
use serde::Serialize;

/// Who sends an envelope body type, taken from the first words of its
/// comment in `Envelope.body` ("Client to server:", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent by clients, received by the server.
    ClientToServer,
    /// Sent by the server, received by clients.
    ServerToClient,
    /// Sent by either peer.
    Both,
}

impl Direction {
    fn from_comment(comment: &str) -> Option<(Direction, String)> {
        let table = [
            ("Client to server:", Direction::ClientToServer),
            ("Server to client:", Direction::ServerToClient),
            ("Both directions:", Direction::Both),
        ];
        table.iter().find_map(|(prefix, d)| {
            let rest = comment.strip_prefix(prefix)?.trim();
            // "publish a payload" → "Publish a payload": it starts a sentence on its own.
            let mut chars = rest.chars();
            let summary = chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default();
            Some((*d, summary))
        })
    }

    /// The arrow form used in tables (`client → server`).
    pub fn label(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client → server",
            Direction::ServerToClient => "server → client",
            Direction::Both => "both directions",
        }
    }
}

/// One field of a message.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDoc {
    /// Proto field name; also the JSON and MessagePack member name (ENC-JSON-FLAT).
    pub name: String,
    /// The proto3 JSON mapping's camelCase name, which Courier does not use.
    pub proto_json_name: String,
    /// Proto tag number.
    pub number: i32,
    /// Type as written in the `.proto` (`uint64`, `StreamPosition`, `RecoveryStatus`).
    pub type_name: String,
    /// Anchor of the type's documentation when it is a message or enum.
    pub type_anchor: Option<String>,
    /// The page of that anchor when it is not the one this field is shown
    /// with: Courier's `types` for a payload field of a Courier type
    /// (`courier.v2.StreamPosition`).
    pub type_page: Option<&'static str>,
    /// `implicit`, `optional`, `message`, `repeated` or `map` (see [`presence_text`]).
    pub presence: &'static str,
    /// Name of the oneof group, for real (not synthetic) oneofs.
    pub oneof: Option<String>,
    /// `[deprecated = true]` in the definition.
    pub deprecated: bool,
    /// First protocol version that has this field.
    pub since: u32,
    /// The doc comment.
    pub doc: String,
    /// True for `bytes` fields that carry a JSON-model payload.
    pub payload: bool,
}

/// One message definition.
#[derive(Debug, Clone, Serialize)]
pub struct MessageDoc {
    /// Short name (`Publish`).
    pub name: String,
    /// Fully qualified name (`courier.v2.Publish`).
    pub full_name: String,
    /// The `.proto` file that defines it.
    pub file: String,
    /// Anchor used in links (`type-Publish`).
    pub anchor: String,
    pub doc: String,
    pub deprecated: bool,
    pub since: u32,
    pub fields: Vec<FieldDoc>,
}

/// One enum value.
#[derive(Debug, Clone, Serialize)]
pub struct EnumValueDoc {
    pub name: String,
    pub number: i32,
    pub doc: String,
    pub deprecated: bool,
    pub since: u32,
}

/// One enum definition.
#[derive(Debug, Clone, Serialize)]
pub struct EnumDoc {
    pub name: String,
    pub full_name: String,
    pub file: String,
    pub anchor: String,
    pub doc: String,
    pub since: u32,
    pub values: Vec<EnumValueDoc>,
}

/// One `Envelope.body` member: a message type on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct BodyDoc {
    /// The wire `type` (`subscribe_ack`).
    pub type_name: String,
    /// Oneof member tag number in `Envelope`.
    pub number: i32,
    /// The body message (`SubscribeAck`).
    pub message: String,
    pub direction: Direction,
    pub direction_label: &'static str,
    /// The envelope comment without its direction prefix.
    pub summary: String,
    pub since: u32,
    pub deprecated: bool,
}

/// Everything documented about one descriptor set.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    /// Protocol version (0 for a user's payload definitions).
    pub version: u32,
    pub messages: Vec<MessageDoc>,
    pub enums: Vec<EnumDoc>,
    /// `Envelope.body` members in tag order (empty for payload definitions).
    pub bodies: Vec<BodyDoc>,
}

/// Why the model could not be built from a descriptor set. These point at
/// definitions that break Courier's documentation conventions: fix the
/// `.proto` file named.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An `Envelope.body` member's comment does not start with its direction.
    #[error("Envelope.{0}: comment must start with \"Client to server:\", \"Server to client:\" or \"Both directions:\"")]
    NoDirection(String),
    /// The descriptor set has no `Envelope` message with a `body` oneof.
    #[error("no Envelope message with a `body` oneof in package {0}")]
    NoEnvelope(String),
}

/// Human-readable explanation of a presence keyword, for the legend.
pub fn presence_text(presence: &str) -> &'static str {
    match presence {
        "implicit" => "proto3 implicit presence: omitted on the wire when equal to its default (ENC-DEFAULTS-OMITTED)",
        "optional" => "explicit presence (`optional`): written whenever set, even to 0",
        "message" => "message field: absent when not set",
        "repeated" => "repeated: an array, omitted when empty",
        "map" => "map: an object keyed by the keys as strings, omitted when empty",
        _ => "",
    }
}

impl Model {
    /// Builds the view of the files of `packages` in `defs` (their imports
    /// are only used to resolve types), with the `since` of `defs` (0 when
    /// undated, for a user's payload definitions).
    pub fn build(defs: &defs::Model, packages: &[&str], version: u32) -> Model {
        let mut model = Model {
            version,
            messages: Vec::new(),
            enums: Vec::new(),
            bodies: Vec::new(),
        };
        for file in (defs.files.iter()).filter(|f| packages.contains(&f.package.as_str())) {
            for m in &file.messages {
                collect_message(&mut model, m, packages);
            }
            model.enums.extend(file.enums.iter().map(enum_doc));
        }
        model
    }

    /// Builds the view of Courier's own definitions of `version`, including
    /// the envelope body table.
    pub fn courier(defs: &defs::Model, version: u32) -> Result<Model, ModelError> {
        let package = format!("courier.v{version}");
        let mut model = Model::build(defs, &[&package], version);
        let envelope = model
            .messages
            .iter()
            .find(|m| m.name == "Envelope")
            .ok_or_else(|| ModelError::NoEnvelope(package.clone()))?;
        for f in envelope
            .fields
            .iter()
            .filter(|f| f.oneof.as_deref() == Some("body"))
        {
            let (direction, summary) = Direction::from_comment(&f.doc)
                .ok_or_else(|| ModelError::NoDirection(f.name.clone()))?;
            model.bodies.push(BodyDoc {
                type_name: f.name.clone(),
                number: f.number,
                message: f.type_name.clone(),
                direction,
                direction_label: direction.label(),
                summary,
                since: f.since,
                deprecated: f.deprecated,
            });
        }
        if model.bodies.is_empty() {
            return Err(ModelError::NoEnvelope(package));
        }
        Ok(model)
    }

    /// The message called `name`.
    pub fn message(&self, name: &str) -> Option<&MessageDoc> {
        self.messages.iter().find(|m| m.name == name)
    }

    /// The envelope body with wire type `type_name`.
    pub fn body(&self, type_name: &str) -> Option<&BodyDoc> {
        self.bodies.iter().find(|b| b.type_name == type_name)
    }
}

/// Joins a comment's lines into paragraphs: single newlines become spaces
/// (the `.proto` wraps at 80 columns), blank lines stay paragraph breaks.
fn clean_comment(raw: &str) -> String {
    raw.split("\n\n")
        .map(|para| {
            para.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Adds `m`, then its nested messages, then its nested enums.
fn collect_message(model: &mut Model, m: &defs::Message, packages: &[&str]) {
    let name = nested(&m.scope, &m.name);
    let fields = (m.fields.iter())
        .map(|f| {
            let oneof = f.oneof.map(|i| m.oneofs[i].name.clone());
            let (type_name, type_anchor) = field_type(&f.value, f.card);
            let (type_anchor, type_page) = match &f.value {
                Value::Enum(r) | Value::Message(r)
                    if !packages.contains(&r.scope.package.as_str()) =>
                {
                    // Documented on Courier's types page, or nowhere.
                    let courier = r.scope.package.starts_with("courier.");
                    (type_anchor.filter(|_| courier), courier.then_some("types"))
                }
                _ => (type_anchor, None),
            };
            let presence = match f.card {
                Cardinality::Map(_) => "map",
                Cardinality::Repeated => "repeated",
                Cardinality::Optional => "optional",
                _ if matches!(f.value, Value::Message(_)) || oneof.is_some() => "message",
                _ => "implicit",
            };
            FieldDoc {
                name: f.name.clone(),
                proto_json_name: f.json_name.clone(),
                number: f.number,
                payload: f.value == Value::Payload,
                type_name,
                type_anchor,
                type_page,
                presence,
                oneof,
                deprecated: f.deprecated,
                since: f.since,
                doc: clean_comment(&f.doc),
            }
        })
        .collect();
    // The oneof's own comment is folded into the message doc: it explains
    // the group the fields belong to.
    let mut doc = clean_comment(&m.doc);
    for o in m.oneofs.iter().filter(|o| !o.doc.is_empty()) {
        doc.push_str(&format!("\n\n`{}`: {}", o.name, clean_comment(&o.doc)));
    }
    model.messages.push(MessageDoc {
        anchor: format!("type-{}", name.replace('.', "-")),
        full_name: m.full_name(),
        file: m.file.clone(),
        doc,
        deprecated: m.deprecated,
        since: m.since,
        fields,
        name,
    });
    for n in &m.messages {
        collect_message(model, n, packages);
    }
    model.enums.extend(m.enums.iter().map(enum_doc));
}

fn enum_doc(e: &defs::Enum) -> EnumDoc {
    let name = nested(&e.scope, &e.name);
    EnumDoc {
        anchor: format!("type-{}", name.replace('.', "-")),
        full_name: format!("{}.{name}", e.scope.package),
        file: e.file.clone(),
        doc: clean_comment(&e.doc),
        since: e.since,
        values: (e.values.iter())
            .map(|v| EnumValueDoc {
                name: v.name.clone(),
                number: v.number,
                doc: clean_comment(&v.doc),
                deprecated: v.deprecated,
                since: v.since,
            })
            .collect(),
        name,
    }
}

/// A type's name inside its package (`Room.Member`).
fn nested(scope: &defs::Scope, name: &str) -> String {
    defs::TypeRef {
        scope: scope.clone(),
        name: name.to_string(),
    }
    .nested_name(".")
}

/// The displayed type of a field (`uint64`, `StreamPosition`,
/// `map<string, Room.Member>`) and the anchor of its documentation.
fn field_type(value: &Value, card: Cardinality) -> (String, Option<String>) {
    let (name, anchor) = match value {
        Value::Scalar(s) => (s.proto_name().to_string(), None),
        Value::Payload => ("bytes".to_string(), None),
        Value::Enum(r) | Value::Message(r) => {
            let name = r.nested_name(".");
            let anchor = format!("type-{}", name.replace('.', "-"));
            (name, Some(anchor))
        }
    };
    match card {
        Cardinality::Map(key) => (format!("map<{}, {name}>", key.proto_name()), anchor),
        _ => (name, anchor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_joined_into_paragraphs() {
        assert_eq!(
            clean_comment(" One line\n two.\n\n Next para.\n"),
            "One line two.\n\nNext para."
        );
    }

    #[test]
    fn nested_type_names_keep_their_parent() {
        let member = defs::TypeRef {
            scope: defs::Scope {
                package: "chat.v1".into(),
                messages: vec!["Room".into()],
            },
            name: "Member".into(),
        };
        let (name, anchor) = field_type(&Value::Message(member.clone()), Cardinality::Singular);
        assert_eq!(
            (name.as_str(), anchor.as_deref()),
            ("Room.Member", Some("type-Room-Member"))
        );
        let map = field_type(
            &Value::Message(member),
            Cardinality::Map(defs::Scalar::String),
        );
        assert_eq!(map.0, "map<string, Room.Member>");
        assert_eq!(
            field_type(&Value::Scalar(defs::Scalar::Uint64), Cardinality::Singular).0,
            "uint64"
        );
    }
}
