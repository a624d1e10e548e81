//! The conformance suite's cases, as the requirement index links to them.

use serde::Serialize;

/// One conformance case and the requirements it checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseRef {
    /// Stable case id (`seq.gapfree-under-load`).
    pub id: String,
    /// What the case checks.
    pub title: String,
    /// Requirement IDs it checks.
    pub requirements: Vec<String>,
}

/// Every case of `courier conform`.
pub fn conformance_cases() -> Vec<CaseRef> {
    Vec::new()
}
