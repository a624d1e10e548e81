//! The Courier encoding policy (`docs/spec/encoding.md`) turned into serde and
//! schemars attributes on prost-generated types, plus the impls prost does
//! not write: enum names, 53-bit integer checks and payload validation.
//!
//! Everything here is derived from descriptors, so Courier's own types and a
//! user's payload types follow one policy.

use std::fmt::Write as _;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};

use crate::naming::{field_ident, module_ident, rust_path, type_ident, Scope};

/// Field names whose `bytes` hold an application value (JSON data model,
/// MessagePack on the wire) rather than opaque bytes.
pub const PAYLOAD_FIELDS: &[&str] = &["payload", "info"];

/// What the policy needs to know about where the generated code lives.
pub struct Context<'a> {
    /// Path of the runtime module (`crate::wire` or `::courier_protocol::wire`).
    pub rt: &'a str,
    /// Packages being generated (others are imports).
    pub packages: &'a [String],
    /// Every package known, generated or imported.
    pub all_packages: &'a [String],
    /// `extern_path` mappings `(".proto.pkg", "::rust::path")`.
    pub externs: &'a [(String, String)],
    /// Whether to emit the envelope impls (Courier's own packages only).
    pub envelope_impls: bool,
}

/// Attributes to register with prost-build.
#[derive(Default)]
pub struct Attributes {
    /// `(proto path, attribute)` for `message_attribute`.
    pub messages: Vec<(String, String)>,
    /// `(proto path, attribute)` for `enum_attribute` (oneofs).
    pub oneofs: Vec<(String, String)>,
    /// `(proto path, attribute)` for `field_attribute`.
    pub fields: Vec<(String, String)>,
}

fn is_map_entry(m: &DescriptorProto) -> bool {
    m.options
        .as_ref()
        .and_then(|o| o.map_entry)
        .unwrap_or(false)
}

fn is_envelope(scope: &Scope, m: &DescriptorProto) -> bool {
    scope.messages.is_empty() && scope.package.starts_with("courier.") && m.name() == "Envelope"
}

/// Computes every attribute for the messages of `fds` in `ctx.packages`.
pub fn attributes(fds: &FileDescriptorSet, ctx: &Context) -> Attributes {
    let mut out = Attributes::default();
    let rt = ctx.rt;
    for file in fds
        .file
        .iter()
        .filter(|f| ctx.packages.iter().any(|p| p == f.package()))
    {
        let scope = Scope {
            package: file.package().to_string(),
            messages: vec![],
        };
        for m in &file.message_type {
            // Registered on top-level messages only: prost matches paths by
            // prefix, so nested messages inherit these (once).
            if !is_envelope(&scope, m) {
                out.messages.push((
                    scope.fq(m.name()),
                    format!(
                        "#[derive({rt}::serde::Serialize, {rt}::serde::Deserialize, {rt}::schemars::JsonSchema)]\n\
                         #[serde(crate = \"{rt}::serde\", default)]\n#[schemars(crate = \"{rt}::schemars\")]"
                    ),
                ));
            }
            message_fields(m, &scope, ctx, &mut out);
        }
    }
    out
}

fn message_fields(m: &DescriptorProto, scope: &Scope, ctx: &Context, out: &mut Attributes) {
    let rt = ctx.rt;
    let fq = scope.fq(m.name());
    let inner = Scope {
        package: scope.package.clone(),
        messages: scope
            .messages
            .iter()
            .cloned()
            .chain([m.name().to_string()])
            .collect(),
    };
    let envelope = is_envelope(scope, m);
    for (i, oneof) in m.oneof_decl.iter().enumerate() {
        let real = m
            .field
            .iter()
            .any(|f| f.oneof_index == Some(i as i32) && !f.proto3_optional());
        if !real {
            continue;
        }
        let path = format!("{fq}.{}", oneof.name());
        if envelope {
            out.oneofs.push((
                path.clone(),
                format!(
                    "#[derive({rt}::serde::Serialize, {rt}::schemars::JsonSchema)]\n\
                     #[serde(crate = \"{rt}::serde\", tag = \"type\", rename_all = \"snake_case\")]\n\
                     #[schemars(crate = \"{rt}::schemars\")]"
                ),
            ));
        } else {
            out.oneofs.push((
                path.clone(),
                format!(
                    "#[derive({rt}::serde::Serialize, {rt}::serde::Deserialize, {rt}::schemars::JsonSchema)]\n\
                     #[serde(crate = \"{rt}::serde\", rename_all = \"snake_case\")]\n\
                     #[schemars(crate = \"{rt}::schemars\")]"
                ),
            ));
        }
        for f in m.field.iter().filter(|f| f.oneof_index == Some(i as i32)) {
            // Oneof variants live in the message's module (one level down).
            let mut attrs = field_attrs(f, &inner, ctx, true);
            attrs.extend(rename(f.name(), &serde_variant_name(&type_ident(f.name()))));
            for attr in attrs {
                out.fields.push((format!("{path}.{}", f.name()), attr));
            }
        }
    }
    for f in &m.field {
        if f.oneof_index.is_some() && !f.proto3_optional() {
            continue;
        }
        let mut attrs = match map_entry(m, f) {
            Some(entry) => map_attrs(entry, scope, ctx),
            None => field_attrs(f, scope, ctx, false),
        };
        let ident = field_ident(f.name());
        attrs.extend(rename(f.name(), ident.trim_start_matches("r#")));
        for attr in attrs {
            out.fields.push((format!("{fq}.{}", f.name()), attr));
        }
    }
    for nested in m.nested_type.iter().filter(|n| !is_map_entry(n)) {
        message_fields(nested, &inner, ctx, out);
    }
}

