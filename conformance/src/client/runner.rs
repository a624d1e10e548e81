//! Runs the client cases: expands each along its axes over the target's
//! subprotocols, applies the same selection, parallelism, timeouts and
//! grading as a server run ([`RunConfig`]), and returns the same [`Report`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use courier_protocol::Subprotocol;

use super::cases::registry;
use super::{ClientCaseDef, ClientCtx, ClientTarget};
use crate::case::{Axes, CaseError};
use crate::report::Report;
use crate::runner::{RawResult, RunConfig};
use crate::transcript::Transcript;

struct Instance {
    id: String,
    def: &'static ClientCaseDef,
    sp: Option<Subprotocol>,
}

fn instances(config: &RunConfig, target: &ClientTarget) -> Vec<Instance> {
    let mut out = Vec::new();
    for def in registry() {
        let sps: Vec<Subprotocol> = target
            .subprotocols
            .iter()
            .copied()
            .filter(|sp| def.versions.is_empty() || def.versions.contains(&sp.version.number()))
            .collect();
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
        if list.is_empty() {
            list.push((def.id.to_string(), None));
        }
        for (id, sp) in list {
            if config.selected(&id) {
                out.push(Instance { id, def, sp });
            }
        }
    }
    out
}

impl RunConfig {
    /// The client case instance IDs a run against `target` would execute.
    pub fn selected_client_ids(&self, target: &ClientTarget) -> Vec<String> {
        instances(self, target).into_iter().map(|i| i.id).collect()
    }

    /// Runs the selected client cases against the driver of `target`.
    pub async fn run_client(&self, target: ClientTarget) -> Report {
        let started = Instant::now();
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let target = Arc::new(target);
        let list = instances(self, &target);
        let total = list.len();
        let timeout = self.case_timeout.mul_f64(target.time_scale.max(0.01));
        let sem = Arc::new(tokio::sync::Semaphore::new(self.parallel));
        let mut set = tokio::task::JoinSet::new();
        for (n, inst) in list.into_iter().enumerate() {
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let target = target.clone();
            set.spawn(async move {
                let r = run_instance(inst, target, timeout).await;
                drop(permit);
                (n, r)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((n, raw)) = joined else { continue };
            let graded = self.grade(raw);
            if let Some(p) = &self.progress {
                p.finished(&graded, results.len() + 1, total);
            }
            results.push((n, graded));
        }
        results.sort_by_key(|(n, _)| *n);
        Report::new(
            target.describe(),
            self.strict,
            started_at_ms,
            started.elapsed(),
            results.into_iter().map(|(_, r)| r).collect(),
        )
    }
}

async fn run_instance(inst: Instance, target: Arc<ClientTarget>, timeout: Duration) -> RawResult {
    let started = Instant::now();
    let transcript = Transcript::new();
    let result = match inst.sp {
        None => Err(CaseError::Unsupported(format!(
            "needs protocol version {:?}, which the run does not include",
            inst.def.versions
        ))),
        Some(sp) => {
            let cx = ClientCtx::new(target, sp, inst.id.clone(), transcript.clone());
            // A spawned task isolates panics; dropping it kills the driver.
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
