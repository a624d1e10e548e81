//! The history checker: every publish ack, subscribe ack and delivery
//! across connections, disconnects and resumes is recorded, and invariants
//! are checked over the whole history (per-channel numbering unique and
//! gap-free, each subscription stream contiguous, nothing acked lost, no id
//! delivered twice). It drives a randomized schedule of publishes, retries
//! of old ids, dropped links and resumes from a seed, and on failure shrinks
//! the schedule to a minimal failing one, reported with the seed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::RecoveryStatus;

use crate::case::{fail, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::cases::util::{position, publish_reply, recovery, send_publish, subscribe};
use crate::cases::BASE;
use crate::conn::{Conn, Event};

pub(crate) const CASES: &[CaseDef] = &[CaseDef {
    id: "history.random-schedule",
    title: "Randomized publishes, duplicate retries, dropped links and resumes keep every history invariant",
    requirements: &["SEQ-GAPFREE", "SEQ-MONOTONIC", "DEDUP-ACK-ORIGINAL", "DEDUP-DELIVER-ONCE", "RESUME-EXACT-RANGE", "ORDER-PUBLISH-ACK"],
    axes: Axes::Once,
    run: |cx| Box::pin(random_schedule(cx)),
    ..BASE
}];

/// Connections and channels a schedule uses.
const CONNS: usize = 3;
const CHANNELS: usize = 2;

/// One step of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Connection `conn` publishes a new id to `channel`.
    Publish {
        /// Connection index.
        conn: usize,
        /// Channel index.
        channel: usize,
    },
    /// Connection `conn` publishes again the id of the `back`-th latest publish.
    Retry {
        /// Connection index.
        conn: usize,
        /// How far back.
        back: usize,
    },
    /// Connection `conn` loses its link without a close frame; its next op
    /// reconnects and resumes every channel from its last delivered position.
    Drop {
        /// Connection index.
        conn: usize,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Op::Publish { conn, channel } => write!(f, "publish(c{conn}, ch{channel})"),
            Op::Retry { conn, back } => write!(f, "retry(c{conn}, back {back})"),
            Op::Drop { conn } => write!(f, "drop(c{conn})"),
        }
    }
}

/// SplitMix64: a tiny, well-distributed PRNG for reproducible schedules.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The schedule a seed produces.
pub fn schedule(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| {
            let conn = rng.below(CONNS);
            match rng.below(100) {
                0..=69 => Op::Publish {
                    conn,
                    channel: rng.below(CHANNELS),
                },
                70..=84 => Op::Retry {
                    conn,
                    back: rng.below(8),
                },
                _ => Op::Drop { conn },
            }
        })
        .collect()
}

/// What happened, in order.
#[derive(Debug, Clone)]
enum Ev {
    Ack {
        channel: usize,
        id: String,
        epoch: String,
        seq: u64,
        duplicate: bool,
    },
    Sub {
        conn: usize,
        stream: usize,
        channel: usize,
        epoch: String,
        from: u64,
        failed: bool,
    },
    Deliver {
        conn: usize,
        stream: usize,
        channel: usize,
        epoch: String,
        seq: u64,
        id: String,
    },
}

/// A recorded history, checkable on its own. The suite's schedule records
/// one; other harnesses (the multi-node fault tests of `courier-cli`)
/// record theirs with the `record_*` methods, identifying channels,
/// connections and subscription streams by small numbers of their choice.
#[derive(Debug, Default, Clone)]
pub struct History {
    events: Vec<Ev>,
}

/// How many deliveries a history lacks and has twice (see [`History::tally`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Acknowledged messages a subscriber never received: for each
    /// connection and channel, the acked seqs after its first subscription
    /// position that it was not delivered.
    pub lost: usize,
    /// Deliveries of a seq or an id the same connection had already
    /// received on the channel.
    pub duplicated: usize,
}

impl History {
    /// Records a publish acknowledgement: the message `id` on `channel`
    /// was numbered `(epoch, seq)`, or (`duplicate`) had been before.
    pub fn record_ack(&mut self, channel: usize, id: &str, epoch: &str, seq: u64, duplicate: bool) {
        self.events.push(Ev::Ack {
            channel,
            id: id.to_string(),
            epoch: epoch.to_string(),
            seq,
            duplicate,
        });
    }

