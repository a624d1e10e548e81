//! Runs the selected case instances against a target: expands each case
//! along its axes, applies `--only`/`--skip`, runs independent cases in
//! parallel with per-case timeouts (exclusive ones alone, afterwards), and
//! grades each result into an [`Outcome`] under the verdict policy
//! (`--strict`, expected failures).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use courier_protocol::Subprotocol;

use crate::case::{Axes, CaseDef, CaseError, Ctx, Target};
use crate::conn::{Entry, Transcript};
use crate::expect::{glob_match, ExpectedFailures};
use crate::report::Report;
use crate::spec::Level;

/// What happened to one case instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The server met the requirement.
    Pass,
    /// A MUST requirement (or a SHOULD under `--strict`) was broken.
    Fail,
    /// A SHOULD or MAY requirement was broken (not fatal unless `--strict`).
    Warn,
    /// The profile does not declare what the case needs.
    Unsupported,
    /// The case does not apply to this target.
    Skipped,
    /// Failed, and listed in the expected-failures file.
    ExpectedFail,
    /// Passed although listed in the expected-failures file: fails the run.
    UnexpectedPass,
}

impl Outcome {
    /// Name in reports (`pass`, `expected-fail`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Unsupported => "unsupported",
            Outcome::Skipped => "skipped",
            Outcome::ExpectedFail => "expected-fail",
            Outcome::UnexpectedPass => "unexpected-pass",
        }
    }

    /// Whether this outcome makes the run fail.
    pub fn is_fatal(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::UnexpectedPass)
    }
}

/// The result of one case instance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    /// Instance ID with axes (`seq.gap-free/v2/msgpack`).
    pub id: String,
    /// Case ID without axes.
    pub case: String,
    /// Title.
    pub title: String,
    /// Level.
    pub level: Level,
    /// Requirement IDs.
    pub requirements: Vec<String>,
    /// The subprotocol it ran in.
    pub subprotocol: Option<String>,
    /// The graded outcome.
    pub outcome: Outcome,
    /// What failed, or why it did not run.
    pub message: Option<String>,
    /// For expected failures and unexpected passes: the matching line's reason.
    pub expected_failure: Option<String>,
    /// Wall time.
    pub duration_ms: u64,
    /// The frames sent and received.
    pub transcript: Vec<Entry>,
}

/// Receives results as they come (terminal progress).
pub trait Progress: Send + Sync {
    /// Called when a case instance finishes.
    fn finished(&self, result: &CaseResult, done: usize, total: usize);
}

/// How to run the suite. Defaults suit the reference server.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() {
/// use courier_conformance::{Profile, RunConfig, Target};
/// let target = Target::new("ws://127.0.0.1:8080/ws", Profile::for_url("ws://127.0.0.1:8080/ws"));
/// let report = RunConfig::new().only("seq.*").parallel(4).run(target).await;
/// assert!(report.passed());
/// # }
/// ```
pub struct RunConfig {
    /// Patterns of instance IDs to run (default: all).
    pub(crate) only: Vec<String>,
    /// Patterns of instance IDs not to run (default: none).
    pub(crate) skip: Vec<String>,
    /// Treat SHOULD failures as failures (default: false, they warn).
    pub(crate) strict: bool,
    /// Known failures (default: none).
    pub(crate) expected: ExpectedFailures,
    /// Per-case timeout before time scaling (default 20 s: the slowest case,
    /// slow-consumer, needs about 5 s against the reference server).
    pub(crate) case_timeout: Duration,
    /// Cases running at once (default 8; cases mostly wait on the network).
    pub(crate) parallel: usize,
    pub(crate) progress: Option<Arc<dyn Progress>>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            only: Vec::new(),
            skip: Vec::new(),
            strict: false,
            expected: ExpectedFailures::default(),
            case_timeout: Duration::from_secs(20),
            parallel: 8,
            progress: None,
        }
    }
}

/// One case instance to run.
struct Instance {
    id: String,
    def: &'static CaseDef,
    sp: Option<Subprotocol>,
    unsupported: Option<String>,
}

