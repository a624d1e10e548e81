//! One model of the definitions, read once from a descriptor set: files,
//! messages, fields with the value and cardinality that decide their form in
//! JSON, MessagePack and Protobuf under the encoding policy
//! (`docs/spec/encoding.md`), enums, oneofs, maps, comments, deprecation,
//! reserved numbers and names, source lines and the version each element
//! first appeared in. The Rust policy (`policy.rs`), the TypeScript
//! generator (`ts/`), `courier docs` and `courier compat` all render from it, as prost-build's and tonic-build's generators share one
//! service model; nothing else walks descriptors.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

pub use crate::naming::Scope;

/// Field names whose `bytes` hold an application value (JSON data model,
/// MessagePack on the wire) rather than opaque bytes (ENC-PAYLOAD).
pub const PAYLOAD_FIELDS: &[&str] = &["payload", "info"];

/// Descriptor path numbers (`descriptor.proto`), to find comments.
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const MSG_FIELD: i32 = 2;
const MSG_NESTED: i32 = 3;
const MSG_ENUM: i32 = 4;
const MSG_ONEOF: i32 = 8;
const ENUM_VALUE: i32 = 2;

/// A definition no Courier encoding can carry (a proto2 group): change the
/// definition as `what` says.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{item}: {what} is not supported")]
pub struct Unsupported {
    /// The file that defines it.
    pub file: String,
    /// The fully-qualified field (`chat.v1.Message.item`).
    pub item: String,
    /// What it uses.
    pub what: String,
}

/// Every file of a descriptor set, imports included, in the set's order.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every package of the set (each once), which resolves type names.
    pub packages: Vec<String>,
    /// The files, each with its top-level messages and enums.
    pub files: Vec<File>,
}

/// One `.proto` file.
#[derive(Debug, Clone)]
pub struct File {
    /// Its import path (`courier/v2/envelope.proto`).
    pub name: String,
    /// Its package (`courier.v2`).
    pub package: String,
    /// Top-level messages in declaration order.
    pub messages: Vec<Message>,
    /// Top-level enums in declaration order.
    pub enums: Vec<Enum>,
}

/// A message; map entry messages are not messages here but [`Cardinality::Map`].
#[derive(Debug, Clone)]
pub struct Message {
    /// Its own name (`Inner`).
    pub name: String,
    /// Where it is declared: package and enclosing messages.
    pub scope: Scope,
    /// The file that declares it.
    pub file: String,
    /// Its leading comment, one line per line, trimmed (empty when none).
    pub doc: String,
    /// `option deprecated = true`.
    pub deprecated: bool,
    /// First protocol version that has it (0 until [`Model::date`]).
    pub since: u32,
    /// 1-based line of its definition in [`Message::file`] (0: unknown).
    pub line: i32,
    /// Its `reserved` numbers and names.
    pub reserved: Reserved,
    /// Every field in declaration order, oneof members included.
    pub fields: Vec<Field>,
    /// The real oneofs (not proto3 `optional`'s synthetic ones) in
    /// declaration order; [`Field::oneof`] indexes this list.
    pub oneofs: Vec<Oneof>,
    /// Nested messages.
    pub messages: Vec<Message>,
    /// Nested enums.
    pub enums: Vec<Enum>,
}

/// `reserved` numbers (as inclusive ranges, for messages and enums alike)
/// and names.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    /// Inclusive `(first, last)` ranges.
    pub numbers: Vec<(i32, i32)>,
    /// Reserved names.
    pub names: Vec<String>,
}

impl Reserved {
    /// Whether `n` is reserved.
    pub fn number(&self, n: i32) -> bool {
        self.numbers.iter().any(|&(a, b)| a <= n && n <= b)
    }
}

/// A real `oneof`.
#[derive(Debug, Clone)]
pub struct Oneof {
    /// Its proto name, which is also its member name in the data model.
    pub name: String,
    /// Its leading comment.
    pub doc: String,
}

/// One field.
#[derive(Debug, Clone)]
pub struct Field {
    /// Proto name; the JSON and MessagePack member name (ENC-JSON-FLAT).
    pub name: String,
    /// The proto3 JSON mapping's camelCase name, which Courier does not use.
    pub json_name: String,
    /// Tag number.
    pub number: i32,
    /// What one value holds (a map's value).
    pub value: Value,
    /// How many values, and whether presence is tracked.
    pub card: Cardinality,
    /// Index of its oneof in [`Message::oneofs`].
    pub oneof: Option<usize>,
    /// Its leading comment.
    pub doc: String,
    /// `[deprecated = true]`.
    pub deprecated: bool,
    /// First protocol version that has it (0 until [`Model::date`]).
    pub since: u32,
    /// 1-based source line (0: unknown).
    pub line: i32,
}

