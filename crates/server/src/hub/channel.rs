//! One channel's local subscribers and its delivery state: the position
//! delivered so far, messages parked behind a hole, subscribers being
//! attached (their frames held until the ack) and presence replies being
//! answered (their events held until the reply).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::{close, v2};

use super::Outbox;
use crate::engine::{Engine, EngineError, Numbered, Position};
use crate::features::{Feature, EPHEMERAL, PRESENCE};
use crate::frame::{SharedFrame, WIRE_FORMS};
use crate::metrics::Histogram;

/// A stream that brought nothing for this long has nothing in flight
/// either (position check, [`Guard::note_top`]).
const STREAM_QUIET: Duration = Duration::from_secs(1);

/// The features whose events are broadcast to a channel's subscribers.
const RECEIVED: [Feature; 2] = [PRESENCE, EPHEMERAL];

/// The key of `outbox` in [`State::index`].
fn key(outbox: &Arc<Outbox>) -> usize {
    Arc::as_ptr(outbox) as usize
}

/// A numbered message with its shared frame.
pub(super) type Held = (Arc<Numbered>, Arc<SharedFrame>);

pub(super) struct Channel {
    pub name: Arc<str>,
    /// Bit [`crate::frame::Wire::slot`] set when a subscriber uses that
    /// form: frames are encoded for these before the lock is taken.
    wires: AtomicU8,
    /// Bit [`Feature::bit`] set when a subscriber receives that feature's
    /// events (presence, ephemeral): without one, no event is built.
    receivers: AtomicU8,
    /// Resolved once the engine streams this channel to the node.
    watched: tokio::sync::OnceCell<()>,
    /// The hub's delivery-latency histogram.
    delivery: Arc<Histogram>,
    state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    /// Set when the channel left the hub's map; holders look it up again.
    pub dead: bool,
    /// In attach order, swapped on removal: delivery walks a dense array.
    subs: Vec<Sub>,
    /// Each subscriber's position in `subs`, by its outbox's address: a
    /// subscribe or a leave finds its entry without a walk over every
    /// subscriber (10,000 subscribes to one channel would otherwise cost
    /// 50 million comparisons).
    index: HashMap<usize, usize>,
    counts: [u32; WIRE_FORMS],
    /// Subscribers that receive presence events and ephemerals (in the
    /// order of [`RECEIVED`]), so that an event nobody receives costs no walk.
    receiving: [u32; RECEIVED.len()],
    /// The epoch and seq of the last message delivered; unknown until the
    /// first subscriber's ack gives the position.
    last: Option<(Arc<str>, u64)>,
    /// Messages that arrived ahead of a hole, by seq.
    parked: BTreeMap<u64, Held>,
    /// The highest seq of the current epoch the engine reported (position
    /// check): above `last`, the stream lost the channel's newest messages.
    top: u64,
    /// A fill task is running for the hole before `parked`.
    filling: bool,
    /// When the engine's stream last brought a message (not one read back
    /// by a fill).
    streamed: Option<Instant>,
    /// The engine's position at the previous position check (see
    /// [`Guard::note_top`]).
    checked: Option<(Arc<str>, u64)>,
}

struct Sub {
    outbox: Arc<Outbox>,
    /// Messages of the current epoch up to this seq are not for this
    /// subscriber (they were numbered before its ack).
    after: u64,
    /// Being (re)subscribed: frames wait here for the ack.
    held: Option<Vec<Held>>,
    /// A presence query is being answered: events wait for the reply,
    /// with the membership version each one produced.
    presence_hold: Option<Vec<(u64, Arc<SharedFrame>)>>,
}

impl Channel {
    pub fn new(name: Arc<str>, delivery: Arc<Histogram>) -> Self {
        Channel {
            name,
            wires: AtomicU8::new(0),
            receivers: AtomicU8::new(0),
            watched: tokio::sync::OnceCell::new(),
            delivery,
            state: Mutex::new(State::default()),
        }
    }

