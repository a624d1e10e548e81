//! Traceability and self-consistency of the suite: every MUST requirement
//! has a case or a stated reason, every cited requirement exists, case IDs
//! are stable and unique, every mutant names cases, and the generated
//! sections of docs/conformance.md are fresh.

use std::collections::HashSet;

use courier_conformance::trace::{self, MUTANTS, NOT_CHECKABLE};
use courier_conformance::{cases, requirements, Level};

#[test]
fn every_must_requirement_has_a_case_or_a_reason() {
    let uncovered = trace::uncovered_musts();
    assert!(
        uncovered.is_empty(),
        "MUST requirements with no case and no reason in trace::NOT_CHECKABLE: {uncovered:?}"
    );
}

#[test]
fn not_checkable_entries_are_real_uncovered_musts() {
    let reqs = requirements();
    let mut cases = cases();
    cases.extend(courier_conformance::client::cases());
    for (id, why) in NOT_CHECKABLE {
        let r = reqs
            .iter()
            .find(|r| r.id == *id)
            .unwrap_or_else(|| panic!("NOT_CHECKABLE names unknown requirement {id}"));
        assert_eq!(r.level, Level::Must, "{id} is not a MUST: list only MUSTs");
        assert!(!why.is_empty());
        assert!(
            !cases
                .iter()
                .any(|c| c.requirements.contains(&id.to_string())),
            "{id} has a case now: drop it from NOT_CHECKABLE"
        );
    }
}

#[test]
fn cases_cite_existing_requirements_and_have_unique_stable_ids() {
    let ids: HashSet<String> = requirements().into_iter().map(|r| r.id).collect();
    let mut seen = HashSet::new();
    let client_cases = courier_conformance::client::cases();
    for c in cases().into_iter().chain(client_cases) {
        assert!(seen.insert(c.id.clone()), "duplicate case id {}", c.id);
        let well_formed = c.id.split_once('.').is_some_and(|(area, name)| {
            !area.is_empty()
                && !name.is_empty()
                && c.id.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '.' || ch == '-'
                })
        });
        assert!(
            well_formed,
            "case id {:?} is not area.name in lower-case kebab",
            c.id
        );
        assert!(!c.requirements.is_empty(), "{} cites no requirement", c.id);
        for r in &c.requirements {
            assert!(
                ids.contains(r),
                "{} cites {r}, which is not in docs/spec",
                c.id
            );
        }
    }
}

#[test]
fn every_mutant_names_existing_cases_and_every_fault_has_a_mutant() {
    let case_ids: Vec<String> = cases().into_iter().map(|c| c.id).collect();
    for m in MUTANTS {
        assert!(!m.caught_by.is_empty(), "{} has no catching case", m.name);
        for p in m.caught_by {
            let base = p.split('/').next().unwrap();
            assert!(
                case_ids.iter().any(|id| id == base),
                "mutant {} names unknown case {base}",
                m.name
            );
        }
        m.name
            .parse::<courier_server::Fault>()
            .unwrap_or_else(|e| panic!("mutant {} is not a server fault: {e}", m.name));
    }
    for m in trace::PENDING_MUTANTS {
        assert!(!m.caught_by.is_empty(), "{} has no catching case", m.name);
        for p in m.caught_by {
            let base = p.split('/').next().unwrap();
            assert!(
                case_ids.iter().any(|id| id == base),
                "pending mutant {} names unknown case {base}",
                m.name
            );
        }
        assert!(
            m.name.parse::<courier_server::Fault>().is_err(),
            "the server has fault {} now: move it from trace::PENDING_MUTANTS to trace::MUTANTS",
            m.name
        );
    }
    for f in courier_server::Fault::ALL {
        assert!(
            MUTANTS.iter().any(|m| m.name == f.to_string()),
            "server fault {f} has no mutant entry"
        );
    }
}

#[test]
fn generated_docs_are_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/conformance.md");
    let doc = std::fs::read_to_string(path).expect("docs/conformance.md exists");
    let fresh =
        trace::render_doc(&doc).expect("docs/conformance.md has the generated-section markers");
    assert!(
        fresh == doc,
        "stale: run `cargo xtask codegen` (docs/conformance.md case list or traceability table)"
    );
}

#[test]
fn every_client_mutant_names_client_cases_and_every_rust_fault_has_one() {
    let case_ids: Vec<String> = courier_conformance::client::cases()
        .into_iter()
        .map(|c| c.id)
        .collect();
    for m in trace::CLIENT_MUTANTS {
        assert!(!m.caught_by.is_empty(), "{} has no catching case", m.name);
        for p in m.caught_by {
            let base = p.split('/').next().unwrap();
            assert!(
                case_ids.iter().any(|id| id == base),
                "client mutant {} names unknown case {base}",
                m.name
            );
        }
        let rust = m.name.parse::<courier_client::faults::Fault>().is_ok();
        assert_eq!(
            rust,
            m.clients.contains(&"rust"),
            "client mutant {}: its `clients` say rust = {}, courier-client's faults say {rust}",
            m.name,
            !rust
        );
    }
    for (name, _) in courier_client::faults::ALL {
        assert!(
            trace::CLIENT_MUTANTS.iter().any(|m| m.name == *name),
            "Rust client fault {name} has no entry in trace::CLIENT_MUTANTS"
        );
    }
}
