//! The normative requirements of `docs/spec/*.md`, parsed at build time so
//! that cases, reports and the traceability check cite the exact spec text.

use std::fmt;

/// The spec documents, embedded when the crate is built.
const DOCUMENTS: [(&str, &str); 10] = [
    ("README.md", include_str!("../../docs/spec/README.md")),
    ("encoding.md", include_str!("../../docs/spec/encoding.md")),
    (
        "negotiation.md",
        include_str!("../../docs/spec/negotiation.md"),
    ),
    ("session.md", include_str!("../../docs/spec/session.md")),
    ("channels.md", include_str!("../../docs/spec/channels.md")),
    ("features.md", include_str!("../../docs/spec/features.md")),
    (
        "close-codes.md",
        include_str!("../../docs/spec/close-codes.md"),
    ),
    ("limits.md", include_str!("../../docs/spec/limits.md")),
    ("sse.md", include_str!("../../docs/spec/sse.md")),
    ("versions.md", include_str!("../../docs/spec/versions.md")),
];

/// The strength of a requirement (RFC 2119 keyword in its line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Level {
    /// MUST or MUST NOT: a failure fails the run.
    #[serde(rename = "MUST")]
    Must,
    /// SHOULD or SHOULD NOT: a failure is a warning unless `--strict`.
    #[serde(rename = "SHOULD")]
    Should,
    /// MAY: optional behaviour; a failure is a warning.
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    /// The keyword as written in reports (`MUST`, `SHOULD`, `MAY`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }

    fn parse(keyword: &str) -> Option<Level> {
        match keyword {
            "MUST" | "MUST NOT" => Some(Level::Must),
            "SHOULD" | "SHOULD NOT" => Some(Level::Should),
            "MAY" => Some(Level::May),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requirement line of the spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requirement {
    /// The stable ID, e.g. `SEQ-GAPFREE`.
    pub id: String,
    /// The level the requirement imposes.
    pub level: Level,
    /// The keyword exactly as written (`MUST NOT`, `SHOULD`, ...).
    pub keyword: String,
    /// The requirement's text, self-contained.
    pub text: String,
    /// The spec file it is in (`channels.md`).
    pub file: String,
}

/// Every requirement of the spec, in document order.
///
/// # Examples
///
/// ```
/// let reqs = courier_conformance::spec::requirements();
/// let gapfree = reqs.iter().find(|r| r.id == "SEQ-GAPFREE").unwrap();
/// assert_eq!(gapfree.level, courier_conformance::spec::Level::Must);
/// assert_eq!(gapfree.file, "channels.md");
/// ```
pub fn requirements() -> Vec<Requirement> {
    DOCUMENTS
        .iter()
        .flat_map(|(file, text)| text.lines().filter_map(move |l| parse_line(file, l)))
        .collect()
}

/// The requirement with this ID, if the spec has it.
pub fn requirement(id: &str) -> Option<Requirement> {
    requirements().into_iter().find(|r| r.id == id)
}

/// Parses ``- **`ID`** (LEVEL) text`` (the pattern in docs/spec/README.md).
fn parse_line(file: &str, line: &str) -> Option<Requirement> {
    let rest = line.strip_prefix("- **`")?;
    let (id, rest) = rest.split_once("`** (")?;
    let (keyword, text) = rest.split_once(") ")?;
    let level = Level::parse(keyword)?;
    let valid_id = id.split('-').count() >= 2
        && id.starts_with(|c: char| c.is_ascii_uppercase())
        && id.split('-').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        });
    if !valid_id || text.trim().is_empty() {
        return None;
    }
    Some(Requirement {
        id: id.to_string(),
        level,
        keyword: keyword.to_string(),
        text: text.trim().to_string(),
        file: file.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_document_and_ids_are_unique() {
        let reqs = requirements();
        assert!(reqs.len() > 100, "only {} requirements parsed", reqs.len());
        let mut ids: Vec<&str> = reqs.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate requirement IDs");
        for (file, _) in DOCUMENTS.iter().skip(1) {
            assert!(
                reqs.iter().any(|r| r.file == *file),
                "no requirement parsed from {file}"
            );
        }
    }

    #[test]
    fn keeps_must_not_as_must_level() {
        let r = requirement("DEDUP-DELIVER-ONCE").unwrap();
        assert_eq!((r.level, r.keyword.as_str()), (Level::Must, "MUST NOT"));
        assert!(r.text.starts_with("A server MUST NOT number"));
    }

    #[test]
    fn rejects_the_indented_example_and_malformed_lines() {
        assert!(parse_line("x", "  - **`TOPIC-RULE-NAME`** (MUST) A server MUST ...").is_none());
        assert!(parse_line("x", "- **`lower-case`** (MUST) text").is_none());
        assert!(parse_line("x", "- **`NOHYPHEN`** (MUST) text").is_none());
        assert!(parse_line("x", "- **`A-B`** (MIGHT) text").is_none());
    }
}