    pub fn lock(&self) -> Guard<'_> {
        Guard {
            ch: self,
            st: self.state.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    pub fn wires(&self) -> u8 {
        self.wires.load(Ordering::Relaxed)
    }

    /// Whether any subscriber receives `feature`'s events.
    pub fn has_receivers(&self, feature: Feature) -> bool {
        self.receivers.load(Ordering::Relaxed) & (1 << feature.bit) != 0
    }

    /// Resolves once the engine streams this channel here (one `watch` for
    /// all concurrent first subscribers).
    pub async fn watched(&self, engine: &dyn Engine) -> Result<(), EngineError> {
        self.watched
            .get_or_try_init(|| engine.watch(&self.name))
            .await
            .map(|_| ())
    }
}

/// The locked state of a channel.
pub(super) struct Guard<'a> {
    ch: &'a Channel,
    st: MutexGuard<'a, State>,
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.st
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.st
    }
}

impl State {
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    fn find(&self, outbox: &Arc<Outbox>) -> Option<usize> {
        self.index.get(&key(outbox)).copied()
    }
}

impl Guard<'_> {
    fn count(&mut self, outbox: &Outbox, delta: i32) {
        let slot = outbox.wire().slot();
        self.st.counts[slot] = self.st.counts[slot].saturating_add_signed(delta);
        let mask = (0..WIRE_FORMS)
            .filter(|i| self.st.counts[*i] > 0)
            .fold(0u8, |m, i| m | (1 << i));
        self.ch.wires.store(mask, Ordering::Relaxed);
        let mut mask = 0u8;
        for (i, feature) in RECEIVED.iter().enumerate() {
            if outbox.receives(*feature) {
                self.st.receiving[i] = self.st.receiving[i].saturating_add_signed(delta);
            }
            if self.st.receiving[i] > 0 {
                mask |= 1 << feature.bit;
            }
        }
        self.ch.receivers.store(mask, Ordering::Relaxed);
    }

    /// Registers `outbox` as pending (frames held until [`Guard::activate`]);
    /// `Some(true)` for a session new to the channel, `None` when the
    /// channel is being removed.
    pub fn attach(&mut self, outbox: &Arc<Outbox>) -> Option<bool> {
        if self.st.dead {
            return None;
        }
        if let Some(i) = self.st.find(outbox) {
            // ORDER-IDEMPOTENT-SUBSCRIBE: one subscription, a fresh ack.
            self.st.subs[i].held.get_or_insert_with(Vec::new);
            return Some(false);
        }
        let at = self.st.subs.len();
        self.st.index.insert(key(outbox), at);
        self.st.subs.push(Sub {
            outbox: outbox.clone(),
            after: 0,
            held: Some(Vec::new()),
            presence_hold: None,
        });
        self.count(outbox, 1);
        Some(true)
    }

    /// Removes `outbox`; false when it was not subscribed.
    pub fn remove(&mut self, outbox: &Arc<Outbox>) -> bool {
        let Some(i) = self.st.index.remove(&key(outbox)) else {
            return false;
        };
        self.st.subs.swap_remove(i);
        if let Some(moved) = self.st.subs.get(i).map(|s| key(&s.outbox)) {
            self.st.index.insert(moved, i);
        }
        self.count(outbox, -1);
        true
    }

    /// A failed re-subscribe: the existing subscription continues with
    /// what was held meanwhile.
    pub fn resume_live(&mut self, outbox: &Arc<Outbox>) {
        let Some(i) = self.st.find(outbox) else {
            return;
        };
        let sub = &mut self.st.subs[i];
        for (m, frame) in sub.held.take().unwrap_or_default() {
            if m.seq > sub.after {
                push(&sub.outbox, &frame);
            }
        }
    }

    /// ORDER-ACK-BEFORE-DATA, RESUME-EXACT-RANGE, SEQ-ACK-CONTIGUOUS:
    /// queues the ack, the replay, then what arrived after `position`
    /// while the subscriber was pending; later messages follow live.
    pub fn activate(
        &mut self,
        outbox: &Arc<Outbox>,
        ack: v2::Envelope,
        replay: Vec<(u64, Bytes)>,
        position: &Position,
        on_hole: impl FnMut(),
    ) {
        let Some(i) = self.st.find(outbox) else {
            return; // the session left meanwhile
        };
        if self.st.last.is_none() {
            self.st.last = Some((position.epoch.clone(), position.seq));
        }
        let same_epoch = self
            .st
            .last
            .as_ref()
            .is_some_and(|(e, _)| *e == position.epoch);
        let sub = &mut self.st.subs[i];
        sub.outbox.send(&ack);
        for (_, bytes) in replay {
            sub.outbox.push(bytes);
        }
        sub.after = if same_epoch { position.seq } else { 0 };
        for (m, frame) in sub.held.take().unwrap_or_default() {
            if m.epoch != position.epoch || m.seq > position.seq {
                push(&sub.outbox, &frame);
            }
        }
        self.drain(on_hole);
    }

    /// Counts a message that came by the engine's stream (before
    /// [`Guard::accept`]; messages read back by a fill are not counted).
    pub fn streamed(&mut self) {
        self.st.streamed = Some(Instant::now());
    }

    /// Takes a numbered message from the engine's stream: delivers it in
    /// order, drops one already delivered, parks one ahead of a hole (and
    /// calls `on_hole` when no fill is running yet).
    pub fn accept(&mut self, m: Arc<Numbered>, frame: Arc<SharedFrame>, on_hole: &mut dyn FnMut()) {
        match &self.st.last {
            None => {
                // The position is known only from the first ack.
                self.st.parked.insert(m.seq, (m, frame));
                return;
            }
            Some((epoch, _)) if *epoch != m.epoch => self.new_epoch(&m.epoch),
            Some(_) => {}
        }
        let last = self.st.last.as_ref().map_or(0, |(_, s)| *s);
        if m.seq <= last {
            return;
        }
        if m.seq > last + 1 {
            self.st.parked.insert(m.seq, (m, frame));
            self.drain(on_hole);
            return;
        }
        self.deliver(&m, &frame);
        self.drain(on_hole);
    }

    /// SEQ-EPOCH-STABLE: the engine lost the channel's state or ran out of
    /// numbers; the new epoch is delivered from its seq 1.
    fn new_epoch(&mut self, epoch: &Arc<str>) {
        self.st.parked.clear();
        self.st.last = Some((epoch.clone(), 0));
        self.st.top = 0;
        for sub in &mut self.st.subs {
            sub.after = 0;
        }
    }

    /// Delivers parked messages that became next in line; reports a
    /// remaining hole once.
    fn drain(&mut self, mut on_hole: impl FnMut()) {
        loop {
            let last = self.st.last.as_ref().map_or(0, |(_, s)| *s);
            let Some(entry) = self.st.parked.first_entry() else {
                return;
            };
            if *entry.key() <= last {
                entry.remove();
            } else if *entry.key() == last + 1 {
                let (m, frame) = entry.remove();
                self.deliver(&m, &frame);
            } else {
                if !self.st.filling {
                    self.st.filling = true;
                    on_hole();
                }
                return;
            }
        }
    }

    fn deliver(&mut self, m: &Arc<Numbered>, frame: &Arc<SharedFrame>) {
        if let Some((_, seq)) = &mut self.st.last {
            *seq = m.seq;
        }
        let now = Instant::now();
        for sub in &mut self.st.subs {
            match &mut sub.held {
                Some(held) if held.len() >= sub.outbox.capacity() => {
                    // LIMIT-SLOW-CONSUMER: the subscriber cannot take the
                    // backlog of its own subscribe.
                    held.clear();
                    sub.outbox.overflow();
                }
                Some(held) => held.push((m.clone(), frame.clone())),
                None if m.seq > sub.after => push_at(&sub.outbox, frame, now),
                None => {}
            }
        }
        let age = crate::now_ms().saturating_sub(m.ts);
        self.ch.delivery.observe(Duration::from_millis(age));
    }

    /// The hole before the parked messages (or before the engine's
    /// reported top), as (epoch, from, to); `None` (and the fill task ends)
    /// when there is none any more.
    pub fn hole(&mut self) -> Option<(Arc<str>, u64, u64)> {
        self.drain(|| {});
        let first = self.st.parked.keys().next().copied();
        let top = self.st.top;
        match (first, &self.st.last) {
            (Some(first), Some((epoch, last))) => Some((epoch.clone(), last + 1, first - 1)),
            (None, Some((epoch, last))) if top > *last => Some((epoch.clone(), last + 1, top)),
            _ => {
                self.st.filling = false;
                None
            }
        }
    }

    /// Position check: the engine's current position of the channel. A
    /// position past the last delivered message means the stream lost the
    /// newest ones, which no later message would reveal; one in another
    /// epoch with messages means it lost the start of a new epoch.
    ///
    /// While the stream delivers, the position acted on is the one of the
    /// previous check, a check interval ago: what the engine had numbered
    /// then and the stream has not delivered since is lost. The current
    /// position may be ahead only because messages are in flight (a
    /// saturated channel's stream trails its numbering by many messages),
    /// and filling those from a short history would find them trimmed and
    /// close the channel's sessions (4201) for messages still on their way.
    /// When the stream brought nothing for [`STREAM_QUIET`], nothing is in
    /// flight either: the current position is acted on at once.
    pub fn note_top(&mut self, position: &Position, on_hole: impl FnOnce()) {
        if self.st.last.is_none() {
            return;
        }
        let previous = self
            .st
            .checked
            .replace((position.epoch.clone(), position.seq));
        let quiet = self
            .st
            .streamed
            .is_none_or(|at| at.elapsed() >= STREAM_QUIET);
        let (top_epoch, top) = match previous {
            _ if quiet => (position.epoch.clone(), position.seq),
            Some(previous) => previous,
            None => return,
        };
        let Some((epoch, last)) = &self.st.last else {
            return;
        };
        let last_seq = *last;
        if *epoch != top_epoch {
            // The stream lost the first messages of a new epoch (a shared
            // engine that lost its state while this node was reconnecting),
            // unless it delivered that epoch's messages since: switch to it
            // and fill from its seq 1.
            if top == 0 || position.epoch != top_epoch {
                return;
            }
            self.new_epoch(&top_epoch);
        } else if top <= last_seq || top <= self.st.top {
            return;
        }
        self.st.top = top;
        if !self.st.filling {
            self.st.filling = true;
            on_hole();
        }
    }

    /// The epoch and seq last delivered, if known.
    pub fn last(&self) -> Option<(Arc<str>, u64)> {
        self.st.last.clone()
    }

    /// Gives up on the hole: every subscriber is closed with 4201 (it
    /// reconnects and resumes, learning from the recovery outcome what was
    /// lost) and delivery continues after the hole for later subscribers.
    pub fn skip_hole(&mut self, reason: &str) {
        tracing::warn!(channel = %self.ch.name, reason, "closing the channel's sessions");
        for sub in &self.st.subs {
            sub.outbox.close(close::RECONNECT, reason, None);
        }
        let next = self.st.parked.keys().next().map(|first| first - 1);
        let top = self.st.top;
        if let Some((_, last)) = &mut self.st.last {
            *last = next.unwrap_or(top).max(*last);
        }
        self.drain(|| {});
    }

    /// Delivers a presence event or an ephemeral to the subscribers that
    /// enabled `feature`, except session `except`; a presence event with
    /// its `version` waits for a presence reply being answered.
    pub fn broadcast(
        &mut self,
        frame: &Arc<SharedFrame>,
        feature: Feature,
        except: &str,
        version: Option<u64>,
    ) {
        if !self.ch.has_receivers(feature) {
            return;
        }
        for sub in &mut self.st.subs {
            if sub.held.is_some()
                || !sub.outbox.receives(feature)
                || **sub.outbox.session_id() == *except
            {
                continue;
            }
            match (&mut sub.presence_hold, version) {
                (Some(hold), Some(v)) => hold.push((v, frame.clone())),
                _ => push(&sub.outbox, frame),
            }
        }
    }

    /// Starts holding presence events for `outbox` while its query runs.
    pub fn hold_presence(&mut self, outbox: &Arc<Outbox>) {
        if let Some(i) = self.st.find(outbox) {
            self.st.subs[i].presence_hold = Some(Vec::new());
        }
    }

    /// Queues the presence `reply`, then the held events it does not
    /// reflect (membership version above `version`; all when there is no reply).
    pub fn release_presence(
        &mut self,
        outbox: &Arc<Outbox>,
        reply: Option<&v2::Envelope>,
        version: u64,
    ) {
        if let Some(reply) = reply {
            outbox.send(reply);
        }
        let Some(i) = self.st.find(outbox) else {
            return;
        };
        let sub = &mut self.st.subs[i];
        for (v, frame) in sub.presence_hold.take().unwrap_or_default() {
            if reply.is_none() || v > version {
                push(&sub.outbox, &frame);
            }
        }
    }
}

