//! The whole suite against the embedded reference server running on the
//! Redis engine (a real `redis-server` on a free loopback port): a server
//! on Redis is held to every rule a single-process one is, and its restart
//! keeps epochs and history (`resume.after-restart` takes that branch).

use courier_conformance::embedded::{config_toml, Embedded};
use courier_conformance::{Outcome, RunConfig};
use courier_testkit::RedisProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_server_on_redis_passes_every_case() {
    let redis = RedisProcess::start().expect("redis-server starts");
    let toml = format!(
        "{}\n[engine]\nkind = \"redis\"\nurl = \"{}\"\n",
        config_toml(None),
        redis.url()
    );
    let server = Embedded::start(&toml)
        .await
        .expect("embedded server starts");
    let report = RunConfig::new().run(server.target()).await;
    server.shutdown().await;
    let not_passed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| {
            format!(
                "{} ({:?}): {}",
                r.id,
                r.outcome,
                r.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        report.passed() && not_passed.is_empty(),
        "cases that did not pass on Redis: {not_passed:#?}\n{}",
        report.summary_text()
    );
    assert!(
        report.results.len() > 150,
        "only {} instances ran",
        report.results.len()
    );
}
