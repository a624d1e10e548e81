//! Deliberate client defects for the client conformance suite's proof that
//! it notices them (feature `faults`; a build without it has none of this).
//! `COURIER_CLIENT_FAULT=<name>` in the environment turns one on for the
//! process; `courier-conformance`'s `trace::CLIENT_MUTANTS` lists the cases
//! that must catch each. ORDER-UNSUBSCRIBE-FINAL has no fault here: the API
//! consumes a `Subscription` to unsubscribe, so nothing can be delivered to
//! it afterwards. Faults the TypeScript client has and this one does not yet
//! (`clients` in the table): drop-unacked-publishes, reject-unknown-reply,
//! retry-forbidden, only-ping-is-alive, frame-limit-is-max-message,
//! send-server-type.

use std::str::FromStr;
use std::sync::OnceLock;

/// One deliberate spec violation of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Delivers a message past a gap instead of resubscribing (SEQ-CLIENT-GAP-DETECTION).
    DeliverGaps,
    /// Delivers messages at or below the tracked seq (SEQ-CLIENT-DROP-OLD).
    DeliverOld,
    /// Delivers messages whose id was delivered before (DEDUP-CLIENT-DROP).
    DeliverDuplicates,
    /// Leaves the tracked position behind a message dropped as a duplicate (DEDUP-CLIENT-ADVANCE).
    DuplicateKeepsPosition,
    /// Resubscribes without `resume` (RESUME-CLIENT-RESUBSCRIBE).
    ResubscribeWithoutResume,
    /// Subscribes without the position the application asked to start from (RESUME-CLIENT-FROM).
    IgnoreSubscribeFrom,
    /// Reports a failed recovery as recovered (RESUME-CLIENT-REPORT).
    HideFailedRecovery,
    /// Backs off and reconnects after a terminal close (CLOSE-TERMINAL-NO-RECONNECT).
    ReconnectAfterTerminal,
    /// Ignores the `disconnect` notice and reacts to the close alone (CLOSE-NOTICE-WINS).
    IgnoreDisconnectNotice,
    /// Waits the whole backoff window instead of a random part of it (CLIENT-BACKOFF-JITTER).
    NoJitter,
    /// Resets the failure count when a session opens, not once it proved stable
    /// (CLIENT-BACKOFF-SHORT-SESSION).
    ResetBackoffOnOpen,
    /// Ignores `retry_after_ms` (CLOSE-RETRY-AFTER).
    IgnoreRetryAfter,
    /// Never applies the heartbeat deadline (HB-CLIENT-DEADLINE).
    NoHeartbeatDeadline,
    /// Resends queued publishes with new ids (CLIENT-OFFLINE-QUEUE).
    NewIdOnResend,
    /// Queues publishes without bound (CLIENT-OFFLINE-QUEUE).
    UnboundedOfflineQueue,
    /// Speaks a subprotocol it did not offer when the server selects one (VER-CLIENT-VERIFY).
    AcceptUnofferedSubprotocol,
    /// Sends publishes over `max_message_bytes` (LIMIT-MESSAGE-SIZE).
    SendOversize,
    /// Never answers `ping` (HB-PONG).
    NoPong,
    /// Reconnects after 4300–4399 with the old credentials (CLOSE-REFRESH).
    KeepTokenAfterExpiry,
    /// Ignores `reauth_request` (AUTH-REAUTH-CLIENT).
    IgnoreReauth,
    /// Closes with 1001 when the application closes (CLOSE-CLIENT-NORMAL).
    CloseWithGoingAway,
    /// Waits the backoff cap after 1001 and 4200–4299 (CLOSE-RECONNECT-NOW).
    ReconnectNowWaits,
    /// Never refreshes credentials before `token_expires_at_ms` (AUTH-REFRESH-EARLY).
    NoEarlyRefresh,
    /// Gives every `rpc_request` the same id (RPC-ID-UNIQUE).
    ReuseRpcId,
    /// Stops for good after 1011–1014, 3000–3999 and 4400–4999 (CLOSE-RANGES).
    TerminalOnOtherCodes,
    /// Backs off with the cap's window after 4100–4199 from the first attempt (CLOSE-BACKOFF).
    BackoffAtCap,
    /// Sends `hello` twice (HELLO-ONCE).
    HelloTwice,
    /// Sends a `ping` before `hello` (HELLO-FIRST).
    PingBeforeHello,
}

/// Every fault with its kebab-case name.
pub const ALL: &[(&str, Fault)] = &[
    ("deliver-gaps", Fault::DeliverGaps),
    ("deliver-old", Fault::DeliverOld),
    ("deliver-duplicates", Fault::DeliverDuplicates),
    ("duplicate-keeps-position", Fault::DuplicateKeepsPosition),
    (
        "resubscribe-without-resume",
        Fault::ResubscribeWithoutResume,
    ),
    ("ignore-subscribe-from", Fault::IgnoreSubscribeFrom),
    ("hide-failed-recovery", Fault::HideFailedRecovery),
    ("reconnect-after-terminal", Fault::ReconnectAfterTerminal),
    ("ignore-disconnect-notice", Fault::IgnoreDisconnectNotice),
    ("no-jitter", Fault::NoJitter),
    ("reset-backoff-on-open", Fault::ResetBackoffOnOpen),
    ("ignore-retry-after", Fault::IgnoreRetryAfter),
    ("no-heartbeat-deadline", Fault::NoHeartbeatDeadline),
    ("new-id-on-resend", Fault::NewIdOnResend),
    ("unbounded-offline-queue", Fault::UnboundedOfflineQueue),
    (
        "accept-unoffered-subprotocol",
        Fault::AcceptUnofferedSubprotocol,
    ),
    ("send-oversize", Fault::SendOversize),
    ("no-pong", Fault::NoPong),
    ("keep-token-after-expiry", Fault::KeepTokenAfterExpiry),
    ("ignore-reauth", Fault::IgnoreReauth),
    ("close-with-going-away", Fault::CloseWithGoingAway),
    ("reconnect-now-waits", Fault::ReconnectNowWaits),
    ("no-early-refresh", Fault::NoEarlyRefresh),
    ("reuse-rpc-id", Fault::ReuseRpcId),
    ("terminal-on-other-codes", Fault::TerminalOnOtherCodes),
    ("backoff-at-cap", Fault::BackoffAtCap),
    ("hello-twice", Fault::HelloTwice),
    ("ping-before-hello", Fault::PingBeforeHello),
];

/// A name that is no fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a client fault")]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Fault, UnknownFault> {
        ALL.iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// Whether `f` is the fault `COURIER_CLIENT_FAULT` turned on.
pub fn active(f: Fault) -> bool {
    static ON: OnceLock<Option<Fault>> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("COURIER_CLIENT_FAULT")
            .ok()
            .and_then(|n| n.parse().ok())
    }) == Some(f)
}