fn push(outbox: &Outbox, frame: &SharedFrame) {
    push_at(outbox, frame, Instant::now())
}

fn push_at(outbox: &Outbox, frame: &SharedFrame, now: Instant) {
    match frame.bytes(outbox.wire()) {
        Ok(bytes) => {
            outbox.push_at(bytes, now);
        }
        // Shared frames are message, presence_event and ephemeral, which
        // every version has.
        Err(e) => tracing::warn!(error = %e, "dropping a shared frame that cannot be encoded"),
    }
}

#[cfg(test)]
mod tests {

    use courier_protocol::{Encoding, Subprotocol, Version};

    use super::*;
    use crate::features::Features;
    use crate::frame::Wire;

    fn outbox(id: &str, features: Features) -> Arc<Outbox> {
        let wire = Wire::WebSocket(Subprotocol::new(Version::V2, Encoding::MsgPack));
        Arc::new(Outbox::new(id.into(), wire, features, 64))
    }

    fn message(seq: u64) -> (Arc<Numbered>, Arc<SharedFrame>) {
        let m = Arc::new(Numbered {
            channel: "c".into(),
            epoch: "e".into(),
            seq,
            id: format!("p{seq}").into(),
            ts: 0,
            publisher: "s".into(),
            payload: Bytes::from_static(&[0xc0]),
        });
        let frame = super::super::message_frame(&m);
        (m, frame)
    }

