//! The Courier encoding policy (`docs/spec/encoding.md`) turned into serde and
//! schemars attributes on prost-generated types, plus the impls prost does
//! not write: enum names, 53-bit integer checks and payload validation.
//!
//! Everything here is rendered from the definitions' model (`model.rs`), so
//! Courier's own types and a user's payload types follow one policy, the
//! one the TypeScript generator follows too.

use std::fmt::Write as _;

use crate::model::{Cardinality, Enum, Field, Message, Model, Scalar, TypeRef, Value};
use crate::naming::{field_ident, module_ident, rust_path, type_ident, Scope};

/// What the policy needs to know about where the generated code lives.
pub struct Context<'a> {
    /// Path of the runtime module (`crate::wire` or `::courier_protocol::wire`).
    pub rt: &'a str,
    /// Packages being generated (others are imports).
    pub packages: &'a [String],
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

/// Computes every attribute for the messages of `ctx.packages`.
pub fn attributes(model: &Model, ctx: &Context) -> Attributes {
    let mut out = Attributes::default();
    let rt = ctx.rt;
    for file in (model.files.iter()).filter(|f| ctx.packages.contains(&f.package)) {
        for m in &file.messages {
            // Registered on top-level messages only: prost matches paths by
            // prefix, so nested messages inherit these (once).
            if !m.is_envelope() {
                out.messages.push((
                    m.scope.fq(&m.name),
                    format!(
                        "#[derive({rt}::serde::Serialize, {rt}::serde::Deserialize, {rt}::schemars::JsonSchema)]\n\
                         #[serde(crate = \"{rt}::serde\", default)]\n#[schemars(crate = \"{rt}::schemars\")]"
                    ),
                ));
            }
            message_fields(m, ctx, &mut out);
        }
    }
    out
}

