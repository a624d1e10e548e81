//! `proto.ts`: a package's messages in the Protobuf binary encoding, on
//! `@bufbuild/protobuf/wire`: fields by field number (a oneof at its lowest,
//! the order prost encodes in), map entries in key order, defaults omitted.

use crate::model::{Cardinality, Field, Message, Scalar, TypeRef, Value};

use super::render::{default_of, emit, map_key_kind, optional, ts_name, wire_writer, Cx};
use super::wire::{one_member, UNKNOWN_TYPE};

/// Proto wire types, as `@bufbuild/protobuf/wire`'s `WireType` numbers.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// The module text of `cx`'s package.
pub(super) fn module(cx: &Cx, head: &str) -> String {
    let mut o = String::new();
    emit!(
        o,
        "{head}\n// Package `{}` in the Protobuf binary encoding, on `@bufbuild/protobuf/wire`: fields in\n\
         // field-number order (a oneof at its lowest number, as prost), map entries in key order, defaults\n\
         // omitted, payloads as canonical MessagePack bytes, unknown fields skipped (ENC-UNKNOWN-FIELD),\n\
         // 64-bit integers checked against 2^53-1 (ENC-INT53).\n\n\
         import {{ BinaryReader, BinaryWriter }} from \"@bufbuild/protobuf/wire\";\n\
         import * as rt from \"{}\";\nimport * as t from \"./types.js\";\n{}\n",
        cx.package,
        cx.runtime,
        cx.import_lines("", &[("", "types"), ("_proto", "proto")])
    );
    for m in &cx.messages {
        let name = ts_name(m);
        if m.is_envelope() {
            envelope(cx, m, &name, &mut o);
        } else {
            message(cx, m, &name, &mut o);
        }
        emit!(
            o,
            "/** Encodes a `{name}` as a standalone Protobuf message. */\n\
             export function toBinary{name}(m: t.{name}Init): Uint8Array {{\n  const w = new BinaryWriter();\n  \
             encode{name}(m, w);\n  return w.finish();\n}}\n\n\
             /** Decodes a standalone Protobuf `{name}`; malformed input throws `rt.WireError`. */\n\
             export function fromBinary{name}(bytes: Uint8Array): t.{name} {{\n  return rt.guardProto(() => {{\n    \
             const r = new BinaryReader(bytes);\n    return decode{name}(r, r.len, 0);\n  }});\n}}\n\n"
        );
    }
    o
}

fn envelope(cx: &Cx, m: &Message, name: &str, o: &mut String) {
    let body: Vec<(&Field, &TypeRef)> = (m.fields.iter())
        .filter_map(|f| match &f.value {
            Value::Message(r) if f.oneof.is_some() => Some((f, r)),
            _ => None,
        })
        .collect();
    emit!(
        o,
        "/** Writes the envelope's one body field. */\n\
         export function encode{name}(m: t.{name}Init, w: BinaryWriter): void {{\n  switch (m.type) {{\n"
    );
    for (f, r) in &body {
        emit!(
            o,
            "    case \"{}\":\n      w.tag({}, 2).fork();\n      {}(m, w);\n      w.join();\n      return;\n",
            f.name,
            f.number,
            cx.func(r, "encode", "proto")
        );
    }
    o.push_str(UNKNOWN_TYPE);
    emit!(
        o,
        "/** Reads an envelope; the last body field wins, a repeated one merges (ENC-PROTOBUF). */\n\
         export function decode{name}(r: BinaryReader, end: number, depth: number, into?: t.{name}): t.{name} {{\n  \
         rt.checkDepth(depth);\n  let m: t.{name} | undefined = into;\n  while (r.pos < end) {{\n    \
         const [no, wt] = r.tag();\n    switch (no) {{\n"
    );
    for (f, r) in &body {
        let (ty, dec) = (&f.name, cx.func(r, "decode", "proto"));
        emit!(
            o,
            "      case {}: {{\n        rt.expectWire(wt, 2, \"Envelope.{ty}\");\n        const e = rt.sub(r, end);\n        \
             m = m?.type === \"{ty}\" ? ({dec}(r, e, depth + 1, m), m) : {{ type: \"{ty}\", ...{dec}(r, e, depth + 1) }};\n        \
             break;\n      }}\n",
            f.number
        );
    }
    o.push_str(
        "      default:\n        r.skip(wt, no);\n    }\n  }\n  rt.endAt(r, end);\n  \
         if (m === undefined) throw new rt.UnknownTypeError(\"\");\n  return m;\n}\n\n",
    );
}

