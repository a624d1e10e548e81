//! The compatibility rules: which change breaks which encoding under
//! Courier's encoding policy (docs/spec/encoding.md, docs/codegen.md).
//! Protobuf identifies fields and enum values by number and wire type;
//! JSON and MessagePack by the proto field name and the enum value name
//! (ENC-JSON-FLAT, ENC-ENUM-NAMES, ENC-TYPED-PAYLOAD), with integers
//! range-checked (ENC-INT-FORM, ENC-INT53), `bytes` as base64/`bin`, a
//! oneof as a map under its name, and map keys as strings.

use courier_codegen::model::Scalar;

use super::model::{Enum, Field, Kind, Loc, Message, Schema};

/// A wire encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Enc {
    Json,
    MsgPack,
    Protobuf,
}

impl Enc {
    pub fn name(self) -> &'static str {
        match self {
            Enc::Json => "json",
            Enc::MsgPack => "msgpack",
            Enc::Protobuf => "protobuf",
        }
    }
}

const ALL: &[Enc] = &[Enc::Json, Enc::MsgPack, Enc::Protobuf];
const NAMED: &[Enc] = &[Enc::Json, Enc::MsgPack];
const PROTO: &[Enc] = &[Enc::Protobuf];

/// One breaking change.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Where (the new definition, or the old one for a removal).
    pub loc: Loc,
    /// The element (`Chat.text`, `Mood.MOOD_SAD`).
    pub subject: String,
    /// What changed and why it breaks.
    pub what: String,
    /// The encodings it breaks.
    pub breaks: Vec<Enc>,
}

/// The findings so far, and the two schemas (to compare a field's message
/// or enum type with the one that replaced it: type names are not on the
/// wire, shapes are).
struct Out<'a> {
    found: Vec<Finding>,
    old: &'a Schema,
    new: &'a Schema,
    /// Nesting of type comparisons (recursive types stop at 8).
    depth: usize,
}

impl Out<'_> {
    fn add(&mut self, loc: &Loc, subject: String, what: String, breaks: &[Enc]) {
        if !breaks.is_empty() {
            self.found.push(Finding {
                loc: loc.clone(),
                subject,
                what,
                breaks: breaks.to_vec(),
            });
        }
    }
}

/// Every breaking change from `old` to `new`.
pub fn check(old: &Schema, new: &Schema) -> Vec<Finding> {
    let mut out = Out {
        found: Vec::new(),
        old,
        new,
        depth: 0,
    };
    for (name, om) in &old.messages {
        match new.messages.get(name) {
            None => out.add(
                &om.loc,
                name.clone(),
                "message removed: readers and writers using it break".into(),
                ALL,
            ),
            Some(nm) => message(&mut out, name, om, nm),
        }
    }
    for (name, oe) in &old.enums {
        match new.enums.get(name) {
            None => out.add(&oe.loc, name.clone(), "enum removed".into(), ALL),
            Some(ne) => enumeration(&mut out, name, oe, ne),
        }
    }
    out.found
}

/// A field's message or enum type replaced by another: what breaks is
/// what differs between the two shapes. `None` when either type is not in
/// the compared files (imported) or the types recurse too deep.
fn replaced_type(out: &Out<'_>, old: &Kind, new: &Kind) -> Option<Vec<Finding>> {
    if out.depth >= 8 {
        return None;
    }
    let mut sub = Out {
        found: Vec::new(),
        old: out.old,
        new: out.new,
        depth: out.depth + 1,
    };
    match (old, new) {
        (Kind::Message(a), Kind::Message(b)) => {
            let (om, nm) = (out.old.messages.get(a)?, out.new.messages.get(b)?);
            message(&mut sub, b, om, nm);
        }
        (Kind::Enum(a), Kind::Enum(b)) => {
            let (oe, ne) = (out.old.enums.get(a)?, out.new.enums.get(b)?);
            enumeration(&mut sub, b, oe, ne);
        }
        _ => return None,
    }
    Some(sub.found)
}