const MAX_SAFE: &str = "9007199254740991";

/// ENC-TYPED-PAYLOAD keys members by their proto field names; where the
/// name serde derives from prost's identifier differs (`fooBar` became
/// `foo_bar`, `self` became `self_`), rename it back.
fn rename(proto_name: &str, serde_name: &str) -> Option<String> {
    (proto_name != serde_name).then(|| format!("#[serde(rename = {proto_name:?})]"))
}

/// The name serde's `rename_all = "snake_case"` gives a variant (serde's
/// own rule: `_` before each uppercase letter but the first, lowercased).
fn serde_variant_name(variant: &str) -> String {
    let variant = variant.trim_start_matches("r#");
    let mut out = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.char_indices() {
        if i > 0 && c.is_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The key and value fields of a map entry message (numbers 1 and 2).
fn entry_fields(entry: &DescriptorProto) -> (&FieldDescriptorProto, &FieldDescriptorProto) {
    let by_number = |n| {
        entry
            .field
            .iter()
            .find(|f| f.number() == n)
            .expect("map entries have fields 1 and 2")
    };
    (by_number(1), by_number(2))
}

/// The Rust type prost generates for a scalar proto type (map keys and values).
fn scalar_type(t: Type) -> &'static str {
    match t {
        Type::Double => "f64",
        Type::Float => "f32",
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => "i32",
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => "i64",
        Type::Uint32 | Type::Fixed32 => "u32",
        Type::Uint64 | Type::Fixed64 => "u64",
        Type::Bool => "bool",
        _ => "::std::string::String",
    }
}

/// The attributes of a map field. Every map goes through `wire::maps`:
/// keys are written sorted (prost's maps are `HashMap`s, whose order would
/// change the encoding from run to run) and as strings, values follow the
/// policy of their type (enum names, base64 bytes, 53-bit integers).
fn map_attrs(entry: &DescriptorProto, scope: &Scope, ctx: &Context) -> Vec<String> {
    let rt = ctx.rt;
    let (key, value) = entry_fields(entry);
    let policy = match value.r#type() {
        Type::Enum => Some(format!(
            "{rt}::maps::Enum<{}>",
            enum_path(value, scope, ctx)
        )),
        Type::Bytes => Some(format!("{rt}::maps::Base64")),
        Type::Uint64 | Type::Fixed64 => Some(format!("{rt}::maps::U53")),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => Some(format!("{rt}::maps::I53")),
        _ => None,
    };
    let skip = format!("skip_serializing_if = \"{rt}::is_empty_collection\"");
    let policy = match policy {
        Some(p) => p,
        None if value.r#type() == Type::Message => {
            format!("{rt}::maps::Plain<{}>", enum_path(value, scope, ctx))
        }
        None => format!("{rt}::maps::Plain<{}>", scalar_type(value.r#type())),
    };
    let key_ty = scalar_type(key.r#type());
    vec![
        format!(
            "#[serde({skip}, serialize_with = \"{rt}::maps::serialize::<{policy}, _, _>\", \
             deserialize_with = \"{rt}::maps::deserialize::<{policy}, _, _>\")]"
        ),
        format!("#[schemars(schema_with = \"{rt}::maps::schema::<{policy}, {key_ty}>\")]"),
    ]
}

/// The serde/schemars attributes of one field. `variant` is true for oneof
/// members (newtype variants: no `skip_serializing_if`).
fn field_attrs(
    f: &FieldDescriptorProto,
    scope: &Scope,
    ctx: &Context,
    variant: bool,
) -> Vec<String> {
    let rt = ctx.rt;
    let repeated = f.label() == Label::Repeated;
    let optional = f.proto3_optional();
    let mut serde: Vec<String> = Vec::new();
    let mut schema: Vec<String> = Vec::new();
    let skip = |s: &str| format!("skip_serializing_if = \"{s}\"");
    if repeated {
        if f.r#type() == Type::Message {
            // Repeated messages need only the skip (maps go to `map_attrs`).
            serde.push(skip("Vec::is_empty"));
            null_default(f, variant, ctx, &mut serde);
            return vec![attr("serde", &serde)];
        }
        serde.push(skip("Vec::is_empty"));
        match f.r#type() {
            Type::Enum => {
                let e = enum_path(f, scope, ctx);
                serde.push(format!(
                    "serialize_with = \"{rt}::enum_list_ser::<{e}, _>\""
                ));
                serde.push(format!(
                    "deserialize_with = \"{rt}::enum_list_de::<{e}, _>\""
                ));
                schema.push(format!("schema_with = \"{rt}::enum_list_schema::<{e}>\""));
            }
            Type::Uint64 | Type::Fixed64 => {
                serde.push(format!("deserialize_with = \"{rt}::u53_list\""));
            }
            Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                serde.push(format!("deserialize_with = \"{rt}::i53_list\""));
            }
            Type::Bytes => {
                serde.push(format!("with = \"{rt}::base64_list\""));
                schema.push(format!("schema_with = \"{rt}::base64_list_schema\""));
            }
            _ => {}
        }
        null_default(f, variant, ctx, &mut serde);
        return vec![attr("serde", &serde), attr("schemars", &schema)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
    }
    let opt = optional && !variant;
    if !variant {
        serde.push(skip(if opt || f.r#type() == Type::Message {
            "Option::is_none"
        } else {
            match f.r#type() {
                Type::String => "String::is_empty",
                Type::Bytes => "<[u8]>::is_empty",
                _ => "",
            }
        }));
        if serde[0].ends_with("\"\"") {
            serde[0] = skip(&format!("{rt}::is_default"));
        }
    }
    // Fields read null as their default (ENC-DEFAULTS-OMITTED); oneof
    // members are values, where null is an error (as in TypeScript).
    let o = if opt {
        "opt_"
    } else if variant {
        "non_null_"
    } else {
        ""
    };
    match f.r#type() {
        Type::Enum => {
            // Null is the zero value for members too: no `non_null_` form.
            let o = if opt { "opt_" } else { "" };
            let e = enum_path(f, scope, ctx);
            serde.push(format!("serialize_with = \"{rt}::{o}enum_ser::<{e}, _>\""));
            serde.push(format!("deserialize_with = \"{rt}::{o}enum_de::<{e}, _>\""));
            schema.push(format!("schema_with = \"{rt}::{o}enum_schema::<{e}>\""));
        }
        Type::Uint64 | Type::Fixed64 => {
            serde.push(format!("deserialize_with = \"{rt}::{o}u53\""));
            // schemars allows `range` on fields only, not on variants.
            schema.push(if variant {
                format!("schema_with = \"{rt}::maps::u53_schema\"")
            } else {
                format!("range(max = {MAX_SAFE}u64)")
            });
        }
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
            serde.push(format!("deserialize_with = \"{rt}::{o}i53\""));
            schema.push(if variant {
                format!("schema_with = \"{rt}::maps::i53_schema\"")
            } else {
                format!("range(min = -{MAX_SAFE}i64, max = {MAX_SAFE}i64)")
            });
        }
        Type::Bytes if PAYLOAD_FIELDS.contains(&f.name()) => {
            // A null payload is the payload value null, member or field.
            let o = if opt { "opt_" } else { "" };
            serde.push(format!("with = \"{rt}::{o}payload\""));
            schema.push(format!("schema_with = \"{rt}::payload_schema\""));
        }
        Type::Bytes => {
            serde.push(format!("with = \"{rt}::{o}base64\""));
            schema.push(format!("schema_with = \"{rt}::base64_schema\""));
        }
        _ => {}
    }
    null_default(f, variant, ctx, &mut serde);
    [attr("serde", &serde), attr("schemars", &schema)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
}

