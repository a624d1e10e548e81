//! The conformance suite's cases (`courier_conformance::cases()`), as the
//! requirement index and the conformance page link to them.

use serde::Serialize;

/// One conformance case and the requirements it checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseRef {
    /// Stable case id (`seq.gap-free`); also its anchor on `conformance.html`.
    pub id: String,
    /// What the case checks.
    pub title: String,
    /// Requirement IDs it checks.
    pub requirements: Vec<String>,
    /// How it is instantiated (`each subprotocol`, `each version`, `once`).
    pub axes: String,
    /// What a server profile must declare for it to run (features, `sse`, ...).
    pub needs: Vec<String>,
}

/// Every case of `courier conform`, in the suite's order.
pub fn conformance_cases() -> Vec<CaseRef> {
    courier_conformance::cases()
        .into_iter()
        .map(|c| CaseRef {
            id: c.id,
            title: c.title,
            requirements: c.requirements,
            axes: c.axes,
            needs: c.needs,
        })
        .collect()
}
