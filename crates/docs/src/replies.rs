//! What each envelope type gets in return: the reply on success, the
//! `error` codes and closes it can cause, with the spec requirement that
//! says so. The proto definitions cannot express this, so it lives here as a
//! table; a test checks that every type of the newest version is covered and
//! that every cited ID exists in `docs/spec`.

use serde::Serialize;

/// One possible outcome of sending an envelope.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `reply` (to the sender), `delivers` (envelopes that follow, possibly
    /// to other sessions), `error` (the session continues) or `close`.
    pub kind: &'static str,
    /// The reply's wire type, the `ErrorCode` name, or the close code.
    pub what: String,
    /// When this outcome happens.
    pub when: &'static str,
    /// The requirements that specify it.
    pub spec: Vec<&'static str>,
}

fn reply(what: &str, when: &'static str, spec: &[&'static str]) -> Outcome {
    Outcome {
        kind: "reply",
        what: what.into(),
        when,
        spec: spec.to_vec(),
    }
}

fn delivers(what: &str, when: &'static str, spec: &[&'static str]) -> Outcome {
    Outcome {
        kind: "delivers",
        what: what.into(),
        when,
        spec: spec.to_vec(),
    }
}

fn error(code: &str, when: &'static str, spec: &[&'static str]) -> Outcome {
    Outcome {
        kind: "error",
        what: format!("ERROR_CODE_{code}"),
        when,
        spec: spec.to_vec(),
    }
}

fn close(code: u16, when: &'static str, spec: &[&'static str]) -> Outcome {
    Outcome {
        kind: "close",
        what: code.to_string(),
        when,
        spec: spec.to_vec(),
    }
}

