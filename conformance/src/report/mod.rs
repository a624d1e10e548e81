//! The result of a run and its renderings: versioned JSON (`json`), JUnit
//! XML for CI systems (`junit`), a self-contained HTML page (`html`) and the
//! terminal progress lines and summary (`term`).

pub mod html;
pub mod junit;
pub mod term;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::runner::{CaseResult, Outcome};

/// Version of the JSON report schema (documented in docs/conformance.md).
pub const SCHEMA_VERSION: u32 = 1;

/// A finished run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `courier-conformance` version that produced it.
    pub suite_version: String,
    /// The WebSocket URL tested.
    pub target: String,
    /// Whether SHOULD failures were fatal.
    pub strict: bool,
    /// Start time, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// Count per outcome name.
    pub summary: BTreeMap<String, usize>,
    /// True when no result is fatal (the exit code is 0).
    pub passed: bool,
    /// Every case instance, in registry order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Assembles a report from graded results.
    pub fn new(
        target: String,
        strict: bool,
        started_at_ms: u64,
        duration: Duration,
        results: Vec<CaseResult>,
    ) -> Report {
        let mut summary = BTreeMap::new();
        for o in [
            Outcome::Pass,
            Outcome::Fail,
            Outcome::Warn,
            Outcome::Unsupported,
            Outcome::Skipped,
            Outcome::ExpectedFail,
            Outcome::UnexpectedPass,
        ] {
            summary.insert(
                o.as_str().to_string(),
                results.iter().filter(|r| r.outcome == o).count(),
            );
        }
        let passed = !results.iter().any(|r| r.outcome.is_fatal());
        Report {
            schema_version: SCHEMA_VERSION,
            suite_version: env!("CARGO_PKG_VERSION").to_string(),
            target,
            strict,
            started_at_ms,
            duration_ms: duration.as_millis() as u64,
            summary,
            passed,
            results,
        }
    }

    /// Whether the run passed (no MUST failure, no unexpected pass).
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// The process exit code: 0 when passed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.passed {
            0
        } else {
            1
        }
    }

    /// Results with the given outcome.
    pub fn with_outcome(&self, outcome: Outcome) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(move |r| r.outcome == outcome)
    }

    /// How many results have the outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.with_outcome(outcome).count()
    }

    /// The result of one instance.
    pub fn result(&self, id: &str) -> Option<&CaseResult> {
        self.results.iter().find(|r| r.id == id)
    }

    /// The JSON report. Transcripts are kept only for results that did not
    /// pass, so a report of a green run stays small.
    pub fn to_json(&self) -> String {
        let mut slim = self.clone();
        for r in &mut slim.results {
            if matches!(
                r.outcome,
                Outcome::Pass | Outcome::Unsupported | Outcome::Skipped
            ) {
                r.transcript.clear();
            }
        }
        serde_json::to_string_pretty(&slim).expect("report serializes")
    }
}
