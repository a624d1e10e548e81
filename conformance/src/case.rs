//! The case framework: what a case declares (stable ID, title, requirement
//! IDs, level, axes), the context it runs in (target, subprotocol,
//! transcript, tokens, unique names, time scale) and how it reports failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Subprotocol};

use crate::conn::{Conn, ConnectOptions, Transcript};
use crate::profile::{Profile, TokenKind};
use crate::spec::Level;
use crate::tokens::{self, TokenError};

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseError {
    /// The server broke the requirement: what was expected and observed.
    Fail(String),
    /// The case needs something the profile does not provide.
    Unsupported(String),
    /// The case does not apply to this target (stated reason).
    Skipped(String),
}

/// A failure with a message (`return Err(fail(..))`).
pub fn fail(msg: impl Into<String>) -> CaseError {
    CaseError::Fail(msg.into())
}

/// Fails the case with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::case::fail(format!($($arg)+)));
        }
    };
}

/// The result of one case function.
pub type CaseResult = Result<(), CaseError>;

/// A case's body.
pub type CaseFn = fn(Ctx) -> Pin<Box<dyn Future<Output = CaseResult> + Send>>;

/// Along which axes a case is instantiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axes {
    /// Once per supported subprotocol: `id/v2/msgpack`.
    Each,
    /// Once per supported version, in its first encoding: `id/v2`.
    PerVersion,
    /// Once, in the preferred subprotocol: `id`.
    Once,
}

/// One case definition.
#[derive(Clone, Copy)]
pub struct CaseDef {
    /// Stable ID without axes (`seq.gap-free`).
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// The spec requirement IDs it checks.
    pub requirements: &'static [&'static str],
    /// The level of what it checks.
    pub level: Level,
    /// Instantiation axes.
    pub axes: Axes,
    /// Versions the case applies to (empty: all).
    pub versions: &'static [u32],
    /// Encodings the case applies to (`json`, `msgpack`, `proto`; empty: all).
    pub encodings: &'static [&'static str],
    /// What the profile must declare: feature names, `restart`, `sse`,
    /// `forbidden` (a forbidden channel). Missing → `unsupported`.
    pub needs: &'static [&'static str],
    /// Runs alone (after the parallel cases), e.g. because it restarts the server.
    pub exclusive: bool,
    /// The body.
    pub run: CaseFn,
}

/// The public description of a case (stable: used by docs and reports).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseInfo {
    /// Stable ID without axes.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// Spec requirement IDs.
    pub requirements: Vec<String>,
    /// Level.
    pub level: Level,
    /// `each subprotocol`, `each version` or `once`.
    pub axes: String,
    /// What the profile must declare for the case to run.
    pub needs: Vec<String>,
}

impl CaseDef {
    /// The public description.
    pub fn info(&self) -> CaseInfo {
        CaseInfo {
            id: self.id.to_string(),
            title: self.title.to_string(),
            requirements: self.requirements.iter().map(|s| s.to_string()).collect(),
            level: self.level,
            axes: match self.axes {
                Axes::Each => "each version and encoding",
                Axes::PerVersion => "each version",
                Axes::Once => "once",
            }
            .to_string(),
            needs: self.needs.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Restarts the server under test (the profile's `restart_command`, or the
/// embedded server).
pub trait ServerControl: Send + Sync {
    /// Restarts gracefully and returns once the server accepts connections again.
    fn restart(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// A [`ServerControl`] running a shell command.
pub struct CommandControl(pub String);

impl ServerControl for CommandControl {
    fn restart(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&self.0)
                .stdin(std::process::Stdio::null())
                .status()
                .await
                .map_err(|e| format!("cannot run `{}`: {e}", self.0))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("`{}` exited with {status}", self.0))
            }
        })
    }
}

/// One address of the deployment under test: a node, or a proxy in front
/// of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// WebSocket URL.
    pub ws_url: String,
    /// SSE URL (the profile's `sse_url` resolved against `ws_url`).
    pub sse_url: Option<String>,
}

