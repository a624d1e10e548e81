//! Traceability: which cases check each requirement, which mutants of the
//! reference server each case catches, the reasoned list of MUST
//! requirements a server-facing suite cannot check, and the generated
//! Markdown for `docs/conformance.md`.

use std::collections::BTreeMap;

use crate::spec::{requirements, Level};

/// MUST requirements no case checks, server-facing or client-facing
/// (`courier conform client`), each with the reason.
pub const NOT_CHECKABLE: &[(&str, &str)] = &[
    ("SEQ-JS-SAFE", "needs 2^53 messages on one channel; the 53-bit bound on every received integer is enforced by the suite's decoder"),
    ("ERR-ENGINE-UNAVAILABLE", "needs the server's store made unreachable, which a suite cannot do; the Redis engine's fault tests check it (crates/server/tests/server/redis/failures.rs)"),
    ("ENC-JSON-FLAT", "wire form: every server frame is decoded by the strict codec; byte-level forms are covered by conformance/vectors"),
    ("ENC-DEFAULTS-OMITTED", "wire form: covered by conformance/vectors"),
    ("ENC-ENUM-NAMES", "wire form: covered by conformance/vectors"),
    ("ENC-INT-FORM", "wire form: covered by conformance/vectors"),
    ("ENC-BYTES", "wire form: covered by conformance/vectors"),
    ("ENC-PAYLOAD", "data model: covered by conformance/vectors and the codec's property tests"),
    ("ENC-PAYLOAD-WIRE", "wire form: covered by conformance/vectors"),
    ("ENC-PROTOBUF", "wire form: covered by conformance/vectors"),
    ("ENC-NUMBER-EQUIV", "application rule: what an application makes of a payload number is not on the wire"),
    ("ENC-TYPED-PAYLOAD", "codegen rule (courier-codegen tests)"),
    ("ENC-V2-SUPERSET", "schema property (courier-protocol schema tests)"),
];

/// A fault of the reference server and the cases expected to catch it.
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// courier-server's kebab-case fault name.
    pub name: &'static str,
    /// What the fault breaks.
    pub breaks: &'static str,
    /// Patterns of case instance IDs that must fail against it (each must
    /// match at least one failing instance).
    pub caught_by: &'static [&'static str],
}