    /// Records the start of a subscription stream (a `subscribe_ack`):
    /// connection `conn` receives `channel` on `stream` (a number unique
    /// in the history) from just after `(epoch, from)`; `failed` when it
    /// resumed and the server reported the recovery failed (loss is then
    /// known, and the coverage check restarts at `from`).
    pub fn record_subscribed(
        &mut self,
        conn: usize,
        stream: usize,
        channel: usize,
        epoch: &str,
        from: u64,
        failed: bool,
    ) {
        self.events.push(Ev::Sub {
            conn,
            stream,
            channel,
            epoch: epoch.to_string(),
            from,
            failed,
        });
    }

    /// Records a delivery of message `id` at `(epoch, seq)` on `stream`.
    pub fn record_delivery(
        &mut self,
        conn: usize,
        stream: usize,
        channel: usize,
        epoch: &str,
        seq: u64,
        id: &str,
    ) {
        self.events.push(Ev::Deliver {
            conn,
            stream,
            channel,
            epoch: epoch.to_string(),
            seq,
            id: id.to_string(),
        });
    }

    /// Counts lost and duplicated deliveries (both also appear among
    /// [`History::violations`]).
    pub fn tally(&self) -> Tally {
        self.analyse().1
    }

    /// Checks every invariant; returns the violations found.
    pub fn violations(&self) -> Vec<String> {
        self.analyse().0
    }

    fn analyse(&self) -> (Vec<String>, Tally) {
        let mut tally = Tally::default();
        let mut v = Vec::new();
        // Numbering: one id per position, one position per id.
        let mut by_pos: HashMap<(usize, String, u64), String> = HashMap::new();
        let mut by_id: HashMap<(usize, String), (String, u64)> = HashMap::new();
        for e in &self.events {
            if let Ev::Ack {
                channel,
                id,
                epoch,
                seq,
                duplicate,
            } = e
            {
                if let Some(prev) = by_id.get(&(*channel, id.clone())) {
                    if prev != &(epoch.clone(), *seq) {
                        v.push(format!("id {id} on ch{channel} acked at {}:{} and again at {epoch}:{seq} (duplicate: {duplicate})", prev.0, prev.1));
                    }
                    if !duplicate {
                        v.push(format!(
                            "id {id} on ch{channel} acked twice without duplicate: true"
                        ));
                    }
                    continue;
                }
                if let Some(other) = by_pos.insert((*channel, epoch.clone(), *seq), id.clone()) {
                    v.push(format!(
                        "ch{channel} seq {epoch}:{seq} assigned to both {other} and {id}"
                    ));
                }
                by_id.insert((*channel, id.clone()), (epoch.clone(), *seq));
            }
        }
        // Numbering is gap-free: acked seqs of each epoch are 1..=max.
        let mut per_epoch: BTreeMap<(usize, String), BTreeSet<u64>> = BTreeMap::new();
        for (ch, epoch, seq) in by_pos.keys() {
            per_epoch
                .entry((*ch, epoch.clone()))
                .or_default()
                .insert(*seq);
        }
        for ((ch, epoch), seqs) in &per_epoch {
            let max = *seqs.iter().next_back().unwrap_or(&0);
            let missing: Vec<u64> = (1..=max).filter(|s| !seqs.contains(s)).collect();
            if !missing.is_empty() {
                v.push(format!(
                    "ch{ch} epoch {epoch}: acked seqs skip {missing:?} (up to {max})"
                ));
            }
        }
        // Streams: contiguous from their start; per connection no seq or id twice.
        let mut next: HashMap<usize, (String, u64)> = HashMap::new();
        let mut seen_seq: HashMap<(usize, usize), BTreeSet<u64>> = HashMap::new();
        let mut seen_id: HashMap<(usize, usize), BTreeSet<String>> = HashMap::new();
        let mut first: HashMap<(usize, usize), u64> = HashMap::new();
        for e in &self.events {
            match e {
                Ev::Sub {
                    conn,
                    stream,
                    channel,
                    epoch,
                    from,
                    failed,
                } => {
                    next.insert(*stream, (epoch.clone(), from + 1));
                    let f = first.entry((*conn, *channel)).or_insert(*from);
                    if *failed {
                        // Loss was reported (RESUME-CLIENT-REPORT): restart the coverage check here.
                        *f = *from;
                        seen_seq.remove(&(*conn, *channel));
                    }
                }
                Ev::Deliver {
                    conn,
                    stream,
                    channel,
                    epoch,
                    seq,
                    id,
                } => {
                    let want = next.get(stream).cloned().unwrap_or_default();
                    if *epoch != want.0 || *seq != want.1 {
                        v.push(format!("c{conn} ch{channel}: delivered {epoch}:{seq}, expected {}:{} next (gap, repeat or reorder)", want.0, want.1));
                    }
                    next.insert(*stream, (epoch.clone(), seq + 1));
                    let new_seq = seen_seq.entry((*conn, *channel)).or_default().insert(*seq);
                    if !new_seq {
                        v.push(format!("c{conn} ch{channel}: seq {seq} delivered twice"));
                    }
                    let new_id = seen_id
                        .entry((*conn, *channel))
                        .or_default()
                        .insert(id.clone());
                    if !new_id {
                        v.push(format!("c{conn} ch{channel}: id {id} delivered twice"));
                    }
                    if !new_seq || !new_id {
                        tally.duplicated += 1;
                    }
                    if let Some((e2, s2)) = by_id.get(&(*channel, id.clone())) {
                        if e2 != epoch || s2 != seq {
                            v.push(format!("c{conn} ch{channel}: id {id} delivered at {epoch}:{seq}, acked at {e2}:{s2}"));
                        }
                    }
                }
                Ev::Ack { .. } => {}
            }
        }
        // Nothing acked lost: each connection saw every seq after its start.
        for ((conn, ch), start) in &first {
            let seqs = seen_seq.get(&(*conn, *ch)).cloned().unwrap_or_default();
            let start = *start;
            let max = per_epoch
                .iter()
                .filter(|((c, _), _)| c == ch)
                .filter_map(|(_, s)| s.iter().next_back().copied())
                .max()
                .unwrap_or(0);
            let lost: Vec<u64> = (start + 1..=max).filter(|s| !seqs.contains(s)).collect();
            tally.lost += lost.len();
            if !lost.is_empty() {
                v.push(format!(
                    "c{conn} ch{ch}: acked seqs {lost:?} never delivered"
                ));
            }
        }
        v.sort();
        v.dedup();
        (v, tally)
    }
}