/// The server under test: one endpoint, or several endpoints of one
/// deployment (nodes sharing an engine), over which each case spreads its
/// sessions in turn (see [`Ctx::connect`]).
pub struct Target {
    /// WebSocket URL of the first endpoint (named in reports).
    pub url: String,
    /// Every endpoint, `url`'s first; never empty.
    pub endpoints: Vec<Endpoint>,
    /// The profile.
    pub profile: Profile,
    /// How to restart it, when possible.
    pub control: Option<Arc<dyn ServerControl>>,
    /// Multiplies every wait and tolerance of the suite.
    pub time_scale: f64,
    /// Seed of the randomized history schedule (report it to reproduce a failure).
    pub seed: u64,
}

impl Target {
    /// A target at `url` and the profile's further `endpoints`, with no
    /// restart control, time scale 1 and a seed taken from the clock; a
    /// relative `sse_url` of the profile is resolved against each URL.
    pub fn new(url: impl Into<String>, profile: Profile) -> Target {
        let mut urls = vec![url.into()];
        urls.extend(profile.endpoints.iter().cloned());
        Target::with_endpoints(urls, profile)
    }

    /// A target at exactly these WebSocket URLs of one deployment (the
    /// profile's `url` and `endpoints` are not used), otherwise like
    /// [`Target::new`].
    ///
    /// # Panics
    /// When `urls` is empty.
    pub fn with_endpoints(urls: Vec<String>, mut profile: Profile) -> Target {
        assert!(!urls.is_empty(), "a target needs at least one URL");
        let endpoints: Vec<Endpoint> = urls
            .iter()
            .map(|u| Endpoint {
                ws_url: u.clone(),
                sse_url: profile.sse_url_for(u),
            })
            .collect();
        profile.resolve_sse_url(&urls[0]);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            % 1_000_000_007;
        Target {
            url: urls[0].clone(),
            endpoints,
            profile,
            control: None,
            time_scale: 1.0,
            seed,
        }
    }
}

/// What a running case gets.
#[derive(Clone)]
pub struct Ctx {
    inner: Arc<CtxInner>,
}

struct CtxInner {
    target: Arc<Target>,
    sp: Subprotocol,
    transcript: Arc<Transcript>,
    unique: String,
    counter: AtomicU64,
    /// How many endpoints this case has used so far (the next one's index).
    turn: AtomicUsize,
}

impl Ctx {
    pub(crate) fn new(
        target: Arc<Target>,
        sp: Subprotocol,
        transcript: Arc<Transcript>,
        unique: String,
    ) -> Ctx {
        Ctx {
            inner: Arc::new(CtxInner {
                target,
                sp,
                transcript,
                unique,
                counter: AtomicU64::new(0),
                turn: AtomicUsize::new(0),
            }),
        }
    }

    /// The subprotocol of this case instance.
    pub fn sp(&self) -> Subprotocol {
        self.inner.sp
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.inner.target.profile
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// The transcript.
    pub fn transcript(&self) -> &Arc<Transcript> {
        &self.inner.transcript
    }

    /// Records a note in the transcript.
    pub fn note(&self, text: impl Into<String>) {
        self.inner.transcript.note(text);
    }

    /// `ms` milliseconds, multiplied by the time scale.
    pub fn ms(&self, ms: u64) -> Duration {
        Duration::from_millis((ms as f64 * self.inner.target.time_scale) as u64)
    }

    /// How long one expected reply may take (2 s, scaled).
    pub fn step(&self) -> Duration {
        self.ms(2000)
    }

    /// A channel name unique to this case instance.
    pub fn channel(&self, name: &str) -> String {
        format!(
            "{}{}.{name}",
            self.profile().channels.open_prefix,
            self.inner.unique
        )
    }

    /// An id unique within the run (`prefix-<unique>-<n>`).
    pub fn id(&self, prefix: &str) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{}-{n}", self.inner.unique)
    }

    /// A token of `kind`; `unsupported` when the profile cannot provide it.
    pub async fn token(&self, kind: TokenKind) -> Result<String, CaseError> {
        tokens::fetch(&self.profile().tokens, kind)
            .await
            .map_err(|e| match e {
                TokenError::Unavailable(_) => CaseError::Unsupported(e.to_string()),
                TokenError::Failed(m) => fail(m),
            })
    }