fn message(out: &mut Out<'_>, msg: &str, old: &Message, new: &Message) {
    for of in &old.fields {
        let subject = format!("{msg}.{}", of.name);
        let at_number = new.by_number(of.number);
        let by_name = new.by_name(&of.name);
        match (at_number, by_name) {
            (Some(nf), _) if nf.name == of.name => field(out, &subject, of, nf, ALL),
            (Some(nf), Some(moved)) => {
                out.add(
                    &nf.loc,
                    subject.clone(),
                    format!(
                        "field number {} reused by `{}` while `{}` moved to {}: old Protobuf writers' values are read as `{}`",
                        of.number, nf.name, of.name, moved.number, nf.name
                    ),
                    PROTO,
                );
                field(out, &subject, of, moved, NAMED);
            }
            (Some(nf), None) => {
                out.add(
                    &nf.loc,
                    subject.clone(),
                    format!(
                        "field renamed `{}` -> `{}` (number {} kept): the JSON/MessagePack member name changes",
                        of.name, nf.name, of.number
                    ),
                    NAMED,
                );
                field(out, &subject, of, nf, PROTO);
            }
            (None, Some(moved)) => {
                out.add(
                    &moved.loc,
                    subject.clone(),
                    format!("field renumbered {} -> {}", of.number, moved.number),
                    PROTO,
                );
                field(out, &subject, of, moved, NAMED);
            }
            (None, None) => {
                let mut breaks = Vec::new();
                if !new.reserved.names.contains(&of.name) {
                    breaks.extend_from_slice(NAMED);
                }
                if !new.reserved.number(of.number) {
                    breaks.push(Enc::Protobuf);
                }
                out.add(
                    &of.loc,
                    subject,
                    format!(
                        "field {} ({}) removed without reserving its {}: old writers' values are dropped and the {} can be reused",
                        of.name,
                        of.number,
                        reserve_what(&breaks),
                        reserve_what(&breaks)
                    ),
                    &breaks,
                );
            }
        }
    }
    // New fields on numbers or names the old version reserved.
    for nf in &new.fields {
        if old.by_number(nf.number).is_none() && old.reserved.number(nf.number) {
            out.add(
                &nf.loc,
                format!("{msg}.{}", nf.name),
                format!(
                    "field uses number {}, reserved in the old version",
                    nf.number
                ),
                PROTO,
            );
        }
        if old.by_name(&nf.name).is_none() && old.reserved.names.contains(&nf.name) {
            out.add(
                &nf.loc,
                format!("{msg}.{}", nf.name),
                format!("field uses name `{}`, reserved in the old version", nf.name),
                NAMED,
            );
        }
    }
}

fn reserve_what(breaks: &[Enc]) -> &'static str {
    match (breaks.contains(&Enc::Json), breaks.contains(&Enc::Protobuf)) {
        (true, true) => "number and name",
        (true, false) => "name",
        _ => "number",
    }
}

/// Compares one field's shape, reporting only for `scope`'s encodings.
fn field(out: &mut Out<'_>, subject: &str, old: &Field, new: &Field, scope: &[Enc]) {
    let only = |breaks: Vec<Enc>| -> Vec<Enc> {
        breaks.into_iter().filter(|e| scope.contains(e)).collect()
    };
    match (&old.map, &new.map) {
        (Some((ok, ov)), Some((nk, nv))) => {
            let b = only(kind_change(ok, nk));
            out.add(
                &new.loc,
                subject.into(),
                format!(
                    "map key type changed {ok} -> {nk}{}",
                    why_kind(ok, nk, &b, true)
                ),
                &b,
            );
            let b = only(kind_change(ov, nv));
            out.add(
                &new.loc,
                subject.into(),
                format!(
                    "map value type changed {ov} -> {nv}{}",
                    why_kind(ov, nv, &b, false)
                ),
                &b,
            );
            return;
        }
        (None, None) => {}
        (o, _) => {
            out.add(
                &new.loc,
                subject.into(),
                format!(
                    "field {} a map: JSON/MessagePack object vs array, Protobuf entries vs elements",
                    if o.is_some() { "is no longer" } else { "became" }
                ),
                &only(ALL.to_vec()),
            );
            return;
        }
    }
    if old.repeated != new.repeated {
        out.add(
            &new.loc,
            subject.into(),
            format!(
                "field made {}: JSON/MessagePack array vs single value, Protobuf readers keep only the last element",
                if new.repeated { "repeated" } else { "singular" }
            ),
            &only(ALL.to_vec()),
        );
    } else {
        if old.kind != new.kind {
            if let Some(diffs) = replaced_type(out, &old.kind, &new.kind) {
                // Same shape under another name: nothing on the wire changes.
                let mut breaks: Vec<Enc> = diffs.iter().flat_map(|d| d.breaks.clone()).collect();
                breaks.sort();
                breaks.dedup();
                let breaks = only(breaks);
                if let Some(first) = diffs
                    .iter()
                    .find(|d| d.breaks.iter().any(|e| breaks.contains(e)))
                {
                    let more = diffs.len() - 1;
                    out.add(
                        &new.loc,
                        subject.into(),
                        format!(
                            "type changed {} -> {}, whose shapes differ: {}: {}{}",
                            old.kind,
                            new.kind,
                            first.subject,
                            first.what,
                            if more > 0 {
                                format!(" (and {more} more)")
                            } else {
                                String::new()
                            }
                        ),
                        &breaks,
                    );
                }
                return oneof_check(out, subject, old, new, scope);
            }
        }
        let b = only(kind_change(&old.kind, &new.kind));
        out.add(
            &new.loc,
            subject.into(),
            format!(
                "type changed {} -> {}{}",
                old.kind,
                new.kind,
                why_kind(&old.kind, &new.kind, &b, false)
            ),
            &b,
        );
    }
    oneof_check(out, subject, old, new, scope);
}

