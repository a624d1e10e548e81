//! The part of a descriptor set that compatibility depends on: messages and
//! enums by name (package-relative when each side is one package, so
//! `courier.v1` compares with `courier.v2`), fields with number, name,
//! type, label, oneof and map shape, reserved numbers and names, and the
//! source line of each element.

use std::collections::{BTreeMap, HashMap};

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};

/// What a field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A scalar type.
    Scalar(Type),
    /// A message, by (normalised) name.
    Message(String),
    /// An enum, by (normalised) name.
    Enum(String),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Scalar(t) => f.write_str(&t.as_str_name()["TYPE_".len()..].to_ascii_lowercase()),
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
    pub reserved_numbers: Vec<(i32, i32)>,
    pub reserved_names: Vec<String>,
    pub loc: Loc,
}

impl Message {
    pub fn by_number(&self, n: i32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == n)
    }
    pub fn by_name(&self, n: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == n)
    }
    pub fn reserves_number(&self, n: i32) -> bool {
        // DescriptorProto reserved ranges are end-exclusive.
        self.reserved_numbers.iter().any(|&(a, b)| a <= n && n < b)
    }
}

#[derive(Debug, Clone)]
pub struct Enum {
    /// `(name, number, location)` in declaration order.
    pub values: Vec<(String, i32, Loc)>,
    pub reserved_numbers: Vec<(i32, i32)>,
    pub reserved_names: Vec<String>,
    pub loc: Loc,
}

impl Enum {
    pub fn reserves_number(&self, n: i32) -> bool {
        // EnumReservedRange is end-inclusive.
        self.reserved_numbers.iter().any(|&(a, b)| a <= n && n <= b)
    }
}

/// One side of the comparison.
#[derive(Debug, Default)]
pub struct Schema {
    pub messages: BTreeMap<String, Message>,
    pub enums: BTreeMap<String, Enum>,
}

/// Builds the model from `files` (only those the user named), naming
/// elements relative to their package when `strip_package` is set.
/// `display` maps a descriptor file name to the path shown in reports.
pub fn build(
    files: &[&FileDescriptorProto],
    strip_package: bool,
    display: &dyn Fn(&str) -> String,
) -> Schema {
    let mut schema = Schema::default();
    // Map-entry message names, to recognise `map<K, V>` fields.
    let mut map_entries: HashMap<String, (Kind, Kind)> = HashMap::new();
    let norm = |pkg: &str, full: &str| -> String {
        let full = full.trim_start_matches('.');
        if strip_package && !pkg.is_empty() {
            if let Some(rest) = full.strip_prefix(pkg).and_then(|r| r.strip_prefix('.')) {
                return rest.to_string();
            }
        }
        full.to_string()
    };
    for file in files {
        let pkg = file.package();
        let lines: HashMap<Vec<i32>, i32> = file
            .source_code_info
            .iter()
            .flat_map(|s| &s.location)
            .filter_map(|l| Some((l.path.clone(), *l.span.first()? + 1)))
            .collect();
        let ctx = Ctx {
            pkg,
            file: display(file.name()),
            lines: &lines,
            norm: &norm,
        };
        for (i, m) in file.message_type.iter().enumerate() {
            collect_entries(&ctx, &format!("{pkg}.{}", m.name()), m, &mut map_entries);
            ctx.message(
                &format!("{pkg}.{}", m.name()),
                m,
                vec![4, i as i32],
                &mut schema,
            );
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            ctx.enumeration(
                &format!("{pkg}.{}", e.name()),
                e,
                vec![5, i as i32],
                &mut schema,
            );
        }
    }
    // Second pass: mark map fields and drop the entry messages.
    for (name, (k, v)) in &map_entries {
        schema.messages.remove(name);
        for m in schema.messages.values_mut() {
            for f in &mut m.fields {
                if f.kind == Kind::Message(name.clone()) && f.repeated {
                    f.map = Some((k.clone(), v.clone()));
                }
            }
        }
    }
    schema
}

struct Ctx<'a> {
    pkg: &'a str,
    file: String,
    lines: &'a HashMap<Vec<i32>, i32>,
    norm: &'a dyn Fn(&str, &str) -> String,
}

fn collect_entries(
    ctx: &Ctx<'_>,
    full: &str,
    m: &DescriptorProto,
    out: &mut HashMap<String, (Kind, Kind)>,
) {
    for n in &m.nested_type {
        let name = format!("{full}.{}", n.name());
        if n.options.as_ref().is_some_and(|o| o.map_entry()) && n.field.len() == 2 {
            out.insert(
                (ctx.norm)(ctx.pkg, &name),
                (ctx.kind(&n.field[0]), ctx.kind(&n.field[1])),
            );
        }
        collect_entries(ctx, &name, n, out);
    }
}

impl Ctx<'_> {
    fn loc(&self, path: &[i32]) -> Loc {
        Loc {
            file: self.file.clone(),
            line: self.lines.get(path).copied().unwrap_or(0),
        }
    }

    fn kind(&self, f: &prost_types::FieldDescriptorProto) -> Kind {
        match f.r#type() {
            Type::Message | Type::Group => Kind::Message((self.norm)(self.pkg, f.type_name())),
            Type::Enum => Kind::Enum((self.norm)(self.pkg, f.type_name())),
            t => Kind::Scalar(t),
        }
    }

    fn message(&self, full: &str, m: &DescriptorProto, path: Vec<i32>, out: &mut Schema) {
        let real_oneof =
            |f: &prost_types::FieldDescriptorProto| f.oneof_index.filter(|_| !f.proto3_optional());
        let fields = m
            .field
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let mut p = path.clone();
                p.extend([2, j as i32]);
                Field {
                    name: f.name().to_string(),
                    number: f.number(),
                    kind: self.kind(f),
                    repeated: f.label() == Label::Repeated,
                    oneof: real_oneof(f).map(|i| {
                        let members = m.field.iter().filter(|g| real_oneof(g) == Some(i)).count();
                        let name = m.oneof_decl.get(i as usize).map_or("?", |o| o.name());
                        (name.to_string(), members)
                    }),
                    map: None,
                    loc: self.loc(&p),
                }
            })
            .collect();
        out.messages.insert(
            (self.norm)(self.pkg, full),
            Message {
                fields,
                reserved_numbers: m
                    .reserved_range
                    .iter()
                    .map(|r| (r.start(), r.end()))
                    .collect(),
                reserved_names: m.reserved_name.clone(),
                loc: self.loc(&path),
            },
        );
        for (k, n) in m.nested_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([3, k as i32]);
            self.message(&format!("{full}.{}", n.name()), n, p, out);
        }
        for (k, e) in m.enum_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([4, k as i32]);
            self.enumeration(&format!("{full}.{}", e.name()), e, p, out);
        }
    }

    fn enumeration(&self, full: &str, e: &EnumDescriptorProto, path: Vec<i32>, out: &mut Schema) {
        let values = e
            .value
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let mut p = path.clone();
                p.extend([2, j as i32]);
                (v.name().to_string(), v.number(), self.loc(&p))
            })
            .collect();
        out.enums.insert(
            (self.norm)(self.pkg, full),
            Enum {
                values,
                reserved_numbers: e
                    .reserved_range
                    .iter()
                    .map(|r| (r.start(), r.end()))
                    .collect(),
                reserved_names: e.reserved_name.clone(),
                loc: self.loc(&path),
            },
        );
    }
}
