//! Close codes and the client reaction each range requires (CLOSE-RANGES).
//! The names and triggers live in the `CloseCode` enum of the proto
//! definitions; these constants are the same numbers for `match` arms.

/// RFC 6455 normal closure.
pub const NORMAL: u16 = 1000;
/// RFC 6455 going away: the server shuts down (CLOSE-SHUTDOWN).
pub const GOING_AWAY: u16 = 1001;
/// RFC 6455 abnormal closure: the link dropped without a close frame (never sent).
pub const ABNORMAL: u16 = 1006;
/// RFC 6455 message too big (CLOSE-OVERSIZE).
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// Undecodable frame (CLOSE-MALFORMED).
pub const BAD_FRAME: u16 = 4000;
/// Unknown or missing message type (CLOSE-UNKNOWN-TYPE).
pub const UNKNOWN_TYPE: u16 = 4001;
/// No common version/encoding (VER-ACCEPT-THEN-CLOSE).
pub const UNSUPPORTED_VERSION: u16 = 4002;
/// Out-of-order message: request before hello, second hello (HELLO-FIRST).
pub const PROTOCOL_VIOLATION: u16 = 4003;
/// Credentials rejected (AUTH-FAILED).
pub const AUTH_FAILED: u16 = 4004;
/// No hello before the first-message deadline (HELLO-DEADLINE).
pub const AUTH_TIMEOUT: u16 = 4005;
/// Connection not allowed.
pub const FORBIDDEN: u16 = 4006;
/// Send queue overflow (LIMIT-SLOW-CONSUMER).
pub const SLOW_CONSUMER: u16 = 4100;
/// Message rate exceeded (LIMIT-RATE).
pub const RATE_LIMITED: u16 = 4101;
/// Server over capacity.
pub const OVERLOADED: u16 = 4102;
/// Heartbeat deadline missed (HB-DEADLINE).
pub const HEARTBEAT_TIMEOUT: u16 = 4200;
/// Session moved (restart, rebalance).
pub const RECONNECT: u16 = 4201;
/// Credentials expired (AUTH-EXPIRY).
pub const TOKEN_EXPIRED: u16 = 4300;
/// Re-authentication deadline missed (AUTH-REAUTH-REQUEST, v2).
pub const REAUTH_TIMEOUT: u16 = 4301;

/// What a client must do after a close (the spec's reaction column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reaction {
    /// Do not reconnect; surface the error (CLOSE-TERMINAL-NO-RECONNECT).
    Terminal,
    /// Reconnect with exponential backoff and full jitter, then resume (CLOSE-BACKOFF).
    BackoffResume,
    /// Reconnect after a short jittered delay, then resume (CLOSE-RECONNECT-NOW).
    ReconnectResume,
    /// Obtain fresh credentials, then reconnect and resume (CLOSE-REFRESH).
    RefreshCredentials,
}

/// The reaction a close code requires (CLOSE-RANGES): 1002, 1007, 1009 and
/// 4000–4099 are terminal; 4100–4199 back off; 1001 and 4200–4299 reconnect
/// now; 4300–4399 refresh credentials; any other code, and 1006 (no close
/// frame), back off, then reconnect and resume.
pub fn reaction(code: u16) -> Reaction {
    match code {
        1002 | 1007 | MESSAGE_TOO_BIG => Reaction::Terminal,
        GOING_AWAY => Reaction::ReconnectResume,
        4000..=4099 => Reaction::Terminal,
        4100..=4199 => Reaction::BackoffResume,
        4200..=4299 => Reaction::ReconnectResume,
        4300..=4399 => Reaction::RefreshCredentials,
        _ => Reaction::BackoffResume,
    }
}

/// The proto name of a Courier close code (`CLOSE_CODE_SLOW_CONSUMER`).
pub fn name(code: u16) -> Option<&'static str> {
    crate::v2::CloseCode::try_from(i32::from(code))
        .ok()
        .map(|c| c.as_str_name())
}
