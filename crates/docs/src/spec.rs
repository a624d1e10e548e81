//! The normative specification in `docs/spec/`, embedded at build time:
//! its documents, the numbered requirements they contain, and their HTML
//! rendering with an anchor on every heading and requirement.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;

/// One document of the specification.
#[derive(Debug, Clone, Serialize)]
pub struct SpecDoc {
    /// File name in `docs/spec/` (`close-codes.md`).
    pub file: &'static str,
    /// Page name in the site (`close-codes`), from the file name.
    pub slug: String,
    /// The first heading.
    pub title: String,
    /// The Markdown source.
    #[serde(skip)]
    pub source: &'static str,
}

/// One numbered requirement (`- **`ID`** (LEVEL) text`).
#[derive(Debug, Clone, Serialize)]
pub struct Requirement {
    pub id: String,
    /// MUST, MUST NOT, SHOULD, SHOULD NOT or MAY.
    pub level: String,
    /// The requirement text (Markdown).
    pub text: String,
    /// Site page slug of the document that states it.
    pub doc: String,
    /// Title of that document.
    pub doc_title: String,
}

/// The spec documents, in the order of the spec's own table of contents.
/// A test checks this list against the files on disk.
pub const FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../docs/spec/README.md")),
    (
        "encoding.md",
        include_str!("../../../docs/spec/encoding.md"),
    ),
    (
        "negotiation.md",
        include_str!("../../../docs/spec/negotiation.md"),
    ),
    ("session.md", include_str!("../../../docs/spec/session.md")),
    (
        "channels.md",
        include_str!("../../../docs/spec/channels.md"),
    ),
    (
        "features.md",
        include_str!("../../../docs/spec/features.md"),
    ),
    (
        "close-codes.md",
        include_str!("../../../docs/spec/close-codes.md"),
    ),
    ("limits.md", include_str!("../../../docs/spec/limits.md")),
    ("sse.md", include_str!("../../../docs/spec/sse.md")),
    (
        "versions.md",
        include_str!("../../../docs/spec/versions.md"),
    ),
];

/// The spec documents.
pub fn documents() -> Vec<SpecDoc> {
    FILES
        .iter()
        .map(|(file, source)| SpecDoc {
            file,
            slug: slug_of(file),
            title: source
                .lines()
                .find_map(|l| l.strip_prefix("# "))
                .unwrap_or(file)
                .trim()
                .to_string(),
            source,
        })
        .collect()
}

fn slug_of(file: &str) -> String {
    match file.trim_end_matches(".md") {
        "README" => "index".to_string(),
        other => other.to_string(),
    }
}

/// Every requirement of the spec, in document order.
pub fn requirements() -> Vec<Requirement> {
    let mut out = Vec::new();
    for doc in documents() {
        for line in doc.source.lines() {
            if let Some((id, level, text)) = parse_requirement(line) {
                out.push(Requirement {
                    id: id.to_string(),
                    level: level.to_string(),
                    text: text.to_string(),
                    doc: doc.slug.clone(),
                    doc_title: doc.title.clone(),
                });
            }
        }
    }
    out
}

/// Parses one requirement line with the grammar of the spec's README:
/// ``^- \*\*`(ID)`\*\* \((LEVEL)\) (.+)$``.
pub fn parse_requirement(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix("- **`")?;
    let (id, rest) = rest.split_once("`** (")?;
    let (level, text) = rest.split_once(") ")?;
    let levels = ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"];
    (is_requirement_id(id) && levels.contains(&level) && !text.is_empty())
        .then_some((id, level, text))
}

/// `[A-Z][A-Z0-9]*(-[A-Z0-9]+)+`
pub fn is_requirement_id(id: &str) -> bool {
    let mut parts = id.split('-');
    let first = parts.next().unwrap_or("");
    let upper_digit = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    first.starts_with(|c: char| c.is_ascii_uppercase())
        && upper_digit(first)
        && id.contains('-')
        && parts.all(upper_digit)
}

/// GitHub-style heading anchor: lowercase, spaces to `-`, punctuation dropped.
pub fn heading_anchor(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Renders spec Markdown to HTML for the site: `x.md` links become
/// `x.html`, headings get GitHub-style ids, each requirement gets an anchor
/// named by its ID and a link to the requirement index.
pub fn to_html(source: &str) -> String {
    // Requirement anchors go in as inline HTML at the start of the item.
    let prepared: String = source
        .lines()
        .map(|line| match parse_requirement(line) {
            Some((id, _, _)) => format!(
                "- <a class=\"req-anchor\" id=\"{id}\" href=\"../requirements.html#req-{id}\" title=\"requirement index\">§</a> {}\n",
                &line[2..]
            ),
            None => format!("{line}\n"),
        })
        .collect();
    markdown_to_html(&prepared, true)
}

/// Renders a Markdown fragment (a comment, a requirement text) without the
/// surrounding paragraph.
pub fn inline_html(markdown: &str) -> String {
    let html = markdown_to_html(markdown, false);
    let trimmed = html.trim();
    match trimmed
        .strip_prefix("<p>")
        .and_then(|s| s.strip_suffix("</p>"))
    {
        Some(inner) if !inner.contains("<p>") => inner.to_string(),
        _ => trimmed.to_string(),
    }
}

fn markdown_to_html(source: &str, spec_links: bool) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events: Vec<Event> = Parser::new_ext(source, options).collect();
    let mut out_events = Vec::with_capacity(events.len());
    // Per open link, whether it was dropped (links do not nest, but a stack
    // keeps Start/End pairs right whatever the parser emits).
    let mut links: Vec<bool> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                // The heading's text gives its id.
                let text: String = events[i + 1..]
                    .iter()
                    .take_while(|e| !matches!(e, Event::End(TagEnd::Heading(_))))
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                out_events.push(Event::Start(Tag::Heading {
                    level: *level,
                    id: Some(CowStr::from(heading_anchor(&text))),
                    classes: vec![],
                    attrs: vec![],
                }));
            }
            // Links out of docs/spec (`../codegen.md`) and, in fragments
            // shown on other pages, any relative link have no page in the
            // site: keep their text, drop the link.
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let keep = keeps_link(dest_url, spec_links);
                links.push(keep);
                if keep {
                    let dest = if spec_links {
                        rewrite_link(dest_url)
                    } else {
                        dest_url.to_string()
                    };
                    out_events.push(Event::Start(Tag::Link {
                        link_type: *link_type,
                        dest_url: CowStr::from(dest),
                        title: title.clone(),
                        id: id.clone(),
                    }));
                }
            }
            Event::End(TagEnd::Link) => {
                if links.pop().unwrap_or(true) {
                    out_events.push(event.clone());
                }
            }
            other => out_events.push(other.clone()),
        }
    }
    let mut html_out = String::with_capacity(source.len() * 2);
    html::push_html(&mut html_out, out_events.into_iter());
    html_out
}

