//! The close-code table: every `CloseCode` value of the definitions with its
//! trigger (from the table in `docs/spec/close-codes.md`), the client
//! reaction `courier_protocol::close::reaction` assigns to it, and the
//! requirements behind both.

use courier_protocol::close::{self, Reaction};
use serde::Serialize;

use crate::model::Model;
use crate::spec;

/// One close code.
#[derive(Debug, Clone, Serialize)]
pub struct CloseCodeDoc {
    pub code: i32,
    /// Proto enum value name (`CLOSE_CODE_SLOW_CONSUMER`).
    pub name: String,
    /// The proto comment, without its trailing "Reaction: ..." sentence.
    pub doc: String,
    /// When a server sends it (Markdown, from the spec's table).
    pub trigger: String,
    /// What a client must do.
    pub reaction: &'static str,
    /// The requirement that defines the reaction.
    pub reaction_req: &'static str,
    /// Requirement IDs cited by the trigger.
    pub spec: Vec<String>,
    /// First protocol version with this code.
    pub since: u32,
}

/// The reaction text and its requirement.
pub fn describe(reaction: Reaction) -> (&'static str, &'static str) {
    match reaction {
        Reaction::Terminal => (
            "terminal: do not reconnect; report the code and reason",
            "CLOSE-TERMINAL-NO-RECONNECT",
        ),
        Reaction::BackoffResume => (
            "back off (exponential, full jitter), reconnect, resume",
            "CLOSE-BACKOFF",
        ),
        Reaction::ReconnectResume => ("reconnect after 0–1000 ms, resume", "CLOSE-RECONNECT-NOW"),
        Reaction::RefreshCredentials => ("get new credentials, reconnect, resume", "CLOSE-REFRESH"),
    }
}

/// The close codes of `model` (Courier's newest version), in number order.
pub fn table(model: &Model) -> Vec<CloseCodeDoc> {
    let triggers = spec_triggers();
    let Some(codes) = model.enums.iter().find(|e| e.name == "CloseCode") else {
        return Vec::new();
    };
    codes
        .values
        .iter()
        .filter(|v| v.number != 0)
        .map(|v| {
            let (reaction, reaction_req) = if v.number == i32::from(close::NORMAL) {
                (
                    "none: the client ended the session; do not reconnect",
                    "CLOSE-CLIENT-NORMAL",
                )
            } else {
                describe(close::reaction(v.number as u16))
            };
            let trigger = triggers
                .iter()
                .find(|(c, _)| *c == v.number)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            CloseCodeDoc {
                code: v.number,
                name: v.name.clone(),
                doc: v
                    .doc
                    .split(" Reaction:")
                    .next()
                    .unwrap_or(&v.doc)
                    .trim()
                    .to_string(),
                spec: cited_ids(&trigger),
                trigger,
                reaction,
                reaction_req,
                since: v.since,
            }
        })
        .collect()
}

/// `(code, trigger)` from the rows of the table in close-codes.md.
fn spec_triggers() -> Vec<(i32, String)> {
    let source = spec::FILES
        .iter()
        .find(|(f, _)| *f == "close-codes.md")
        .map(|(_, s)| *s)
        .unwrap_or("");
    source
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let code = cells.first()?.parse::<i32>().ok()?;
            Some((code, cells.get(3)?.to_string()))
        })
        .collect()
}

/// IDs of spec requirements mentioned in a text (`(CLOSE-MALFORMED)`,
/// `HELLO-ONCE,`); words shaped like IDs that name none (`UTF-8`) are not.
pub fn cited_ids(text: &str) -> Vec<String> {
    let known = spec::requirements();
    let mut out: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| spec::is_requirement_id(w) && known.iter().any(|r| r.id == *w))
        .map(str::to_string)
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_in_prose() {
        assert_eq!(
            cited_ids("A message out of order (HELLO-FIRST, HELLO-ONCE, BATCH-NO-NESTING)."),
            ["HELLO-FIRST", "HELLO-ONCE", "BATCH-NO-NESTING"]
        );
        assert!(cited_ids("4000–4099 terminal, UTF-8").is_empty());
    }
}