fn message_fields(m: &Message, ctx: &Context, out: &mut Attributes) {
    let rt = ctx.rt;
    let fq = m.scope.fq(&m.name);
    let inner = m.inner();
    for (i, oneof) in m.oneofs.iter().enumerate() {
        let path = format!("{fq}.{}", oneof.name);
        // The envelope's union is written by serde, read by `envelope_impls!`.
        let (de, tag) = if m.is_envelope() {
            (String::new(), ", tag = \"type\"")
        } else {
            (format!(" {rt}::serde::Deserialize,"), "")
        };
        out.oneofs.push((
            path.clone(),
            format!(
                "#[derive({rt}::serde::Serialize,{de} {rt}::schemars::JsonSchema)]\n\
                 #[serde(crate = \"{rt}::serde\"{tag}, rename_all = \"snake_case\")]\n\
                 #[schemars(crate = \"{rt}::schemars\")]"
            ),
        ));
        for f in m.members(i) {
            // Oneof variants live in the message's module (one level down).
            let mut attrs = field_attrs(f, &inner, ctx, true);
            attrs.extend(rename(&f.name, &serde_variant_name(&type_ident(&f.name))));
            for attr in attrs {
                out.fields.push((format!("{path}.{}", f.name), attr));
            }
        }
    }
    for f in m.plain_fields() {
        let mut attrs = match f.card {
            Cardinality::Map(key) => map_attrs(key, &f.value, &m.scope, ctx),
            _ => field_attrs(f, &m.scope, ctx, false),
        };
        let ident = field_ident(&f.name);
        attrs.extend(rename(&f.name, ident.trim_start_matches("r#")));
        for attr in attrs {
            out.fields.push((format!("{fq}.{}", f.name), attr));
        }
    }
    for nested in &m.messages {
        message_fields(nested, ctx, out);
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

/// The Rust type prost generates for a scalar (map keys and values).
fn scalar_type(s: Scalar) -> &'static str {
    match s {
        Scalar::Double => "f64",
        Scalar::Float => "f32",
        Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => "i32",
        Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => "i64",
        Scalar::Uint32 | Scalar::Fixed32 => "u32",
        Scalar::Uint64 | Scalar::Fixed64 => "u64",
        Scalar::Bool => "bool",
        Scalar::String | Scalar::Bytes => "::std::string::String",
    }
}

/// The attributes of a map field. Every map goes through `wire::maps`:
/// keys are written sorted (prost's maps are `HashMap`s, whose order would
/// change the encoding from run to run) and as strings, values follow the
/// policy of their type (enum names, base64 bytes, 53-bit integers).
fn map_attrs(key: Scalar, value: &Value, scope: &Scope, ctx: &Context) -> Vec<String> {
    let rt = ctx.rt;
    let policy = match value {
        Value::Enum(r) => format!("{rt}::maps::Enum<{}>", type_path(r, scope, ctx)),
        Value::Scalar(Scalar::Bytes) => format!("{rt}::maps::Base64"),
        Value::Scalar(s) if s.is_u64() => format!("{rt}::maps::U53"),
        Value::Scalar(s) if s.is_i64() => format!("{rt}::maps::I53"),
        Value::Message(r) => format!("{rt}::maps::Plain<{}>", type_path(r, scope, ctx)),
        Value::Scalar(s) => format!("{rt}::maps::Plain<{}>", scalar_type(*s)),
        Value::Payload => unreachable!("map values are never payloads"),
    };
    let skip = format!("skip_serializing_if = \"{rt}::is_empty_collection\"");
    vec![
        format!(
            "#[serde({skip}, serialize_with = \"{rt}::maps::serialize::<{policy}, _, _>\", \
             deserialize_with = \"{rt}::maps::deserialize::<{policy}, _, _>\")]"
        ),
        format!(
            "#[schemars(schema_with = \"{rt}::maps::schema::<{policy}, {}>\")]",
            scalar_type(key)
        ),
    ]
}

/// The serde/schemars attributes of one field. `variant` is true for oneof
/// members (newtype variants: no `skip_serializing_if`).
fn field_attrs(f: &Field, scope: &Scope, ctx: &Context, variant: bool) -> Vec<String> {
    let rt = ctx.rt;
    let mut serde: Vec<String> = Vec::new();
    let mut schema: Vec<String> = Vec::new();
    let skip = |s: &str| format!("skip_serializing_if = \"{s}\"");
    if f.card == Cardinality::Repeated {
        serde.push(skip("Vec::is_empty"));
        match &f.value {
            Value::Enum(r) => {
                let e = type_path(r, scope, ctx);
                serde.push(format!(
                    "serialize_with = \"{rt}::enum_list_ser::<{e}, _>\""
                ));
                serde.push(format!(
                    "deserialize_with = \"{rt}::enum_list_de::<{e}, _>\""
                ));
                schema.push(format!("schema_with = \"{rt}::enum_list_schema::<{e}>\""));
            }
            Value::Scalar(s) if s.is_u64() => {
                serde.push(format!("deserialize_with = \"{rt}::u53_list\""));
            }
            Value::Scalar(s) if s.is_i64() => {
                serde.push(format!("deserialize_with = \"{rt}::i53_list\""));
            }
            Value::Scalar(Scalar::Bytes) => {
                serde.push(format!("with = \"{rt}::base64_list\""));
                schema.push(format!("schema_with = \"{rt}::base64_list_schema\""));
            }
            _ => {}
        }
        null_default(f, variant, ctx, &mut serde);
        return [attr("serde", &serde), attr("schemars", &schema)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
    }
    let opt = f.card == Cardinality::Optional && !variant;
    let is_default = format!("{rt}::is_default");
    if !variant {
        serde.push(skip(match &f.value {
            _ if opt => "Option::is_none",
            Value::Message(_) => "Option::is_none",
            Value::Scalar(Scalar::String) => "String::is_empty",
            Value::Scalar(Scalar::Bytes) | Value::Payload => "<[u8]>::is_empty",
            _ => &is_default,
        }));
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
    match &f.value {
        Value::Enum(r) => {
            // Null is the zero value for members too: no `non_null_` form.
            let o = if opt { "opt_" } else { "" };
            let e = type_path(r, scope, ctx);
            serde.push(format!("serialize_with = \"{rt}::{o}enum_ser::<{e}, _>\""));
            serde.push(format!("deserialize_with = \"{rt}::{o}enum_de::<{e}, _>\""));
            schema.push(format!("schema_with = \"{rt}::{o}enum_schema::<{e}>\""));
        }
        Value::Scalar(s) if s.is_u64() => {
            serde.push(format!("deserialize_with = \"{rt}::{o}u53\""));
            // schemars allows `range` on fields only, not on variants.
            schema.push(if variant {
                format!("schema_with = \"{rt}::maps::u53_schema\"")
            } else {
                format!("range(max = {MAX_SAFE}u64)")
            });
        }
        Value::Scalar(s) if s.is_i64() => {
            serde.push(format!("deserialize_with = \"{rt}::{o}i53\""));
            schema.push(if variant {
                format!("schema_with = \"{rt}::maps::i53_schema\"")
            } else {
                format!("range(min = -{MAX_SAFE}i64, max = {MAX_SAFE}i64)")
            });
        }
        Value::Payload => {
            // A null payload is the payload value null, member or field.
            let o = if opt { "opt_" } else { "" };
            serde.push(format!("with = \"{rt}::{o}payload\""));
            schema.push(format!("schema_with = \"{rt}::payload_schema\""));
        }
        Value::Scalar(Scalar::Bytes) => {
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
fn null_default(f: &Field, variant: bool, ctx: &Context, serde: &mut Vec<String>) {
    let has_helper = serde
        .iter()
        .any(|a| a.starts_with("with") || a.starts_with("deserialize_with"));
    let is_option = f.card == Cardinality::Optional
        || (f.card != Cardinality::Repeated && matches!(f.value, Value::Message(_)));
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

/// The Rust path of the enum or message `r`, seen from `from`.
fn type_path(r: &TypeRef, from: &Scope, ctx: &Context) -> String {
    rust_path(from, &r.scope, &r.name, ctx.externs)
}

/// Code appended to each generated package file: `ProtoEnum` for every enum,
/// `Validate` for every message, and the envelope's serde impls.
pub fn extra_code(model: &Model, package: &str, ctx: &Context) -> String {
    let rt = ctx.rt;
    let mut out = String::from("\n// Courier policy impls, generated by courier-codegen.\n");
    for file in model.files_of(package) {
        for e in &file.enums {
            enum_impl(&mut out, rt, &type_ident(&e.name), e);
        }
        for m in &file.messages {
            message_impls(&mut out, m, ctx, "");
        }
    }
    out
}

fn enum_impl(out: &mut String, rt: &str, path: &str, e: &Enum) {
    let names: Vec<String> = e.values.iter().map(|v| format!("{:?}", v.name)).collect();
    let _ = write!(
        out,
        "impl {rt}::ProtoEnum for {path} {{\n    const NAMES: &'static [&'static str] = &[{names}];\n    \
         fn name_of(value: i32) -> ::core::option::Option<&'static str> {{ Self::try_from(value).ok().map(|v| v.as_str_name()) }}\n    \
         fn value_of(name: &str) -> ::core::option::Option<i32> {{ Self::from_str_name(name).map(|v| v as i32) }}\n}}\n",
        names = names.join(", ")
    );
}

/// The `Validate` check of one value `v` of `value` named `name`, if any;
/// `payloads`: whether payload values are checked (not in oneofs).
fn check(value: &Value, name: &str, rt: &str, payloads: bool) -> Option<String> {
    match value {
        Value::Scalar(s) if s.is_u64() => Some(format!("{rt}::check_u53(*v, {name:?})?")),
        Value::Scalar(s) if s.is_i64() => Some(format!("{rt}::check_i53(*v, {name:?})?")),
        Value::Payload if payloads => Some(format!("{rt}::check_payload(v, {name:?})?")),
        Value::Message(_) => Some(format!("{rt}::Validate::validate(v)?")),
        _ => None,
    }
}

fn message_impls(out: &mut String, m: &Message, ctx: &Context, prefix: &str) {
    let rt = ctx.rt;
    let ty = format!("{prefix}{}", type_ident(&m.name));
    let module = format!("{prefix}{}::", module_ident(&m.name));
    let mut checks = String::new();
    for f in m.plain_fields() {
        let id = field_ident(&f.name);
        if let Cardinality::Map(_) = f.card {
            // Map values get the checks of a singular field of their type.
            if let Some(check) = check(&f.value, &f.name, rt, false) {
                let _ = writeln!(checks, "        for v in self.{id}.values() {{ {check}; }}");
            }
            continue;
        }
        let Some(check) = check(&f.value, &f.name, rt, true) else {
            continue;
        };
        if f.card == Cardinality::Repeated {
            let _ = writeln!(checks, "        for v in &self.{id} {{ {check}; }}");
        } else if f.card == Cardinality::Optional || matches!(f.value, Value::Message(_)) {
            let _ = writeln!(
                checks,
                "        if let ::core::option::Option::Some(v) = &self.{id} {{ {check}; }}"
            );
        } else {
            let _ = writeln!(checks, "        {{ let v = &self.{id}; {check}; }}");
        }
    }
    // Oneofs: validate the member that is set.
    let mut oneof_impls = String::new();
    for (i, oneof) in m.oneofs.iter().enumerate() {
        let enum_ty = format!("{module}{}", type_ident(&oneof.name));
        if !m.is_envelope() {
            // Member names for the forward-compatible `wire::oneof` serde.
            let names: Vec<String> = m.members(i).map(|f| format!("{:?}", f.name)).collect();
            let _ = writeln!(
                oneof_impls,
                "impl {rt}::oneof::ProtoOneof for {enum_ty} {{\n    const NAMES: &'static [&'static str] = &[{}];\n}}",
                names.join(", ")
            );
        }
        let _ = writeln!(
            checks,
            "        match &self.{} {{",
            field_ident(&oneof.name)
        );
        for f in m.members(i) {
            let Some(body) = check(&f.value, &f.name, rt, false) else {
                continue;
            };
            let _ = writeln!(
                checks,
                "            ::core::option::Option::Some({enum_ty}::{}(v)) => {{ {body} }}",
                type_ident(&f.name)
            );
        }
        let _ = writeln!(checks, "            _ => {{}}\n        }}");
    }
    let _ = write!(
        out,
        "impl {rt}::Validate for {ty} {{\n    #[allow(unused_variables)]\n    fn validate(&self) -> ::core::result::Result<(), {rt}::ValidateError> {{\n{checks}        ::core::result::Result::Ok(())\n    }}\n}}\n"
    );
    out.push_str(&oneof_impls);
    if ctx.envelope_impls && m.is_envelope() {
        let variants: Vec<String> = (m.fields.iter().filter(|f| f.oneof.is_some()))
            .filter_map(|f| match &f.value {
                Value::Message(r) => Some(format!(
                    "{:?} => {}({})",
                    f.name,
                    type_ident(&f.name),
                    type_path(r, &m.scope, ctx)
                )),
                _ => None,
            })
            .collect();
        let _ = writeln!(
            out,
            "{rt}::envelope_impls!({ty}, {}, {{ {} }});",
            module_ident(&m.name),
            variants.join(", ")
        );
    }
    for e in &m.enums {
        enum_impl(out, rt, &format!("{module}{}", type_ident(&e.name)), e);
    }
    for n in &m.messages {
        message_impls(out, n, ctx, &module);
    }
}
