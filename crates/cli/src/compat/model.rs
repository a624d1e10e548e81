//! The part of a descriptor set that compatibility depends on: messages and
//! enums by name (package-relative when each side is one package, so
//! `courier.v1` compares with `courier.v2`), fields with number, name,
//! type, label, oneof and map shape, reserved numbers and names, and the
//! source line of each element. A projection of courier-codegen's one model
//! of the definitions (`courier_codegen::model`), which reads the
//! descriptors.

use std::collections::BTreeMap;

use courier_codegen::model::{self as defs, Cardinality, Reserved, Scalar, Value};

/// What a field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A scalar type (a payload is `bytes` here).
    Scalar(Scalar),
    /// A message, by (normalised) name.
    Message(String),
    /// An enum, by (normalised) name.
    Enum(String),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Scalar(t) => f.write_str(t.proto_name()),
            Kind::Message(n) | Kind::Enum(n) => f.write_str(n),
        }
    }
}

/// Where an element is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// The file, as the user named it (`old/chat.proto`).
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: i32,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub number: i32,
    pub kind: Kind,
    pub repeated: bool,
    /// The real oneof (not proto3 `optional`'s synthetic one) and how many
    /// members it has.
    pub oneof: Option<(String, usize)>,
    /// `map<K, V>`: key and value kinds.
    pub map: Option<(Kind, Kind)>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub fields: Vec<Field>,
    pub reserved: Reserved,
    pub loc: Loc,
}

impl Message {
    pub fn by_number(&self, n: i32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == n)
    }
    pub fn by_name(&self, n: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == n)
    }
}

#[derive(Debug, Clone)]
pub struct Enum {
    /// `(name, number, location)` in declaration order.
    pub values: Vec<(String, i32, Loc)>,
    pub reserved: Reserved,
    pub loc: Loc,
}

/// One side of the comparison.
#[derive(Debug, Default)]
pub struct Schema {
    pub messages: BTreeMap<String, Message>,
    pub enums: BTreeMap<String, Enum>,
}

/// Builds the schema of the files of `model` named in `files` (only those
/// the user named), naming elements relative to their package when
/// `strip_package` is set. `display` maps a descriptor file name to the
/// path shown in reports.
pub fn build(
    model: &defs::Model,
    files: &dyn Fn(&str) -> bool,
    strip_package: bool,
    display: &dyn Fn(&str) -> String,
) -> Schema {
    let mut schema = Schema::default();
    for file in model.files.iter().filter(|f| files(&f.name)) {
        let cx = Cx {
            pkg: &file.package,
            file: display(&file.name),
            strip: strip_package && !file.package.is_empty(),
        };
        for m in &file.messages {
            cx.message(m, &mut schema);
        }
        for e in &file.enums {
            cx.enumeration(e, &mut schema);
        }
    }
    schema
}

struct Cx<'a> {
    pkg: &'a str,
    file: String,
    strip: bool,
}

impl Cx<'_> {
    /// The name compared: package-relative when stripping (the file's own
    /// package only), else fully qualified.
    fn name(&self, scope: &defs::Scope, name: &str) -> String {
        let r = defs::TypeRef {
            scope: scope.clone(),
            name: name.to_string(),
        };
        let inner = r.nested_name(".");
        match scope.package.as_str() {
            "" => inner,
            p if self.strip && p == self.pkg => inner,
            p => format!("{p}.{inner}"),
        }
    }

    fn loc(&self, line: i32) -> Loc {
        Loc {
            file: self.file.clone(),
            line,
        }
    }

    fn kind(&self, value: &Value) -> Kind {
        match value {
            Value::Scalar(s) => Kind::Scalar(*s),
            Value::Payload => Kind::Scalar(Scalar::Bytes),
            Value::Message(r) => Kind::Message(self.name(&r.scope, &r.name)),
            Value::Enum(r) => Kind::Enum(self.name(&r.scope, &r.name)),
        }
    }

    fn message(&self, m: &defs::Message, out: &mut Schema) {
        let fields = (m.fields.iter())
            .map(|f| {
                let kind = self.kind(&f.value);
                let map = match f.card {
                    Cardinality::Map(key) => Some((Kind::Scalar(key), kind.clone())),
                    _ => None,
                };
                Field {
                    name: f.name.clone(),
                    number: f.number,
                    kind,
                    repeated: matches!(f.card, Cardinality::Repeated | Cardinality::Map(_)),
                    oneof: f.oneof.map(|i| {
                        let members = m.members(i).count();
                        (m.oneofs[i].name.clone(), members)
                    }),
                    map,
                    loc: self.loc(f.line),
                }
            })
            .collect();
        out.messages.insert(
            self.name(&m.scope, &m.name),
            Message {
                fields,
                reserved: m.reserved.clone(),
                loc: self.loc(m.line),
            },
        );
        for n in &m.messages {
            self.message(n, out);
        }
        for e in &m.enums {
            self.enumeration(e, out);
        }
    }

    fn enumeration(&self, e: &defs::Enum, out: &mut Schema) {
        let values = (e.values.iter())
            .map(|v| (v.name.clone(), v.number, self.loc(v.line)))
            .collect();
        out.enums.insert(
            self.name(&e.scope, &e.name),
            Enum {
                values,
                reserved: e.reserved.clone(),
                loc: self.loc(e.line),
            },
        );
    }
}
