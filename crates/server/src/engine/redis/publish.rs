//! Publishing: one call of `publish.lua` numbers, stores, dedupes and
//! streams the message; this node's hub gets it at once, other nodes by
//! pub/sub.

use std::sync::Arc;

use super::config::Keys;
use super::wire::Fields;
use super::{scripts, Inner};
use crate::engine::resume::MAX_SEQ;
use crate::engine::{EngineError, Numbered, Position, PublishRequest, Published};

/// The dedupe key of (user, id): length-prefixed, so that no two pairs
/// share a key whatever characters they hold.
fn dedupe_key(user: &str, id: &str) -> String {
    format!("{}:{user}{id}", user.len())
}

impl Inner {
    /// DEDUP-ACK-ORIGINAL, SEQ-GAPFREE: see `scripts/publish.lua`.
    pub(super) async fn publish(&self, req: PublishRequest) -> Result<Published, EngineError> {
        let keys = Keys::new(&self.prefix, &req.channel);
        let (history_size, history_ttl) = self.policy.for_channel(&req.channel);
        let mut invocation = scripts::PUBLISH.prepare_invoke();
        invocation
            .key(keys.meta())
            .key(keys.history())
            .key(keys.dedupe())
            .key(keys.dedupe_order())
            .arg(Inner::new_epoch())
            .arg(history_size)
            .arg((history_ttl.as_millis() as u64).max(1))
            .arg((self.policy.dedupe_window.as_millis() as u64).max(1))
            .arg(0u64)
            .arg(dedupe_key(&req.user, &req.id))
            .arg(&*req.id)
            .arg(&*req.publisher)
            .arg(&req.payload[..])
            .arg(keys.topic())
            .arg(&*self.node)
            .arg(MAX_SEQ)
            .arg(self.state_ttl_ms(history_ttl));
        let mut f = Fields::new(self.run("publish", &invocation).await?);
        let position = Position {
            epoch: f.text()?,
            seq: f.number()?,
        };
        let duplicate = f.flag()?;
        let ts = f.number()?;
        let evicted = f.number()?;
        if evicted > 0 {
            self.dedupe_evicted_early
                .fetch_add(evicted, std::sync::atomic::Ordering::Relaxed);
        }
        if !duplicate {
            // This node's subscribers get it now; the pub/sub copy is for
            // the other nodes (the listener skips this node's own).
            if let Some(sink) = self.sink() {
                sink.numbered(Arc::new(Numbered {
                    channel: req.channel,
                    epoch: position.epoch.clone(),
                    seq: position.seq,
                    id: req.id,
                    ts,
                    publisher: req.publisher,
                    payload: req.payload,
                }));
            }
        }
        Ok(Published {
            position,
            duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::dedupe_key;

    #[test]
    fn dedupe_keys_do_not_collide() {
        assert_ne!(dedupe_key("ab", "c"), dedupe_key("a", "bc"));
        assert_ne!(dedupe_key("", "1:x"), dedupe_key("x", ""));
    }
}
