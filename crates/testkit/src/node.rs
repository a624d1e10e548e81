//! A real `courier serve` process (a node of a deployment) with its own
//! configuration file, for multi-node and fault tests: started on a free
//! loopback port, then stopped with SIGTERM (graceful drain), killed with
//! SIGKILL, and restarted on the same port so a proxy's upstream list stays
//! valid. Killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::process::{signal, ScratchDir};

/// How long a start may take (the listening line) before it fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How much of a node's log is kept (the end of it).
const LOG_LIMIT: usize = 256 * 1024;

/// A `courier serve` child process on `127.0.0.1:<port>`.
///
/// The binary is the caller's: integration tests of the `courier-cli`
/// package pass `env!("CARGO_BIN_EXE_courier")`, the binary built from
/// this workspace.
///
/// # Examples
///
/// ```no_run
/// # let redis_url = "redis://127.0.0.1:6379/";
/// use courier_testkit::Node;
/// let config = format!("[engine]\nkind = \"redis\"\nurl = \"{redis_url}\"\n");
/// let mut node = Node::start("target/debug/courier", &config).unwrap();
/// let url = node.ws_url(); // ws://127.0.0.1:<port>/ws
/// node.kill().unwrap(); // SIGKILL: its clients see the socket die
/// node.restart().unwrap(); // same port, same configuration
/// node.terminate(std::time::Duration::from_secs(10)).unwrap(); // SIGTERM: drain
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct Node {
    bin: PathBuf,
    config: PathBuf,
    addr: Option<SocketAddr>,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    log_filter: String,
    _dir: ScratchDir,
}

impl Node {
    /// Writes `config_toml` to a scratch directory and starts
    /// `BIN serve --config FILE --listen 127.0.0.1:0`; returns once the
    /// node printed its listening line (it accepts connections then).
    pub fn start(bin: impl AsRef<Path>, config_toml: &str) -> anyhow::Result<Self> {
        Node::start_with_log(bin, config_toml, "info")
    }

    /// Like [`Node::start`] with a log filter (`--log`, e.g. `warn` for
    /// benchmarks, `courier_server=debug` to investigate).
    pub fn start_with_log(
        bin: impl AsRef<Path>,
        config_toml: &str,
        log_filter: &str,
    ) -> anyhow::Result<Self> {
        let dir = ScratchDir::new("node")?;
        let config = dir.path().join("courier.toml");
        std::fs::write(&config, config_toml)
            .with_context(|| format!("writing {}", config.display()))?;
        let mut node = Node {
            bin: bin.as_ref().to_path_buf(),
            config,
            addr: None,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            log_filter: log_filter.to_string(),
            _dir: dir,
        };
        node.spawn()?;
        Ok(node)
    }

    /// `127.0.0.1:<port>` (kept across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("a started node has an address")
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr())
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

    /// Kills it with SIGKILL (no drain: its sockets die, its clients see
    /// no close frame) and waits for it to exit.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().context("waiting for courier serve")?;
        }
        Ok(())
    }

    /// Stops it with SIGTERM (graceful shutdown: new sessions and
    /// `/healthz` get 503, every session gets `disconnect` and close 1001
    /// after its queue) and waits up to `timeout` for the exit, after
    /// which it is killed and an error returned.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the node is not running");
        };
        if matches!(child.try_wait(), Ok(None)) {
            signal(child.id(), "TERM")?;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "courier serve did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same port with the same configuration
    /// (killing it first if it runs).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // A port in use by a lingering socket: try again shortly.
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The HTTP status of `GET /healthz` (200 serving, 503 draining), or
    /// an error when nothing answers.
    pub fn healthz(&self) -> anyhow::Result<u16> {
        Ok(http_get(self.addr(), "/healthz")?.0)
    }

    /// A sample of its `/metrics`: the value on the line that starts with
    /// `series` (a metric name with its labels, e.g.
    /// `courier_connections{transport="ws"}`).
    pub fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let (status, body) = http_get(self.addr(), "/metrics")?;
        if status != 200 {
            bail!("GET /metrics answered {status}");
        }
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .with_context(|| format!("no sample `{series}` in /metrics"))
    }

    /// Its log (stderr) so far, the last 256 KiB of every run.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let listen = self
            .addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let mut child = Command::new(&self.bin)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .args(["--listen", &listen, "--log", &self.log_filter])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} serve", self.bin.display()))?;
        keep_tail(child.stderr.take().expect("piped"), self.log.clone());
        // The first stdout line is `courier: listening on ws://ADDR/ws`;
        // the rest of stdout is drained so the pipe never blocks the node.
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "courier serve (listen {listen}) printed no listening line within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
        };
        let addr = line
            .strip_prefix("courier: listening on ws://")
            .and_then(|r| r.strip_suffix("/ws"))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("unexpected first line {line:?}; log:\n{}", self.log());
        };
        self.addr = Some(addr);
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Appends what `from` yields to `log`, keeping its last [`LOG_LIMIT`] bytes.
pub(crate) fn keep_tail(mut from: impl Read + Send + 'static, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&String::from_utf8_lossy(&buf[..n]));
            if log.len() > LOG_LIMIT {
                let mut cut = log.len() - LOG_LIMIT / 2;
                while !log.is_char_boundary(cut) {
                    cut += 1;
                }
                log.drain(..cut);
            }
        }
    });
}

/// `GET path` over a fresh connection to `addr` (HTTP/1.1,
/// `Connection: close`): the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::Write;
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    tcp.take(4 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status line from {addr}: {head:?}"))?;
    Ok((status, body.to_string()))
}