/// One mutant per MUST area (courier-server feature `faults`).
pub const MUTANTS: &[Mutant] = &[
    Mutant {
        name: "skip-seq",
        breaks: "skips a sequence number",
        caught_by: &[
            "seq.increment/*",
            "seq.gap-free/*",
            "history.random-schedule",
        ],
    },
    Mutant {
        name: "seq-from-zero",
        breaks: "numbers a channel's first message 0",
        caught_by: &["seq.start-one/*"],
    },
    Mutant {
        name: "redeliver-duplicate",
        breaks: "numbers and delivers a duplicate publish again",
        caught_by: &["dedupe.duplicate-acked/*"],
    },
    Mutant {
        name: "ignore-version-offer",
        breaks: "ignores the client's version preference",
        caught_by: &["neg.highest-common"],
    },
    Mutant {
        name: "wrong-oversize-code",
        breaks: "closes oversized frames with the wrong code",
        caught_by: &["close.oversize/*"],
    },
    Mutant {
        name: "no-close-reason",
        breaks: "closes without a reason",
        caught_by: &["close.malformed/*", "neg.unsupported-offer"],
    },
    Mutant {
        name: "never-ping",
        breaks: "never sends heartbeat pings",
        caught_by: &["hb.server-ping/*"],
    },
    Mutant {
        name: "resume-out-of-order",
        breaks: "replays a resume out of order",
        caught_by: &["resume.exact-range/*"],
    },
    Mutant {
        name: "accept-expired-tokens",
        breaks: "accepts expired credentials",
        caught_by: &["close.expired-at-hello/*"],
    },
    Mutant {
        name: "data-before-subscribe-ack",
        breaks: "sends messages before the subscribe_ack",
        caught_by: &["order.ack-before-data/*"],
    },
    Mutant {
        name: "unbounded-queue",
        breaks: "queues without bound instead of closing a slow consumer",
        caught_by: &["close.slow-consumer"],
    },
    Mutant {
        name: "ignore-history-ttl",
        breaks: "keeps history past history_ttl_ms and replays expired messages (LIMIT-HISTORY (younger than history_ttl_ms))",
        caught_by: &["resume.history-ttl/*"],
    },
    Mutant {
        name: "read-oversize-frame",
        breaks: "reads an oversized frame to its end before closing with 1009 (CLOSE-OVERSIZE (before reading more than max_message_bytes))",
        caught_by: &["close.oversize/*"],
    },
    Mutant {
        name: "grant-unrequested-features",
        breaks: "enables every feature it supports, whatever hello asked for (FEATURE-NEGOTIATION (exactly the names hello lists))",
        caught_by: &["session.feature-negotiation/*", "features.gated/*"],
    },
    Mutant {
        name: "first-frame-protocol-violation",
        breaks: "closes every bad first frame with 4003, even an undecodable or unknown-type one (CLOSE-PRECEDENCE)",
        caught_by: &["close.precedence/*"],
    },
    Mutant {
        name: "ignore-server-only-types",
        breaks: "ignores a server-only type sent by a client instead of closing with 4003 (SESSION-CLIENT-TYPES)",
        caught_by: &["session.server-only-types/*"],
    },
    Mutant {
        name: "batch-rate-partial",
        breaks: "processes a batch's envelopes until the bucket runs dry, then closes with 4101 (LIMIT-RATE (a batch takes all its tokens at once))",
        caught_by: &["close.rate-limit-batch"],
    },
    Mutant {
        name: "empty-resume-not-requested",
        breaks: "treats a present but empty resume as a subscribe without resume (RESUME-PRESENT)",
        caught_by: &["resume.empty-position/*"],
    },
    Mutant {
        name: "hello-in-batch-processed",
        breaks: "processes the envelopes before a hello in a batch, then closes with 4003 (BATCH-NOT-HANDSHAKE (server reaction))",
        caught_by: &["batch.limits/*"],
    },
    Mutant {
        name: "short-dedupe-window",
        breaks: "forgets publish ids after one second while advertising the configured window (DEDUP-WINDOW (for at least the advertised dedupe_window_ms))",
        caught_by: &["dedupe.within-window"],
    },
    Mutant {
        name: "case-insensitive-offers",
        breaks: "accepts `Courier.v2.json` or `COURIER.V1.JSON` as Courier subprotocols (VER-SUBPROTOCOL (recognise an offer only by exact, case-sensitive match))",
        caught_by: &["neg.unsupported-offer"],
    },
    Mutant {
        name: "resubscribe-ignores-resume",
        breaks: "answers a repeated subscribe with the current position and NOT_REQUESTED, ignoring its resume (ORDER-IDEMPOTENT-SUBSCRIBE (if resume was given, the recovery outcome and replay exactly as for a new subscription))",
        caught_by: &["order.idempotent-subscribe/*"],
    },
    Mutant {
        name: "race-duplicate-numbered",
        breaks: "numbers a duplicate that arrives before the original's publish_ack was sent (DEDUP-ACK-ORIGINAL (also when the duplicate arrives while the original is still being numbered))",
        caught_by: &["dedupe.duplicate-acked/*"],
    },
    Mutant {
        name: "process-after-failed-hello",
        breaks: "numbers publishes pipelined behind a hello before refusing its credentials (HELLO-PIPELINE (never processes them if the hello fails))",
        caught_by: &["close.auth-failed/*"],
    },
    Mutant {
        name: "ungated-feature-events",
        breaks: "sends presence_event and ephemeral to every subscriber, with or without the feature (FEATURE-GATED (MUST NOT send envelopes of a feature not enabled))",
        caught_by: &["features.gated/*"],
    },
    Mutant {
        name: "relay-unsubscribed-ephemeral",
        breaks: "relays an ephemeral from a session not subscribed to its channel instead of answering NOT_SUBSCRIBED (EPHEMERAL-NO-SEQ (NOT_SUBSCRIBED for a sender not subscribed))",
        caught_by: &["ephemeral.relay/*"],
    },
    Mutant {
        name: "subscriptions-never-freed",
        breaks: "counts every subscribe ever accepted, so an unsubscribe does not make room (LIMIT-SUBSCRIPTIONS (the session already holds max_subscriptions))",
        caught_by: &["limits.subscriptions"],
    },
    Mutant {
        name: "rpc-response-without-id",
        breaks: "answers rpc_requests of a registered method with an rpc_response whose id is empty (RPC-CORRELATION (carrying the request's id))",
        caught_by: &["rpc.correlation/*"],
    },
    Mutant {
        name: "oversize-publish-body",
        breaks: "accepts POST /publish bodies larger than max_message_bytes instead of answering 413 (SSE-PUBLISH (413 for a body over max_message_bytes))",
        caught_by: &["sse.publish"],
    },
    Mutant {
        name: "sse-since-subscribes",
        breaks: "subscribes an SSE stream to channels named only by since= (SSE-RESUME (positions naming a channel absent from the channel parameters are ignored))",
        caught_by: &["sse.resume"],
    },
    Mutant {
        name: "sse-silent-refusals",
        breaks: "sends no error event for an SSE channel it refuses (SSE-CHANNELS (an error exactly as for a WebSocket subscribe))",
        caught_by: &["sse.stream/*"],
    },
    Mutant {
        name: "unsubscribe-keeps-presence",
        breaks: "acknowledges an unsubscribe but keeps the member until the connection ends (PRESENCE-JOIN-LEAVE (a leave when it unsubscribes))",
        caught_by: &["presence.join-leave/*"],
    },
    Mutant {
        name: "stricter-frame-limit",
        breaks: "closes with 1009 frames below the advertised max_message_bytes (LIMIT-ADVERTISED for max_message_bytes)",
        caught_by: &["close.oversize/*"],
    },
    Mutant {
        name: "slow-rate-refill",
        breaks: "refills the rate bucket at 1 token/s while advertising max_messages_per_second (LIMIT-RATE (refills at max_messages_per_second tokens per second))",
        caught_by: &["close.rate-limit/*"],
    },
    Mutant {
        name: "unadvertised-rate-limit",
        breaks: "advertises max_messages_per_second and max_burst as 0 while enforcing them (LIMIT-ALL-ENFORCED)",
        caught_by: &["session.welcome-fields/*"],
    },
    Mutant {
        name: "short-dedupe-record",
        breaks: "remembers 8 publish ids per channel while advertising a larger dedupe_max_per_channel (DEDUP-MAX (until dedupe_max_per_channel later publishes have been numbered))",
        caught_by: &["dedupe.max-bound/*"],
    },
];