/// A field moved into, out of or between oneofs.
fn oneof_check(out: &mut Out<'_>, subject: &str, old: &Field, new: &Field, scope: &[Enc]) {
    let only = |breaks: Vec<Enc>| -> Vec<Enc> {
        breaks.into_iter().filter(|e| scope.contains(e)).collect()
    };
    let oneof = |f: &Field| f.oneof.as_ref().map(|(n, _)| n.clone());
    if oneof(old) != oneof(new) {
        let shared = old.oneof.as_ref().is_some_and(|o| o.1 > 1)
            || new.oneof.as_ref().is_some_and(|o| o.1 > 1);
        let mut breaks = NAMED.to_vec();
        if shared {
            // Setting it may now clear (or no longer clear) other members.
            breaks.push(Enc::Protobuf);
        }
        let name = |o: Option<String>| o.map_or("no oneof".to_string(), |n| format!("oneof `{n}`"));
        out.add(
            &new.loc,
            subject.into(),
            format!(
                "field moved from {} to {}: in JSON/MessagePack a oneof member is nested under the oneof's name",
                name(oneof(old)),
                name(oneof(new))
            ),
            &only(breaks),
        );
    }
}

/// The JSON/MessagePack value class of a scalar: integers by the range a
/// reader accepts (64-bit ones are limited to 2^53-1, ENC-INT53).
fn named_class(t: Scalar) -> &'static str {
    match t {
        Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => "int32",
        Scalar::Uint32 | Scalar::Fixed32 => "uint32",
        Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => "int53",
        Scalar::Uint64 | Scalar::Fixed64 => "uint53",
        Scalar::Float | Scalar::Double => "float",
        Scalar::Bool => "bool",
        Scalar::String => "string",
        Scalar::Bytes => "bytes",
    }
}

/// Why a type change breaks the encodings in `breaks`, for the report.
fn why_kind(old: &Kind, new: &Kind, breaks: &[Enc], map_key: bool) -> String {
    let mut why = Vec::new();
    if breaks.contains(&Enc::Json) {
        why.push(match (old, new) {
            _ if map_key => {
                "JSON/MessagePack map keys are strings that must parse as the key type (integers in decimal, bools as true/false)"
            }
            (Kind::Scalar(a), Kind::Scalar(b))
                if [a, b].iter().all(|t| named_class(**t).contains("int")) =>
            {
                "JSON/MessagePack readers reject integers outside their type's range (ENC-INT-FORM)"
            }
            (Kind::Scalar(a), Kind::Scalar(b)) if [a, b].iter().any(|t| **t == Scalar::Bytes) => {
                "bytes travel as base64 in JSON and `bin` in MessagePack (ENC-BYTES)"
            }
            (Kind::Enum(_), _) | (_, Kind::Enum(_)) => {
                "enum values travel as their names in JSON/MessagePack (ENC-ENUM-NAMES)"
            }
            _ => "the JSON/MessagePack value changes shape",
        });
    }
    if breaks.contains(&Enc::Protobuf) {
        why.push(match (old, new) {
            (Kind::Scalar(a), Kind::Scalar(b)) if wire_type(*a) == wire_type(*b) => {
                "Protobuf readers truncate or reinterpret the value"
            }
            (Kind::Scalar(_), Kind::Scalar(_)) => {
                "the Protobuf wire encoding changes (wire type or zigzag)"
            }
            _ => "Protobuf readers parse other bytes",
        });
    }
    if why.is_empty() {
        String::new()
    } else {
        format!(": {}", why.join("; "))
    }
}

