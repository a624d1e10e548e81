//! Several endpoints of one deployment: each case spreads its sessions over
//! them in turn (`Ctx::next_endpoint`), SSE included, and the preflight
//! checks every endpoint. Here the endpoints are two addresses of one
//! embedded server (`/ws` and `/ws?node=2`); `courier-cli`'s cluster tests
//! run the whole suite against two real nodes on Redis.

use courier_conformance::embedded::{config_toml, Embedded};
use courier_conformance::{RunConfig, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_alternates_between_the_endpoints() {
    let server = Embedded::start(&config_toml(None))
        .await
        .expect("embedded server starts");
    let base = server.target();
    let first = base.url.clone();
    let second = format!("{first}?node=2");
    let mut profile = base.profile.clone();
    profile.sse_url = Some("/sse".into());
    let mut target = Target::with_endpoints(vec![first.clone(), second.clone()], profile);
    target.time_scale = base.time_scale;
    let sse = first.replace("ws://", "http://").replace("/ws", "/sse");
    assert_eq!(target.endpoints[1].sse_url.as_deref(), Some(sse.as_str()));

    courier_conformance::preflight::check(&target)
        .await
        .expect("both endpoints pass the preflight");
    let mut config = RunConfig::new();
    config
        .only("resume.exact-range/v2/json")
        .only("sse.publish")
        .only("seq.*/v2/json");
    let report = config.run(target).await;
    server.shutdown().await;
    assert!(report.passed(), "{}", report.summary_text());

    // resume.exact-range: `pub` fills the channel, `sub` resumes on the
    // other endpoint, `pub2` publishes on the first again.
    let case = report.result("resume.exact-range/v2/json").expect("ran");
    let notes: Vec<&str> = case
        .transcript
        .iter()
        .filter(|e| e.dir == "note" && e.text.contains("→ endpoint"))
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        notes,
        [
            format!("pub → endpoint 1 ({first})"),
            format!("sub → endpoint 2 ({second})"),
            format!("pub2 → endpoint 1 ({first})"),
        ],
        "{notes:#?}"
    );
    // SSE streams and POST /publish take turns too.
    let sse = report
        .results
        .iter()
        .find(|r| r.id.starts_with("sse.publish"))
        .expect("an SSE case ran");
    assert!(
        sse.transcript
            .iter()
            .any(|e| e.text.starts_with("POST /publish → endpoint")),
        "{:#?}",
        sse.transcript
    );
}

#[tokio::test]
async fn endpoints_configured_differently_are_refused_before_any_case() {
    let a = Embedded::start(&config_toml(None)).await.unwrap();
    let b = Embedded::start(
        &config_toml(None).replace("max_subscriptions = 16", "max_subscriptions = 17"),
    )
    .await
    .unwrap();
    let profile = a.target().profile.clone();
    let target = Target::with_endpoints(vec![a.ws_url(), b.ws_url()], profile);
    let err = courier_conformance::preflight::check(&target)
        .await
        .expect_err("limits differ");
    let text = err.to_string();
    assert!(
        text.contains(&b.ws_url()) && text.contains("differ") && text.contains("limits"),
        "{text}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
