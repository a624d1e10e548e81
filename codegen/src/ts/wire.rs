//! `wire.ts`: a package's messages to and from the JSON / MessagePack data
//! model (`docs/spec/encoding.md`), which is also the payload data model.

use crate::model::{Cardinality, Field, Message, Scalar, Value};

use super::render::{emit, map_key_kind, optional, ts_name, wire_writer, Cx};

/// The module text of `cx`'s package.
pub(super) fn module(cx: &Cx, head: &str) -> String {
    let mut o = String::new();
    emit!(
        o,
        "{head}\n// Package `{}` in the JSON / MessagePack data model (docs/spec/encoding.md): `read*`\n\
         // validates a decoded tree (or a payload value) into a typed message, `write*` builds the\n\
         // canonical object (defaults omitted, fields in declaration order with oneofs last, map keys\n\
         // sorted, `type` first).\n\nimport * as rt from \"{}\";\nimport * as t from \"./types.js\";\n{}\n",
        cx.package,
        cx.runtime,
        cx.import_lines("", &[("", "types"), ("_wire", "wire")])
    );
    for m in &cx.messages {
        if m.is_envelope() {
            envelope(cx, m, &mut o);
        } else {
            message(cx, m, &mut o);
        }
    }
    o
}

fn envelope(cx: &Cx, m: &Message, o: &mut String) {
    let name = ts_name(m);
    let body: Vec<(&str, &crate::model::TypeRef)> = (m.fields.iter())
        .filter_map(|f| match &f.value {
            Value::Message(r) if f.oneof.is_some() => Some((f.name.as_str(), r)),
            _ => None,
        })
        .collect();
    emit!(
        o,
        "/** Reads an envelope; a missing or unknown `type` throws `rt.UnknownTypeError` (ENC-UNKNOWN-TYPE). */\n\
         export function read{name}(v: rt.Wire): t.{name} {{\n  const o = rt.map(v, \"{name}\");\n  \
         const ty = rt.get(o, \"type\");\n  switch (ty) {{\n"
    );
    for (ty, r) in &body {
        let read = cx.func(r, "read", "wire");
        emit!(
            o,
            "    case \"{ty}\":\n      return {{ type: \"{ty}\", ...{read}(o) }};\n"
        );
    }
    emit!(
        o,
        "  }}\n  throw new rt.UnknownTypeError(typeof ty === \"string\" ? ty : \"\");\n}}\n\n\
         /** Writes an envelope as a flat object with `type` first (ENC-JSON-FLAT, ENC-TYPE-FIRST). */\n\
         export function write{name}(m: t.{name}Init): rt.WireObject {{\n  switch (m.type) {{\n"
    );
    for (ty, r) in &body {
        let write = cx.func(r, "write", "wire");
        emit!(
            o,
            "    case \"{ty}\":\n      return {write}(m, {{ type: \"{ty}\" }});\n"
        );
    }
    o.push_str(UNKNOWN_TYPE);
}

/// The end of an envelope writer's `switch`, shared with `proto.ts`.
pub(super) const UNKNOWN_TYPE: &str = "    default:\n      \
    // Only reachable from untyped callers: the switch covers every type.\n      \
    throw new rt.EncodeError(`unknown envelope type ${String((m as { type: unknown }).type)}`);\n  }\n}\n\n";

fn message(cx: &Cx, m: &Message, o: &mut String) {
    let name = ts_name(m);
    // The object literal's members, then statements for optional fields and
    // oneofs; writes in declaration order with oneofs last (prost's struct
    // order, which serde writes).
    let (mut init, mut reads, mut writes) = (vec![], vec![], vec![]);
    for f in m.plain_fields() {
        field(cx, &name, f, &mut init, &mut reads, &mut writes);
    }
    for i in 0..m.oneofs.len() {
        oneof(cx, m, &name, i, &mut reads, &mut writes);
    }
    let literal = if init.is_empty() {
        "{}".to_string()
    } else {
        format!("{{\n    {},\n  }}", init.join(",\n    "))
    };
    emit!(
        o,
        "/**\n * Reads a `{name}` from the data model (a decoded tree, or a received `payload`): unknown\n \
         * members are ignored, null means default; anything else, a missing payload (`undefined`)\n \
         * included, throws `rt.WireError`.\n */\n\
         export function read{name}(v: rt.Wire | undefined): t.{name} {{\n  const o = rt.map(v, \"{name}\");\n  \
         const m: t.{name} = {literal};\n"
    );
    for r in reads {
        emit!(o, "  {r}\n");
    }
    emit!(
        o,
        "  return m;\n}}\n\n/** Writes a `{name}` to the data model, defaults omitted. */\n\
         export function write{name}(m: t.{name}Init, o: rt.WireObject = {{}}): rt.WireObject {{\n"
    );
    for w in writes {
        emit!(o, "  {w}\n");
    }
    o.push_str("  return o;\n}\n\n");
}

