//! Version and encoding negotiation, the handshake (`hello`/`welcome`) and
//! feature negotiation (negotiation.md, session.md §2-3).

use std::collections::HashSet;

use courier_protocol::subprotocol::parse_mismatch_reason;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2, Subprotocol, Version};

use super::util::{check_close, subscribe};
use super::BASE;
use crate::case::{fail, hello, Axes, CaseDef, CaseResult, Ctx};
use crate::check;
use crate::profile::TokenKind;
use crate::spec::Level;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "neg.highest-common",
        title: "The highest common version is selected, then the client's first encoding of it",
        requirements: &["VER-HIGHEST-COMMON", "VER-SUBPROTOCOL"],
        axes: Axes::Once,
        run: |cx| Box::pin(highest_common(cx)),
        ..BASE
    },
    CaseDef {
        id: "neg.encoding",
        title: "Each supported subprotocol is selected alone, echoed, and used for every frame",
        requirements: &["VER-SUBPROTOCOL", "ENC-FRAME-TYPE", "WELCOME-FIELDS", "ENC-ONE-ENVELOPE"],
        axes: Axes::Each,
        run: |cx| Box::pin(encoding(cx)),
        ..BASE
    },
    CaseDef {
        id: "neg.unsupported-offer",
        title: "No acceptable offer: upgrade completes, then close 4002 listing the supported subprotocols",
        requirements: &["VER-ACCEPT-THEN-CLOSE", "VER-MISMATCH-REASON", "CLOSE-REASON-REQUIRED", "VER-SUBPROTOCOL"],
        axes: Axes::Once,
        run: |cx| Box::pin(unsupported_offer(cx)),
        ..BASE
    },
    CaseDef {
        id: "enc.type-first",
        title: "JSON and MessagePack envelopes from the server have `type` as their first member",
        requirements: &["ENC-TYPE-FIRST"],
        level: Level::Should,
        axes: Axes::Each,
        encodings: &["json", "msgpack"],
        run: |cx| Box::pin(type_first(cx)),
        ..BASE
    },
    CaseDef {
        id: "session.welcome-fields",
        title: "welcome carries version, encoding, a unique session id, heartbeat timing, dedupe window, limits and user",
        requirements: &["WELCOME-FIELDS", "LIMIT-ALL-ENFORCED", "SESSION-ID-UNIQUE", "AUTH-FIRST-MESSAGE", "ENC-V1-ISOLATION"],
        axes: Axes::Each,
        run: |cx| Box::pin(welcome_fields(cx)),
        ..BASE
    },
    CaseDef {
        id: "session.feature-negotiation",
        title: "welcome.features is the supported subset of hello.features; unknown names are ignored",
        requirements: &["FEATURE-NEGOTIATION"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(feature_negotiation(cx)),
        ..BASE
    },
    CaseDef {
        id: "session.hello-first",
        title: "An envelope other than hello before the session is open closes with 4003, unprocessed",
        requirements: &["HELLO-FIRST", "CLOSE-UNAUTHENTICATED", "CLOSE-DISCONNECT-NOTICE", "AUTH-RECONNECT"],
        axes: Axes::Each,
        run: |cx| Box::pin(hello_first(cx)),
        ..BASE
    },
    CaseDef {
        id: "session.hello-once",
        title: "A second hello closes with 4003",
        requirements: &["HELLO-ONCE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(hello_once(cx)),
        ..BASE
    },
    CaseDef {
        id: "session.hello-deadline",
        title: "No hello within the first-message deadline closes with 4005",
        requirements: &["HELLO-DEADLINE"],
        axes: Axes::Once,
        run: |cx| Box::pin(hello_deadline(cx)),
        ..BASE
    },
    CaseDef {
        id: "session.pipeline",
        title: "Envelopes sent right after hello are processed after welcome, in order",
        requirements: &["HELLO-PIPELINE"],
        level: Level::May,
        axes: Axes::PerVersion,
        run: |cx| Box::pin(pipeline(cx)),
        ..BASE
    },
];

async fn highest_common(cx: Ctx) -> CaseResult {
    let supported = cx.profile().subprotocols();
    let top = supported[0].version;
    let top_encs: Vec<Subprotocol> = supported
        .iter()
        .copied()
        .filter(|s| s.version == top)
        .collect();
    // Offer a lower version first, a foreign name, then the top version's
    // encodings in reverse order: the top version's last-listed one must win.
    let mut offers: Vec<&str> = vec!["graphql-ws"];
    if let Some(low) = supported.iter().find(|s| s.version < top) {
        offers.push(low.name());
    }
    offers.push("courier.v9.json");
    let rev: Vec<&str> = top_encs.iter().rev().map(|s| s.name()).collect();
    offers.extend(&rev);
    let want = *top_encs.last().expect("top version has an encoding");
    let c = cx.connect_offering("c1", &offers).await?;
    check!(
        c.selected == Some(want),
        "offered [{}]: expected {want} to be selected, got {:?}",
        offers.join(", "),
        c.selected_header
    );
    c.close(1000).await;
    // Only lower versions offered: the highest of them is selected.
    if supported.iter().any(|s| s.version == Version::V1) && top == Version::V2 {
        let v1 = supported
            .iter()
            .find(|s| s.version == Version::V1)
            .expect("checked");
        let c = cx
            .connect_offering("c2", &["courier.v3.json", v1.name()])
            .await?;
        check!(
            c.selected == Some(*v1),
            "offered [courier.v3.json, {v1}]: expected {v1}, got {:?}",
            c.selected_header
        );
        c.close(1000).await;
    }
    Ok(())
}

async fn encoding(cx: Ctx) -> CaseResult {
    let sp = cx.sp();
    let (mut c, w) = cx.open("c1").await?;
    check!(
        c.selected_header.as_deref() == Some(sp.name()),
        "expected Sec-WebSocket-Protocol: {sp}, got {:?}",
        c.selected_header
    );
    check!(
        w.version == sp.version.number(),
        "welcome.version is {}, negotiated {sp}",
        w.version
    );
    let want_enc = match sp.encoding {
        courier_protocol::Encoding::Json => v2::Encoding::Json,
        courier_protocol::Encoding::MsgPack => v2::Encoding::Msgpack,
        courier_protocol::Encoding::Protobuf => v2::Encoding::Protobuf,
    };
    check!(
        w.encoding == want_enc as i32,
        "welcome.encoding is {}, negotiated {sp}",
        w.encoding
    );
    // A publish round trip: every frame is decoded with the frame kind
    // checked (ENC-FRAME-TYPE) by the connection.
    let ch = cx.channel("enc");
    subscribe(&mut c, &cx, &ch, None).await?;
    super::util::publish(
        &mut c,
        &ch,
        &cx.id("p"),
        serde_json::json!({"n": 1, "s": "é", "l": [true, null, 1.5]}),
    )
    .await?;
    let m = super::util::next_message(&mut c, &ch).await?;
    let back = courier_protocol::wire::payload::to_json(&m.payload)
        .map_err(|e| fail(format!("payload is not a payload value: {e}")))?;
    check!(
        back == serde_json::json!({"n": 1, "s": "é", "l": [true, null, 1.5]}),
        "payload came back as {back}"
    );
    Ok(())
}

async fn type_first(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let ch = cx.channel("typefirst");
    subscribe(&mut c, &cx, &ch, None).await?;
    super::util::publish(&mut c, &ch, &cx.id("p"), serde_json::json!({"a": 1})).await?;
    super::util::next_message(&mut c, &ch).await?;
    check!(
        c.type_not_first() == 0,
        "{} envelope(s) from the server did not start with the `type` member",
        c.type_not_first()
    );
    Ok(())
}

async fn unsupported_offer(cx: Ctx) -> CaseResult {
    let supported = cx.profile().subprotocols();
    for (label, offers) in [
        ("c1", vec!["courier.v3.json", "courier.v2.xml"]),
        ("c2", vec![]),
        // VER-SUBPROTOCOL: names match exactly, case included.
        (
            "c3",
            vec!["Courier.v2.json", "COURIER.V1.JSON", "courier.v2.JSON"],
        ),
    ] {
        let mut c = cx.connect_offering(label, &offers).await?;
        check!(
            c.selected_header.is_none(),
            "offered {offers:?}: the upgrade selected {:?} instead of none",
            c.selected_header
        );
        let closed = c.expect_close(cx.step()).await?;
        check!(
            closed.data_frames_before == 0,
            "{} data frame(s) before the 4002 close",
            closed.data_frames_before
        );
        check_close(&closed, close::UNSUPPORTED_VERSION, false)?;
        check!(
            closed
                .reason
                .starts_with("unsupported version; supported: "),
            "reason {:?} lacks the `unsupported version; supported: ` prefix",
            closed.reason
        );
        let listed: HashSet<Subprotocol> =
            parse_mismatch_reason(&closed.reason).into_iter().collect();
        let want: HashSet<Subprotocol> = supported.iter().copied().collect();
        check!(
            listed == want,
            "reason {:?} lists {:?}, the profile declares {:?}",
            closed.reason,
            listed,
            want
        );
    }
    Ok(())
}

async fn welcome_fields(cx: Ctx) -> CaseResult {
    let (c1, w1) = cx.open("c1").await?;
    let (c2, w2) = cx.open("c2").await?;
    for w in [&w1, &w2] {
        check!(!w.session_id.is_empty(), "welcome.session_id is empty");
        check!(
            w.heartbeat_interval_ms > 0,
            "welcome.heartbeat_interval_ms is 0"
        );
        check!(
            w.dedupe_window_ms > 0,
            "welcome.dedupe_window_ms is 0: deduplication (DEDUP-WINDOW) needs a window"
        );
        let l = w
            .limits
            .as_ref()
            .ok_or_else(|| fail("welcome has no limits"))?;
        // LIMIT-ALL-ENFORCED: every bound advertised, none as 0.
        let zero: Vec<&str> = [
            ("max_message_bytes", l.max_message_bytes),
            ("max_messages_per_second", l.max_messages_per_second),
            ("max_burst", l.max_burst),
            ("send_queue_frames", l.send_queue_frames),
            ("max_subscriptions", l.max_subscriptions),
        ]
        .into_iter()
        .filter(|(_, v)| *v == 0)
        .map(|(name, _)| name)
        .collect();
        check!(
            zero.is_empty(),
            "welcome.limits advertises {zero:?} as 0: a server enforces every one of these limits and advertises each with a value greater than 0 (LIMIT-ALL-ENFORCED)"
        );
        if cx.sp().version == Version::V1 {
            check!(
                l.max_batch == 0,
                "a version 1 welcome carries limits.max_batch (ENC-V1-ISOLATION)"
            );
            check!(
                w.dedupe_max_per_channel == 0,
                "a version 1 welcome carries dedupe_max_per_channel (ENC-V1-ISOLATION)"
            );
        } else {
            check!(
                l.max_batch > 0,
                "a version 2 welcome advertises limits.max_batch 0 (LIMIT-ALL-ENFORCED)"
            );
        }
    }
    check!(
        w1.session_id != w2.session_id,
        "two connections got the same session id {}",
        w1.session_id
    );
    if !matches!(cx.profile().tokens, crate::profile::TokenSource::None) {
        check!(
            !w1.user.is_empty(),
            "welcome.user is empty for an authenticated session"
        );
    }
    c1.close(1000).await;
    c2.close(1000).await;
    Ok(())
}

async fn feature_negotiation(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let v2_only = ["batch", "reauth"];
    let declared: Vec<String> = cx
        .profile()
        .features
        .iter()
        .filter(|f| cx.sp().version == Version::V2 || !v2_only.contains(&f.as_str()))
        .cloned()
        .collect();
    // Every declared feature (plus an unknown name), then each one alone,
    // then none: welcome.features must be exactly what was asked for and is
    // supported, never a feature nobody asked for.
    let mut asks: Vec<Vec<&str>> = vec![std::iter::once("no-such-feature")
        .chain(cx.profile().features.iter().map(String::as_str))
        .collect()];
    asks.extend(declared.iter().map(|f| vec![f.as_str()]));
    asks.push(Vec::new());
    for (n, asked) in asks.iter().enumerate() {
        let (c, w) = cx.open_with(&format!("c{n}"), &token, asked).await?;
        let mut want: Vec<&str> = declared
            .iter()
            .map(String::as_str)
            .filter(|f| asked.contains(f))
            .collect();
        let mut got: Vec<&str> = w.features.iter().map(String::as_str).collect();
        want.sort_unstable();
        got.sort_unstable();
        let unasked: Vec<&str> = got.iter().copied().filter(|f| !asked.contains(f)).collect();
        check!(
            unasked.is_empty(),
            "hello.features {asked:?}: welcome.features {got:?} grants {unasked:?}, which hello did not ask for (FEATURE-NEGOTIATION)"
        );
        check!(
            got == want,
            "hello.features {asked:?} in a version {} session: welcome.features {got:?}, expected {want:?} (the supported features asked for, FEATURE-NEGOTIATION)",
            cx.sp().version.number()
        );
        c.close(1000).await;
    }
    Ok(())
}

async fn hello_first(cx: Ctx) -> CaseResult {
    // AUTH-RECONNECT: an authenticated session of the same client carries
    // nothing over to a new connection, which must still start with hello.
    let (_authenticated, _) = cx.open("authenticated").await?;
    let ch = cx.channel("early");
    let early = [
        Body::Subscribe(v2::Subscribe {
            id: "s1".into(),
            channel: ch.clone(),
            resume: None,
        }),
        Body::Ping(v2::Ping { ts: 1 }),
        Body::Publish(v2::Publish {
            id: cx.id("p"),
            channel: ch.clone(),
            payload: super::util::payload(serde_json::json!(1)),
        }),
    ];
    for (i, body) in early.into_iter().enumerate() {
        let mut c = cx.connect(&format!("c{i}")).await?;
        let name = super::util::body_name(&body);
        c.send_body(body).await?;
        let closed = c.expect_close(cx.step()).await?;
        check!(
            closed.data_frames_before <= 1,
            "{name} before hello was answered ({} envelopes) instead of closing",
            closed.data_frames_before
        );
        check_close(&closed, close::PROTOCOL_VIOLATION, true)
            .map_err(|e| with_context(e, &format!("{name} before hello")))?;
    }
    // The early publish must not have been processed.
    let (mut c, _) = cx.open("check").await?;
    let ack = subscribe(&mut c, &cx, &ch, None).await?;
    let (_, seq) = super::util::position(&ack)?;
    check!(
        seq == 0,
        "a publish sent before hello was numbered (channel at seq {seq})"
    );
    Ok(())
}

fn with_context(e: crate::case::CaseError, ctx: &str) -> crate::case::CaseError {
    match e {
        crate::case::CaseError::Fail(m) => fail(format!("{ctx}: {m}")),
        other => other,
    }
}

async fn hello_once(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let (mut c, _) = cx.open_with("c1", &token, &[]).await?;
    c.send_body(hello(&token, &[])).await?;
    let closed = c.expect_close(cx.step()).await?;
    check_close(&closed, close::PROTOCOL_VIOLATION, true)
}

async fn hello_deadline(cx: Ctx) -> CaseResult {
    let deadline = cx.profile().hello_deadline_ms;
    let mut c = cx.connect("c1").await?;
    let started = std::time::Instant::now();
    let closed = c.expect_close(cx.ms(deadline + 2000)).await?;
    let took = started.elapsed();
    check_close(&closed, close::AUTH_TIMEOUT, true)?;
    // A lower bound: the server's deadline is not scaled by --time-scale.
    check!(
        took >= std::time::Duration::from_millis(deadline).mul_f64(0.8),
        "closed after {took:?}, before the {deadline} ms deadline"
    );
    Ok(())
}

async fn pipeline(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let mut c = cx.connect("c1").await?;
    let ch = cx.channel("pipe");
    c.send_body(hello(&token, &[])).await?;
    c.send_body(Body::Subscribe(v2::Subscribe {
        id: "s-pipe".into(),
        channel: ch.clone(),
        resume: None,
    }))
    .await?;
    let first = c.recv("welcome").await?;
    check!(
        matches!(first.body, Some(Body::Welcome(_))),
        "first envelope is not welcome"
    );
    let second = c.recv("subscribe_ack").await?;
    check!(
        matches!(&second.body, Some(Body::SubscribeAck(a)) if a.id == "s-pipe"),
        "the pipelined subscribe was not answered after welcome"
    );
    Ok(())
}