fn message(cx: &Cx, m: &Message, name: &str, o: &mut String) {
    let (mut encodes, mut decodes, mut defaults) = (vec![], vec![], vec![]);
    for f in m.plain_fields() {
        let path = format!("{name}.{}", f.name);
        let (encode, decode) = match f.card {
            Cardinality::Map(key) => map(cx, f, key, &path),
            _ => field(cx, f, &path),
        };
        encodes.push((f.number, encode));
        decodes.push((f.number, decode));
        let n = &f.name;
        match (&f.card, &f.value) {
            (Cardinality::Repeated, _) => defaults.push(format!("{n}: []")),
            (Cardinality::Map(_), _) => defaults.push(format!("{n}: {{}}")),
            (card, value) if optional(*card, value) => {}
            (_, Value::Enum(r)) => defaults.push(format!("{n}: {:?}", cx.zero(r))),
            (_, Value::Scalar(s)) => defaults.push(format!("{n}: {}", default_of(*s))),
            _ => {}
        }
    }
    for i in 0..m.oneofs.len() {
        oneof(cx, m, name, i, &mut encodes, &mut decodes);
    }
    // Stable: a oneof's decode cases follow the fields of equal number.
    encodes.sort_by_key(|(n, _)| *n);
    decodes.sort_by_key(|(n, _)| *n);
    emit!(
        o,
        "/** Writes a `{name}`'s fields (not its own tag and length). */\n\
         export function encode{name}(m: t.{name}Init, w: BinaryWriter): void {{\n"
    );
    for (_, e) in encodes {
        emit!(o, "  {e}\n");
    }
    emit!(
        o,
        "}}\n\n/** Reads a `{name}` from `r` up to `end`, merging into `into` when given. */\n\
         export function decode{name}(r: BinaryReader, end: number, depth: number, into?: t.{name}): t.{name} {{\n  \
         rt.checkDepth(depth);\n  const m: t.{name} = into ?? {{ {} }};\n  while (r.pos < end) {{\n    \
         const [no, wt] = r.tag();\n    switch (no) {{\n",
        defaults.join(", ")
    );
    for (_, d) in decodes {
        emit!(o, "      {d}\n");
    }
    o.push_str(
        "      default:\n        r.skip(wt, no);\n    }\n  }\n  rt.endAt(r, end);\n  return m;\n}\n\n",
    );
}

/// A oneof's encoder (at its lowest member number) and one decode case per member.
fn oneof(
    cx: &Cx,
    m: &Message,
    msg: &str,
    index: usize,
    encodes: &mut Vec<(i32, String)>,
    decodes: &mut Vec<(i32, String)>,
) {
    let n = &m.oneofs[index].name;
    let mut sets = Vec::new();
    for (i, f) in m.members(index).enumerate() {
        let (fname, mpath, no) = (&f.name, format!("{msg}.{}", f.name), f.number);
        let els = if i == 0 { "" } else { "else " };
        match &f.value {
            Value::Message(r) => {
                let enc = cx.func(r, "encode", "proto");
                let dec = cx.func(r, "decode", "proto");
                sets.push(format!(
                    "{els}if (b.{fname} !== undefined) {{ w.tag({no}, {LEN}).fork(); {enc}(b.{fname}, w); w.join(); }}"
                ));
                // A member repeated on the wire merges, as in prost; another member replaces it.
                decodes.push((no, format!(
                    "case {no}: rt.expectWire(wt, {LEN}, {mpath:?}); m.{n} = {{ {fname}: {dec}(r, rt.sub(r, end), depth + 1, m.{n} !== undefined && {fname:?} in m.{n} ? m.{n}.{fname} : undefined) }}; break;"
                )));
            }
            value => {
                let (method, wire, x) = pb_out(cx, value, &format!("b.{fname}"), &mpath);
                sets.push(format!(
                    "{els}if (b.{fname} !== undefined) w.tag({no}, {wire}).{method}({x});"
                ));
                let (wire, read) = pb_in(cx, value, &mpath);
                decodes.push((no, format!(
                    "case {no}: rt.expectWire(wt, {wire}, {mpath:?}); m.{n} = {{ {fname}: {read} }}; break;"
                )));
            }
        }
    }
    let lowest = m.members(index).map(|f| f.number).min().unwrap_or_default();
    encodes.push((
        lowest,
        format!(
            "{}\n    {}\n  }}",
            one_member(m, index, msg),
            sets.join("\n    ")
        ),
    ));
}