/// The Protobuf wire type of a scalar (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32;
/// zigzag varints as 10 since they do not mix with plain varints).
fn wire_type(t: Scalar) -> u8 {
    match t {
        Scalar::Int32 | Scalar::Int64 | Scalar::Uint32 | Scalar::Uint64 | Scalar::Bool => 0,
        Scalar::Sint32 | Scalar::Sint64 => 10,
        Scalar::Fixed64 | Scalar::Sfixed64 | Scalar::Double => 1,
        Scalar::Fixed32 | Scalar::Sfixed32 | Scalar::Float => 5,
        Scalar::String | Scalar::Bytes => 2,
    }
}

/// Which encodings a type change breaks.
fn kind_change(old: &Kind, new: &Kind) -> Vec<Enc> {
    if old == new {
        return Vec::new();
    }
    let mut breaks = Vec::new();
    let named_ok = match (old, new) {
        (Kind::Scalar(a), Kind::Scalar(b)) => named_class(*a) == named_class(*b),
        _ => false,
    };
    if !named_ok {
        breaks.extend_from_slice(NAMED);
    }
    let proto_ok = match (old, new) {
        (Kind::Scalar(a), Kind::Scalar(b)) => {
            matches!(
                (a, b),
                (Scalar::String, Scalar::Bytes) | (Scalar::Bytes, Scalar::String)
            )
        }
        // An enum is an int32 on the wire.
        (Kind::Enum(_), Kind::Scalar(Scalar::Int32))
        | (Kind::Scalar(Scalar::Int32), Kind::Enum(_)) => true,
        _ => false,
    };
    if !proto_ok {
        breaks.push(Enc::Protobuf);
    }
    breaks
}

fn enumeration(out: &mut Out<'_>, name: &str, old: &Enum, new: &Enum) {
    let by_number = |e: &Enum, n: i32| e.values.iter().find(|v| v.1 == n).cloned();
    let by_name = |e: &Enum, s: &str| e.values.iter().find(|v| v.0 == s).cloned();
    for (vname, number, loc) in &old.values {
        let subject = format!("{name}.{vname}");
        match (by_number(new, *number), by_name(new, vname)) {
            (Some(n), _) if n.0 == *vname => {}
            (Some(n), Some(moved)) => {
                out.add(
                    &n.2,
                    subject.clone(),
                    format!("enum number {number} reused by `{}`: old Protobuf writers' `{vname}` is read as `{}`", n.0, n.0),
                    PROTO,
                );
                let _ = moved;
            }
            (Some(n), None) => out.add(
                &n.2,
                subject,
                format!("enum value renamed `{vname}` -> `{}` (number {number} kept): JSON/MessagePack carry the name", n.0),
                NAMED,
            ),
            (None, Some(moved)) => out.add(
                &moved.2,
                subject,
                format!("enum value renumbered {number} -> {}", moved.1),
                PROTO,
            ),
            (None, None) => {
                let mut breaks = Vec::new();
                if !new.reserved.names.contains(vname) {
                    breaks.extend_from_slice(NAMED);
                }
                if !new.reserved.number(*number) {
                    breaks.push(Enc::Protobuf);
                }
                out.add(
                    loc,
                    subject,
                    format!("enum value removed without reserving its {}: old writers' value reads as the _UNSPECIFIED value (ENC-UNKNOWN-ENUM)", reserve_what(&breaks)),
                    &breaks,
                );
            }
        }
    }
    for (vname, number, loc) in &new.values {
        if by_number(old, *number).is_none() && old.reserved.number(*number) {
            out.add(
                loc,
                format!("{name}.{vname}"),
                format!("enum value uses number {number}, reserved in the old version"),
                PROTO,
            );
        }
        if by_name(old, vname).is_none() && old.reserved.names.contains(vname) {
            out.add(
                loc,
                format!("{name}.{vname}"),
                format!("enum value uses name `{vname}`, reserved in the old version"),
                NAMED,
            );
        }
    }
}