    /// The endpoint for this case's next session: the case's sessions go
    /// to the target's endpoints in turn, the first to the first. This is
    /// the one place that picks a node: with two nodes, a case's publisher
    /// and subscriber are on different nodes, and a session that resumes
    /// after another was dropped lands on the other node. The choice is
    /// noted in the transcript when there are several endpoints.
    pub fn next_endpoint(&self, label: &str) -> &Endpoint {
        let all = &self.target().endpoints;
        let n = self.inner.turn.fetch_add(1, Ordering::Relaxed) % all.len();
        if all.len() > 1 {
            self.note(format!("{label} → endpoint {} ({})", n + 1, all[n].ws_url));
        }
        &all[n]
    }

    /// The SSE URL for this case's next SSE stream or `POST /publish`
    /// (the endpoints in turn, as [`Ctx::next_endpoint`]); empty when the
    /// profile has none.
    pub fn sse_url(&self, label: &str) -> String {
        self.next_endpoint(label)
            .sse_url
            .clone()
            .unwrap_or_default()
    }

    /// Connects offering exactly `offers`, to the next endpoint.
    pub async fn connect_offering(&self, label: &str, offers: &[&str]) -> Result<Conn, CaseError> {
        let (url, tr) = (
            &self.next_endpoint(label).ws_url,
            self.inner.transcript.clone(),
        );
        Conn::connect_with(
            url,
            offers,
            label,
            tr,
            self.step(),
            &self.connect_options(None),
        )
        .await
    }

    fn connect_options(&self, recv_buffer: Option<u32>) -> ConnectOptions {
        ConnectOptions {
            recv_buffer,
            tls_ca_file: self.profile().tls_ca_file.clone(),
            auto_pong: true,
        }
    }

    /// Connects offering this instance's subprotocol with a small socket
    /// receive buffer (see [`Conn::connect_with`]), to the next endpoint.
    pub async fn connect_small_buffer(&self, label: &str) -> Result<Conn, CaseError> {
        let (url, tr) = (
            &self.next_endpoint(label).ws_url,
            self.inner.transcript.clone(),
        );
        let options = self.connect_options(Some(4096));
        Conn::connect_with(url, &[self.sp().name()], label, tr, self.step(), &options).await
    }

    /// Connects offering this instance's subprotocol and checks it was
    /// selected, to the next endpoint.
    pub async fn connect(&self, label: &str) -> Result<Conn, CaseError> {
        let conn = self.connect_offering(label, &[self.sp().name()]).await?;
        crate::check!(
            conn.selected == Some(self.sp()),
            "offered only {} but the server selected {:?}",
            self.sp(),
            conn.selected_header
        );
        Ok(conn)
    }

    /// Connects, sends `hello` with `token` and `features`, returns the `welcome`.
    pub async fn open_with(
        &self,
        label: &str,
        token: &str,
        features: &[&str],
    ) -> Result<(Conn, v2::Welcome), CaseError> {
        let mut conn = self.connect(label).await?;
        conn.send_body(hello(token, features)).await?;
        let env = conn.recv("welcome").await?;
        match env.body {
            Some(Body::Welcome(w)) => Ok((conn, w)),
            other => Err(fail(format!(
                "expected welcome as the first envelope, got {:?}",
                other.map(|b| crate::cases::util::body_name(&b))
            ))),
        }
    }

    /// Connects with a valid token and the profile's features.
    pub async fn open(&self, label: &str) -> Result<(Conn, v2::Welcome), CaseError> {
        let token = self.token(TokenKind::Valid).await?;
        self.open_with(label, &token, &[]).await
    }

    /// Restarts the server (exclusive cases only).
    pub async fn restart(&self) -> Result<(), CaseError> {
        let control =
            self.target().control.clone().ok_or_else(|| {
                CaseError::Unsupported("no restart_command in the profile".into())
            })?;
        self.note("restarting the server");
        control
            .restart()
            .await
            .map_err(|e| fail(format!("restart failed: {e}")))
    }
}

/// A `hello` body.
pub fn hello(token: &str, features: &[&str]) -> Body {
    Body::Hello(v2::Hello {
        token: token.to_string(),
        client: concat!("courier-conformance/", env!("CARGO_PKG_VERSION")).to_string(),
        features: features.iter().map(|s| s.to_string()).collect(),
    })
}