/// What one value of a field holds, as the encoding policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A scalar.
    Scalar(Scalar),
    /// `bytes payload` / `bytes info`, singular: a value of the JSON data
    /// model, canonical MessagePack bytes on the wire (ENC-PAYLOAD).
    Payload,
    /// An enum: its name in JSON and MessagePack, its number in Protobuf.
    Enum(TypeRef),
    /// A message.
    Message(TypeRef),
}

/// A proto scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bool,
    Int32,
    Sint32,
    Sfixed32,
    Uint32,
    Fixed32,
    Int64,
    Sint64,
    Sfixed64,
    Uint64,
    Fixed64,
    Double,
    Float,
    Bytes,
}

/// A field's cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// Plain proto3 field (or oneof member): the default is omitted on the wire.
    Singular,
    /// proto3 `optional`: presence is tracked, a set 0 is written.
    Optional,
    /// `repeated`: a list, omitted when empty.
    Repeated,
    /// `map<K, V>` with this key type; [`Field::value`] is the value's.
    Map(Scalar),
}

/// A reference to a message or enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    /// Where the type is declared.
    pub scope: Scope,
    /// Its own name.
    pub name: String,
}

impl TypeRef {
    /// The name inside its package, enclosing messages joined by `sep`
    /// (`Outer.Inner`, `Outer_Inner`).
    pub fn nested_name(&self, sep: &str) -> String {
        nested_name(&self.scope, &self.name, sep)
    }
}

/// An enum.
#[derive(Debug, Clone)]
pub struct Enum {
    /// Its own name.
    pub name: String,
    /// Where it is declared.
    pub scope: Scope,
    /// The file that declares it.
    pub file: String,
    /// Its leading comment.
    pub doc: String,
    /// First protocol version that has it (0 until [`Model::date`]).
    pub since: u32,
    /// 1-based source line (0: unknown).
    pub line: i32,
    /// Its `reserved` numbers and names.
    pub reserved: Reserved,
    /// Values in declaration order.
    pub values: Vec<EnumValue>,
}

/// One enum value.
#[derive(Debug, Clone)]
pub struct EnumValue {
    pub name: String,
    pub number: i32,
    pub doc: String,
    pub deprecated: bool,
    pub since: u32,
    /// 1-based source line (0: unknown).
    pub line: i32,
}

