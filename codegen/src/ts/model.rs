//! What the TypeScript templates need to know, read from descriptors:
//! packages, enums, messages and fields with their encoding-relevant kind,
//! comments, and the envelope's `type` variants.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet, SourceCodeInfo,
};

use super::TsError;
use crate::policy::PAYLOAD_FIELDS;

/// A proto scalar type, as far as the encodings care.
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

/// A reference to a generated type: its package and TypeScript name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    pub package: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Scalar(Scalar),
    /// `bytes payload` / `bytes info`: a JSON-model value (ENC-PAYLOAD).
    Payload,
    /// An enum, with the name of its zero value (the default).
    Enum(TypeRef, String),
    Message(TypeRef),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// Plain proto3 field: the default is omitted on the wire.
    Singular,
    /// proto3 `optional`: presence is tracked, a set 0 is written.
    Optional,
    Repeated,
    /// `map<K, V>` with this key type; the field's kind is the value's.
    Map(Scalar),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub number: i32,
    pub doc: String,
    pub kind: Kind,
    pub card: Cardinality,
}

/// A (non-envelope) `oneof`: an object under its name holding one member.
#[derive(Debug, Clone)]
pub struct Oneof {
    /// The proto name, which is the member name in the data model.
    pub name: String,
    /// TypeScript name of its type (`Outer_Body`).
    pub ts_name: String,
    pub doc: String,
    /// Members, singular fields, in declaration order.
    pub members: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Message {
    /// TypeScript name (`Outer_Inner` for nested messages).
    pub name: String,
    pub doc: String,
    /// Fields outside oneofs, in declaration order.
    pub fields: Vec<Field>,
    /// Oneofs in declaration order (written after the fields, as prost's struct orders them).
    pub oneofs: Vec<Oneof>,
    /// For the envelope: the oneof members, which become the `type` union.
    pub envelope: Option<Vec<Field>>,
}

#[derive(Debug, Clone)]
pub struct EnumValue {
    pub name: String,
    pub number: i32,
    pub doc: String,
}

#[derive(Debug, Clone)]
pub struct Enum {
    pub name: String,
    pub doc: String,
    pub values: Vec<EnumValue>,
}

#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub enums: Vec<Enum>,
    pub messages: Vec<Message>,
}

/// Builds the model of `packages` (in that order) from `fds`.
pub fn build(fds: &FileDescriptorSet, packages: &[String]) -> Result<Vec<Package>, TsError> {
    let all: Vec<String> = fds.file.iter().map(|f| f.package().to_string()).collect();
    let mut out = Vec::new();
    for package in packages {
        let mut pkg = Package {
            name: package.clone(),
            enums: vec![],
            messages: vec![],
        };
        for file in fds.file.iter().filter(|f| f.package() == package) {
            let cx = FileCx { file, all: &all };
            for (i, e) in file.enum_type.iter().enumerate() {
                pkg.enums.push(cx.enumeration(e, "", &[5, i as i32]));
            }
            for (i, m) in file.message_type.iter().enumerate() {
                cx.message(m, "", &[4, i as i32], &mut pkg)?;
            }
        }
        out.push(pkg);
    }
    resolve_enum_defaults(&mut out);
    Ok(out)
}

struct FileCx<'a> {
    file: &'a FileDescriptorProto,
    all: &'a [String],
}