fn field(
    cx: &Cx,
    msg: &str,
    f: &Field,
    init: &mut Vec<String>,
    reads: &mut Vec<String>,
    writes: &mut Vec<String>,
) {
    let path = format!("{msg}.{}", f.name);
    let n = &f.name;
    let conv = |x: &str| match f.card {
        Cardinality::Map(_) => conv_value(cx, &f.value, x, &path),
        _ => conv(cx, &f.value, x, &path),
    };
    let out = |x: &str| out(cx, &f.value, x, &path);
    match f.card {
        Cardinality::Map(key) => {
            let kind = map_key_kind(key);
            init.push(format!(
                "{n}: rt.mapOf(rt.get(o, {n:?}), {kind:?}, {path:?}, (x) => {})",
                conv("x")
            ));
            writes.push(format!(
                "if (m.{n} !== undefined) {{ const x = rt.outMap(m.{n}, {kind:?}, {path:?}, (v) => {}); if (x !== undefined) o[{n:?}] = x; }}",
                out("v")
            ));
        }
        Cardinality::Repeated => {
            init.push(format!(
                "{n}: rt.list(rt.get(o, {n:?}), {path:?}, (x) => {})",
                conv("x")
            ));
            writes.push(format!(
                "if (m.{n} !== undefined && m.{n}.length > 0) o[{n:?}] = m.{n}.map((x) => {});",
                out("x")
            ));
        }
        card if optional(card, &f.value) => {
            let present = if f.value == Value::Payload {
                "x !== undefined"
            } else {
                "x !== undefined && x !== null"
            };
            reads.push(format!(
                "{{ const x = rt.get(o, {n:?}); if ({present}) m.{n} = {}; }}",
                conv("x")
            ));
            writes.push(format!(
                "if (m.{n} !== undefined) o[{n:?}] = {};",
                out(&format!("m.{n}"))
            ));
        }
        _ => {
            init.push(format!("{n}: {}", conv(&format!("rt.get(o, {n:?})"))));
            writes.push(format!(
                "if ({}) o[{n:?}] = {};",
                cx.not_default(&f.value, &format!("m.{n}")),
                out(&format!("m.{n}"))
            ));
        }
    }
}

/// A oneof: an object under its name holding one member.
fn oneof(
    cx: &Cx,
    m: &Message,
    msg: &str,
    index: usize,
    reads: &mut Vec<String>,
    writes: &mut Vec<String>,
) {
    let n = &m.oneofs[index].name;
    let path = format!("{msg}.{n}");
    let (mut cases, mut sets) = (vec![], vec![]);
    for (i, f) in m.members(index).enumerate() {
        let (fname, mpath) = (&f.name, format!("{msg}.{}", f.name));
        cases.push(format!(
            "case {fname:?}: m.{n} = {{ {fname}: {} }}; break;",
            conv_value(cx, &f.value, "b[k]!", &mpath)
        ));
        let els = if i == 0 { "" } else { "else " };
        sets.push(format!(
            "{els}if (b.{fname} !== undefined) o[{n:?}] = {{ {fname}: {} }};",
            out(cx, &f.value, &format!("b.{fname}"), &mpath)
        ));
    }
    reads.push(format!(
        "{{\n    const x = rt.get(o, {n:?});\n    if (x !== undefined && x !== null) {{\n      \
         // ENC-UNKNOWN-FIELD: unknown members are skipped; of several members the last counts.\n      \
         const b = rt.map(x, {path:?});\n      for (const k of Object.keys(b)) {{\n        switch (k) {{\n          {}\n        }}\n      }}\n    }}\n  }}",
        cases.join("\n          ")
    ));
    writes.push(format!(
        "{}\n    {}\n  }}",
        one_member(m, index, msg),
        sets.join("\n    ")
    ));
}

/// The opening of a oneof's writer: `if (…one member set…) { const b = …;`.
pub(super) fn one_member(m: &Message, index: usize, msg: &str) -> String {
    let n = &m.oneofs[index].name;
    let names: Vec<String> = m.members(index).map(|f| format!("{:?}", f.name)).collect();
    format!(
        "if (m.{n} !== undefined && rt.oneMember(m.{n}, [{}], \"{msg}.{n}\")) {{\n    const b = m.{n};",
        names.join(", ")
    )
}

/// Reads one value from data-model expression `x`.
fn conv(cx: &Cx, value: &Value, x: &str, path: &str) -> String {
    match value {
        Value::Scalar(s) => format!("rt.{}({x}, {path:?})", wire_reader(*s)),
        Value::Payload => format!("rt.payload({x}, {path:?})"),
        Value::Enum(r) => format!(
            "rt.enumByName({x}, {}_names, {}_numbers, {path:?})",
            cx.ty(r, false),
            cx.ty(r, false)
        ),
        Value::Message(r) => format!("{}({x})", cx.func(r, "read", "wire")),
    }
}

/// Reads a map value or oneof member, where `null` is an error for scalars
/// (as for Rust's serde) and the zero value for enums.
fn conv_value(cx: &Cx, value: &Value, x: &str, path: &str) -> String {
    match value {
        Value::Scalar(_) => conv(cx, value, &format!("rt.nonNull({x}, {path:?})"), path),
        _ => conv(cx, value, x, path),
    }
}

/// Writes one value to the data model.
fn out(cx: &Cx, value: &Value, x: &str, path: &str) -> String {
    match value {
        Value::Scalar(s) => match wire_writer(*s) {
            Some(w) => format!("rt.{w}({x}, {path:?})"),
            None => x.to_string(),
        },
        Value::Payload => format!("rt.outPayload({x}, {path:?})"),
        Value::Enum(r) => format!("rt.outEnum({x}, {}_numbers, {path:?})", cx.ty(r, false)),
        Value::Message(r) => format!("{}({x})", cx.func(r, "write", "wire")),
    }
}

/// The runtime reader of a scalar from the data model.
fn wire_reader(s: Scalar) -> &'static str {
    match s {
        Scalar::String => "str",
        Scalar::Bool => "bool",
        Scalar::Bytes => "bytes",
        Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => "i32",
        Scalar::Uint32 | Scalar::Fixed32 => "u32",
        s if s.is_i64() => "i53",
        s if s.is_u64() => "u53",
        _ => "num",
    }
}