/// One connection of the schedule.
struct Peer {
    conn: Option<Conn>,
    tracked: [Option<(String, u64)>; CHANNELS],
    streams: [usize; CHANNELS],
}

struct Run<'a> {
    cx: &'a Ctx,
    names: Vec<String>,
    peers: Vec<Peer>,
    published: Vec<(usize, String)>,
    hist: History,
    next_stream: usize,
}

impl Run<'_> {
    async fn connect(&mut self, k: usize) -> CaseResult {
        let sps = self.cx.profile().subprotocols();
        let sp = sps[k % sps.len()];
        let token = self.cx.token(crate::profile::TokenKind::Valid).await?;
        let mut c = self
            .cx
            .connect_offering(&format!("c{k}"), &[sp.name()])
            .await?;
        c.send_body(crate::case::hello(&token, &[])).await?;
        c.take("welcome", |e| {
            matches!(e.body, Some(Body::Welcome(_))).then_some(())
        })
        .await?;
        for ch in 0..CHANNELS {
            let resume = self.peers[k].tracked[ch].clone();
            let ack = subscribe(
                &mut c,
                self.cx,
                &self.names[ch],
                resume.as_ref().map(|(e, s)| (e.as_str(), *s)),
            )
            .await?;
            let (epoch, seq) = position(&ack)?;
            let (status, _, _) = recovery(&ack);
            let recovered = status == RecoveryStatus::Recovered;
            let from = match (&resume, recovered) {
                (Some((_, s)), true) => *s,
                _ => seq,
            };
            let stream = self.next_stream;
            self.next_stream += 1;
            self.peers[k].streams[ch] = stream;
            self.peers[k].tracked[ch] = Some((epoch.clone(), from));
            self.hist.events.push(Ev::Sub {
                conn: k,
                stream,
                channel: ch,
                epoch,
                from,
                failed: resume.is_some() && !recovered,
            });
        }
        self.peers[k].conn = Some(c);
        Ok(())
    }

    /// Records what has arrived on connection `k` within `wait`.
    async fn drain(&mut self, k: usize, wait: Duration) -> CaseResult {
        let Some(mut c) = self.peers[k].conn.take() else {
            return Ok(());
        };
        let r = self.drain_conn(k, &mut c, wait).await;
        self.peers[k].conn = Some(c);
        r
    }

    async fn drain_conn(&mut self, k: usize, c: &mut Conn, wait: Duration) -> CaseResult {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match c.next_event(left).await? {
                Some(Event::Env(env)) => {
                    if let Some(Body::Message(m)) = env.body {
                        let Some(ch) = self.names.iter().position(|n| *n == m.channel) else {
                            continue;
                        };
                        self.peers[k].tracked[ch] = Some((m.epoch.clone(), m.seq));
                        self.hist.events.push(Ev::Deliver {
                            conn: k,
                            stream: self.peers[k].streams[ch],
                            channel: ch,
                            epoch: m.epoch,
                            seq: m.seq,
                            id: m.id,
                        });
                    }
                }
                Some(Event::Closed(c)) => {
                    return Err(fail(format!(
                        "c{k} closed unexpectedly: {} {:?}",
                        c.code_text(),
                        c.reason
                    )))
                }
                None => return Ok(()),
            }
        }
    }

    async fn publish(&mut self, k: usize, ch: usize, id: String) -> CaseResult {
        if self.peers[k].conn.is_none() {
            self.connect(k).await?;
        }
        let c = self.peers[k].conn.as_mut().expect("connected");
        send_publish(c, &self.names[ch], &id, serde_json::json!({ "id": id })).await?;
        let ack = publish_reply(c, &id)
            .await?
            .map_err(|e| fail(format!("publish {id} failed: {}", e.message)))?;
        self.hist.events.push(Ev::Ack {
            channel: ch,
            id: id.clone(),
            epoch: ack.epoch,
            seq: ack.seq,
            duplicate: ack.duplicate,
        });
        self.published.push((ch, id));
        self.drain(k, Duration::ZERO).await
    }

    async fn step(&mut self, op: Op, n: usize) -> CaseResult {
        match op {
            Op::Publish { conn, channel } => {
                self.publish(conn, channel, format!("{}-h{n}", self.names[channel]))
                    .await
            }
            Op::Retry { conn, back } => {
                let Some((ch, id)) = self.published.iter().rev().nth(back).cloned() else {
                    return Ok(());
                };
                self.publish(conn, ch, id).await
            }
            Op::Drop { conn } => {
                if let Some(c) = self.peers[conn].conn.take() {
                    c.drop_link();
                }
                Ok(())
            }
        }
    }
}