impl Model {
    /// Reads every file of `fds`.
    pub fn new(fds: &FileDescriptorSet) -> Result<Model, Unsupported> {
        let mut packages: Vec<String> = Vec::new();
        for f in &fds.file {
            if !packages.iter().any(|p| p == f.package()) {
                packages.push(f.package().to_string());
            }
        }
        let files = fds
            .file
            .iter()
            .map(|file| {
                let cx = FileCx {
                    file,
                    packages: &packages,
                };
                let top = Scope {
                    package: file.package().to_string(),
                    messages: vec![],
                };
                Ok(File {
                    name: file.name().to_string(),
                    package: file.package().to_string(),
                    messages: (file.message_type.iter().enumerate())
                        .map(|(i, m)| cx.message(m, &top, &[FILE_MESSAGE, i as i32]))
                        .collect::<Result<_, _>>()?,
                    enums: (file.enum_type.iter().enumerate())
                        .map(|(i, e)| cx.enumeration(e, &top, &[FILE_ENUM, i as i32]))
                        .collect(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Model { packages, files })
    }

    /// The files of `package`, in the set's order.
    pub fn files_of<'a>(&'a self, package: &'a str) -> impl Iterator<Item = &'a File> + 'a {
        self.files.iter().filter(move |f| f.package == package)
    }

    /// Every message, each before its nested ones, in file order.
    pub fn messages(&self) -> Vec<&Message> {
        let mut out = Vec::new();
        for m in self.files.iter().flat_map(|f| &f.messages) {
            m.walk(&mut out);
        }
        out
    }

    /// Every enum: each file's top-level ones, then the nested ones.
    pub fn enums(&self) -> Vec<&Enum> {
        let top = self.files.iter().flat_map(|f| &f.enums);
        let nested = self.messages().into_iter().flat_map(|m| &m.enums);
        top.chain(nested).collect()
    }

    /// The enum `r` refers to.
    pub fn enumeration(&self, r: &TypeRef) -> Option<&Enum> {
        (self.enums().into_iter()).find(|e| e.scope == r.scope && e.name == r.name)
    }

    /// Dates every element: those of `older` (the previous protocol
    /// version, compared by package-relative name, and fields and values by
    /// name and number) keep its `since`, the rest are new in `version`.
    pub fn date(&mut self, version: u32, older: Option<&Model>) {
        let old_messages = older.map(Model::messages).unwrap_or_default();
        let old_enums = older.map(Model::enums).unwrap_or_default();
        let mut stack: Vec<&mut Message> = Vec::new();
        for file in &mut self.files {
            stack.extend(file.messages.iter_mut());
            for e in &mut file.enums {
                date_enum(e, version, &old_enums);
            }
        }
        while let Some(m) = stack.pop() {
            let name = nested_name(&m.scope, &m.name, ".");
            let old = (old_messages.iter()).find(|o| nested_name(&o.scope, &o.name, ".") == name);
            m.since = old.map_or(version, |o| o.since);
            for f in &mut m.fields {
                let of = old.and_then(|o| {
                    (o.fields.iter()).find(|of| of.number == f.number && of.name == f.name)
                });
                f.since = of.map_or(version, |of| of.since);
            }
            for e in &mut m.enums {
                date_enum(e, version, &old_enums);
            }
            stack.extend(m.messages.iter_mut());
        }
    }
}

fn date_enum(e: &mut Enum, version: u32, old_enums: &[&Enum]) {
    let name = nested_name(&e.scope, &e.name, ".");
    let old = (old_enums.iter()).find(|o| nested_name(&o.scope, &o.name, ".") == name);
    e.since = old.map_or(version, |o| o.since);
    for v in &mut e.values {
        let ov = old
            .and_then(|o| (o.values.iter()).find(|ov| ov.number == v.number && ov.name == v.name));
        v.since = ov.map_or(version, |ov| ov.since);
    }
}

impl Message {
    fn walk<'a>(&'a self, out: &mut Vec<&'a Message>) {
        out.push(self);
        for n in &self.messages {
            n.walk(out);
        }
    }

    /// `package.Outer.Inner`.
    pub fn full_name(&self) -> String {
        self.scope.fq(&self.name)[1..].to_string()
    }

    /// The scope of the items nested in this message.
    pub fn inner(&self) -> Scope {
        let mut inner = self.scope.clone();
        inner.messages.push(self.name.clone());
        inner
    }

    /// Whether this is a Courier version's `Envelope`, whose `body` oneof
    /// is the flat, `type`-tagged union (ENC-JSON-FLAT).
    pub fn is_envelope(&self) -> bool {
        self.scope.messages.is_empty()
            && crate::is_courier_package(&self.scope.package)
            && self.name == "Envelope"
    }

    /// The fields outside oneofs, in declaration order.
    pub fn plain_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.oneof.is_none())
    }

    /// The members of oneof `index`, in declaration order.
    pub fn members(&self, index: usize) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(move |f| f.oneof == Some(index))
    }
}

impl Enum {
    /// The default value's name: the value numbered 0 (proto3 requires it
    /// first; the first value otherwise).
    pub fn zero(&self) -> &str {
        let zero = self.values.iter().find(|v| v.number == 0);
        zero.or(self.values.first()).map_or("", |v| v.name.as_str())
    }
}

impl Scalar {
    /// The scalar of a proto type; `None` for enums, messages and groups.
    pub fn of(t: Type) -> Option<Scalar> {
        Some(match t {
            Type::String => Scalar::String,
            Type::Bool => Scalar::Bool,
            Type::Int32 => Scalar::Int32,
            Type::Sint32 => Scalar::Sint32,
            Type::Sfixed32 => Scalar::Sfixed32,
            Type::Uint32 => Scalar::Uint32,
            Type::Fixed32 => Scalar::Fixed32,
            Type::Int64 => Scalar::Int64,
            Type::Sint64 => Scalar::Sint64,
            Type::Sfixed64 => Scalar::Sfixed64,
            Type::Uint64 => Scalar::Uint64,
            Type::Fixed64 => Scalar::Fixed64,
            Type::Double => Scalar::Double,
            Type::Float => Scalar::Float,
            Type::Bytes => Scalar::Bytes,
            Type::Enum | Type::Message | Type::Group => return None,
        })
    }

