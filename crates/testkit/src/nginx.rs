//! Debian's `nginx` in front of several nodes, for tests: the repository's
//! own configuration (`deploy/nginx/courier.conf`) with only its ports
//! changed (the `listen` port and the `server` lines of `upstream
//! courier`), inside a minimal main configuration whose pid file, error log
//! and temp paths are in a scratch directory; run in the foreground as a
//! child process, reloaded with SIGHUP, stopped on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::process::{free_port, signal, wait_for_port, ScratchDir};

/// How long a start or reload may take.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried when the free port was taken before nginx bound it.
const START_ATTEMPTS: u32 = 5;

/// The repository's nginx configuration for Courier, relative to the
/// workspace root.
pub const NGINX_CONF: &str = "deploy/nginx/courier.conf";

/// An `nginx` child process proxying `127.0.0.1:<port>` to some nodes.
///
/// # Examples
///
/// ```no_run
/// # let (a, b): (std::net::SocketAddr, std::net::SocketAddr) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
/// let conf = courier_testkit::workspace_root().join(courier_testkit::NGINX_CONF);
/// let mut nginx = courier_testkit::NginxProcess::start(&conf, &[a, b]).unwrap();
/// let url = nginx.ws_url(); // ws://127.0.0.1:<port>/ws, round robin over a and b
/// nginx.reload(&[a]).unwrap(); // only a from now on
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct NginxProcess {
    template: String,
    port: u16,
    child: Option<Child>,
    dir: ScratchDir,
}

impl NginxProcess {
    /// Installs `nginx` when missing (apt-get), renders the configuration
    /// at `conf` for a free loopback port and `upstreams`, starts nginx in
    /// the foreground and waits until it accepts connections.
    pub fn start(conf: &Path, upstreams: &[SocketAddr]) -> anyhow::Result<Self> {
        crate::ensure_command("nginx", "nginx")?;
        let template =
            std::fs::read_to_string(conf).with_context(|| format!("reading {}", conf.display()))?;
        let dir = ScratchDir::new("nginx")?;
        for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.path().join(temp))?;
        }
        let mut nginx = NginxProcess {
            template,
            port: free_port()?,
            child: None,
            dir,
        };
        let mut attempts = 0;
        loop {
            nginx.write_config(upstreams)?;
            match nginx.spawn() {
                Ok(()) => return Ok(nginx),
                Err(e) if attempts + 1 >= START_ATTEMPTS => return Err(e),
                Err(_) => {
                    attempts += 1;
                    nginx.port = free_port()?;
                }
            }
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The master process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The configuration file nginx runs with (the rendered template is
    /// `courier.conf` next to it).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// Rewrites the upstream list and reloads (SIGHUP); returns once the
    /// new worker runs and the old one stopped accepting (it says
    /// "gracefully shutting down"). Existing connections stay on the old
    /// worker until they close, as in production.
    pub fn reload(&mut self, upstreams: &[SocketAddr]) -> anyhow::Result<()> {
        let Some(pid) = self.pid() else {
            bail!("nginx is not running");
        };
        self.write_config(upstreams)?;
        let count = |log: &str| {
            (
                log.matches("start worker process ").count(),
                log.matches("gracefully shutting down").count(),
            )
        };
        let before = count(&self.log());
        signal(pid, "HUP")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let now = count(&self.log());
            if now.0 > before.0 && now.1 > before.1 {
                // The old worker logs before it closes its listening
                // sockets: give it that moment.
                std::thread::sleep(Duration::from_millis(50));
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "nginx did not switch workers within {START_TIMEOUT:?} of SIGHUP:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops it (SIGQUIT: graceful, workers finish their requests) and
    /// waits up to `timeout`, then kills it.
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(child.id(), "QUIT")?;
            }
            let deadline = Instant::now() + timeout;
            while child.try_wait()?.is_none() {
                if Instant::now() >= deadline {
                    kill_hard(&mut child);
                    bail!("nginx did not stop within {timeout:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// The error log so far (level `notice`: starts, reloads, upstream
    /// failures).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn write_config(&self, upstreams: &[SocketAddr]) -> anyhow::Result<()> {
        let site = render(&self.template, self.port, upstreams)?;
        let dir = self.dir.path();
        std::fs::write(dir.join("courier.conf"), site)?;
        let d = dir.display();
        let main = format!(
            "# Generated by courier-testkit for one test run.\n\
             daemon off;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log notice;\n\
             worker_rlimit_nofile 65536;\n\
             events {{ worker_connections 16384; }}\n\
             http {{\n\
             \x20   access_log off;\n\
             \x20   client_body_temp_path {d}/client_body;\n\
             \x20   proxy_temp_path {d}/proxy;\n\
             \x20   fastcgi_temp_path {d}/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/uwsgi;\n\
             \x20   scgi_temp_path {d}/scgi;\n\
             \x20   include {d}/courier.conf;\n\
             }}\n"
        );
        std::fs::write(self.config_path(), main)?;
        Ok(())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.path();
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(self.config_path())
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "nginx on port {} exited at start ({status}):\n{}",
                    self.port,
                    self.log()
                );
            }
            if wait_for_port(self.addr(), Duration::from_millis(100)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                kill_hard(&mut child);
                bail!(
                    "nginx on port {} did not accept within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log()
                );
            }
        }
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: fast shutdown; the master stops its workers.
            let _ = signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                kill_hard(&mut child);
            }
        }
    }
}