impl RunConfig {
    /// The defaults.
    pub fn new() -> RunConfig {
        RunConfig::default()
    }
    /// Adds a pattern of case IDs to run.
    pub fn only(&mut self, pattern: &str) -> &mut Self {
        self.only.push(pattern.to_string());
        self
    }
    /// Adds a pattern of case IDs to leave out.
    pub fn skip(&mut self, pattern: &str) -> &mut Self {
        self.skip.push(pattern.to_string());
        self
    }
    /// Makes SHOULD failures fail the run.
    pub fn strict(&mut self, strict: bool) -> &mut Self {
        self.strict = strict;
        self
    }
    /// Sets the expected failures.
    pub fn expected_failures(&mut self, expected: ExpectedFailures) -> &mut Self {
        self.expected = expected;
        self
    }
    /// Sets the per-case timeout (before time scaling).
    pub fn case_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.case_timeout = timeout;
        self
    }
    /// Sets how many cases run at once (at least 1).
    pub fn parallel(&mut self, n: usize) -> &mut Self {
        self.parallel = n.max(1);
        self
    }
    /// Sets the progress listener.
    pub fn progress(&mut self, progress: Arc<dyn Progress>) -> &mut Self {
        self.progress = Some(progress);
        self
    }

    /// The instance IDs that a run against `target` would execute, in order.
    pub fn selected_ids(&self, target: &Target) -> Vec<String> {
        self.instances(target).into_iter().map(|i| i.id).collect()
    }

    pub(crate) fn selected(&self, id: &str) -> bool {
        let base = id.split('/').next().unwrap_or(id);
        let hit = |pats: &[String]| {
            pats.iter()
                .any(|p| glob_match(p, id) || glob_match(p, base))
        };
        (self.only.is_empty() || hit(&self.only)) && !hit(&self.skip)
    }

    fn instances(&self, target: &Target) -> Vec<Instance> {
        let supported = target.profile.subprotocols();
        let mut out = Vec::new();
        for def in crate::cases::registry() {
            let fits = |sp: &Subprotocol| {
                (def.versions.is_empty() || def.versions.contains(&sp.version.number()))
                    && (def.encodings.is_empty() || def.encodings.contains(&sp.encoding.as_str()))
            };
            let sps: Vec<Subprotocol> = supported.iter().copied().filter(fits).collect();
            let mut list: Vec<(String, Option<Subprotocol>)> = match def.axes {
                Axes::Each => sps
                    .iter()
                    .map(|sp| {
                        (
                            format!("{}/{}/{}", def.id, sp.version, sp.encoding),
                            Some(*sp),
                        )
                    })
                    .collect(),
                Axes::PerVersion => {
                    let mut seen = Vec::new();
                    sps.iter()
                        .filter(|sp| {
                            let first = !seen.contains(&sp.version);
                            seen.push(sp.version);
                            first
                        })
                        .map(|sp| (format!("{}/{}", def.id, sp.version), Some(*sp)))
                        .collect()
                }
                Axes::Once => sps
                    .first()
                    .map(|sp| vec![(def.id.to_string(), Some(*sp))])
                    .unwrap_or_default(),
            };
            let mut unsupported = None;
            if list.is_empty() {
                list.push((def.id.to_string(), None));
                unsupported = Some(format!(
                    "needs protocol version {:?}, which the profile does not list",
                    def.versions
                ));
            }
            for need in def.needs {
                let has = match *need {
                    "restart" => target.control.is_some(),
                    "sse" => target.profile.sse_url.is_some(),
                    "forbidden" => target.profile.channels.forbidden.is_some(),
                    feature => target.profile.has_feature(feature),
                };
                if !has && unsupported.is_none() {
                    unsupported = Some(format!("the profile does not declare `{need}`"));
                }
            }
            for (id, sp) in list {
                if self.selected(&id) {
                    out.push(Instance {
                        id,
                        def,
                        sp,
                        unsupported: unsupported.clone(),
                    });
                }
            }
        }
        out
    }

    /// Runs the selected cases against `target` and grades them.
    pub async fn run(&self, target: Target) -> Report {
        let started = Instant::now();
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let target = Arc::new(target);
        let instances = self.instances(&target);
        let total = instances.len();
        let run_tag = run_tag();
        let (exclusive, parallel): (Vec<_>, Vec<_>) = instances
            .into_iter()
            .enumerate()
            .partition(|(_, i)| i.def.exclusive);
        let sem = Arc::new(tokio::sync::Semaphore::new(self.parallel));
        let mut set = tokio::task::JoinSet::new();
        let mut results: Vec<(usize, CaseResult)> = Vec::new();
        let mut done = 0;
        let timeout = self.case_timeout.mul_f64(target.time_scale.max(0.01));
        for (n, inst) in parallel {
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let target = target.clone();
            let unique = format!("{run_tag}-{n}");
            set.spawn(async move {
                let r = run_instance(inst, target, unique, timeout).await;
                drop(permit);
                (n, r)
            });
            while let Some(joined) = set.try_join_next() {
                self.collect(joined, &mut results, &mut done, total);
            }
        }
        while let Some(joined) = set.join_next().await {
            self.collect(joined, &mut results, &mut done, total);
        }
        for (n, inst) in exclusive {
            let r = run_instance(inst, target.clone(), format!("{run_tag}-{n}"), timeout).await;
            self.collect(Ok((n, r)), &mut results, &mut done, total);
        }
        results.sort_by_key(|(n, _)| *n);
        Report::new(
            target.url.clone(),
            self.strict,
            started_at_ms,
            started.elapsed(),
            results.into_iter().map(|(_, r)| r).collect(),
        )
    }

    fn collect(
        &self,
        joined: Result<(usize, RawResult), tokio::task::JoinError>,
        results: &mut Vec<(usize, CaseResult)>,
        done: &mut usize,
        total: usize,
    ) {
        let Ok((n, raw)) = joined else { return };
        let graded = self.grade(raw);
        *done += 1;
        if let Some(p) = &self.progress {
            p.finished(&graded, *done, total);
        }
        results.push((n, graded));
    }

    pub(crate) fn grade(&self, raw: RawResult) -> CaseResult {
        let expected = self.expected.matching(&raw.id).map(|e| e.reason.clone());
        let (outcome, message) = match raw.result {
            Ok(()) if expected.is_some() => (
                Outcome::UnexpectedPass,
                Some(
                    "passed, but listed in the expected-failures file: remove the entry"
                        .to_string(),
                ),
            ),
            Ok(()) => (Outcome::Pass, None),
            Err(CaseError::Unsupported(m)) => (Outcome::Unsupported, Some(m)),
            Err(CaseError::Skipped(m)) => (Outcome::Skipped, Some(m)),
            Err(CaseError::Fail(m)) if expected.is_some() => (Outcome::ExpectedFail, Some(m)),
            Err(CaseError::Fail(m)) => {
                let fatal = raw.level == Level::Must || (self.strict && raw.level == Level::Should);
                (if fatal { Outcome::Fail } else { Outcome::Warn }, Some(m))
            }
        };
        CaseResult {
            id: raw.id,
            case: raw.case,
            title: raw.title,
            level: raw.level,
            requirements: raw.requirements,
            subprotocol: raw.sp.map(|s| s.to_string()),
            outcome,
            message,
            expected_failure: expected,
            duration_ms: raw.duration.as_millis() as u64,
            transcript: raw.transcript,
        }
    }
}

