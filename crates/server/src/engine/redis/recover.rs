//! Resume and range reads from the history stream. The decision (replay,
//! or which reason) is the one every engine makes (`engine::resume`); the
//! script reads position and history in one atomic step.

use std::sync::Arc;
use std::time::Duration;

use courier_protocol::v2::RecoveryReason;

use super::config::Keys;
use super::wire::Fields;
use super::{scripts, Inner};
use crate::engine::resume::resume_range;
use crate::engine::{EngineError, Numbered, Position, Recovered};

impl Inner {
    /// RESUME-ALL-OR-NOTHING, RESUME-REASON: see `scripts/recover.lua`.
    pub(super) async fn recover(
        &self,
        channel: &str,
        resume: Option<&Position>,
    ) -> Result<Recovered, EngineError> {
        let keys = Keys::new(&self.prefix, channel);
        let (history_size, history_ttl) = self.policy.for_channel(channel);
        // The history is read only when a replay is possible at all.
        let read = resume.filter(|_| history_size > 0);
        let mut invocation = scripts::RECOVER.prepare_invoke();
        invocation
            .key(keys.meta())
            .key(keys.history())
            .arg(Inner::new_epoch())
            .arg(self.state_ttl_ms(history_ttl))
            .arg(read.map_or("", |r| &*r.epoch))
            .arg(read.map_or(0, |r| r.seq));
        let mut f = Fields::new(self.run("recover", &invocation).await?);
        let position = Position {
            epoch: f.text()?,
            seq: f.number()?,
        };
        let now = f.number()?;
        let entries = entries(channel, &position.epoch, &mut f)?;
        let replay = resume.map(|r| replay(r, &position, history_size, history_ttl, now, entries));
        Ok(Recovered { position, replay })
    }

    /// The stored messages of `epoch` numbered `from..=to` (hole filling).
    pub(super) async fn range(
        &self,
        channel: &str,
        epoch: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Arc<Numbered>>, EngineError> {
        if from > to {
            return Ok(Vec::new());
        }
        let keys = Keys::new(&self.prefix, channel);
        let mut invocation = scripts::RANGE.prepare_invoke();
        invocation
            .key(keys.meta())
            .key(keys.history())
            .arg(epoch)
            .arg(from)
            .arg(to);
        let mut f = Fields::new(self.run("range", &invocation).await?);
        entries(channel, &epoch.into(), &mut f)
    }
}

/// The replay after `resume`, from the history `entries` read after it
/// (those older than the TTL at Redis time `now` no longer count).
fn replay(
    resume: &Position,
    position: &Position,
    history_size: usize,
    history_ttl: Duration,
    now: u64,
    entries: Vec<Arc<Numbered>>,
) -> Result<Vec<Arc<Numbered>>, RecoveryReason> {
    let ttl = history_ttl.as_millis() as u64;
    let kept: Vec<Arc<Numbered>> = entries
        .into_iter()
        .filter(|m| now.saturating_sub(m.ts) < ttl)
        .collect();
    // Held only if every message from the first kept one up to the
    // position is there (trimming removes the oldest first).
    let first_kept = match (kept.first(), kept.last()) {
        (Some(first), Some(last))
            if last.seq == position.seq && kept.len() as u64 == last.seq - first.seq + 1 =>
        {
            Some(first.seq)
        }
        _ => None,
    };
    match resume_range(resume, position, history_size, first_kept)? {
        Some(from) => Ok(kept.into_iter().filter(|m| m.seq >= from).collect()),
        None => Ok(Vec::new()),
    }
}

/// History entries (seq, id, ts, publisher, payload) up to the record's end.
fn entries(
    channel: &str,
    epoch: &Arc<str>,
    f: &mut Fields,
) -> Result<Vec<Arc<Numbered>>, EngineError> {
    let channel: Arc<str> = channel.into();
    let mut out = Vec::new();
    while !f.is_empty() {
        out.push(Arc::new(Numbered {
            channel: channel.clone(),
            epoch: epoch.clone(),
            seq: f.number()?,
            id: f.text()?,
            ts: f.number()?,
            publisher: f.text()?,
            payload: f.bytes()?,
        }));
    }
    Ok(out)
}