/// Kills the master with SIGKILL, and its workers, which would outlive a
/// master killed outright (they are its children: read from /proc before
/// the master goes).
fn kill_hard(child: &mut Child) {
    let master = child.id();
    let workers = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    for pid in workers
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        let _ = signal(pid, "KILL");
    }
}

/// The repository's configuration with its ports changed: every `listen`
/// directive listens on `127.0.0.1:<port>`, and the `server` lines of
/// `upstream courier { }` become one line per upstream, each with the
/// parameters of the template's first `server` line (`max_fails`, ...).
/// Fails when the template has no such block or no `listen` line, so a
/// change of the file that the tests could no longer follow is noticed.
pub fn render(template: &str, port: u16, upstreams: &[SocketAddr]) -> anyhow::Result<String> {
    if upstreams.is_empty() {
        bail!("nginx needs at least one upstream");
    }
    let mut out = String::with_capacity(template.len());
    let (mut in_upstream, mut saw_upstream, mut listens) = (false, false, 0);
    let mut params: Option<String> = None;
    for line in template.lines() {
        let code = line.split('#').next().unwrap_or("").trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if code.starts_with("upstream courier") && code.ends_with('{') {
            in_upstream = true;
            saw_upstream = true;
        } else if in_upstream && code == "}" {
            in_upstream = false;
            let params = params.take().unwrap_or_default();
            for up in upstreams {
                out.push_str(&format!("    server {up}{params};\n"));
            }
        } else if in_upstream && code.starts_with("server ") {
            if params.is_none() {
                // `server ADDR PARAMS;` → ` PARAMS` (may be empty).
                let rest = code.trim_start_matches("server ").trim_end_matches(';');
                let p: Vec<&str> = rest.split_whitespace().skip(1).collect();
                params = Some(p.iter().map(|p| format!(" {p}")).collect());
            }
            continue;
        } else if code.starts_with("listen ") {
            listens += 1;
            out.push_str(&format!("{indent}listen 127.0.0.1:{port};\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !saw_upstream || listens == 0 {
        bail!("the nginx template has no `upstream courier {{ }}` block or no `listen` line");
    }
    Ok(out)
}

/// The workspace root (the directory with the top `Cargo.toml`), for
/// repository files such as [`NGINX_CONF`].
pub fn workspace_root() -> PathBuf {
    // crates/testkit → ../..
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit is two levels below the root")
        .to_path_buf()
}
