//! `types.ts`: a package's messages as interfaces (decoded form, defaults
//! filled in) and `Init` types (every field optional, for encoding), oneofs
//! as unions of one-member objects, the envelope as a `type`-tagged union,
//! enums as string-literal unions with their number tables.

use crate::model::{Cardinality, Value};

use super::render::{emit, jsdoc, map_type, oneof_name, optional, ts_name, Cx};

/// The module text of `cx`'s package.
pub(super) fn module(cx: &Cx, head: &str) -> String {
    let mut o = String::new();
    emit!(
        o,
        "{head}\n// Types of proto package `{}`: every message as an interface (decoded form, defaults\n\
         // filled in) and an `Init` type (every field optional, for encoding); enums as string-literal\n\
         // unions with their number tables.\n\nimport type * as rt from \"{}\";\n{}\n",
        cx.package,
        cx.runtime,
        cx.import_lines("type ", &[("", "types")])
    );
    for e in &cx.enums {
        let name = {
            let mut parts = e.scope.messages.clone();
            parts.push(e.name.clone());
            parts.join("_")
        };
        emit!(o, "{}export type {name} =\n", jsdoc(&e.doc, ""));
        for v in &e.values {
            emit!(o, "  | \"{}\"\n", v.name);
        }
        emit!(
            o,
            "  ;\n\n/** Number of each `{name}` value, for the Protobuf encoding. */\n\
             export const {name}_numbers: {{ readonly [K in {name}]: number }} = {{\n"
        );
        for v in &e.values {
            emit!(o, "{}  {}: {},\n", jsdoc(&v.doc, "  "), v.name, v.number);
        }
        emit!(
            o,
            "}};\n\n/** `{name}` value of each number; other numbers read as the zero value (ENC-UNKNOWN-ENUM). */\n\
             export const {name}_names: {{ readonly [n: number]: {name} | undefined }} = {{\n"
        );
        for v in &e.values {
            emit!(o, "  {}: \"{}\",\n", v.number, v.name);
        }
        o.push_str("};\n\n");
    }
    for m in &cx.messages {
        let name = ts_name(m);
        let doc = jsdoc(&m.doc, "");
        if m.is_envelope() {
            let body: Vec<(&str, String)> = (m.fields.iter())
                .filter_map(|f| match &f.value {
                    Value::Message(r) if f.oneof.is_some() => {
                        Some((f.name.as_str(), cx.ty(r, true)))
                    }
                    _ => None,
                })
                .collect();
            emit!(o, "{doc}export type {name} =\n");
            for (ty, body) in &body {
                emit!(o, "  | ({{ readonly type: \"{ty}\" }} & {body})\n");
            }
            emit!(o, "  ;\n\n/** An envelope to encode: the `type` and any subset of the body's fields. */\nexport type {name}Init =\n");
            for (ty, body) in &body {
                emit!(o, "  | ({{ readonly type: \"{ty}\" }} & {body}Init)\n");
            }
            emit!(
                o,
                "  ;\n\n/** The `type` of an envelope: the name of the body it carries. */\n\
                 export type {name}Type = {name}[\"type\"];\n\n\
                 /** Every envelope `type` of this version, in field-number order. */\n\
                 export const {name}_types: readonly {name}Type[] = [\n"
            );
            for (ty, _) in &body {
                emit!(o, "  \"{ty}\",\n");
            }
            o.push_str("];\n\n");
            continue;
        }
        let mut init = String::new();
        emit!(o, "{doc}export interface {name} {{\n");
        for f in m.plain_fields() {
            let (elem, elem_init) = cx.elem_types(&f.value);
            let (ty, init_ty) = match f.card {
                Cardinality::Repeated => (format!("{elem}[]"), format!("readonly {elem_init}[]")),
                Cardinality::Map(key) => (
                    map_type(key, &elem, ""),
                    map_type(key, &elem_init, "readonly "),
                ),
                _ => (elem, elem_init),
            };
            let q = if optional(f.card, &f.value) { "?" } else { "" };
            emit!(o, "{}  {}{q}: {ty};\n", jsdoc(&f.doc, "  "), f.name);
            emit!(init, "  {}?: {init_ty};\n", f.name);
        }
        for (i, oneof) in m.oneofs.iter().enumerate() {
            let ty = oneof_name(m, i);
            emit!(o, "{}  {}?: {ty};\n", jsdoc(&oneof.doc, "  "), oneof.name);
            emit!(init, "  {}?: {ty}Init;\n", oneof.name);
        }
        emit!(o, "}}\n\n/** `{name}` to encode: fields left out take their default. */\nexport interface {name}Init {{\n{init}}}\n");
        for (i, oneof) in m.oneofs.iter().enumerate() {
            let ty = oneof_name(m, i);
            emit!(o, "\n{}export type {ty} =\n", jsdoc(&oneof.doc, ""));
            for f in m.members(i) {
                emit!(
                    o,
                    "{}  | {{ {}: {} }}\n",
                    jsdoc(&f.doc, "  "),
                    f.name,
                    cx.elem_types(&f.value).0
                );
            }
            emit!(o, "  ;\n\n/** `{ty}` to encode: an object with exactly one member. */\nexport type {ty}Init =\n");
            for f in m.members(i) {
                let others: String = (m.members(i).filter(|g| g.name != f.name))
                    .map(|g| format!("; {}?: never", g.name))
                    .collect();
                emit!(
                    o,
                    "  | {{ {}: {}{others} }}\n",
                    f.name,
                    cx.elem_types(&f.value).1
                );
            }
            o.push_str("  ;\n");
        }
        o.push('\n');
    }
    o
}