    /// The type as written in a `.proto` (`uint64`).
    pub fn proto_name(self) -> &'static str {
        match self {
            Scalar::String => "string",
            Scalar::Bool => "bool",
            Scalar::Int32 => "int32",
            Scalar::Sint32 => "sint32",
            Scalar::Sfixed32 => "sfixed32",
            Scalar::Uint32 => "uint32",
            Scalar::Fixed32 => "fixed32",
            Scalar::Int64 => "int64",
            Scalar::Sint64 => "sint64",
            Scalar::Sfixed64 => "sfixed64",
            Scalar::Uint64 => "uint64",
            Scalar::Fixed64 => "fixed64",
            Scalar::Double => "double",
            Scalar::Float => "float",
            Scalar::Bytes => "bytes",
        }
    }

    /// A signed 64-bit integer, checked against ±(2^53−1) (ENC-INT53).
    pub fn is_i64(self) -> bool {
        matches!(self, Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64)
    }

    /// An unsigned 64-bit integer, checked against 2^53−1 (ENC-INT53).
    pub fn is_u64(self) -> bool {
        matches!(self, Scalar::Uint64 | Scalar::Fixed64)
    }
}

/// `Outer{sep}Inner{sep}name`.
fn nested_name(scope: &Scope, name: &str, sep: &str) -> String {
    let mut parts: Vec<&str> = scope.messages.iter().map(String::as_str).collect();
    parts.push(name);
    parts.join(sep)
}

struct FileCx<'a> {
    file: &'a FileDescriptorProto,
    packages: &'a [String],
}