/// `BinaryWriter` method, wire type and value expression writing `x`, not a message.
fn pb_out(cx: &Cx, value: &Value, x: &str, path: &str) -> (&'static str, u8, String) {
    match value {
        Value::Scalar(s) => {
            let (method, wire) = pb_scalar(*s);
            let value = match wire_writer(*s) {
                Some(w) => format!("rt.{w}({x}, {path:?})"),
                None => x.to_string(),
            };
            (method, wire, value)
        }
        Value::Enum(r) => (
            "int32",
            VARINT,
            format!("rt.enumNumber({x}, {}_numbers, {path:?})", cx.ty(r, false)),
        ),
        Value::Payload => ("bytes", LEN, format!("rt.payloadBytes({x}, {path:?})")),
        Value::Message(_) => unreachable!("messages are written with fork/join"),
    }
}

/// Wire type and expression reading one value, not a message.
fn pb_in(cx: &Cx, value: &Value, path: &str) -> (u8, String) {
    match value {
        Value::Scalar(Scalar::String) => (LEN, "r.string(true)".into()),
        Value::Scalar(Scalar::Bytes) => (LEN, "r.bytes().slice()".into()),
        Value::Scalar(s) => {
            let (method, wire) = pb_scalar(*s);
            (wire, pb_number(*s, method, path))
        }
        Value::Enum(r) => (
            VARINT,
            format!(
                "rt.enumByNumber(r.int32(), {}_names, {:?})",
                cx.ty(r, false),
                cx.zero(r)
            ),
        ),
        Value::Payload => (LEN, format!("rt.payloadFromBytes(r.bytes(), {path:?})")),
        Value::Message(_) => unreachable!("messages are read with sub-readers"),
    }
}

/// Reads a number with `method`, 64-bit integers checked (ENC-INT53).
fn pb_number(s: Scalar, method: &str, path: &str) -> String {
    if s.is_i64() {
        format!("rt.pbI53(r.{method}(), {path:?})")
    } else if s.is_u64() {
        format!("rt.pbU53(r.{method}(), {path:?})")
    } else {
        format!("r.{method}()")
    }
}

