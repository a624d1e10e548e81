//! Version history computed by diffing two versions' descriptor models:
//! envelope types, messages, fields and enum values added, removed or
//! changed. Nothing here is hand-written, so it cannot drift from the
//! definitions.

use serde::Serialize;

use crate::model::Model;

/// One difference between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub kind: &'static str,
    /// `envelope type`, `message`, `field`, `enum` or `enum value`.
    pub what: &'static str,
    /// What changed (`Error.retry_after_ms = 5`).
    pub name: String,
    /// Details for `changed` entries, the doc comment for added ones.
    pub detail: String,
    /// Anchor of the element's documentation in the newer version.
    pub anchor: Option<String>,
}

/// The changes from `old` to `new`, envelope types first, then messages and
/// enums in definition order.
pub fn diff(old: &Model, new: &Model) -> Vec<Change> {
    let mut out = Vec::new();
    for b in &new.bodies {
        match old.bodies.iter().find(|o| o.number == b.number) {
            None => out.push(Change {
                kind: "added",
                what: "envelope type",
                name: format!("{} (Envelope.{} = {})", b.type_name, b.type_name, b.number),
                detail: b.summary.clone(),
                anchor: Some(format!("messages/{}.html", b.type_name)),
            }),
            Some(o) if o.type_name != b.type_name || o.message != b.message => out.push(Change {
                kind: "changed",
                what: "envelope type",
                name: format!("Envelope body {}", b.number),
                detail: format!(
                    "`{}` ({}) became `{}` ({})",
                    o.type_name, o.message, b.type_name, b.message
                ),
                anchor: Some(format!("messages/{}.html", b.type_name)),
            }),
            Some(_) => {}
        }
    }
    for o in old
        .bodies
        .iter()
        .filter(|o| !new.bodies.iter().any(|b| b.number == o.number))
    {
        out.push(Change {
            kind: "removed",
            what: "envelope type",
            name: format!("{} (Envelope.{} = {})", o.type_name, o.type_name, o.number),
            detail: String::new(),
            anchor: None,
        });
    }
    for m in &new.messages {
        let anchor = Some(format!("types.html#{}", m.anchor));
        let Some(om) = old.messages.iter().find(|o| o.name == m.name) else {
            out.push(Change {
                kind: "added",
                what: "message",
                name: m.name.clone(),
                detail: m.doc.clone(),
                anchor,
            });
            continue;
        };
        // Envelope body members are listed above as envelope types.
        for f in m
            .fields
            .iter()
            .filter(|f| !(m.name == "Envelope" && f.oneof.as_deref() == Some("body")))
        {
            let name = format!("{}.{} = {}", m.name, f.name, f.number);
            match om.fields.iter().find(|of| of.number == f.number) {
                None => out.push(Change {
                    kind: "added",
                    what: "field",
                    name,
                    detail: f.doc.clone(),
                    anchor: anchor.clone(),
                }),
                Some(of) => {
                    let mut what_changed = Vec::new();
                    if of.name != f.name {
                        what_changed.push(format!("renamed from `{}`", of.name));
                    }
                    if of.type_name != f.type_name {
                        what_changed
                            .push(format!("type `{}` became `{}`", of.type_name, f.type_name));
                    }
                    if of.presence != f.presence {
                        what_changed.push(format!(
                            "presence `{}` became `{}`",
                            of.presence, f.presence
                        ));
                    }
                    if !of.deprecated && f.deprecated {
                        what_changed.push("deprecated".into());
                    }
                    if !what_changed.is_empty() {
                        out.push(Change {
                            kind: "changed",
                            what: "field",
                            name,
                            detail: what_changed.join("; "),
                            anchor: anchor.clone(),
                        });
                    }
                }
            }
        }
        for of in om
            .fields
            .iter()
            .filter(|of| !m.fields.iter().any(|f| f.number == of.number))
        {
            out.push(Change {
                kind: "removed",
                what: "field",
                name: format!("{}.{} = {}", m.name, of.name, of.number),
                detail: String::new(),
                anchor: anchor.clone(),
            });
        }
    }
    for om in old
        .messages
        .iter()
        .filter(|o| new.message(&o.name).is_none())
    {
        out.push(Change {
            kind: "removed",
            what: "message",
            name: om.name.clone(),
            detail: String::new(),
            anchor: None,
        });
    }
    for e in &new.enums {
        let anchor = Some(format!("types.html#{}", e.anchor));
        let Some(oe) = old.enums.iter().find(|o| o.name == e.name) else {
            out.push(Change {
                kind: "added",
                what: "enum",
                name: e.name.clone(),
                detail: e.doc.clone(),
                anchor,
            });
            continue;
        };
        for v in &e.values {
            match oe.values.iter().find(|ov| ov.number == v.number) {
                None => out.push(Change {
                    kind: "added",
                    what: "enum value",
                    name: format!("{}.{} = {}", e.name, v.name, v.number),
                    detail: v.doc.clone(),
                    anchor: anchor.clone(),
                }),
                Some(ov) if ov.name != v.name => out.push(Change {
                    kind: "changed",
                    what: "enum value",
                    name: format!("{} = {}", e.name, v.number),
                    detail: format!("renamed from `{}` to `{}`", ov.name, v.name),
                    anchor: anchor.clone(),
                }),
                Some(_) => {}
            }
        }
        for ov in oe
            .values
            .iter()
            .filter(|ov| !e.values.iter().any(|v| v.number == ov.number))
        {
            out.push(Change {
                kind: "removed",
                what: "enum value",
                name: format!("{}.{} = {}", e.name, ov.name, ov.number),
                detail: String::new(),
                anchor: anchor.clone(),
            });
        }
    }
    out
}
