//! Completeness of the reference: every message and enum of the proto
//! definitions has its documentation, every requirement ID of the spec is in
//! the requirement index, every cited ID exists, and every internal link
//! and anchor of the HTML site resolves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use courier_docs::OutFile;

fn render() -> BTreeMap<String, String> {
    let mut config = courier_docs::Config::new();
    config.transcripts(false);
    config
        .render()
        .unwrap()
        .into_iter()
        .map(|OutFile { path, contents }| (path, contents))
        .collect()
}

/// Requirement IDs read straight from the files on disk (not through the
/// crate's embedded copy), with the pattern the spec's README gives.
fn spec_ids_on_disk() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/spec");
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("- **`") {
                let id = rest.split('`').next().unwrap();
                if !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
                {
                    ids.push(id.to_string());
                }
            }
        }
    }
    ids
}

#[test]
fn every_message_and_enum_of_the_definitions_is_documented() {
    let files = render();
    let types = &files["types.html"];
    let types_md = &files["markdown/types.md"];
    for version in [1, 2] {
        let fds = courier_codegen::courier_descriptors(version).unwrap();
        for file in fds
            .file
            .iter()
            .filter(|f| f.package().starts_with("courier."))
        {
            for m in &file.message_type {
                let anchor = format!("id=\"type-{}\"", m.name());
                assert!(
                    types.contains(&anchor),
                    "types.html lacks {} (v{version})",
                    m.name()
                );
                assert!(types_md.contains(&anchor), "types.md lacks {}", m.name());
                for f in &m.field {
                    let row = format!("id=\"type-{}-{}\"", m.name(), f.name());
                    assert!(
                        types.contains(&row),
                        "types.html lacks field {}.{}",
                        m.name(),
                        f.name()
                    );
                }
            }
            for e in &file.enum_type {
                assert!(
                    types.contains(&format!("id=\"type-{}\"", e.name())),
                    "types.html lacks enum {}",
                    e.name()
                );
                for v in &e.value {
                    assert!(types.contains(v.name()), "types.html lacks {}", v.name());
                }
            }
        }
        // Every envelope body type has its page, in both flavours.
        let envelope = fds
            .file
            .iter()
            .flat_map(|f| &f.message_type)
            .find(|m| {
                m.name() == "Envelope"
                    && fds
                        .file
                        .iter()
                        .any(|f| f.package() == format!("courier.v{version}"))
            })
            .unwrap();
        for f in &envelope.field {
            assert!(
                files.contains_key(&format!("messages/{}.html", f.name())),
                "no page for {}",
                f.name()
            );
            assert!(
                files.contains_key(&format!("markdown/messages/{}.md", f.name())),
                "no md page for {}",
                f.name()
            );
            assert!(
                files["index.html"].contains(&format!("messages/{}.html", f.name())),
                "index lacks {}",
                f.name()
            );
        }
    }
}

#[test]
fn every_requirement_id_is_in_the_requirement_index() {
    let files = render();
    let ids = spec_ids_on_disk();
    assert!(ids.len() > 100, "only {} requirement IDs found", ids.len());
    for id in &ids {
        assert!(
            files["requirements.html"].contains(&format!("id=\"req-{id}\"")),
            "{id} not in requirements.html"
        );
        assert!(
            files["markdown/requirements.md"].contains(&format!("id=\"req-{id}\"")),
            "{id} not in requirements.md"
        );
        assert!(
            files["assets/search-index.js"].contains(&format!("\"{id}\"")),
            "{id} not searchable"
        );
    }
}

#[test]
fn every_conformance_case_is_listed_and_linked_from_its_requirements() {
    let files = render();
    let cases = courier_conformance::cases();
    assert!(!cases.is_empty());
    let index = &files["requirements.html"];
    for c in &cases {
        assert!(
            files["conformance.html"].contains(&format!("id=\"case-{}\"", c.id)),
            "{} not listed",
            c.id
        );
        assert!(
            files["markdown/conformance.md"].contains(&format!("id=\"case-{}\"", c.id)),
            "{} not in md",
            c.id
        );
        for r in &c.requirements {
            let start = index
                .find(&format!("id=\"req-{r}\""))
                .unwrap_or_else(|| panic!("{r} of {} not in the index", c.id));
            let row = &index[start..];
            let row = &row[..row.find("</tr>").unwrap()];
            assert!(
                row.contains(&format!("conformance.html#case-{}", c.id)),
                "{r} does not link to {}",
                c.id
            );
        }
    }
}

#[test]
fn cited_requirement_ids_exist_and_every_type_has_a_reply_entry() {
    let ids: BTreeSet<String> = spec_ids_on_disk().into_iter().collect();
    let fds = courier_codegen::courier_descriptors(2).unwrap();
    let defs = courier_codegen::model::Model::new(&fds).unwrap();
    let model = courier_docs::model::Model::courier(&defs, 2).unwrap();
    for b in &model.bodies {
        assert!(
            courier_docs::replies::KNOWN_TYPES.contains(&b.type_name.as_str()),
            "replies.rs lacks {}",
            b.type_name
        );
        for o in courier_docs::replies::outcomes(&b.type_name) {
            for id in o.spec {
                assert!(ids.contains(id), "{}: cites unknown {id}", b.type_name);
            }
        }
        // The direction read from the proto comment agrees with the examples module.
        let expected = courier_protocol::examples::direction_of(&b.type_name).as_str();
        assert_eq!(
            serde_json::to_value(b.direction).unwrap(),
            expected,
            "{}",
            b.type_name
        );
    }
    for c in courier_docs::close_codes::table(&model) {
        assert!(ids.contains(c.reaction_req), "{}", c.reaction_req);
        assert!(
            !c.trigger.is_empty(),
            "close code {} has no trigger in close-codes.md",
            c.code
        );
    }
}

/// `href`/`src`/`id` attribute values of an HTML page.
fn attrs<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

fn resolve(from: &str, target: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in target.split('/') {
        match seg {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[test]
fn every_internal_link_and_anchor_of_the_site_resolves() {
    let files = render();
    let mut checked = 0;
    for (path, html) in files.iter().filter(|(p, _)| p.ends_with(".html")) {
        for link in attrs(html, "href").into_iter().chain(attrs(html, "src")) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let link = link.replace("&amp;", "&");
            let (file, frag) = link
                .split_once('#')
                .map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target = if file.is_empty() {
                path.clone()
            } else {
                resolve(path, file)
            };
            let contents = files
                .get(&target)
                .unwrap_or_else(|| panic!("{path}: link to missing {target}"));
            if let Some(frag) = frag.filter(|f| !f.is_empty()) {
                assert!(
                    attrs(contents, "id").contains(&frag),
                    "{path}: no anchor #{frag} in {target}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} links checked");
}