/// The outcomes of sending an envelope of wire type `type_name`. Closes that
/// any frame can cause (4000, 4001, 1009, 4101) are listed once on the
/// close-code page rather than under every type.
pub fn outcomes(type_name: &str) -> Vec<Outcome> {
    match type_name {
        "hello" => vec![
            reply("welcome", "the credentials are accepted (or anonymous sessions are allowed)", &["HELLO-FIRST", "WELCOME-FIELDS", "FEATURE-NEGOTIATION"]),
            close(4004, "the credentials are rejected", &["AUTH-FAILED"]),
            close(4300, "the credentials have already expired", &["AUTH-EXPIRED-AT-HELLO"]),
            close(4003, "a second `hello` on the same connection", &["HELLO-ONCE"]),
        ],
        "welcome" | "refreshed" | "subscribe_ack" | "unsubscribe_ack" | "publish_ack" | "presence" | "rpc_response" | "error" => {
            vec![]
        }
        "refresh" => vec![
            reply("refreshed", "the new credentials are valid and name the same user", &["AUTH-REFRESH", "AUTH-REFRESH-SAME-USER"]),
            error("INVALID_TOKEN", "the new credentials are invalid or expired; the previous ones stay in force", &["AUTH-REFRESH"]),
        ],
        "reauth_request" => vec![
            reply("refresh", "the client obtains new credentials before `deadline_ms`", &["AUTH-REAUTH-CLIENT"]),
            close(4301, "no successful `refresh` before the deadline", &["AUTH-REAUTH-REQUEST"]),
        ],
        "subscribe" => vec![
            reply("subscribe_ack", "the subscription is active (a repeated subscribe gets a new ack)", &["SEQ-ACK-POSITION", "ORDER-ACK-BEFORE-DATA", "ORDER-IDEMPOTENT-SUBSCRIBE"]),
            delivers("message", "after the ack: replayed messages when resuming, then every new message", &["RESUME-EXACT-RANGE", "SEQ-GAPFREE"]),
            error("FORBIDDEN", "the credentials do not allow subscribing to the channel", &["AUTHZ-PER-OPERATION", "AUTHZ-DENIAL-IS-ERROR"]),
            error("TOO_MANY_SUBSCRIPTIONS", "the session already holds `max_subscriptions` subscriptions", &["LIMIT-SUBSCRIPTIONS"]),
            error("BAD_REQUEST", "the channel name is empty, too long or has control characters", &["CHAN-NAME"]),
        ],
        "unsubscribe" => vec![
            reply("unsubscribe_ack", "always, also for a channel the session is not subscribed to", &["ORDER-UNSUBSCRIBE-FINAL", "ORDER-UNKNOWN-IDS-IGNORED"]),
            error("BAD_REQUEST", "the channel name is invalid", &["CHAN-NAME"]),
        ],
        "publish" => vec![
            reply("publish_ack", "the message was numbered and stored; `duplicate: true` with the original position for a repeated id", &["ORDER-PUBLISH-ACK", "DEDUP-ACK-ORIGINAL"]),
            error("FORBIDDEN", "the credentials do not allow publishing to the channel", &["AUTHZ-PER-OPERATION", "AUTHZ-DENIAL-IS-ERROR"]),
            error("BAD_REQUEST", "the `id` is empty or the channel name is invalid", &["DEDUP-ID-REQUIRED", "CHAN-NAME"]),
            error("INTERNAL", "the server failed; retrying with the same `id` is safe", &["DEDUP-WINDOW"]),
        ],
        "message" => vec![],
        "presence_query" => vec![
            reply("presence", "the session is subscribed to the channel", &["PRESENCE-QUERY"]),
            error("NOT_SUBSCRIBED", "the session is not subscribed to the channel", &["PRESENCE-QUERY"]),
            error("UNSUPPORTED", "`presence` is not enabled for the session", &["FEATURE-GATED"]),
        ],
        "presence_event" => vec![],
        "ephemeral" => vec![
            delivers("ephemeral", "relayed to the channel's other subscribers, never numbered or stored", &["EPHEMERAL-NO-SEQ"]),
            error("NOT_SUBSCRIBED", "the sender is not subscribed to the channel", &["EPHEMERAL-NO-SEQ"]),
            error("UNSUPPORTED", "`ephemeral` is not enabled for the session", &["FEATURE-GATED"]),
        ],
        "rpc_request" => vec![
            reply("rpc_response", "the method ran; exactly one answer per request", &["RPC-CORRELATION"]),
            error("UNKNOWN_METHOD", "no such method is registered", &["RPC-UNKNOWN-METHOD"]),
            error("UNSUPPORTED", "`rpc` is not enabled for the session", &["FEATURE-GATED"]),
        ],
        "ping" => vec![reply("pong", "always, echoing `ts`", &["HB-PONG", "HB-CLIENT-PING-ANSWERED"])],
        "pong" => vec![],
        "disconnect" => vec![Outcome {
            kind: "close",
            what: "`code`".into(),
            when: "follows at once, with the same code and reason; the client reacts by the code's range",
            spec: vec!["CLOSE-DISCONNECT-NOTICE", "CLOSE-RANGES", "CLOSE-NOTICE-WINS"],
        }],
        "batch" => vec![
            reply("(per envelope)", "each envelope inside gets what it would get alone, in order", &["BATCH-ORDER"]),
            close(4003, "a nested batch, more than `max_batch` envelopes, or `batch` not negotiated", &["BATCH-NO-NESTING", "BATCH-MAX", "BATCH-V2-ONLY"]),
        ],
        _ => vec![],
    }
}

/// Types this table knows, whether or not they get an answer: used by the
/// coverage test so a new envelope type cannot be added undocumented.
pub const KNOWN_TYPES: &[&str] = &[
    "hello",
    "welcome",
    "refresh",
    "refreshed",
    "reauth_request",
    "subscribe",
    "subscribe_ack",
    "unsubscribe",
    "unsubscribe_ack",
    "publish",
    "publish_ack",
    "message",
    "presence_query",
    "presence",
    "presence_event",
    "ephemeral",
    "rpc_request",
    "rpc_response",
    "ping",
    "pong",
    "error",
    "disconnect",
    "batch",
];

/// For a reply or server push, the request it answers (shown as "answers").
pub fn answers(type_name: &str) -> Option<&'static str> {
    Some(match type_name {
        "welcome" => "hello",
        "refreshed" => "refresh",
        "subscribe_ack" => "subscribe",
        "unsubscribe_ack" => "unsubscribe",
        "publish_ack" => "publish",
        "presence" => "presence_query",
        "rpc_response" => "rpc_request",
        "pong" => "ping",
        "error" => {
            "refresh, subscribe, unsubscribe, publish, presence_query, ephemeral, rpc_request"
        }
        _ => return None,
    })
}