/// Runs one schedule on fresh channels; returns the violations (empty: ok).
async fn execute(
    cx: &Ctx,
    ops: &[Op],
    attempt: usize,
) -> Result<(History, Vec<String>), CaseError> {
    let names = (0..CHANNELS)
        .map(|c| cx.channel(&format!("h{attempt}-{c}")))
        .collect();
    let peers = (0..CONNS)
        .map(|_| Peer {
            conn: None,
            tracked: Default::default(),
            streams: [0; CHANNELS],
        })
        .collect();
    let mut run = Run {
        cx,
        names,
        peers,
        published: Vec::new(),
        hist: History::default(),
        next_stream: 0,
    };
    for k in 0..CONNS {
        run.connect(k).await?;
    }
    for (n, op) in ops.iter().enumerate() {
        run.step(*op, n).await?;
        if n % 5 == 4 {
            for k in 0..CONNS {
                run.drain(k, Duration::ZERO).await?;
            }
        }
    }
    // Reconnect everyone, then publish a sentinel per channel and drain until seen.
    for k in 0..CONNS {
        if run.peers[k].conn.is_none() {
            run.connect(k).await?;
        }
    }
    for ch in 0..CHANNELS {
        let id = format!("{}-sentinel", run.names[ch]);
        run.publish(0, ch, id).await?;
    }
    let settle = cx.ms(150);
    for k in 0..CONNS {
        run.drain(k, settle).await?;
    }
    let v = run.hist.violations();
    Ok((run.hist, v))
}

