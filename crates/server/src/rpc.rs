//! RPC (RPC-*): the [`RpcHandler`] trait applications implement, the
//! context a call sees, and the built-in `echo` and `sleep` methods.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2::ErrorCode;

/// The boxed future an [`RpcHandler`] returns.
pub type RpcFuture = Pin<Box<dyn Future<Output = Result<Bytes, RpcError>> + Send>>;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct RpcContext {
    /// The calling session's id.
    pub session_id: Arc<str>,
    /// The caller's user (`welcome.user`; empty when anonymous).
    pub user: Arc<str>,
    /// The caller's scopes.
    pub scopes: Arc<[String]>,
    /// The method name.
    pub method: String,
}

/// Why a call failed; sent to the caller as an `error` with the same id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The arguments are invalid: `ERROR_CODE_BAD_REQUEST`; the caller fixes them.
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not call this method: `ERROR_CODE_FORBIDDEN`.
    #[error("{0}")]
    Forbidden(String),
    /// The handler failed: `ERROR_CODE_INTERNAL`; the caller may retry.
    #[error("{0}")]
    Internal(String),
}

impl RpcError {
    /// The error code sent to the caller.
    pub fn code(&self) -> ErrorCode {
        match self {
            RpcError::BadRequest(_) => ErrorCode::BadRequest,
            RpcError::Forbidden(_) => ErrorCode::Forbidden,
            RpcError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// A method clients can call with `rpc_request`. Payloads are canonical
/// MessagePack (use `courier_protocol::wire::{from_payload, to_payload}`).
/// Calls of one session may run concurrently.
///
/// # Examples
///
/// ```
/// use courier_server::rpc::{RpcContext, RpcError, RpcHandler, RpcFuture};
/// use courier_protocol::wire;
///
/// struct Add;
/// impl RpcHandler for Add {
///     fn call(&self, _ctx: RpcContext, payload: bytes::Bytes) -> RpcFuture {
///         Box::pin(async move {
///             let (a, b): (i64, i64) = wire::from_payload(&payload).map_err(|e| RpcError::BadRequest(e.to_string()))?;
///             wire::to_payload(&(a + b)).map_err(|e| RpcError::Internal(e.to_string()))
///         })
///     }
/// }
/// ```
pub trait RpcHandler: Send + Sync + 'static {
    /// Runs one call.
    fn call(&self, ctx: RpcContext, payload: Bytes) -> RpcFuture;
}

impl<F, Fut> RpcHandler for F
where
    F: Fn(RpcContext, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes, RpcError>> + Send + 'static,
{
    fn call(&self, ctx: RpcContext, payload: Bytes) -> RpcFuture {
        Box::pin(self(ctx, payload))
    }
}

/// `echo`: returns its argument.
pub(crate) async fn echo(_: RpcContext, payload: Bytes) -> Result<Bytes, RpcError> {
    Ok(payload)
}

/// `sleep`: `{"ms": n}` waits n milliseconds (at most 10 s), then returns
/// its argument; lets clients observe concurrent, out-of-order responses.
pub(crate) async fn sleep(_: RpcContext, payload: Bytes) -> Result<Bytes, RpcError> {
    #[derive(serde::Deserialize)]
    struct Args {
        ms: u64,
    }
    let args: Args = courier_protocol::wire::from_payload(&payload)
        .map_err(|e| RpcError::BadRequest(format!("sleep expects {{\"ms\": n}}: {e}")))?;
    tokio::time::sleep(Duration::from_millis(args.ms.min(10_000))).await;
    Ok(payload)
}