fn keeps_link(dest: &str, spec_links: bool) -> bool {
    let external = dest.contains("://") || dest.starts_with("mailto:");
    let anchor = dest.starts_with('#');
    external || anchor || (spec_links && !dest.starts_with("../") && !dest.starts_with('/'))
}

/// Markdown with links that leave `docs/spec` (`[x](../codegen.md)`)
/// reduced to their text, for the Markdown copy of the spec, whose
/// neighbours outside `spec/` are not part of the reference.
pub fn unlink_outside(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut rest = md;
    while let Some(open) = rest.find('[') {
        let (before, from_open) = rest.split_at(open);
        out.push_str(before);
        let parsed = from_open.find("](").and_then(|mid| {
            let text = &from_open[1..mid];
            let after = &from_open[mid + 2..];
            let close = after.find(')')?;
            let dest = &after[..close];
            (!text.contains('[') && (dest.starts_with("../") || dest.starts_with('/')))
                .then_some((text, mid + 2 + close + 1))
        });
        match parsed {
            Some((text, len)) => {
                out.push_str(text);
                rest = &from_open[len..];
            }
            None => {
                out.push('[');
                rest = &from_open[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `session.md#x` → `session.html#x`; the README is the spec's index page.
fn rewrite_link(dest: &str) -> String {
    if dest.contains("://") {
        return dest.to_string();
    }
    let (path, frag) = dest
        .split_once('#')
        .map_or((dest, None), |(p, f)| (p, Some(f)));
    let path = match path.strip_suffix(".md") {
        Some(stem) => format!("{}.html", slug_of(&format!("{stem}.md"))),
        None => path.to_string(),
    };
    match frag {
        Some(f) => format!("{path}#{f}"),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_lines_parse_and_prose_does_not() {
        let line = "- **`SEQ-GAPFREE`** (MUST) A server MUST number without gaps.";
        assert_eq!(
            parse_requirement(line),
            Some(("SEQ-GAPFREE", "MUST", "A server MUST number without gaps."))
        );
        assert_eq!(
            parse_requirement("  - **`TOPIC-RULE-NAME`** (MUST) indented"),
            None
        );
        assert_eq!(parse_requirement("- **`lower-case`** (MUST) x"), None);
        assert_eq!(parse_requirement("- **`SEQ-X`** (MUSTN'T) x"), None);
        assert_eq!(
            parse_requirement("- **`SEQ-X`** (MUST NOT) x").map(|r| r.1),
            Some("MUST NOT")
        );
    }

    #[test]
    fn links_and_anchors_are_rewritten_for_the_site() {
        let html = to_html("# Title `x`\n\nSee [enc](encoding.md#2-the-model) and [spec](README.md).\n\n- **`SEQ-GAPFREE`** (MUST) Text.\n");
        assert!(html.contains(r#"<h1 id="title-x">"#), "{html}");
        assert!(
            html.contains(r#"href="encoding.html#2-the-model""#),
            "{html}"
        );
        assert!(html.contains(r#"href="index.html""#), "{html}");
        assert!(html.contains(r#"id="SEQ-GAPFREE""#), "{html}");
    }

    #[test]
    fn links_out_of_the_spec_keep_only_their_text() {
        let html = to_html("See [codegen.md](../codegen.md) and [enc](encoding.md).\n");
        assert!(
            !html.contains("codegen.html") && html.contains("codegen.md"),
            "{html}"
        );
        assert!(html.contains(r#"href="encoding.html""#), "{html}");
        let inline =
            inline_html("See [enc](encoding.md), [site](https://x.test/) and [c](../c.md).");
        assert_eq!(
            inline,
            r#"See enc, <a href="https://x.test/">site</a> and c."#
        );
        assert_eq!(
            unlink_outside("a [c.md](../c.md) [e](e.md) [x]"),
            "a c.md [e](e.md) [x]"
        );
    }

    #[test]
    fn every_spec_file_on_disk_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/spec");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "add new docs/spec files to spec::FILES");
    }
}
