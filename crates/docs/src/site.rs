//! Turns the collected reference data into pages: builds each page's
//! template context and renders it twice, as HTML for the site and as
//! Markdown under `markdown/`.

use serde::Serialize;
use serde_json::{json, Value};

use courier_protocol::close::Reaction;
use courier_protocol::{Subprotocol, Version};

use crate::close_codes;
use crate::model::Direction;
use crate::{render, replies, spec, Error, Reference};

/// One generated file, path relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    pub path: String,
    pub contents: String,
}

struct Out {
    files: Vec<OutFile>,
    html: handlebars::Handlebars<'static>,
    md: handlebars::Handlebars<'static>,
}

impl Out {
    /// Renders `template` with `ctx` to `<name>.html` and `markdown/<name>.md`.
    fn page(
        &mut self,
        template: &str,
        name: &str,
        md_name: &str,
        mut ctx: Value,
    ) -> Result<(), Error> {
        let depth = name.matches('/').count();
        let root = "../".repeat(depth);
        ctx["root"] = json!(root);
        let html = self.html.render(template, &ctx)?;
        self.files.push(OutFile {
            path: format!("{name}.html"),
            contents: html,
        });
        let md = self.md.render(template, &ctx)?;
        self.files.push(OutFile {
            path: format!("markdown/{md_name}.md"),
            contents: tidy_markdown(&md),
        });
        Ok(())
    }
}