pub(crate) struct RawResult {
    pub(crate) id: String,
    pub(crate) case: String,
    pub(crate) title: String,
    pub(crate) level: Level,
    pub(crate) requirements: Vec<String>,
    pub(crate) sp: Option<Subprotocol>,
    pub(crate) result: Result<(), CaseError>,
    pub(crate) duration: Duration,
    pub(crate) transcript: Vec<Entry>,
}

async fn run_instance(
    inst: Instance,
    target: Arc<Target>,
    unique: String,
    timeout: Duration,
) -> RawResult {
    let started = Instant::now();
    let transcript = Transcript::new();
    let result = match (&inst.unsupported, inst.sp) {
        (Some(m), _) => Err(CaseError::Unsupported(m.clone())),
        (None, None) => Err(CaseError::Unsupported("no subprotocol to run in".into())),
        (None, Some(sp)) => {
            let cx = Ctx::new(target, sp, transcript.clone(), unique);
            // A spawned task isolates panics: a case bug fails that case only.
            let task = tokio::spawn((inst.def.run)(cx));
            let abort = task.abort_handle();
            match tokio::time::timeout(timeout, task).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(CaseError::Fail(format!("the case itself panicked: {e}"))),
                Err(_) => {
                    abort.abort();
                    Err(CaseError::Fail(format!("timed out after {timeout:?}")))
                }
            }
        }
    };
    // A failure after a close nobody asked for is most likely caused by
    // it: say so first.
    let result = match result {
        Err(CaseError::Fail(m)) => {
            let closes = transcript.unexpected_closes();
            if closes.is_empty() {
                Err(CaseError::Fail(m))
            } else {
                let said: Vec<String> = closes.iter().map(|c| c.describe()).collect();
                Err(CaseError::Fail(format!(
                    "unrequested close: {}, which the case did not ask for. Then: {m}",
                    said.join("; ")
                )))
            }
        }
        other => other,
    };
    RawResult {
        id: inst.id,
        case: inst.def.id.to_string(),
        title: inst.def.title.to_string(),
        level: inst.def.level,
        requirements: inst
            .def
            .requirements
            .iter()
            .map(|s| s.to_string())
            .collect(),
        sp: inst.sp,
        result,
        duration: started.elapsed(),
        transcript: transcript.entries(),
    }
}