/// A deliberate defect of a client and the client cases expected to catch
/// it (`courier conform client` with `COURIER_CLIENT_FAULT=<name>`). The
/// one table of client faults: the Rust proof (`conformance/tests/client.rs`)
/// iterates it, and the TypeScript proof reads it from
/// `courier conform client --list-faults`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ClientMutant {
    /// The fault's kebab-case name, the same in every client that has it.
    pub name: &'static str,
    /// What the fault breaks.
    pub breaks: &'static str,
    /// Patterns of client case instance IDs that must fail against it.
    pub caught_by: &'static [&'static str],
    /// The clients that have the fault: `rust` (courier-client feature
    /// `faults`), `typescript` (`@courier/client/faults`).
    pub clients: &'static [&'static str],
}

const BOTH: &[&str] = &["rust", "typescript"];
const TS: &[&str] = &["typescript"];

/// One client mutant per client requirement the client suite checks.
pub const CLIENT_MUTANTS: &[ClientMutant] = &[
    ClientMutant { name: "deliver-gaps", breaks: "delivers a message past a gap instead of resubscribing (SEQ-CLIENT-GAP-DETECTION)", caught_by: &["client.seq.gap-detection/*"], clients: BOTH },
    ClientMutant { name: "deliver-old", breaks: "delivers messages at or below the tracked seq (SEQ-CLIENT-DROP-OLD)", caught_by: &["client.seq.drop-old/*"], clients: BOTH },
    ClientMutant { name: "deliver-duplicates", breaks: "delivers a message whose id was delivered before (DEDUP-CLIENT-DROP)", caught_by: &["client.dedupe.drop/*"], clients: BOTH },
    ClientMutant { name: "duplicate-keeps-position", breaks: "leaves its tracked position behind a message dropped as a duplicate, taking the next one for a gap (DEDUP-CLIENT-ADVANCE)", caught_by: &["client.dedupe.drop/*"], clients: BOTH },
    ClientMutant { name: "deliver-after-unsubscribe", breaks: "delivers a channel's messages after unsubscribing (ORDER-UNSUBSCRIBE-FINAL)", caught_by: &["client.order.unsubscribe-final/*"], clients: TS },
    ClientMutant { name: "resubscribe-without-resume", breaks: "resubscribes without resume (RESUME-CLIENT-RESUBSCRIBE)", caught_by: &["client.resume.resubscribe/*"], clients: BOTH },
    ClientMutant { name: "ignore-subscribe-from", breaks: "subscribes as new when the application asks to start from a position it kept (RESUME-CLIENT-FROM)", caught_by: &["client.resume.from-application/*"], clients: BOTH },
    ClientMutant { name: "hide-failed-recovery", breaks: "reports a failed recovery as recovered (RESUME-CLIENT-REPORT)", caught_by: &["client.resume.report/*"], clients: BOTH },
    ClientMutant { name: "reconnect-after-terminal", breaks: "reconnects after a terminal close (CLOSE-TERMINAL-NO-RECONNECT)", caught_by: &["client.close.terminal/*"], clients: BOTH },
    ClientMutant { name: "ignore-disconnect-notice", breaks: "reacts to the close code alone, ignoring the disconnect notice (CLOSE-NOTICE-WINS)", caught_by: &["client.close.notice-wins/*"], clients: BOTH },
    ClientMutant { name: "no-jitter", breaks: "waits the whole backoff or reconnect window instead of a random part (CLIENT-BACKOFF-JITTER, CLOSE-RECONNECT-NOW)", caught_by: &["client.backoff.jitter", "client.close.reconnect-now"], clients: BOTH },
    ClientMutant { name: "reset-backoff-on-open", breaks: "resets its failure count when a session opens instead of once it stayed open for heartbeat_interval_ms (CLIENT-BACKOFF-SHORT-SESSION)", caught_by: &["client.backoff.short-session"], clients: BOTH },
    ClientMutant { name: "ignore-retry-after", breaks: "ignores retry_after_ms (CLOSE-RETRY-AFTER)", caught_by: &["client.close.retry-after/*"], clients: BOTH },
    ClientMutant { name: "no-heartbeat-deadline", breaks: "never declares a silent link dead (HB-CLIENT-DEADLINE)", caught_by: &["client.hb.deadline/*"], clients: BOTH },
    ClientMutant { name: "new-id-on-resend", breaks: "resends queued publishes with new ids (CLIENT-OFFLINE-QUEUE)", caught_by: &["client.queue.offline/*"], clients: BOTH },
    ClientMutant { name: "unbounded-offline-queue", breaks: "queues publishes without bound (CLIENT-OFFLINE-QUEUE)", caught_by: &["client.queue.bounded/*"], clients: BOTH },
    ClientMutant { name: "accept-unoffered-subprotocol", breaks: "speaks a subprotocol it did not offer (VER-CLIENT-VERIFY)", caught_by: &["client.ver.unoffered-subprotocol/*"], clients: BOTH },
    ClientMutant { name: "send-oversize", breaks: "sends publishes over max_message_bytes (LIMIT-MESSAGE-SIZE)", caught_by: &["client.limit.message-size/*"], clients: BOTH },
    ClientMutant { name: "no-pong", breaks: "never answers ping (HB-PONG)", caught_by: &["client.hb.pong/*"], clients: BOTH },
    ClientMutant { name: "keep-token-after-expiry", breaks: "reconnects after 4300-4399 with the old credentials (CLOSE-REFRESH)", caught_by: &["client.close.refresh/*"], clients: BOTH },
    ClientMutant { name: "ignore-reauth", breaks: "ignores reauth_request (AUTH-REAUTH-CLIENT)", caught_by: &["client.auth.reauth/*"], clients: BOTH },
    ClientMutant { name: "close-with-going-away", breaks: "closes with 1001 on the application's request (CLOSE-CLIENT-NORMAL)", caught_by: &["client.close.normal/*"], clients: BOTH },
    ClientMutant { name: "reconnect-now-waits", breaks: "backs off after 1001 and 4200-4299 instead of reconnecting within the window (CLOSE-RECONNECT-NOW)", caught_by: &["client.close.reconnect-now"], clients: BOTH },
    ClientMutant { name: "drop-unacked-publishes", breaks: "forgets publishes sent but unacknowledged when the link drops (CLIENT-OFFLINE-QUEUE)", caught_by: &["client.queue.offline/*"], clients: TS },
    ClientMutant { name: "no-early-refresh", breaks: "waits for expiry instead of refreshing early (AUTH-REFRESH-EARLY)", caught_by: &["client.auth.refresh-early/*"], clients: BOTH },
    ClientMutant { name: "reject-unknown-reply", breaks: "treats a reply with an unknown id as an error (ORDER-UNKNOWN-IDS-IGNORED)", caught_by: &["client.order.unknown-ids/*"], clients: TS },
    ClientMutant { name: "retry-forbidden", breaks: "retries a subscription denied with FORBIDDEN (AUTHZ-NO-AUTO-RETRY)", caught_by: &["client.authz.no-auto-retry/*"], clients: TS },
    ClientMutant { name: "only-ping-is-alive", breaks: "counts only ping as liveness (HB-ANY-FRAME)", caught_by: &["client.hb.any-frame/*"], clients: TS },
    ClientMutant { name: "reuse-rpc-id", breaks: "reuses rpc request ids (RPC-ID-UNIQUE)", caught_by: &["client.rpc.id-unique/*"], clients: BOTH },
    ClientMutant { name: "terminal-on-other-codes", breaks: "stops on codes outside the ranges instead of backing off (CLOSE-RANGES)", caught_by: &["client.close.other-codes/*"], clients: BOTH },
    ClientMutant { name: "backoff-at-cap", breaks: "backs off with the cap's window from the first attempt (CLOSE-BACKOFF)", caught_by: &["client.close.backoff/*"], clients: BOTH },
    ClientMutant { name: "frame-limit-is-max-message", breaks: "refuses server frames over max_message_bytes (LIMIT-SERVER-FRAME)", caught_by: &["client.limit.server-frame/*"], clients: TS },
    ClientMutant { name: "hello-twice", breaks: "sends hello twice (HELLO-ONCE)", caught_by: &["client.session.hello/*"], clients: BOTH },
    ClientMutant { name: "ping-before-hello", breaks: "sends a ping before hello (HELLO-FIRST)", caught_by: &["client.session.hello/*"], clients: BOTH },
    ClientMutant { name: "send-server-type", breaks: "sends a type only servers send (SESSION-CLIENT-TYPES)", caught_by: &["client.session.hello/*"], clients: TS },
];