/// Collapses the blank-line runs handlebars leaves around block helpers.
fn tidy_markdown(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut blank = 0;
    let mut in_code = false;
    for line in md.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if line.trim().is_empty() && !in_code {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim_start().to_string()
}

/// Renders every page of the reference.
pub fn build(r: &Reference) -> Result<Vec<OutFile>, Error> {
    let mut out = Out {
        files: Vec::new(),
        html: render::html()?,
        md: render::markdown()?,
    };
    let reqs = spec::requirements();
    let docs = spec::documents();

    // Index.
    let groups: Vec<Value> = [
        (
            Direction::ClientToServer,
            "client-to-server",
            "Client to server",
        ),
        (
            Direction::ServerToClient,
            "server-to-client",
            "Server to client",
        ),
        (Direction::Both, "both-directions", "Both directions"),
    ]
    .iter()
    .map(|(d, id, title)| {
        let bodies: Vec<_> = r.v2.bodies.iter().filter(|b| b.direction == *d).collect();
        json!({ "id": id, "title": title, "bodies": bodies })
    })
    .collect();
    let versions: Vec<Value> = [(Version::V2, &r.v2), (Version::V1, &r.v1)]
        .iter()
        .map(|(v, m)| {
            let subprotocols: Vec<&str> = Subprotocol::ALL
                .iter()
                .filter(|s| s.version == *v)
                .map(|s| s.name())
                .collect();
            json!({ "number": v.number(), "subprotocols": subprotocols, "types": m.bodies.len() })
        })
        .collect();
    let ctx = json!({
        "title": "Overview",
        "groups": groups,
        "versions": versions,
        "requirement_count": reqs.len(),
        "payloads": r.payloads.is_some(),
        "payload_count": r.payloads.as_ref().map_or(0, |p| p.messages.len()),
    });
    out.page("index", "index", "README", ctx)?;

    // One page per envelope type.
    let bodies = &r.v2.bodies;
    for (i, body) in bodies.iter().enumerate() {
        let message =
            r.v2.message(&body.message)
                .ok_or_else(|| Error::Inconsistent(format!("no message {}", body.message)))?;
        let example = r
            .examples
            .iter()
            .find(|e| e.type_name == body.type_name)
            .ok_or_else(|| Error::Inconsistent(format!("no example of `{}`", body.type_name)))?;
        let outcomes: Vec<Value> = replies::outcomes(&body.type_name)
            .into_iter()
            .map(|o| {
                let link = (o.kind == "reply" && bodies.iter().any(|b| b.type_name == o.what))
                    .then(|| o.what.clone());
                let code_anchor = (o.kind == "close" && o.what.parse::<u16>().is_ok())
                    .then(|| format!("code-{}", o.what));
                let mut v = serde_json::to_value(&o).unwrap_or_default();
                v["link"] = json!(link);
                v["code_anchor"] = json!(code_anchor);
                v
            })
            .collect();
        let answers: Vec<&str> = replies::answers(&body.type_name)
            .map(|a| a.split(", ").collect())
            .unwrap_or_default();
        let ctx = json!({
            "title": body.type_name,
            "body": body,
            "message": message,
            "show_doc": !message.doc.eq_ignore_ascii_case(&body.summary),
            "outcomes": outcomes,
            "answers": answers,
            "answers_error": body.type_name == "error",
            "example_version": 2,
            "example": example.v2,
            "example_v1": example.v1.as_ref().filter(|v1| v1.json != example.v2.json),
            "schema": r.asyncapi_schemas.get(&body.type_name).cloned().unwrap_or_default(),
            "prev": i.checked_sub(1).map(|p| &bodies[p].type_name),
            "next": bodies.get(i + 1).map(|n| &n.type_name),
        });
        out.page(
            "message",
            &format!("messages/{}", body.type_name),
            &format!("messages/{}", body.type_name),
            ctx,
        )?;
    }

    // Types: every message (body messages point to their page) and enum.
    let types_ctx = |model: &crate::model::Model, page: &str, heading: &str, intro: &str| {
        let messages: Vec<Value> = model
            .messages
            .iter()
            .map(|m| {
                let mut v = serde_json::to_value(m).unwrap_or_default();
                v["body_type"] = json!(model
                    .bodies
                    .iter()
                    .find(|b| b.message == m.name)
                    .map(|b| &b.type_name));
                v
            })
            .collect();
        json!({ "title": heading, "heading": heading, "intro": intro, "messages": messages, "enums": model.enums, "types_page": page })
    };
    out.page(
        "types",
        "types",
        "types",
        types_ctx(&r.v2, "types", "Types", "Every message and enum of protocol version 2, with the version that introduced each. Messages that travel as an envelope body link to their own page."),
    )?;
    if let Some(p) = &r.payloads {
        out.page(
            "types",
            "payloads",
            "payloads",
            types_ctx(p, "payloads", "Application payloads", "Your payload definitions. On the wire they are JSON-model values inside `payload` fields: JSON objects in the JSON encoding, MessagePack maps in the other two (ENC-TYPED-PAYLOAD)."),
        )?;
    }

    // Close codes.
    let ranges: Vec<Value> = [
        ("1002, 1007, 1009, 4000–4099", Reaction::Terminal),
        (
            "4100–4199, 1006 and any other code",
            Reaction::BackoffResume,
        ),
        ("1001, 4200–4299", Reaction::ReconnectResume),
        ("4300–4399", Reaction::RefreshCredentials),
    ]
    .iter()
    .map(|(codes, reaction)| {
        let (text, req) = close_codes::describe(*reaction);
        json!({ "codes": codes, "reaction": text, "req": req })
    })
    .collect();
    out.page(
        "close_codes",
        "close-codes",
        "close-codes",
        json!({ "title": "Close codes", "codes": r.close_codes, "ranges": ranges }),
    )?;

    // Requirements, grouped by document, with the cases checking each.
    let cases_for = |id: &str| -> Vec<&str> {
        r.cases
            .iter()
            .filter(|c| c.requirements.iter().any(|q| q == id))
            .map(|c| c.id.as_str())
            .collect()
    };
    let covered = reqs.iter().filter(|q| !cases_for(&q.id).is_empty()).count();
    let req_docs: Vec<Value> = docs
        .iter()
        .filter_map(|d| {
            let rows: Vec<Value> = reqs
                .iter()
                .filter(|q| q.doc == d.slug)
                .map(|q| {
                    let mut v = serde_json::to_value(q).unwrap_or_default();
                    v["cases"] = json!(cases_for(&q.id));
                    v["level_class"] = json!(q.level.to_lowercase().replace(' ', "-"));
                    v
                })
                .collect();
            (!rows.is_empty())
                .then(|| json!({ "slug": d.slug, "file": d.file, "title": d.title, "reqs": rows }))
        })
        .collect();
    out.page(
        "requirements",
        "requirements",
        "requirements",
        json!({ "title": "Requirements", "count": reqs.len(), "covered": covered, "cases_available": !r.cases.is_empty(), "docs": req_docs }),
    )?;
    out.page(
        "conformance",
        "conformance",
        "conformance",
        json!({ "title": "Conformance cases", "cases": r.cases }),
    )?;

    // History.
    let history = json!({
        "title": "Version history",
        "versions": [{
            "from": 1, "to": 2,
            "summary": format!("{} additions, {} changes, {} removals.",
                r.changes.iter().filter(|c| c.kind == "added").count(),
                r.changes.iter().filter(|c| c.kind == "changed").count(),
                r.changes.iter().filter(|c| c.kind == "removed").count()),
            "changes": r.changes,
        }],
    });
    out.page("history", "history", "history", history)?;

    // Transcripts.
    out.page(
        "transcripts",
        "transcripts",
        "transcripts",
        json!({ "title": "Session transcripts", "transcripts": r.transcripts, "server": r.server_name }),
    )?;

    // The spec, rendered (HTML) and copied (Markdown).
    let doc_list: Vec<Value> = docs
        .iter()
        .map(|d| json!({ "slug": d.slug, "title": d.title }))
        .collect();
    for d in &docs {
        let ctx = json!({ "title": d.title, "slug": d.slug, "docs": doc_list, "html": spec::to_html(d.source), "root": "../" });
        let html = out.html.render("spec", &ctx)?;
        out.files.push(OutFile {
            path: format!("spec/{}.html", d.slug),
            contents: html,
        });
        out.files.push(OutFile {
            path: format!("markdown/spec/{}", d.file),
            contents: spec::unlink_outside(d.source),
        });
    }

    for (path, contents) in render::ASSETS {
        out.files.push(OutFile {
            path: path.to_string(),
            contents: contents.to_string(),
        });
    }
    out.files.push(OutFile {
        path: "assets/search-index.js".into(),
        contents: search_index(r),
    });
    Ok(out.files)
}

#[derive(Serialize)]
struct SearchEntry {
    /// Name searched and shown.
    n: String,
    /// Kind (message, type, enum, close code, requirement).
    k: &'static str,
    /// URL relative to the site root.
    u: String,
    /// Text searched after the name (full-text search): descriptions,
    /// field names and their descriptions, requirement and spec text.
    #[serde(skip_serializing_if = "String::is_empty")]
    t: String,
}

/// Field names and descriptions of a message, for the search text.
fn message_text(m: &crate::model::MessageDoc) -> String {
    let mut t = m.doc.clone();
    for f in &m.fields {
        t.push(' ');
        t.push_str(&f.name);
        t.push(' ');
        t.push_str(&f.doc);
    }
    t
}

fn search_index(r: &Reference) -> String {
    let mut entries = Vec::new();
    for b in &r.v2.bodies {
        let body = r.v2.messages.iter().find(|m| m.name == b.message);
        entries.push(SearchEntry {
            n: b.type_name.clone(),
            k: b.direction.label(),
            u: format!("messages/{}.html", b.type_name),
            t: format!(
                "{} {}",
                b.summary,
                body.map(message_text).unwrap_or_default()
            ),
        });
    }
    for m in &r.v2.messages {
        entries.push(SearchEntry {
            n: m.name.clone(),
            k: "type",
            u: format!("types.html#{}", m.anchor),
            t: message_text(m),
        });
    }
    for e in &r.v2.enums {
        entries.push(SearchEntry {
            n: e.name.clone(),
            k: "enum",
            u: format!("types.html#{}", e.anchor),
            t: e.doc.clone(),
        });
        for v in &e.values {
            entries.push(SearchEntry {
                n: v.name.clone(),
                k: "enum value",
                u: format!("types.html#{}-{}", e.anchor, v.name),
                t: v.doc.clone(),
            });
        }
    }
    for c in &r.close_codes {
        entries.push(SearchEntry {
            n: format!("{} {}", c.code, c.name),
            k: "close code",
            u: format!("close-codes.html#code-{}", c.code),
            t: format!("{} {} {}", c.doc, c.trigger, c.reaction),
        });
    }
    for q in spec::requirements() {
        entries.push(SearchEntry {
            n: q.id.clone(),
            k: "requirement",
            u: format!("requirements.html#req-{}", q.id),
            t: q.text.clone(),
        });
    }
    if let Some(p) = &r.payloads {
        for m in &p.messages {
            entries.push(SearchEntry {
                n: m.full_name.clone(),
                k: "payload",
                u: format!("payloads.html#{}", m.anchor),
                t: message_text(m),
            });
        }
    }
    // Spec sections: each heading with the prose under it.
    for d in spec::documents() {
        let mut section: Option<SearchEntry> = None;
        for line in d.source.lines() {
            if let Some(h) = line
                .strip_prefix("## ")
                .or_else(|| line.strip_prefix("### "))
            {
                entries.extend(section.take());
                section = Some(SearchEntry {
                    n: format!("{} › {}", d.title, h.trim()),
                    k: "spec",
                    u: format!("spec/{}.html#{}", d.slug, spec::heading_anchor(h.trim())),
                    t: String::new(),
                });
            } else if let Some(s) = section.as_mut() {
                s.t.push(' ');
                s.t.push_str(line.trim());
            }
        }
        entries.extend(section);
    }
    let json = serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into());
    format!("// Generated by `courier docs`: the search index (a script so it loads from file://).\nwindow.COURIER_SEARCH = {json};\n")
}