impl FileCx<'_> {
    fn doc(&self, path: &[i32]) -> String {
        doc_at(self.file.source_code_info.as_ref(), path)
    }

    fn enumeration(&self, e: &EnumDescriptorProto, prefix: &str, path: &[i32]) -> Enum {
        let values = e
            .value
            .iter()
            .enumerate()
            .map(|(i, v)| EnumValue {
                name: v.name().to_string(),
                number: v.number(),
                doc: self.doc(&[path, &[2, i as i32]].concat()),
            })
            .collect();
        Enum {
            name: format!("{prefix}{}", e.name()),
            doc: self.doc(path),
            values,
        }
    }

    fn message(
        &self,
        m: &DescriptorProto,
        prefix: &str,
        path: &[i32],
        pkg: &mut Package,
    ) -> Result<(), TsError> {
        let name = format!("{prefix}{}", m.name());
        let fq = format!("{}.{name}", self.file.package());
        if is_map_entry(m) {
            return Ok(());
        }
        let envelope_msg = self.file.package().starts_with("courier.v")
            && prefix.is_empty()
            && m.name() == "Envelope";
        let mut fields = Vec::new();
        let mut variants = Vec::new();
        let mut oneofs: Vec<Oneof> = Vec::new();
        for (i, f) in m.field.iter().enumerate() {
            let oneof = f.oneof_index.filter(|_| !f.proto3_optional());
            let card = if let Some(entry) = map_entry(m, f) {
                let key = entry_field(entry, 1);
                match scalar(key.r#type()) {
                    Some(k) => Cardinality::Map(k),
                    None => return Err(unsupported(&fq, f, "a map key of this type")),
                }
            } else if f.label() == Label::Repeated {
                Cardinality::Repeated
            } else if f.proto3_optional() {
                Cardinality::Optional
            } else {
                Cardinality::Singular
            };
            let kind = match card {
                Cardinality::Map(_) => {
                    let entry = map_entry(m, f).expect("checked above");
                    self.kind(&fq, entry_field(entry, 2), false)?
                }
                _ => self.kind(&fq, f, card != Cardinality::Repeated)?,
            };
            let field = Field {
                name: f.name().to_string(),
                number: f.number(),
                doc: self.doc(&[path, &[2, i as i32]].concat()),
                kind,
                card,
            };
            match oneof {
                Some(_) if envelope_msg => variants.push(field),
                Some(index) => {
                    let decl = &m.oneof_decl[index as usize];
                    match oneofs.iter_mut().find(|o| o.name == decl.name()) {
                        Some(o) => o.members.push(field),
                        None => {
                            let pascal = pascal(decl.name());
                            // A nested type of the same name keeps its name; the oneof's type
                            // moves aside.
                            let taken = m.nested_type.iter().any(|n| n.name() == pascal)
                                || m.enum_type.iter().any(|e| e.name() == pascal);
                            oneofs.push(Oneof {
                                name: decl.name().to_string(),
                                ts_name: format!(
                                    "{name}_{pascal}{}",
                                    if taken { "Oneof" } else { "" }
                                ),
                                doc: self.doc(&[path, &[8, index]].concat()),
                                members: vec![field],
                            });
                        }
                    }
                }
                None => fields.push(field),
            }
        }
        pkg.messages.push(Message {
            name: name.clone(),
            doc: self.doc(path),
            fields,
            oneofs,
            envelope: envelope_msg.then_some(variants),
        });
        for (i, e) in m.enum_type.iter().enumerate() {
            pkg.enums.push(self.enumeration(
                e,
                &format!("{name}_"),
                &[path, &[4, i as i32]].concat(),
            ));
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            self.message(
                n,
                &format!("{name}_"),
                &[path, &[3, i as i32]].concat(),
                pkg,
            )?;
        }
        Ok(())
    }

    /// The encoding-relevant kind of field `f` of message `fq`. `payload_ok`: a
    /// `bytes payload`/`info` here is a payload (not in lists or map values).
    fn kind(&self, fq: &str, f: &FieldDescriptorProto, payload_ok: bool) -> Result<Kind, TsError> {
        Ok(match f.r#type() {
            Type::Bytes if payload_ok && PAYLOAD_FIELDS.contains(&f.name()) => Kind::Payload,
            Type::Enum => Kind::Enum(self.type_ref(f.type_name()), String::new()),
            Type::Message => Kind::Message(self.type_ref(f.type_name())),
            Type::Group => return Err(unsupported(fq, f, "a proto2 group")),
            t => Kind::Scalar(scalar(t).expect("every other type is a scalar")),
        })
    }

    /// `.pkg.Outer.Inner` → package `pkg`, TypeScript name `Outer_Inner`.
    fn type_ref(&self, fq: &str) -> TypeRef {
        let fq = fq.trim_start_matches('.');
        let package = self
            .all
            .iter()
            .filter(|p| fq.starts_with(p.as_str()) && fq[p.len()..].starts_with('.'))
            .max_by_key(|p| p.len())
            .cloned()
            .unwrap_or_default();
        let rest = if package.is_empty() {
            fq
        } else {
            &fq[package.len() + 1..]
        };
        TypeRef {
            package,
            name: rest.replace('.', "_"),
        }
    }
}

fn unsupported(fq: &str, f: &FieldDescriptorProto, what: &str) -> TsError {
    TsError::Unsupported {
        item: format!("{fq}.{}", f.name()),
        what: what.into(),
    }
}

/// The scalar of a proto type; `None` for enums, messages and groups.
fn scalar(t: Type) -> Option<Scalar> {
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

fn is_map_entry(m: &DescriptorProto) -> bool {
    m.options
        .as_ref()
        .and_then(|o| o.map_entry)
        .unwrap_or(false)
}

/// The map entry message of `f` when `f` is a map field of `m` (entries are
/// nested in `m` itself, so the last name segment finds it).
fn map_entry<'m>(m: &'m DescriptorProto, f: &FieldDescriptorProto) -> Option<&'m DescriptorProto> {
    if f.label() != Label::Repeated || f.r#type() != Type::Message {
        return None;
    }
    let entry = f.type_name().rsplit('.').next().unwrap_or_default();
    m.nested_type
        .iter()
        .find(|n| n.name() == entry && is_map_entry(n))
}

/// Field `number` (1 = key, 2 = value) of a map entry.
fn entry_field(entry: &DescriptorProto, number: i32) -> &FieldDescriptorProto {
    entry
        .field
        .iter()
        .find(|f| f.number() == number)
        .expect("map entries have a key and a value field")
}

/// `snake_case` → `PascalCase`, for type names made from field names.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|first| first.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// Fills in the zero value of every enum-typed field (needs all packages).
fn resolve_enum_defaults(packages: &mut [Package]) {
    let zeros: Vec<(String, String, String)> = packages
        .iter()
        .flat_map(|p| {
            p.enums.iter().map(move |e| {
                let zero = e.values.iter().find(|v| v.number == 0).or(e.values.first());
                (
                    p.name.clone(),
                    e.name.clone(),
                    zero.map(|v| v.name.clone()).unwrap_or_default(),
                )
            })
        })
        .collect();
    for p in packages.iter_mut() {
        for m in p.messages.iter_mut() {
            let members = m.oneofs.iter_mut().flat_map(|o| o.members.iter_mut());
            for f in m.fields.iter_mut().chain(members) {
                if let Kind::Enum(r, zero) = &mut f.kind {
                    if let Some((_, _, z)) = zeros
                        .iter()
                        .find(|(pk, n, _)| *pk == r.package && *n == r.name)
                    {
                        *zero = z.clone();
                    }
                }
            }
        }
    }
}

/// The leading comment of the item at `path`, trimmed, one line per line.
fn doc_at(info: Option<&SourceCodeInfo>, path: &[i32]) -> String {
    let Some(info) = info else {
        return String::new();
    };
    let Some(loc) = info.location.iter().find(|l| l.path == path) else {
        return String::new();
    };
    let text = loc.leading_comments();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect();
    let start = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(start, |e| e + 1);
    lines[start..end].join("\n")
}
