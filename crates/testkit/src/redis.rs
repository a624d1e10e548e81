//! A real `redis-server` on a free loopback port, for tests: by default
//! with no persistence (a restart comes back empty, like a Redis that lost
//! its data), or persistent (every write fsynced to an append-only file, so
//! a restart is only an outage); killed or stopped and restarted on the
//! same port by fault tests, killed when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::process::{free_port, signal, ScratchDir};

/// How long a start may take before it is reported as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried when the free port was taken before `redis-server` bound it.
const START_ATTEMPTS: u32 = 5;

/// A `redis-server` child process on `127.0.0.1:<port>`.
///
/// # Examples
///
/// ```no_run
/// let mut redis = courier_testkit::RedisProcess::start().unwrap();
/// let url = redis.url(); // redis://127.0.0.1:<port>/
/// redis.kill().unwrap(); // SIGKILL: clients see connection errors
/// redis.restart().unwrap(); // same port, empty
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct RedisProcess {
    port: u16,
    persistent: bool,
    /// TLS listener: port, certificate and key files (PEM).
    tls: Option<(u16, PathBuf, PathBuf)>,
    child: Option<Child>,
    dir: ScratchDir,
}

impl RedisProcess {
    /// Installs `redis-server` when missing (apt-get), starts it on a free
    /// loopback port and waits until it answers `PING`.
    pub fn start() -> anyhow::Result<Self> {
        Self::launch(false)
    }

    /// Like [`RedisProcess::start`], but every write is fsynced to an
    /// append-only file in its scratch directory: a kill and restart keeps
    /// the data (a Redis outage, not a data loss).
    pub fn start_persistent() -> anyhow::Result<Self> {
        Self::launch(true)
    }

    /// Like [`RedisProcess::start`], with a TLS listener too (on
    /// [`RedisProcess::tls_port`]) serving `cert_file` and `key_file` (PEM;
    /// clients are not asked for certificates). The plain port stays for
    /// the helper's own commands.
    pub fn start_tls(cert_file: &Path, key_file: &Path) -> anyhow::Result<Self> {
        let tls = (
            free_port()?,
            cert_file.to_path_buf(),
            key_file.to_path_buf(),
        );
        Self::launch_with(false, Some(tls))
    }

    fn launch(persistent: bool) -> anyhow::Result<Self> {
        Self::launch_with(persistent, None)
    }

    fn launch_with(persistent: bool, tls: Option<(u16, PathBuf, PathBuf)>) -> anyhow::Result<Self> {
        crate::ensure_command("redis-server", "redis-server")?;
        let mut redis = RedisProcess {
            persistent,
            tls,
            port: free_port()?,
            child: None,
            dir: ScratchDir::new("redis")?,
        };
        let mut attempts = 0;
        loop {
            match redis.spawn() {
                Ok(()) => return Ok(redis),
                Err(e) if attempts + 1 >= START_ATTEMPTS => return Err(e),
                Err(_) => {
                    attempts += 1;
                    redis.port = free_port()?;
                    if let Some(tls) = &mut redis.tls {
                        tls.0 = free_port()?;
                    }
                }
            }
        }
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, when started with [`RedisProcess::start_tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|t| t.0)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:<port>/`, for the engine's `url`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills it with SIGKILL and waits for it to exit.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().context("waiting for redis-server")?;
        }
        Ok(())
    }

    /// Stops it with SIGTERM (Redis closes its clients) and waits for it.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(child.id(), "TERM")?;
            }
            child.wait().context("waiting for redis-server")?;
        }
        Ok(())
    }

    /// Starts it again on the same port (killing it first if it runs). It
    /// comes back empty, unless started with [`RedisProcess::start_persistent`].
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The old socket may linger for a moment.
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Sends one command (inline form) and returns the raw reply, e.g.
    /// `command("DBSIZE")` → `":3\r\n"`; for assertions and `FLUSHALL`.
    pub fn command(&self, line: &str) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))
            .with_context(|| format!("connecting to redis on {}", self.addr()))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{line}\r\n").as_bytes())?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        // Replies used by tests are short: read until a complete line.
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if reply.ends_with(b"\r\n") && complete(&reply) {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let persistence: &[&str] = if self.persistent {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            // Restarted empty, like a Redis that lost its data.
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            // No RDB snapshots either way.
            .args(["--save", ""])
            .args(persistence)
            .args(self.tls.iter().flat_map(|(port, cert, key)| {
                [
                    "--tls-port".into(),
                    port.to_string().into(),
                    "--tls-cert-file".into(),
                    cert.clone().into_os_string(),
                    "--tls-key-file".into(),
                    key.clone().into_os_string(),
                    "--tls-auth-clients".into(),
                    "no".into(),
                ]
                .into_iter()
                .collect::<Vec<std::ffi::OsString>>()
            }))
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.is_running() {
                self.child = None;
                bail!(
                    "redis-server on port {} exited at start:\n{}",
                    self.port,
                    self.log()
                );
            }
            if self
                .command("PING")
                .is_ok_and(|reply| reply.starts_with("+PONG"))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop_child();
                bail!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `reply` holds one whole RESP reply (simple types, or a bulk
/// string whose length has arrived).
fn complete(reply: &[u8]) -> bool {
    if reply.first() != Some(&b'$') {
        return true;
    }
    let text = String::from_utf8_lossy(reply);
    let Some((head, rest)) = text.split_once("\r\n") else {
        return false;
    };
    match head[1..].parse::<i64>() {
        Ok(len) if len >= 0 => rest.len() >= len as usize + 2,
        _ => true,
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop_child();
    }
}
