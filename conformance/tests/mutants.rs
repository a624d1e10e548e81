//! The suite proves itself: the reference server with one fault injected
//! (courier-server feature `faults`) must be caught by the cases listed for
//! that fault in `trace::MUTANTS`, and an expected-failures entry must turn
//! the failure into `expected-fail` while an entry for a passing case fails
//! the run as an unexpected pass.

use courier_conformance::embedded::{config_toml, Embedded};
use courier_conformance::expect::glob_match;
use courier_conformance::trace::{Mutant, MUTANTS};
use courier_conformance::{ExpectedFailures, Outcome, Report, RunConfig};

async fn run_mutant(m: &Mutant, expected: Option<&str>) -> Report {
    let server = Embedded::start(&config_toml(Some(m.name)))
        .await
        .unwrap_or_else(|e| panic!("mutant {} starts: {e}", m.name));
    let mut config = RunConfig::new();
    for p in m.caught_by {
        config.only(p);
    }
    if let Some(text) = expected {
        config.expected_failures(ExpectedFailures::parse(text));
    }
    let report = config.run(server.target()).await;
    server.shutdown().await;
    report
}

fn assert_caught(m: &Mutant, report: &Report) {
    assert!(
        !report.passed(),
        "mutant `{}` ({}) was not caught:\n{}",
        m.name,
        m.breaks,
        report.summary_text()
    );
    for p in m.caught_by {
        let caught = report
            .results
            .iter()
            .any(|r| glob_match(p, &r.id) && r.outcome == Outcome::Fail);
        assert!(
            caught,
            "mutant `{}` ({}): no instance of `{p}` failed\n{}",
            m.name,
            m.breaks,
            report.summary_text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutant_is_caught_by_its_cases() {
    let mut missed = Vec::new();
    for m in MUTANTS {
        let report = run_mutant(m, None).await;
        if std::panic::catch_unwind(|| assert_caught(m, &report)).is_err() {
            missed.push(format!(
                "{} ({}):\n{}",
                m.name,
                m.breaks,
                report.summary_text()
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "mutants not caught as expected:\n{}",
        missed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_failures_absorb_known_gaps_and_unexpected_passes_fail() {
    let m = MUTANTS
        .iter()
        .find(|m| m.name == "seq-from-zero")
        .expect("mutant listed");
    // The known gap is listed, and so is a case that passes on this server.
    let listed = "# the mutant numbers from 0\nseq.start-one/*\nhb.client-ping/v2/json   # passes: must be reported\n";
    let server = Embedded::start(&config_toml(Some(m.name)))
        .await
        .expect("mutant starts");
    let mut config = RunConfig::new();
    config
        .only("seq.start-one/*")
        .only("hb.client-ping/v2/json")
        .expected_failures(ExpectedFailures::parse(listed));
    let report = config.run(server.target()).await;
    server.shutdown().await;
    let start_one: Vec<Outcome> = report
        .results
        .iter()
        .filter(|r| r.case == "seq.start-one")
        .map(|r| r.outcome)
        .collect();
    assert!(
        !start_one.is_empty() && start_one.iter().all(|o| *o == Outcome::ExpectedFail),
        "{start_one:?}"
    );
    let xpass = report.result("hb.client-ping/v2/json").expect("ran");
    assert_eq!(xpass.outcome, Outcome::UnexpectedPass);
    assert_eq!(
        xpass.expected_failure.as_deref(),
        Some("passes: must be reported")
    );
    assert!(!report.passed(), "an unexpected pass must fail the run");
    assert_eq!(report.exit_code(), 1);

    // Without the passing entry the run passes: known gaps do not fail it.
    let server = Embedded::start(&config_toml(Some(m.name)))
        .await
        .expect("mutant starts");
    let mut config = RunConfig::new();
    config
        .only("seq.start-one/*")
        .expected_failures(ExpectedFailures::parse("seq.start-one/*\n"));
    let report = config.run(server.target()).await;
    server.shutdown().await;
    assert!(report.passed(), "{}", report.summary_text());

    // The failure's report carries the transcript in every format.
    let server = Embedded::start(&config_toml(Some(m.name)))
        .await
        .expect("mutant starts");
    let mut config = RunConfig::new();
    config.only("seq.start-one/v2/json");
    let report = config.run(server.target()).await;
    server.shutdown().await;
    let r = report.result("seq.start-one/v2/json").expect("ran");
    assert_eq!(r.outcome, Outcome::Fail);
    let html = report.to_html();
    assert!(
        html.contains("SEQ-START-ONE") && html.contains("The first message numbered in an epoch"),
        "HTML lacks the requirement text"
    );
    assert!(
        html.contains("transcript") && html.contains("&quot;type&quot;:&quot;publish_ack&quot;"),
        "HTML lacks the decoded transcript"
    );
    assert!(
        !html.contains("<script"),
        "HTML must be self-contained without scripts"
    );
    let text = report.summary_text();
    assert!(
        text.contains("last frames") && text.contains("\"type\":\"publish_ack\""),
        "the terminal summary shows the last frames of a failure:\n{text}"
    );
    let junit = report.to_junit();
    assert!(junit.contains("<failure message=") && junit.contains("seq.start-one/v2/json"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON parses");
    assert_eq!(json["results"][0]["outcome"], "fail");
    assert!(json["results"][0]["transcript"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
}