/// A mutant written down for a clause that got a case, whose fault the
/// reference server's fault layer does not have yet. The traceability test
/// fails once the server knows the fault, so the entry moves to
/// [`MUTANTS`] and the mutant proof runs it.
#[derive(Debug, Clone, Copy)]
pub struct PendingMutant {
    /// The kebab-case fault name the server will use.
    pub name: &'static str,
    /// The requirement clause it breaks.
    pub clause: &'static str,
    /// What the server does wrong.
    pub breaks: &'static str,
    /// Patterns of case instance IDs that must fail against it.
    pub caught_by: &'static [&'static str],
}

/// Mutants whose server fault is pending.
pub const PENDING_MUTANTS: &[PendingMutant] = &[];

/// One row of the traceability table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// Requirement ID.
    pub id: String,
    /// Its level.
    pub level: Level,
    /// Spec file.
    pub file: String,
    /// Cases that check it.
    pub cases: Vec<String>,
    /// Mutants caught by those cases.
    pub mutants: Vec<String>,
    /// Why no case checks it, when none does.
    pub not_checkable: Option<String>,
}

/// The full table, in spec order.
pub fn table() -> Vec<Row> {
    let mut cases = crate::cases();
    cases.extend(crate::client::cases());
    requirements()
        .into_iter()
        .map(|r| {
            let ids: Vec<String> = cases
                .iter()
                .filter(|c| c.requirements.contains(&r.id))
                .map(|c| c.id.clone())
                .collect();
            let mutants = MUTANTS
                .iter()
                .filter(|m| {
                    m.caught_by.iter().any(|p| {
                        ids.iter().any(|id| {
                            crate::expect::glob_match(p.split('/').next().unwrap_or(p), id)
                        })
                    })
                })
                .map(|m| m.name.to_string())
                .chain(
                    PENDING_MUTANTS
                        .iter()
                        .filter(|m| {
                            m.caught_by.iter().any(|p| {
                                ids.iter().any(|id| {
                                    crate::expect::glob_match(p.split('/').next().unwrap_or(p), id)
                                })
                            })
                        })
                        .map(|m| format!("{} (pending)", m.name)),
                )
                .chain(
                    CLIENT_MUTANTS
                        .iter()
                        .filter(|m| {
                            m.caught_by.iter().any(|p| {
                                ids.iter().any(|id| {
                                    crate::expect::glob_match(p.split('/').next().unwrap_or(p), id)
                                })
                            })
                        })
                        .map(|m| format!("{} (client)", m.name)),
                )
                .collect();
            let not_checkable = NOT_CHECKABLE
                .iter()
                .find(|(id, _)| *id == r.id)
                .map(|(_, why)| why.to_string());
            Row {
                id: r.id,
                level: r.level,
                file: r.file,
                cases: ids,
                mutants,
                not_checkable,
            }
        })
        .collect()
}

