//! The faulty engine: wraps any [`Engine`] and breaks one rule of the
//! engine's contract (numbering a duplicate again, replaying out of order)
//! while delegating everything else. Compiled only with feature `faults`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Fault;
use crate::engine::{
    Engine, EngineFuture, EngineSink, Member, Members, Numbered, Position, PublishRequest,
    Published, Recovered,
};

/// `inner` with `fault` injected, when `fault` is an engine fault.
pub(crate) fn wrap(fault: Option<Fault>, inner: Arc<dyn Engine>) -> Arc<dyn Engine> {
    match fault {
        Some(
            f
            @ (Fault::RedeliverDuplicate | Fault::ResumeOutOfOrder | Fault::RaceDuplicateNumbered),
        ) => Arc::new(FaultyEngine {
            inner,
            fault: f,
            recent: Mutex::new(HashMap::new()),
        }),
        _ => inner,
    }
}

struct FaultyEngine {
    inner: Arc<dyn Engine>,
    fault: Fault,
    /// RaceDuplicateNumbered: when each (user, id) was first numbered.
    recent: Mutex<HashMap<DedupeKey, Instant>>,
}

/// (user, publish id).
type DedupeKey = (Arc<str>, Arc<str>);

/// RaceDuplicateNumbered's window: a duplicate this soon after its
/// original is treated as if the original were still being numbered.
const RACE_WINDOW: Duration = Duration::from_millis(200);

impl Engine for FaultyEngine {
    fn attach(&self, sink: Weak<dyn EngineSink>) {
        self.inner.attach(sink)
    }

    fn publish(&self, request: PublishRequest) -> EngineFuture<'_, Published> {
        Box::pin(async move {
            let again = request.clone();
            let key = (request.user.clone(), request.id.clone());
            let published = self.inner.publish(request).await?;
            let racing = self.fault == Fault::RaceDuplicateNumbered && {
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                recent.retain(|_, t| t.elapsed() < RACE_WINDOW);
                if published.duplicate {
                    recent.contains_key(&key)
                } else {
                    recent.insert(key, Instant::now());
                    false
                }
            };
            if (self.fault == Fault::RedeliverDuplicate || racing) && published.duplicate {
                // Breaks DEDUP-DELIVER-ONCE: the duplicate is numbered again
                // (a dedupe key of its own makes the inner engine accept it).
                let user = format!("{}\u{0}again-{}", again.user, fastrand::u64(..));
                let renumbered = PublishRequest {
                    user: user.into(),
                    ..again
                };
                return self.inner.publish(renumbered).await;
            }
            Ok(published)
        })
    }

    fn recover<'a>(
        &'a self,
        channel: &'a str,
        resume: Option<&'a Position>,
    ) -> EngineFuture<'a, Recovered> {
        Box::pin(async move {
            let mut recovered = self.inner.recover(channel, resume).await?;
            if self.fault == Fault::ResumeOutOfOrder {
                // Breaks RESUME-EXACT-RANGE: newest first.
                if let Some(Ok(replay)) = &mut recovered.replay {
                    replay.reverse();
                }
            }
            Ok(recovered)
        })
    }

    fn range<'a>(
        &'a self,
        channel: &'a str,
        epoch: &'a str,
        from: u64,
        to: u64,
    ) -> EngineFuture<'a, Vec<Arc<Numbered>>> {
        self.inner.range(channel, epoch, from, to)
    }

    fn watch<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, ()> {
        self.inner.watch(channel)
    }

    fn unwatch(&self, channel: &str) {
        self.inner.unwatch(channel)
    }

    fn join<'a>(&'a self, channel: &'a str, member: Member) -> EngineFuture<'a, ()> {
        self.inner.join(channel, member)
    }

    fn leave<'a>(&'a self, channel: &'a str, session_id: &'a str) -> EngineFuture<'a, ()> {
        self.inner.leave(channel, session_id)
    }

    fn members<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, Members> {
        self.inner.members(channel)
    }

    fn ephemeral<'a>(
        &'a self,
        channel: &'a str,
        publisher: &'a str,
        payload: Bytes,
    ) -> EngineFuture<'a, ()> {
        self.inner.ephemeral(channel, publisher, payload)
    }

    fn channel_count(&self) -> usize {
        self.inner.channel_count()
    }

    fn dedupe_stats(&self) -> crate::engine::DedupeStats {
        self.inner.dedupe_stats()
    }

    fn sweep(&self) {
        self.inner.sweep()
    }

    fn stream_is_complete(&self) -> bool {
        self.inner.stream_is_complete()
    }
}
