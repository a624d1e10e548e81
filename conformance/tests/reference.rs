//! The whole suite against the embedded reference server: every MUST
//! requirement the suite checks must hold, and the reports must render.

use courier_conformance::embedded::{config_toml, Embedded};
use courier_conformance::{Outcome, RunConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_server_passes_every_case() {
    let server = Embedded::start(&config_toml(None))
        .await
        .expect("embedded server starts");
    let report = RunConfig::new().run(server.target()).await;
    server.shutdown().await;
    assert!(report.passed(), "{}", report.summary_text());
    // Nothing may hide behind unsupported or skipped: the embedded profile declares everything.
    let not_run: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        not_run.is_empty(),
        "cases that did not pass against the reference server: {not_run:?}\n{}",
        report.summary_text()
    );
    assert!(
        report.results.len() > 150,
        "only {} instances ran",
        report.results.len()
    );

    // The reports of a green run.
    let json: serde_json::Value =
        serde_json::from_str(&report.to_json()).expect("JSON report parses");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["passed"], true);
    assert_eq!(
        json["results"].as_array().unwrap().len(),
        report.results.len()
    );
    let junit = report.to_junit();
    assert!(
        junit.starts_with("<?xml") && junit.matches("<testcase ").count() == report.results.len()
    );
    assert!(!junit.contains("<failure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauth_is_triggered_by_the_profiles_command_with_the_session_id() {
    let server = Embedded::start(&config_toml(None))
        .await
        .expect("embedded server starts");
    let dir = std::env::temp_dir().join(format!("courier-reauth-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("sessions");
    let mut target = server.target();
    // The reference server sends reauth_request on its own; the command
    // stands in for a deployment's admin call and records what it was given.
    target.profile.reauth = Some(courier_conformance::profile::ReauthTrigger {
        after_ms: None,
        command: Some(format!(
            "test \"$COURIER_SESSION_ID\" = {{session_id}} && echo {{session_id}} >> {}",
            log.display()
        )),
    });
    let mut config = RunConfig::new();
    config.only("auth.reauth-timeout");
    let report = config.run(target).await;
    server.shutdown().await;
    assert!(report.passed(), "{}", report.summary_text());
    let sessions = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        sessions.lines().count(),
        2,
        "one run per session: {sessions}"
    );
    let _ = std::fs::remove_dir_all(dir);

    // Without [reauth] the case cannot know how to provoke the request.
    let server = Embedded::start(&config_toml(None)).await.expect("starts");
    let mut target = server.target();
    target.profile.reauth = None;
    let mut config = RunConfig::new();
    config.only("auth.reauth-timeout");
    let report = config.run(target).await;
    server.shutdown().await;
    let r = report.result("auth.reauth-timeout").expect("ran");
    assert_eq!(r.outcome, Outcome::Unsupported, "{:?}", r.message);
    assert!(r.message.as_deref().unwrap_or("").contains("[reauth]"));
}