/// MUST requirements with no case and no reason: must be empty.
pub fn uncovered_musts() -> Vec<String> {
    table()
        .into_iter()
        .filter(|r| r.level == Level::Must && r.cases.is_empty() && r.not_checkable.is_none())
        .map(|r| r.id)
        .collect()
}

/// Markdown: the case list.
pub fn markdown_cases() -> String {
    let mut s = String::from("| Case | Level | Runs | Checks | Needs |\n|---|---|---|---|---|\n");
    for c in crate::cases() {
        let needs = if c.needs.is_empty() {
            String::new()
        } else {
            c.needs
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "| `{}`: {} | {} | {} | {} | {} |\n",
            c.id,
            c.title,
            c.level,
            c.axes,
            c.requirements
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", "),
            needs
        ));
    }
    s
}

/// Markdown: requirement → cases → mutants.
pub fn markdown_traceability() -> String {
    let mut s =
        String::from("| Requirement | Level | Cases | Mutants caught |\n|---|---|---|---|\n");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in table() {
        let cases = if r.cases.is_empty() {
            match &r.not_checkable {
                Some(why) => {
                    *counts.entry("not checkable").or_default() += 1;
                    format!("not checkable: {why}")
                }
                None => {
                    *counts.entry("uncovered").or_default() += 1;
                    "none".to_string()
                }
            }
        } else {
            *counts.entry("covered").or_default() += 1;
            r.cases
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mutants = r
            .mutants
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.id, r.level, cases, mutants
        ));
    }
    s.push_str(&format!(
        "\n{} requirements: {} checked by cases (server or client), {} not checkable, {} uncovered.\n",
        counts.values().sum::<usize>(),
        counts.get("covered").unwrap_or(&0),
        counts.get("not checkable").unwrap_or(&0),
        counts.get("uncovered").unwrap_or(&0)
    ));
    s
}

