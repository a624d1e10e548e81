//! The Lua scripts of the Redis engine (`scripts/*.lua`, each with the
//! shared `prelude.lua` prepended), and running them: by hash (EVALSHA),
//! loaded once per Redis (at start and again after a `NOSCRIPT`, e.g. when
//! Redis restarted), within the command timeout.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisError, RetryMethod, Script, ScriptInvocation};

use crate::engine::EngineError;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("scripts/prelude.lua"),
                include_str!(concat!("scripts/", $file))
            ))
        })
    };
}

/// publish.lua: number, store, dedupe and stream one publish.
pub(super) static PUBLISH: LazyLock<Script> = script!("publish.lua");
/// recover.lua: position and the history after a resume position.
pub(super) static RECOVER: LazyLock<Script> = script!("recover.lua");
/// range.lua: the stored messages of an epoch in a seq range.
pub(super) static RANGE: LazyLock<Script> = script!("range.lua");
/// join.lua: add a presence member.
pub(super) static JOIN: LazyLock<Script> = script!("join.lua");
/// leave.lua: remove a presence member.
pub(super) static LEAVE: LazyLock<Script> = script!("leave.lua");
/// members.lua: the members and the membership version.
pub(super) static MEMBERS: LazyLock<Script> = script!("members.lua");
/// refresh.lua: a node's presence heartbeat for one channel.
pub(super) static REFRESH: LazyLock<Script> = script!("refresh.lua");

/// Every script, for loading them at start.
pub(super) fn all() -> [&'static Script; 7] {
    [
        &PUBLISH, &RECOVER, &RANGE, &JOIN, &LEAVE, &MEMBERS, &REFRESH,
    ]
}

/// Runs `invocation` on `conn` (EVALSHA, loading the script on
/// `NOSCRIPT`), failing with [`EngineError::TimedOut`] after `timeout`.
/// Every script returns one binary string (a `wire` record).
pub(super) async fn run(
    op: &'static str,
    conn: &mut ConnectionManager,
    invocation: &ScriptInvocation<'_>,
    timeout: Duration,
) -> Result<Vec<u8>, EngineError> {
    match tokio::time::timeout(timeout, invocation.invoke_async::<Vec<u8>>(conn)).await {
        Err(_) => Err(timed_out(op, timeout)),
        Ok(result) => result.map_err(|e| error(op, timeout, e)),
    }
}

pub(super) fn timed_out(op: &'static str, timeout: Duration) -> EngineError {
    EngineError::TimedOut {
        op,
        after_ms: timeout.as_millis() as u64,
    }
}

/// The typed error for a failed Redis call: unreachable and busy servers
/// are [`EngineError::Unavailable`] (retryable), answers are
/// [`EngineError::Backend`].
pub(super) fn error(op: &'static str, timeout: Duration, e: RedisError) -> EngineError {
    if e.is_timeout() {
        return timed_out(op, timeout);
    }
    let transient = e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.retry_method(),
            RetryMethod::Reconnect | RetryMethod::WaitAndRetry | RetryMethod::RetryImmediately
        );
    if transient {
        EngineError::Unavailable(format!("{op}: {e}"))
    } else {
        EngineError::Backend(format!("{op}: {e}"))
    }
}