/// A map field: one length-delimited entry per key (key 1, value 2), in key
/// order; as prost, a key or value at its default is left out of the entry.
fn map(cx: &Cx, f: &Field, key: Scalar, path: &str) -> (String, String) {
    let n = &f.name;
    let no = f.number;
    let kind = map_key_kind(key);
    let (kmethod, kwire) = pb_scalar(key);
    let (key_default, key_value, key_read) = match key {
        Scalar::String => ("\"\"", "k".to_string(), "r.string(true)".to_string()),
        Scalar::Bool => (
            "\"false\"",
            "k === \"true\"".to_string(),
            "String(r.bool())".to_string(),
        ),
        k if k.is_i64() || k.is_u64() => {
            ("\"0\"", "k".to_string(), format!("String(r.{kmethod}())"))
        }
        _ => (
            "\"0\"",
            "Number(k)".to_string(),
            format!("String(r.{kmethod}())"),
        ),
    };
    // proto.ts names its package's types `t.X`.
    let vty = match &f.value {
        Value::Enum(r) | Value::Message(r) => cx.ty(r, false),
        value => cx.elem_types(value).0,
    };
    let (value_encode, value_decode, value_default) = match &f.value {
        Value::Message(r) => {
            let to_binary = cx.func(r, "toBinary", "proto");
            let dec = cx.func(r, "decode", "proto");
            (
                format!("const b = {to_binary}(v); if (b.length > 0) w.tag(2, {LEN}).bytes(b);"),
                format!(
                    "rt.expectWire(et, {LEN}, {path:?}); v = {dec}(r, rt.sub(r, e), depth + 1, v);"
                ),
                // An entry without a value holds the empty message.
                format!("{dec}(r, r.pos, depth + 1)"),
            )
        }
        value => {
            let (method, wire, x) = pb_out(cx, value, "v", path);
            let (rwire, read) = pb_in(cx, value, path);
            let default = match value {
                Value::Scalar(s) => default_of(*s).to_string(),
                Value::Enum(r) => format!("{:?}", cx.zero(r)),
                _ => "undefined".to_string(),
            };
            (
                format!(
                    "if ({}) w.tag(2, {wire}).{method}({x});",
                    cx.not_default(value, "v")
                ),
                format!("rt.expectWire(et, {rwire}, {path:?}); v = {read};"),
                default,
            )
        }
    };
    let encode = format!(
        "if (m.{n} !== undefined) {{\n    for (const [k, v] of rt.mapEntries(m.{n}, {kind:?}, {path:?})) {{\n      \
         w.tag({no}, {LEN}).fork();\n      if (k !== {key_default}) w.tag(1, {kwire}).{kmethod}({key_value});\n      \
         {value_encode}\n      w.join();\n    }}\n  }}"
    );
    let decode = format!(
        "case {no}: {{\n        rt.expectWire(wt, {LEN}, {path:?});\n        const e = rt.sub(r, end);\n        \
         let k = {key_default};\n        let v: {vty} | undefined;\n        while (r.pos < e) {{\n          \
         const [en, et] = r.tag();\n          \
         if (en === 1) {{ rt.expectWire(et, {kwire}, {path:?}); k = {key_read}; }}\n          \
         else if (en === 2) {{ {value_decode} }}\n          else r.skip(et, en);\n        }}\n        \
         rt.endAt(r, e);\n        rt.setEntry(m.{n}, k, v ?? {value_default});\n        break;\n      }}"
    );
    (encode, decode)
}

