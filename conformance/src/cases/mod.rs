//! The scripted cases, one module per area of the spec, and the registry
//! that lists them in a stable order.

pub mod util;

mod auth;
mod close;
mod dedupe;
mod features;
mod heartbeat;
mod negotiation;
mod order;
mod resume;
mod rpc;
mod seq;
mod sse;
mod violations;

use std::sync::OnceLock;

use crate::case::{Axes, CaseDef};
use crate::spec::Level;

/// Defaults for case definitions (`..BASE`).
pub(crate) const BASE: CaseDef = CaseDef {
    id: "",
    title: "",
    requirements: &[],
    level: Level::Must,
    axes: Axes::Once,
    versions: &[],
    encodings: &[],
    needs: &[],
    exclusive: false,
    run: |_| Box::pin(async { Err(crate::case::fail("case has no body")) }),
};

/// Every case, in a stable order.
pub fn registry() -> &'static [CaseDef] {
    static ALL: OnceLock<Vec<CaseDef>> = OnceLock::new();
    ALL.get_or_init(|| {
        let groups: [&[CaseDef]; 13] = [
            negotiation::CASES,
            seq::CASES,
            dedupe::CASES,
            resume::CASES,
            heartbeat::CASES,
            close::CASES,
            violations::CASES,
            auth::CASES,
            order::CASES,
            features::CASES,
            rpc::CASES,
            sse::CASES,
            crate::history::CASES,
        ];
        groups.iter().flat_map(|g| g.iter()).copied().collect()
    })
}
