//! Courier conformance suite: checks any Courier server against the spec
//! (`docs/spec`), from the command line (`courier conform`) or as a library
//! under `cargo test`.
//!
//! Each case has a stable ID (`seq.gap-free`), the requirement IDs it
//! checks, a level, and runs per negotiated version and encoding where
//! meaningful (`seq.gap-free/v2/msgpack`). A history checker records every
//! event across connections, reconnects and resumes and checks invariants
//! over a seeded randomized schedule, shrinking failures.
//!
//! # Examples
//!
//! Run the suite against a server under `cargo test`:
//!
//! ```no_run
//! # async fn demo() {
//! use courier_conformance::{Profile, RunConfig, Target};
//!
//! let profile = Profile::from_toml(r#"
//!     [tokens]
//!     source = "hs256"
//!     secret = "dev-secret"
//! "#).unwrap();
//! let report = RunConfig::new().skip("hb.*").run(Target::new("ws://127.0.0.1:8080/ws", profile)).await;
//! assert!(report.passed(), "{}", report.summary_text());
//! # }
//! ```

pub mod case;
pub mod cases;
pub mod client;
pub mod conn;
mod driver;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod expect;
pub mod guard;
pub mod history;
pub mod preflight;
pub mod profile;
pub mod report;
pub mod runner;
pub mod spec;
pub mod sse;
pub mod tokens;
pub mod trace;
pub mod transcript;

pub use case::{CaseError, CaseInfo, CommandControl, Endpoint, ServerControl, Target};
pub use expect::ExpectedFailures;
pub use profile::{Profile, ProfileError};
pub use report::Report;
pub use runner::{CaseResult, Outcome, Progress, RunConfig};
pub use spec::{requirements, Level, Requirement};

/// Every case of the suite (without axes), in a stable order.
///
/// # Examples
///
/// ```
/// let cases = courier_conformance::cases();
/// assert!(cases.iter().any(|c| c.id == "seq.gap-free" && c.requirements.contains(&"SEQ-GAPFREE".to_string())));
/// ```
pub fn cases() -> Vec<CaseInfo> {
    cases::registry().iter().map(|c| c.info()).collect()
}
