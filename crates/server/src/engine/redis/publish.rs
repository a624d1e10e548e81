//! Publishing: one call of `publish.lua` numbers, stores, dedupes and
//! streams the message; every node's hub, this one's included, gets it by
//! pub/sub (see `listener`: one ordered stream per node).

use super::config::Keys;
use super::wire::Fields;
use super::{scripts, Inner};
use crate::engine::resume::MAX_SEQ;
use crate::engine::{EngineError, Position, PublishRequest, Published};

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
        let _ts = f.number()?;
        let evicted = f.number()?;
        if evicted > 0 {
            self.dedupe_evicted_early
                .fetch_add(evicted, std::sync::atomic::Ordering::Relaxed);
        }
        // SEQ-GAPFREE: no delivery to this node's hub from here. Replies
        // of concurrent publishes reach their tasks in any order, and
        // local copies handed over here interleaved with other nodes'
        // copies from pub/sub; under load a message could trail its
        // successor by more than the hub's reorder wait, and by then be
        // trimmed from a short history, so the hub closed the channel's
        // sessions with 4201. The pub/sub copy comes in numbering order.
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