impl FileCx<'_> {
    /// The leading comment at `path`, one line per line, trimmed.
    fn doc(&self, path: &[i32]) -> String {
        let Some(loc) = self.location(path) else {
            return String::new();
        };
        let lines: Vec<&str> = (loc.leading_comments().lines())
            .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
            .collect();
        let start = lines.iter().position(|l| !l.is_empty());
        let start = start.unwrap_or(lines.len());
        let end = lines.iter().rposition(|l| !l.is_empty());
        lines[start..end.map_or(start, |e| e + 1)].join("\n")
    }

    /// The 1-based line of the element at `path` (0 when unknown).
    fn line(&self, path: &[i32]) -> i32 {
        (self.location(path).and_then(|l| l.span.first())).map_or(0, |l| l + 1)
    }

    /// The source location of the element at `path`.
    fn location(&self, path: &[i32]) -> Option<&prost_types::source_code_info::Location> {
        let info = self.file.source_code_info.as_ref()?;
        info.location.iter().find(|l| l.path == path)
    }

    fn enumeration(&self, e: &EnumDescriptorProto, scope: &Scope, path: &[i32]) -> Enum {
        Enum {
            name: e.name().to_string(),
            scope: scope.clone(),
            file: self.file.name().to_string(),
            doc: self.doc(path),
            since: 0,
            line: self.line(path),
            // EnumReservedRange is end-inclusive.
            reserved: Reserved {
                numbers: (e.reserved_range.iter().map(|r| (r.start(), r.end()))).collect(),
                names: e.reserved_name.clone(),
            },
            values: (e.value.iter().enumerate())
                .map(|(i, v)| EnumValue {
                    name: v.name().to_string(),
                    number: v.number(),
                    doc: self.doc(&[path, &[ENUM_VALUE, i as i32]].concat()),
                    deprecated: v.options.as_ref().is_some_and(|o| o.deprecated()),
                    since: 0,
                    line: self.line(&[path, &[ENUM_VALUE, i as i32]].concat()),
                })
                .collect(),
        }
    }

    fn message(
        &self,
        m: &DescriptorProto,
        scope: &Scope,
        path: &[i32],
    ) -> Result<Message, Unsupported> {
        let mut msg = Message {
            name: m.name().to_string(),
            scope: scope.clone(),
            file: self.file.name().to_string(),
            doc: self.doc(path),
            deprecated: m.options.as_ref().is_some_and(|o| o.deprecated()),
            since: 0,
            line: self.line(path),
            // DescriptorProto's ReservedRange is end-exclusive.
            reserved: Reserved {
                numbers: (m.reserved_range.iter().map(|r| (r.start(), r.end() - 1))).collect(),
                names: m.reserved_name.clone(),
            },
            fields: vec![],
            oneofs: vec![],
            messages: vec![],
            enums: vec![],
        };
        let inner = msg.inner();
        // Real oneofs, renumbered without the synthetic ones.
        let mut oneof_index: Vec<Option<usize>> = vec![None; m.oneof_decl.len()];
        for (i, decl) in m.oneof_decl.iter().enumerate() {
            let real =
                (m.field.iter()).any(|f| f.oneof_index == Some(i as i32) && !f.proto3_optional());
            if real {
                oneof_index[i] = Some(msg.oneofs.len());
                msg.oneofs.push(Oneof {
                    name: decl.name().to_string(),
                    doc: self.doc(&[path, &[MSG_ONEOF, i as i32]].concat()),
                });
            }
        }
        for (i, f) in m.field.iter().enumerate() {
            let item = || format!("{}.{}", msg.full_name(), f.name());
            let (value, card) = match map_entry(m, f) {
                Some(entry) => {
                    let (key, value) = (entry_field(entry, 1), entry_field(entry, 2));
                    let key = Scalar::of(key.r#type()).ok_or_else(|| Unsupported {
                        file: self.file.name().to_string(),
                        item: item(),
                        what: "a map key of this type".into(),
                    })?;
                    (self.value(value, false, &item)?, Cardinality::Map(key))
                }
                None if f.label() == Label::Repeated => {
                    (self.value(f, false, &item)?, Cardinality::Repeated)
                }
                None if f.proto3_optional() => (self.value(f, true, &item)?, Cardinality::Optional),
                None => (self.value(f, true, &item)?, Cardinality::Singular),
            };
            msg.fields.push(Field {
                name: f.name().to_string(),
                json_name: f.json_name().to_string(),
                number: f.number(),
                value,
                card,
                oneof: f.oneof_index.and_then(|o| oneof_index[o as usize]),
                doc: self.doc(&[path, &[MSG_FIELD, i as i32]].concat()),
                deprecated: f.options.as_ref().is_some_and(|o| o.deprecated()),
                since: 0,
                line: self.line(&[path, &[MSG_FIELD, i as i32]].concat()),
            });
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            if !is_map_entry(n) {
                let npath = [path, &[MSG_NESTED, i as i32]].concat();
                msg.messages.push(self.message(n, &inner, &npath)?);
            }
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            let epath = [path, &[MSG_ENUM, i as i32]].concat();
            msg.enums.push(self.enumeration(e, &inner, &epath));
        }
        Ok(msg)
    }

    /// What one value of `f` holds; `payload_ok`: a `bytes payload`/`info`
    /// here is a payload (not in lists or map values).
    fn value(
        &self,
        f: &FieldDescriptorProto,
        payload_ok: bool,
        item: &dyn Fn() -> String,
    ) -> Result<Value, Unsupported> {
        let type_ref = || {
            let (scope, name) = Scope::split(f.type_name(), self.packages);
            TypeRef { scope, name }
        };
        Ok(match f.r#type() {
            Type::Bytes if payload_ok && PAYLOAD_FIELDS.contains(&f.name()) => Value::Payload,
            Type::Enum => Value::Enum(type_ref()),
            Type::Message => Value::Message(type_ref()),
            Type::Group => {
                return Err(Unsupported {
                    file: self.file.name().to_string(),
                    item: item(),
                    what: "a proto2 group".into(),
                })
            }
            t => Value::Scalar(Scalar::of(t).expect("every other type is a scalar")),
        })
    }
}

fn is_map_entry(m: &DescriptorProto) -> bool {
    m.options.as_ref().is_some_and(|o| o.map_entry())
}

/// The map entry message of `f` when `f` is a map field of `m` (entries are
/// nested in `m` itself, so the last name segment finds it).
fn map_entry<'m>(m: &'m DescriptorProto, f: &FieldDescriptorProto) -> Option<&'m DescriptorProto> {
    if f.label() != Label::Repeated || f.r#type() != Type::Message {
        return None;
    }
    let entry = f.type_name().rsplit('.').next().unwrap_or_default();
    (m.nested_type.iter()).find(|n| n.name() == entry && is_map_entry(n))
}

/// Field `number` (1 = key, 2 = value) of a map entry.
fn entry_field(entry: &DescriptorProto, number: i32) -> &FieldDescriptorProto {
    (entry.field.iter())
        .find(|f| f.number() == number)
        .expect("map entries have a key and a value field")
}