async fn random_schedule(cx: Ctx) -> CaseResult {
    let seed = cx.target().seed;
    let ops = schedule(seed, 60);
    cx.note(format!("seed {seed}: {} ops", ops.len()));
    let (_, violations) = execute(&cx, &ops, 0).await?;
    if violations.is_empty() {
        return Ok(());
    }
    // Shrink: drop chunks of the schedule while it still fails (ddmin-style),
    // within a bounded number of re-runs.
    let mut best = ops.clone();
    let mut best_v = violations;
    let mut chunk = best.len() / 2;
    let mut attempts = 1;
    let budget = Instant::now() + cx.ms(8000);
    while chunk >= 1 && attempts < 40 && Instant::now() < budget {
        let mut i = 0;
        let mut shrunk = false;
        while i < best.len() && attempts < 40 && Instant::now() < budget {
            let mut candidate = best.clone();
            candidate.drain(i..(i + chunk).min(best.len()));
            attempts += 1;
            if let Ok((_, v)) = execute(&cx, &candidate, attempts).await {
                if !v.is_empty() {
                    best = candidate;
                    best_v = v;
                    shrunk = true;
                    continue;
                }
            }
            i += chunk;
        }
        if !shrunk {
            chunk /= 2;
        }
    }
    let shown: Vec<String> = best.iter().map(|o| o.to_string()).collect();
    Err(fail(format!(
        "history invariants broken (seed {seed}, shrunk from {} to {} ops in {attempts} runs: [{}]): {}",
        ops.len(),
        best.len(),
        shown.join(", "),
        best_v.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(ch: usize, id: &str, seq: u64, dup: bool) -> Ev {
        Ev::Ack {
            channel: ch,
            id: id.into(),
            epoch: "e".into(),
            seq,
            duplicate: dup,
        }
    }
    fn sub(conn: usize, stream: usize, from: u64) -> Ev {
        Ev::Sub {
            conn,
            stream,
            channel: 0,
            epoch: "e".into(),
            from,
            failed: false,
        }
    }
    fn dlv(conn: usize, stream: usize, seq: u64, id: &str) -> Ev {
        Ev::Deliver {
            conn,
            stream,
            channel: 0,
            epoch: "e".into(),
            seq,
            id: id.into(),
        }
    }

    #[test]
    fn a_clean_history_has_no_violations() {
        let h = History {
            events: vec![
                sub(0, 0, 0),
                ack(0, "a", 1, false),
                dlv(0, 0, 1, "a"),
                ack(0, "a", 1, true),
                ack(0, "b", 2, false),
                dlv(0, 0, 2, "b"),
            ],
        };
        assert_eq!(h.violations(), Vec::<String>::new());
    }

    #[test]
    fn detects_skip_redelivery_reorder_and_loss() {
        let skip = History {
            events: vec![
                sub(0, 0, 0),
                ack(0, "a", 1, false),
                ack(0, "b", 3, false),
                dlv(0, 0, 1, "a"),
                dlv(0, 0, 3, "b"),
            ],
        };
        assert!(
            skip.violations().iter().any(|v| v.contains("skip [2]")),
            "{:?}",
            skip.violations()
        );
        let redeliver = History {
            events: vec![
                sub(0, 0, 0),
                ack(0, "a", 1, false),
                dlv(0, 0, 1, "a"),
                ack(0, "a", 2, false),
                dlv(0, 0, 2, "a"),
            ],
        };
        assert!(
            redeliver
                .violations()
                .iter()
                .any(|v| v.contains("delivered twice")),
            "{:?}",
            redeliver.violations()
        );
        let reorder = History {
            events: vec![
                sub(0, 0, 0),
                ack(0, "a", 1, false),
                ack(0, "b", 2, false),
                dlv(0, 0, 2, "b"),
                dlv(0, 0, 1, "a"),
            ],
        };
        assert!(
            reorder
                .violations()
                .iter()
                .any(|v| v.contains("expected e:1")),
            "{:?}",
            reorder.violations()
        );
        let lost = History {
            events: vec![
                sub(0, 0, 0),
                ack(0, "a", 1, false),
                ack(0, "b", 2, false),
                dlv(0, 0, 1, "a"),
            ],
        };
        assert!(
            lost.violations()
                .iter()
                .any(|v| v.contains("never delivered")),
            "{:?}",
            lost.violations()
        );
    }

    #[test]
    fn schedules_are_reproducible() {
        assert_eq!(schedule(7, 30), schedule(7, 30));
        assert_ne!(schedule(7, 30), schedule(8, 30));
    }
}
