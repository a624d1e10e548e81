//! Test-only helpers for Courier's integration and fault tests: real
//! processes (`redis-server`, ...) on free loopback ports, which a test
//! starts, kills and restarts, and which die with the value that owns them.
//!
//! Nothing here is a mock: every helper runs the real Debian program and
//! installs its package with `apt-get` when it is missing, so a fresh
//! machine passes the tests (the README's requirements table lists them).
//! Errors are `anyhow` (test tooling), with the process's log attached.

mod apt;
mod nginx;
mod node;
mod process;
mod redis;

pub use apt::ensure_command;
pub use nginx::{render as render_nginx_conf, workspace_root, NginxProcess, NGINX_CONF};
pub use node::{http_get, Node};
pub use process::{free_port, signal, wait_for_port, ScratchDir};
pub use redis::RedisProcess;
