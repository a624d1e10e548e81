//! TLS for `wss://` targets.

use crate::case::{fail, CaseError};
use crate::conn::Io;

/// Wraps a TCP stream in TLS for `server_name`.
pub async fn wrap(
    _tcp: tokio::net::TcpStream,
    server_name: &str,
) -> Result<Box<dyn Io>, CaseError> {
    Err(fail(format!("wss:// to {server_name}: TLS is not built into this suite yet; put a TLS-terminating proxy in front or use ws://")))
}
