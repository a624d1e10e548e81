//! The client cases, one module per area of the spec, and the registry that
//! lists them in a stable order. IDs start with `client.`.

mod close;
mod live;
mod resume;
mod seq;
mod session;
mod timing;

use std::sync::OnceLock;

use super::ClientCaseDef;
use crate::case::Axes;
use crate::spec::Level;

/// Defaults for case definitions (`..BASE`).
pub(crate) const BASE: ClientCaseDef = ClientCaseDef {
    id: "",
    title: "",
    requirements: &[],
    level: Level::Must,
    axes: Axes::Once,
    versions: &[],
    run: |_| Box::pin(async { Err(crate::case::fail("case has no body")) }),
};

/// Every client case, in a stable order.
pub fn registry() -> &'static [ClientCaseDef] {
    static ALL: OnceLock<Vec<ClientCaseDef>> = OnceLock::new();
    ALL.get_or_init(|| {
        let groups: [&[ClientCaseDef]; 6] = [
            session::CASES,
            seq::CASES,
            resume::CASES,
            close::CASES,
            timing::CASES,
            live::CASES,
        ];
        groups.iter().flat_map(|g| g.iter()).copied().collect()
    })
}
