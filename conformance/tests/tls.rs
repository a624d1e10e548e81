//! `wss://` targets: the suite trusts the profile's `tls_ca_file` and runs
//! cases over TLS against the reference server with a self-signed certificate.

use courier_conformance::embedded::{config_toml, profile, Embedded};
use courier_conformance::{Outcome, RunConfig, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_over_wss_with_a_trusted_self_signed_certificate() {
    let dir = std::env::temp_dir().join(format!("courier-conformance-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, pem_key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&pem_key, key.signing_key.serialize_pem()).unwrap();
    let toml = format!(
        "{}\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        config_toml(None),
        cert.display().to_string(),
        pem_key.display().to_string()
    );
    let server = Embedded::start(&toml).await.expect("TLS server starts");
    let port = server
        .ws_url()
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let url = format!("wss://localhost:{port}/ws");

    let mut p = profile(&url);
    p.sse_url = None;
    p.tls_ca_file = Some(cert.clone());
    let mut config = RunConfig::new();
    config.only("neg.encoding/*").only("seq.start-one/v2/*");
    let report = config.run(Target::new(url.clone(), p.clone())).await;
    assert!(
        report.passed() && report.count(Outcome::Pass) >= 9,
        "{}",
        report.summary_text()
    );

    // Without trusting the certificate the handshake fails: a case fails, it does not hang.
    p.tls_ca_file = None;
    let mut config = RunConfig::new();
    config.only("hb.client-ping/v2/json");
    let report = config.run(Target::new(url, p)).await;
    server.shutdown().await;
    let r = report.result("hb.client-ping/v2/json").expect("ran");
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.message.as_deref().unwrap_or("").contains("TLS handshake"),
        "{:?}",
        r.message
    );
    let _ = std::fs::remove_dir_all(dir);
}