/// ENC-DEFAULTS-OMITTED: `null` reads as the default, in Courier's own
/// messages and in users' alike. Fields with a serde helper of their own
/// get this from the helper (`wire::u53`, `wire::base64`, ...); `optional`
/// and message fields are `Option`s, for which null is `None` already;
/// everything else (strings, bools, 32-bit numbers, repeated fields) gets
/// `wire::nulls::or_default`. Oneof members are values, not fields: null
/// stays an error there.
fn null_default(f: &FieldDescriptorProto, variant: bool, ctx: &Context, serde: &mut Vec<String>) {
    let has_helper = serde
        .iter()
        .any(|a| a.starts_with("with") || a.starts_with("deserialize_with"));
    let is_option =
        f.label() != Label::Repeated && (f.proto3_optional() || f.r#type() == Type::Message);
    if !variant && !has_helper && !is_option {
        serde.push(format!(
            "deserialize_with = \"{}::nulls::or_default\"",
            ctx.rt
        ));
    }
}

fn attr(name: &str, parts: &[String]) -> String {
    if parts.is_empty() {
        String::new()
    } else {
        format!("#[{name}({})]", parts.join(", "))
    }
}

/// The Rust path of the enum or message type of field `f`, seen from `from`.
fn enum_path(f: &FieldDescriptorProto, from: &Scope, ctx: &Context) -> String {
    let (to, name) = Scope::split(f.type_name(), ctx.all_packages);
    rust_path(from, &to, &name, ctx.externs)
}

/// Code appended to each generated package file: `ProtoEnum` for every enum,
/// `Validate` for every message, and the envelope's serde impls.
pub fn extra_code(fds: &FileDescriptorSet, package: &str, ctx: &Context) -> String {
    let rt = ctx.rt;
    let mut out = String::from("\n// Courier policy impls, generated by courier-codegen.\n");
    let scope = Scope {
        package: package.to_string(),
        messages: vec![],
    };
    for file in fds.file.iter().filter(|f| f.package() == package) {
        for e in &file.enum_type {
            enum_impl(&mut out, rt, &type_ident(e.name()), e);
        }
        for m in &file.message_type {
            message_impls(&mut out, m, &scope, ctx, "");
        }
    }
    out
}

fn enum_impl(out: &mut String, rt: &str, path: &str, e: &prost_types::EnumDescriptorProto) {
    let names: Vec<String> = e.value.iter().map(|v| format!("{:?}", v.name())).collect();
    let _ = write!(
        out,
        "impl {rt}::ProtoEnum for {path} {{\n    const NAMES: &'static [&'static str] = &[{names}];\n    \
         fn name_of(value: i32) -> ::core::option::Option<&'static str> {{ Self::try_from(value).ok().map(|v| v.as_str_name()) }}\n    \
         fn value_of(name: &str) -> ::core::option::Option<i32> {{ Self::from_str_name(name).map(|v| v as i32) }}\n}}\n",
        names = names.join(", ")
    );
}

fn message_impls(
    out: &mut String,
    m: &DescriptorProto,
    scope: &Scope,
    ctx: &Context,
    prefix: &str,
) {
    if is_map_entry(m) {
        return;
    }
    let rt = ctx.rt;
    let ty = format!("{prefix}{}", type_ident(m.name()));
    let module = format!("{prefix}{}::", module_ident(m.name()));
    let inner = Scope {
        package: scope.package.clone(),
        messages: scope
            .messages
            .iter()
            .cloned()
            .chain([m.name().to_string()])
            .collect(),
    };
    let mut checks = String::new();
    for f in &m.field {
        let id = field_ident(f.name());
        if f.oneof_index.is_some() && !f.proto3_optional() {
            continue;
        }
        if let Some(entry) = map_entry(m, f) {
            // Map values get the checks of a singular field of their type.
            let (_, value) = entry_fields(entry);
            let check = match value.r#type() {
                Type::Uint64 | Type::Fixed64 => format!("{rt}::check_u53(*v, {:?})?;", f.name()),
                Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                    format!("{rt}::check_i53(*v, {:?})?;", f.name())
                }
                Type::Message => format!("{rt}::Validate::validate(v)?;"),
                _ => continue,
            };
            let _ = writeln!(checks, "        for v in self.{id}.values() {{ {check} }}");
            continue;
        }
        let repeated = f.label() == Label::Repeated;
        let opt = f.proto3_optional();
        let check = match f.r#type() {
            Type::Uint64 | Type::Fixed64 => Some(format!("{rt}::check_u53(*v, {:?})?;", f.name())),
            Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                Some(format!("{rt}::check_i53(*v, {:?})?;", f.name()))
            }
            // A repeated `bytes payload` is a list of base64 strings, not payloads.
            Type::Bytes if !repeated && PAYLOAD_FIELDS.contains(&f.name()) => {
                Some(format!("{rt}::check_payload(v, {:?})?;", f.name()))
            }
            Type::Message => Some(format!("{rt}::Validate::validate(v)?;")),
            _ => None,
        };
        let Some(check) = check else { continue };
        let is_msg = f.r#type() == Type::Message;
        if repeated {
            let _ = writeln!(checks, "        for v in &self.{id} {{ {check} }}");
        } else if opt || is_msg {
            let _ = writeln!(
                checks,
                "        if let ::core::option::Option::Some(v) = &self.{id} {{ {check} }}"
            );
        } else {
            let _ = writeln!(checks, "        {{ let v = &self.{id}; {check} }}");
        }
    }
    // Oneofs: validate the member that is set.
    let mut oneof_impls = String::new();
    for (i, oneof) in m.oneof_decl.iter().enumerate() {
        let members: Vec<&FieldDescriptorProto> = m
            .field
            .iter()
            .filter(|f| f.oneof_index == Some(i as i32) && !f.proto3_optional())
            .collect();
        if members.is_empty() {
            continue;
        }
        let enum_ty = format!("{module}{}", type_ident(oneof.name()));
        if !is_envelope(scope, m) {
            // Member names for the forward-compatible `wire::oneof` serde.
            let names: Vec<String> = members.iter().map(|f| format!("{:?}", f.name())).collect();
            let _ = writeln!(
                oneof_impls,
                "impl {rt}::oneof::ProtoOneof for {enum_ty} {{\n    const NAMES: &'static [&'static str] = &[{}];\n}}",
                names.join(", ")
            );
        }
        let _ = writeln!(
            checks,
            "        match &self.{} {{",
            field_ident(oneof.name())
        );
        for f in members {
            let variant = type_ident(f.name());
            let body = match f.r#type() {
                Type::Uint64 | Type::Fixed64 => format!("{rt}::check_u53(*v, {:?})?", f.name()),
                Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                    format!("{rt}::check_i53(*v, {:?})?", f.name())
                }
                Type::Message => format!("{rt}::Validate::validate(v)?"),
                _ => continue,
            };
            let _ = writeln!(
                checks,
                "            ::core::option::Option::Some({enum_ty}::{variant}(v)) => {{ {body} }}"
            );
        }
        let _ = writeln!(checks, "            _ => {{}}\n        }}");
    }
    let _ = write!(
        out,
        "impl {rt}::Validate for {ty} {{\n    #[allow(unused_variables)]\n    fn validate(&self) -> ::core::result::Result<(), {rt}::ValidateError> {{\n{checks}        ::core::result::Result::Ok(())\n    }}\n}}\n"
    );
    out.push_str(&oneof_impls);
    if ctx.envelope_impls && is_envelope(scope, m) {
        let variants: Vec<String> = m
            .field
            .iter()
            .filter(|f| f.oneof_index.is_some())
            .map(|f| {
                let (to, name) = Scope::split(f.type_name(), ctx.all_packages);
                format!(
                    "{:?} => {}({})",
                    f.name(),
                    type_ident(f.name()),
                    rust_path(scope, &to, &name, ctx.externs)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{rt}::envelope_impls!({ty}, {}, {{ {} }});",
            module_ident(m.name()),
            variants.join(", ")
        );
    }
    for e in &m.enum_type {
        enum_impl(out, rt, &format!("{module}{}", type_ident(e.name())), e);
    }
    for n in &m.nested_type {
        message_impls(out, n, &inner, ctx, &module);
    }
}

/// The map entry message of `f` when `f` is a map field of `m`.
fn map_entry<'m>(m: &'m DescriptorProto, f: &FieldDescriptorProto) -> Option<&'m DescriptorProto> {
    if f.label() != Label::Repeated || f.r#type() != Type::Message {
        return None;
    }
    // The entry is nested in `m` itself, so its name is the last segment.
    let entry = f.type_name().rsplit('.').next().unwrap_or_default();
    m.nested_type
        .iter()
        .find(|n| n.name() == entry && is_map_entry(n))
}