/// A short tag unique to this run, so channel names and publish ids never
/// collide with an earlier run against the same server.
fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let pid = std::process::id() as u128;
    format!("r{:x}", (nanos ^ (pid << 40)) & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(level: Level, result: Result<(), CaseError>) -> RawResult {
        RawResult {
            id: "x.case/v2/json".into(),
            case: "x.case".into(),
            title: String::new(),
            level,
            requirements: vec![],
            sp: None,
            result,
            duration: Duration::ZERO,
            transcript: vec![],
        }
    }

    #[test]
    fn grading_follows_level_strictness_and_expected_failures() {
        let broken = || Err(CaseError::Fail("broken".into()));
        let lax = RunConfig::new();
        assert_eq!(lax.grade(raw(Level::Must, broken())).outcome, Outcome::Fail);
        assert_eq!(
            lax.grade(raw(Level::Should, broken())).outcome,
            Outcome::Warn
        );
        assert_eq!(lax.grade(raw(Level::May, broken())).outcome, Outcome::Warn);
        let mut strict = RunConfig::new();
        strict.strict(true);
        assert_eq!(
            strict.grade(raw(Level::Should, broken())).outcome,
            Outcome::Fail
        );
        assert_eq!(
            strict.grade(raw(Level::May, broken())).outcome,
            Outcome::Warn
        );
        let mut known = RunConfig::new();
        known.expected_failures(ExpectedFailures::parse("x.case/*  # known\n"));
        assert_eq!(
            known.grade(raw(Level::Must, broken())).outcome,
            Outcome::ExpectedFail
        );
        let xpass = known.grade(raw(Level::Must, Ok(())));
        assert_eq!(
            (xpass.outcome, xpass.expected_failure.as_deref()),
            (Outcome::UnexpectedPass, Some("known"))
        );
        assert!(
            xpass.outcome.is_fatal()
                && !Outcome::Warn.is_fatal()
                && !Outcome::ExpectedFail.is_fatal()
        );
        let unsupported = lax.grade(raw(Level::Must, Err(CaseError::Unsupported("no".into()))));
        assert_eq!(unsupported.outcome, Outcome::Unsupported);
    }

    #[test]
    fn selection_matches_instance_and_case_ids() {
        let mut c = RunConfig::new();
        c.only("seq.*").skip("*/v1/*");
        assert!(c.selected("seq.gap-free/v2/json"));
        assert!(!c.selected("seq.gap-free/v1/json"));
        assert!(!c.selected("dedupe.distinct-ids/v2"));
        let mut by_case = RunConfig::new();
        by_case.only("neg.encoding");
        assert!(by_case.selected("neg.encoding/v1/proto"));
    }
}