/// Replaces the text between `<!-- BEGIN GENERATED: name -->` and
/// `<!-- END GENERATED: name -->` in `doc`; `None` if the markers are missing.
pub fn splice(doc: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
    let end = format!("<!-- END GENERATED: {name} -->");
    let b = doc.find(&begin)? + begin.len();
    let e = doc[b..].find(&end)? + b;
    Some(format!("{}{}{}", &doc[..b], body, &doc[e..]))
}

/// Markdown: every mutant, the cases that catch it, and whether the
/// reference server has its fault yet.
pub fn markdown_mutants() -> String {
    let mut s = String::from("| Mutant | Breaks | Caught by | Status |\n|---|---|---|---|\n");
    let cases = |c: &[&str]| {
        c.iter()
            .map(|p| format!("`{}`", p.trim_end_matches("/*")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for m in MUTANTS {
        s.push_str(&format!(
            "| `{}` | {} | {} | proven |\n",
            m.name,
            m.breaks,
            cases(m.caught_by)
        ));
    }
    for m in PENDING_MUTANTS {
        s.push_str(&format!(
            "| `{}` | {} ({}) | {} | pending: the server has no such fault yet |\n",
            m.name,
            m.breaks,
            m.clause,
            cases(m.caught_by)
        ));
    }
    s
}

/// Markdown: the client cases.
pub fn markdown_client_cases() -> String {
    let mut s = String::from("| Case | Level | Runs | Checks |\n|---|---|---|---|\n");
    for c in crate::client::cases() {
        s.push_str(&format!(
            "| `{}`: {} | {} | {} | {} |\n",
            c.id,
            c.title,
            c.level,
            c.axes,
            c.requirements
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s
}

/// Markdown: the client mutants, the cases that catch each, and the
/// clients that have the fault.
pub fn markdown_client_mutants() -> String {
    let mut s = String::from("| Mutant | Breaks | Caught by | Clients |\n|---|---|---|---|\n");
    for m in CLIENT_MUTANTS {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            m.name,
            m.breaks,
            m.caught_by
                .iter()
                .map(|p| format!("`{}`", p.trim_end_matches("/*")))
                .collect::<Vec<_>>()
                .join(", "),
            m.clients.join(", ")
        ));
    }
    s
}

/// `docs/conformance.md` with its generated sections brought up to date.
pub fn render_doc(doc: &str) -> Option<String> {
    let doc = splice(doc, "cases", &markdown_cases())?;
    let doc = splice(&doc, "client-cases", &markdown_client_cases())?;
    let doc = splice(&doc, "client-mutants", &markdown_client_mutants())?;
    let doc = splice(&doc, "mutants", &markdown_mutants())?;
    splice(&doc, "traceability", &markdown_traceability())
}