    /// Stands for the subscribe_ack (any envelope the wire encodes).
    fn ack() -> v2::Envelope {
        v2::Envelope {
            body: Some(v2::envelope::Body::Pong(v2::Pong { ts: 0 })),
        }
    }

    fn queued(o: &Outbox) -> usize {
        let mut buf = crate::hub::frames::Frames::new();
        o.take(&mut buf);
        buf.len()
    }

    /// Removing a subscriber from the middle moves the last one into its
    /// place: every other subscriber is still found (a second subscribe
    /// is idempotent, a remove succeeds once) and still receives.
    #[test]
    fn the_index_follows_removals_from_the_middle() {
        let ch = Channel::new("c".into(), Arc::default());
        let subs: Vec<_> = (0..5)
            .map(|i| outbox(&format!("s{i}"), Features::default()))
            .collect();
        let position = Position {
            epoch: "e".into(),
            seq: 0,
        };
        let mut st = ch.lock();
        for o in &subs {
            assert_eq!(st.attach(o), Some(true));
            st.activate(o, ack(), Vec::new(), &position, || {});
        }
        assert!(st.remove(&subs[1]));
        assert!(!st.remove(&subs[1]));
        for (i, o) in subs.iter().enumerate() {
            assert_eq!(queued(o), 1, "the ack of s{i}");
            if i != 1 {
                assert_eq!(st.attach(o), Some(false), "s{i} is still found");
                st.activate(o, ack(), Vec::new(), &position, || {});
            }
        }
        let (m, frame) = message(1);
        st.accept(m, frame, &mut || {});
        for (i, o) in subs.iter().enumerate() {
            let expected = if i == 1 { 0 } else { 2 }; // a fresh ack, the message
            assert_eq!(queued(o), expected, "s{i}");
        }
        for o in subs.iter().filter(|o| !Arc::ptr_eq(o, &subs[1])) {
            assert!(st.remove(o));
        }
        assert!(st.is_empty());
    }

    /// Presence events are built and walked only while a subscriber
    /// receives them.
    #[test]
    fn receivers_follow_the_features_of_subscribers() {
        let ch = Channel::new("c".into(), Arc::default());
        let plain = outbox("a", Features::default());
        let watcher = outbox("b", Features::default().with(PRESENCE));
        let mut st = ch.lock();
        st.attach(&plain);
        assert!(!ch.has_receivers(PRESENCE));
        st.attach(&watcher);
        assert!(ch.has_receivers(PRESENCE));
        assert!(!ch.has_receivers(EPHEMERAL));
        st.remove(&watcher);
        assert!(!ch.has_receivers(PRESENCE));
    }
}