/// A singular or repeated field's encoder and decode case.
fn field(cx: &Cx, f: &Field, path: &str) -> (String, String) {
    let n = &f.name;
    let no = f.number;
    let repeated = f.card == Cardinality::Repeated;
    let optional = optional(f.card, &f.value);
    match &f.value {
        Value::Message(r) => {
            let enc = cx.func(r, "encode", "proto");
            let dec = cx.func(r, "decode", "proto");
            if repeated {
                (
                    format!("for (const x of m.{n} ?? []) {{ w.tag({no}, {LEN}).fork(); {enc}(x, w); w.join(); }}"),
                    format!("case {no}: rt.expectWire(wt, {LEN}, {path:?}); m.{n}.push({dec}(r, rt.sub(r, end), depth + 1)); break;"),
                )
            } else {
                (
                    format!("if (m.{n} !== undefined) {{ w.tag({no}, {LEN}).fork(); {enc}(m.{n}, w); w.join(); }}"),
                    format!("case {no}: rt.expectWire(wt, {LEN}, {path:?}); m.{n} = {dec}(r, rt.sub(r, end), depth + 1, m.{n}); break;"),
                )
            }
        }
        Value::Payload => (
            format!("if (m.{n} !== undefined) w.tag({no}, {LEN}).bytes(rt.payloadBytes(m.{n}, {path:?}));"),
            format!(
                "case {no}: {{ rt.expectWire(wt, {LEN}, {path:?}); const b = r.bytes(); if (b.length === 0) delete m.{n}; else m.{n} = rt.payloadFromBytes(b, {path:?}); break; }}"
            ),
        ),
        Value::Scalar(s @ (Scalar::String | Scalar::Bytes)) => {
            let (method, read) = if *s == Scalar::String { ("string", "r.string(true)") } else { ("bytes", "r.bytes().slice()") };
            if repeated {
                (
                    format!("for (const x of m.{n} ?? []) w.tag({no}, {LEN}).{method}(x);"),
                    format!("case {no}: rt.expectWire(wt, {LEN}, {path:?}); m.{n}.push({read}); break;"),
                )
            } else {
                let cond = if optional { format!("m.{n} !== undefined") } else { format!("m.{n} !== undefined && m.{n}.length > 0") };
                (
                    format!("if ({cond}) w.tag({no}, {LEN}).{method}(m.{n});"),
                    format!("case {no}: rt.expectWire(wt, {LEN}, {path:?}); m.{n} = {read}; break;"),
                )
            }
        }
        value => {
            // Numbers, booleans and enums: varint or fixed, packed when repeated.
            let (method, wire) = match value {
                Value::Scalar(s) => pb_scalar(*s),
                _ => ("int32", VARINT),
            };
            let to_wire = |x: &str| -> String {
                match value {
                    Value::Enum(r) => format!("rt.enumNumber({x}, {}_numbers, {path:?})", cx.ty(r, false)),
                    Value::Scalar(s) => match wire_writer(*s) {
                        Some(w) => format!("rt.{w}({x}, {path:?})"),
                        None => x.to_string(),
                    },
                    _ => x.to_string(),
                }
            };
            let from_wire = match value {
                Value::Enum(r) => format!("rt.enumByNumber(r.int32(), {}_names, {:?})", cx.ty(r, false), cx.zero(r)),
                Value::Scalar(s) => pb_number(*s, method, path),
                _ => unreachable!(),
            };
            if repeated {
                (
                    format!(
                        "if (m.{n} !== undefined && m.{n}.length > 0) {{ w.tag({no}, {LEN}).fork(); for (const x of m.{n}) w.{method}({}); w.join(); }}",
                        to_wire("x")
                    ),
                    format!(
                        "case {no}: if (wt === {LEN}) {{ const e = rt.sub(r, end); while (r.pos < e) m.{n}.push({from_wire}); rt.endAt(r, e); }} else {{ rt.expectWire(wt, {wire}, {path:?}); m.{n}.push({from_wire}); }} break;"
                    ),
                )
            } else {
                let cond = if optional { format!("m.{n} !== undefined") } else { cx.not_default(value, &format!("m.{n}")) };
                (
                    format!("if ({cond}) w.tag({no}, {wire}).{method}({});", to_wire(&format!("m.{n}"))),
                    format!("case {no}: rt.expectWire(wt, {wire}, {path:?}); m.{n} = {from_wire}; break;"),
                )
            }
        }
    }
}

/// `BinaryWriter`/`BinaryReader` method and wire type of a scalar.
fn pb_scalar(s: Scalar) -> (&'static str, u8) {
    match s {
        Scalar::Bool => ("bool", VARINT),
        Scalar::Int32 => ("int32", VARINT),
        Scalar::Sint32 => ("sint32", VARINT),
        Scalar::Uint32 => ("uint32", VARINT),
        Scalar::Int64 => ("int64", VARINT),
        Scalar::Sint64 => ("sint64", VARINT),
        Scalar::Uint64 => ("uint64", VARINT),
        Scalar::Fixed64 => ("fixed64", FIXED64),
        Scalar::Sfixed64 => ("sfixed64", FIXED64),
        Scalar::Double => ("double", FIXED64),
        Scalar::Fixed32 => ("fixed32", FIXED32),
        Scalar::Sfixed32 => ("sfixed32", FIXED32),
        Scalar::Float => ("float", FIXED32),
        Scalar::String => ("string", LEN),
        Scalar::Bytes => ("bytes", LEN),
    }
}
