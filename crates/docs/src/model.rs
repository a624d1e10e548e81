//! The documentation model read from proto descriptors: every message,
//! field, enum and envelope body type with its doc comment, in a shape the
//! templates and the AsyncAPI writer can use directly.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use serde::Serialize;

/// Descriptor path numbers (descriptor.proto) used to find comments.
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const MSG_FIELD: i32 = 2;
const MSG_NESTED: i32 = 3;
const MSG_ENUM: i32 = 4;
const MSG_ONEOF: i32 = 8;
const ENUM_VALUE: i32 = 2;

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
    /// Builds the model of the files of `packages` in `fds` (their imports
    /// are only used to resolve types). Every element starts with `since =
    /// version`; [`Model::mark_since`] corrects it from an older model.
    pub fn build(fds: &FileDescriptorSet, packages: &[&str], version: u32) -> Model {
        let mut model = Model {
            version,
            messages: Vec::new(),
            enums: Vec::new(),
            bodies: Vec::new(),
        };
        for file in fds.file.iter().filter(|f| packages.contains(&f.package())) {
            let comments = Comments::of(file);
            for (i, msg) in file.message_type.iter().enumerate() {
                collect_message(
                    &mut model,
                    file,
                    &comments,
                    msg,
                    "",
                    vec![FILE_MESSAGE, i as i32],
                );
            }
            for (i, en) in file.enum_type.iter().enumerate() {
                collect_enum(
                    &mut model,
                    file,
                    &comments,
                    en,
                    "",
                    vec![FILE_ENUM, i as i32],
                );
            }
        }
        model
    }

    /// Builds the model of Courier's own definitions of `version`, including
    /// the envelope body table.
    pub fn courier(fds: &FileDescriptorSet, version: u32) -> Result<Model, ModelError> {
        let package = format!("courier.v{version}");
        let mut model = Model::build(fds, &[&package], version);
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
                since: version,
                deprecated: f.deprecated,
            });
        }
        if model.bodies.is_empty() {
            return Err(ModelError::NoEnvelope(package));
        }
        Ok(model)
    }

    /// Sets every element's `since` from `older` (the previous version's
    /// model): an element present there, under the same name and number,
    /// dates from that version.
    pub fn mark_since(&mut self, older: &Model) {
        for m in &mut self.messages {
            let Some(old) = older.messages.iter().find(|o| o.name == m.name) else {
                continue;
            };
            m.since = old.since;
            for f in &mut m.fields {
                if let Some(of) = old
                    .fields
                    .iter()
                    .find(|of| of.number == f.number && of.name == f.name)
                {
                    f.since = of.since;
                }
            }
        }
        for e in &mut self.enums {
            let Some(old) = older.enums.iter().find(|o| o.name == e.name) else {
                continue;
            };
            e.since = old.since;
            for v in &mut e.values {
                if let Some(ov) = old
                    .values
                    .iter()
                    .find(|ov| ov.number == v.number && ov.name == v.name)
                {
                    v.since = ov.since;
                }
            }
        }
        for b in &mut self.bodies {
            if let Some(ob) = older
                .bodies
                .iter()
                .find(|ob| ob.type_name == b.type_name && ob.number == b.number)
            {
                b.since = ob.since;
            }
        }
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

/// Leading comments of one file, by descriptor path.
struct Comments(Vec<(Vec<i32>, String)>);

impl Comments {
    fn of(file: &FileDescriptorProto) -> Comments {
        let mut out = Vec::new();
        if let Some(info) = &file.source_code_info {
            for loc in &info.location {
                if let Some(c) = &loc.leading_comments {
                    out.push((loc.path.clone(), clean_comment(c)));
                }
            }
        }
        Comments(out)
    }

    fn get(&self, path: &[i32]) -> String {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
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

fn collect_message(
    model: &mut Model,
    file: &FileDescriptorProto,
    comments: &Comments,
    msg: &DescriptorProto,
    prefix: &str,
    path: Vec<i32>,
) {
    let name = format!("{prefix}{}", msg.name());
    let full_name = format!("{}.{name}", file.package());
    let mut fields = Vec::new();
    for (i, f) in msg.field.iter().enumerate() {
        let mut fpath = path.clone();
        fpath.extend([MSG_FIELD, i as i32]);
        let synthetic = f.proto3_optional();
        let oneof = f
            .oneof_index
            .filter(|_| !synthetic)
            .and_then(|i| msg.oneof_decl.get(i as usize))
            .map(|o| o.name().to_string());
        let repeated = f.label() == Label::Repeated;
        // A map's entry message is not documented: show `map<K, V>`.
        let entry = (msg.nested_type.iter()).find(|n| {
            n.options.as_ref().is_some_and(|o| o.map_entry())
                && f.r#type() == Type::Message
                && f.type_name().rsplit('.').next() == Some(n.name())
        });
        let (type_name, type_anchor) = match entry {
            Some(e) => {
                let (key, value) = (&e.field[0], &e.field[1]);
                let (v, anchor) = field_type(value.r#type(), value.type_name());
                let k = field_type(key.r#type(), key.type_name()).0;
                (format!("map<{k}, {v}>"), anchor)
            }
            None => field_type(f.r#type(), f.type_name()),
        };
        let presence = if entry.is_some() {
            "map"
        } else if repeated {
            "repeated"
        } else if synthetic {
            "optional"
        } else if f.r#type() == Type::Message || oneof.is_some() {
            "message"
        } else {
            "implicit"
        };
        fields.push(FieldDoc {
            name: f.name().to_string(),
            proto_json_name: f.json_name().to_string(),
            number: f.number(),
            payload: f.r#type() == Type::Bytes
                && !repeated
                && courier_codegen::PAYLOAD_FIELDS.contains(&f.name()),
            type_name,
            type_anchor,
            presence,
            oneof,
            deprecated: f.options.as_ref().is_some_and(|o| o.deprecated()),
            since: model.version,
            doc: comments.get(&fpath),
        });
    }
    // The oneof's own comment is folded into the message doc: it explains
    // the group the fields belong to.
    let mut doc = comments.get(&path);
    for (i, o) in msg.oneof_decl.iter().enumerate() {
        let mut opath = path.clone();
        opath.extend([MSG_ONEOF, i as i32]);
        let c = comments.get(&opath);
        if !c.is_empty() && !o.name().starts_with('_') {
            doc.push_str(&format!("\n\n`{}`: {c}", o.name()));
        }
    }
    model.messages.push(MessageDoc {
        anchor: format!("type-{}", name.replace('.', "-")),
        full_name,
        file: file.name().to_string(),
        doc,
        deprecated: msg.options.as_ref().is_some_and(|o| o.deprecated()),
        since: model.version,
        fields,
        name: name.clone(),
    });
    for (i, nested) in msg.nested_type.iter().enumerate() {
        if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
            continue;
        }
        let mut npath = path.clone();
        npath.extend([MSG_NESTED, i as i32]);
        collect_message(model, file, comments, nested, &format!("{name}."), npath);
    }
    for (i, en) in msg.enum_type.iter().enumerate() {
        let mut epath = path.clone();
        epath.extend([MSG_ENUM, i as i32]);
        collect_enum(model, file, comments, en, &format!("{name}."), epath);
    }
}

fn collect_enum(
    model: &mut Model,
    file: &FileDescriptorProto,
    comments: &Comments,
    en: &EnumDescriptorProto,
    prefix: &str,
    path: Vec<i32>,
) {
    let name = format!("{prefix}{}", en.name());
    let values = en
        .value
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut vpath = path.clone();
            vpath.extend([ENUM_VALUE, i as i32]);
            EnumValueDoc {
                name: v.name().to_string(),
                number: v.number(),
                doc: comments.get(&vpath),
                deprecated: v.options.as_ref().is_some_and(|o| o.deprecated()),
                since: model.version,
            }
        })
        .collect();
    model.enums.push(EnumDoc {
        anchor: format!("type-{}", name.replace('.', "-")),
        full_name: format!("{}.{name}", file.package()),
        file: file.name().to_string(),
        doc: comments.get(&path),
        since: model.version,
        values,
        name,
    });
}

/// The displayed type of a field and the anchor of its documentation.
fn field_type(ty: Type, type_name: &str) -> (String, Option<String>) {
    match ty {
        Type::Message | Type::Enum => {
            // `.courier.v2.StreamPosition` → `StreamPosition`; nested types
            // keep their parent (`Outer.Inner`), found by the capital letter
            // that starts a type name after the package's lowercase parts.
            let trimmed = type_name.trim_start_matches('.');
            let parts: Vec<&str> = trimmed.split('.').collect();
            let start = parts
                .iter()
                .position(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
                .unwrap_or(0);
            let short = parts[start..].join(".");
            let anchor = format!("type-{}", short.replace('.', "-"));
            (short, Some(anchor))
        }
        other => (
            other
                .as_str_name()
                .trim_start_matches("TYPE_")
                .to_ascii_lowercase(),
            None,
        ),
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
        assert_eq!(
            field_type(Type::Message, ".chat.v1.Room.Member").0,
            "Room.Member"
        );
        assert_eq!(field_type(Type::Uint64, "").0, "uint64");
    }
}
