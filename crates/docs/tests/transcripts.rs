//! The session transcripts, recorded live against the embedded reference
//! server, show what they claim: checked by structure, since ids, epochs
//! and timestamps differ per run.

use courier_docs::transcript::{self, Scenario, Step};
use serde_json::Value;

fn types(t: &Scenario) -> Vec<(&'static str, String)> {
    t.steps
        .iter()
        .filter_map(|s| s.type_name.clone().map(|n| (s.dir, n)))
        .collect()
}

fn find<'a>(ts: &'a [Scenario], id: &str) -> &'a Scenario {
    ts.iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no transcript {id}"))
}

fn received(t: &Scenario, type_name: &str) -> Vec<Value> {
    t.steps
        .iter()
        .filter(|s| s.dir == "s2c" && s.type_name.as_deref() == Some(type_name))
        .filter_map(Step::json)
        .collect()
}

#[test]
fn transcripts_record_each_scenario_from_the_live_server() {
    let (ts, server) = transcript::record_all().unwrap();
    assert!(server.starts_with("courier"), "{server}");

    // Handshake: v2 chosen over v1, welcome; msgpack shown as hex; 4002 for an unknown version.
    let h = find(&ts, "handshake");
    assert!(
        h.steps[0]
            .note
            .as_deref()
            .unwrap()
            .contains("`courier.v2.json`"),
        "{:?}",
        h.steps[0]
    );
    let welcome = &received(h, "welcome")[0];
    assert_eq!(welcome["version"], 2);
    assert_eq!(welcome["user"], "alice");
    assert!(h
        .steps
        .iter()
        .any(|s| s.hex.is_some() && s.type_name.as_deref() == Some("welcome")));
    assert!(
        h.steps
            .iter()
            .any(|s| s.text.starts_with("close frame: code 4002")),
        "{:#?}",
        h.steps
    );

    assert!(
        (h.steps.iter()).any(|s| s.note.as_deref().is_some_and(|n| n.contains(
            "offering `Sec-WebSocket-Protocol: courier.v9.json`; the server answers `101 Switching Protocols` with no subprotocol"
        ))),
        "{:#?}",
        h.steps
    );

    // Auth: refreshed, then an INVALID_TOKEN error; a forged token closes 4004.
    let a = find(&ts, "auth-refresh");
    assert_eq!(received(a, "refreshed")[0]["id"], "r-1");
    assert_eq!(received(a, "error")[0]["code"], "ERROR_CODE_INVALID_TOKEN");
    assert!(
        a.steps
            .iter()
            .any(|s| s.text.starts_with("close frame: code 4004")),
        "{:#?}",
        a.steps
    );

    // Publish: one message, two acks, the second a duplicate with the same seq.
    let p = find(&ts, "publish-duplicate");
    let acks = received(p, "publish_ack");
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[1]["duplicate"], true);
    assert_eq!(acks[0]["seq"], acks[1]["seq"]);
    assert_eq!(received(p, "message").len(), 1, "{:?}", types(p));
    assert_eq!(received(p, "pong").len(), 1);

    // Resume: recovered, replayed 2, then exactly seq 2 and 3.
    let r = find(&ts, "drop-resume");
    let acks = received(r, "subscribe_ack");
    assert_eq!(
        acks[1]["recovery"]["status"], "RECOVERY_STATUS_RECOVERED",
        "{acks:?}"
    );
    assert_eq!(acks[1]["recovery"]["replayed"], 2);
    let seqs: Vec<u64> = received(r, "message")
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);

    // Close: 4003 for a request before hello, 1001 on shutdown, each announced by disconnect.
    let c = find(&ts, "close");
    let codes: Vec<u64> = received(c, "disconnect")
        .iter()
        .map(|d| d["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [4003, 1001]);
    assert!(
        c.steps
            .iter()
            .any(|s| s.text.starts_with("close frame: code 1001")),
        "{:#?}",
        c.steps
    );
}
