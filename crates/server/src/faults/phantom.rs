//! Faults that act through requests the client never sent: the faulty
//! transport slips phantom `subscribe`/`unsubscribe` requests in among the
//! client's (their replies are dropped on the way out), or numbers the
//! publishes pipelined behind a hello that is about to be refused. The
//! session core runs unchanged; it simply sees more requests.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use super::Fault;
use crate::frame::Wire;
use crate::session::driver::{FrameSource, Inbound};
use crate::session::Env;

/// Request ids of phantom requests start with this; replies to them never
/// reach the client.
const PHANTOM_ID: &str = "courier-fault:";

/// The phantom requests of one connection.
#[derive(Default)]
pub(crate) struct Phantoms {
    /// Channels the client holds (subscribed, not unsubscribed).
    subscribed: Vec<String>,
    /// Phantom requests made so far (for unique ids and channel names).
    made: u64,
}

impl Phantoms {
    fn request_id(&mut self) -> String {
        self.made += 1;
        format!("{PHANTOM_ID}{}", self.made)
    }

    /// The envelopes the session sees instead of the client's `env`:
    /// `env` itself, with phantom requests around it for `fault`.
    pub(crate) fn expand(&mut self, fault: Fault, env: v2::Envelope) -> Vec<v2::Envelope> {
        let entries = match env.body {
            Some(Body::Batch(b)) => b.envelopes,
            body => vec![v2::Envelope { body }],
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            match (&e.body, fault) {
                (Some(Body::Subscribe(s)), _) if !self.subscribed.contains(&s.channel) => {
                    self.subscribed.push(s.channel.clone());
                    out.push(e);
                }
                // Breaks PRESENCE-JOIN-LEAVE: the unsubscribe the session
                // sees names a channel it never held, so its subscription
                // (and presence) stays; `Ghosts` makes it look gone.
                (Some(Body::Unsubscribe(u)), Fault::UnsubscribeKeepsPresence)
                    if self.subscribed.contains(&u.channel) =>
                {
                    let channel = u.channel.clone();
                    self.subscribed.retain(|c| *c != channel);
                    out.push(body(Body::Unsubscribe(v2::Unsubscribe {
                        id: u.id.clone(),
                        channel: format!("{GHOST}{channel}"),
                    })));
                }
                (Some(Body::Unsubscribe(u)), _) => {
                    let channel = u.channel.clone();
                    self.subscribed.retain(|c| *c != channel);
                    out.push(e);
                    // Breaks LIMIT-SUBSCRIPTIONS: the freed slot is taken at once.
                    if fault == Fault::SubscriptionsNeverFreed {
                        let id = self.request_id();
                        let channel = format!("courier-fault.never-freed.{}", self.made);
                        out.push(body(Body::Subscribe(v2::Subscribe {
                            id,
                            channel,
                            resume: None,
                        })));
                    }
                }
                // Breaks EPHEMERAL-NO-SEQ: an outsider's ephemeral is relayed
                // by subscribing the sender just for it.
                (Some(Body::Ephemeral(x)), Fault::RelayUnsubscribedEphemeral)
                    if !self.subscribed.contains(&x.channel) =>
                {
                    let channel = x.channel.clone();
                    let (sub, unsub) = (self.request_id(), self.request_id());
                    out.push(body(Body::Subscribe(v2::Subscribe {
                        id: sub,
                        channel: channel.clone(),
                        resume: None,
                    })));
                    out.push(e);
                    out.push(body(Body::Unsubscribe(v2::Unsubscribe {
                        id: unsub,
                        channel,
                    })));
                }
                _ => out.push(e),
            }
        }
        out
    }
}

/// Prefix of the channel a kept subscription's unsubscribe is sent to.
const GHOST: &str = "courier-fault.ghost:";

/// Fault `unsubscribe-keeps-presence`, outbound: channels whose
/// subscription the session still holds although the client unsubscribed.
/// Their deliveries are dropped, and the `unsubscribe_ack` names the
/// channel the client asked for, so the client sees an ordinary unsubscribe.
#[derive(Default)]
pub(crate) struct Ghosts(Vec<String>);

impl Ghosts {
    /// Rewrites or drops (`false`) one outbound envelope.
    pub(crate) fn keep(&mut self, env: &mut v2::Envelope) -> bool {
        match &mut env.body {
            Some(Body::UnsubscribeAck(a)) => {
                if let Some(channel) = a.channel.strip_prefix(GHOST) {
                    a.channel = channel.to_string();
                    self.0.push(a.channel.clone());
                }
                true
            }
            Some(Body::SubscribeAck(a)) => {
                self.0.retain(|c| *c != a.channel);
                true
            }
            Some(Body::Message(m)) => !self.0.contains(&m.channel),
            Some(Body::PresenceEvent(p)) => !self.0.contains(&p.channel),
            Some(Body::Ephemeral(x)) => !self.0.contains(&x.channel),
            _ => true,
        }
    }
}

fn body(body: Body) -> v2::Envelope {
    v2::Envelope { body: Some(body) }
}

/// Whether `env` answers a phantom request (and must not reach the client).
pub(crate) fn answers_phantom(env: &v2::Envelope) -> bool {
    let id = match &env.body {
        Some(Body::SubscribeAck(a)) => &a.id,
        Some(Body::UnsubscribeAck(a)) => &a.id,
        Some(Body::Error(e)) => &e.id,
        _ => return false,
    };
    id.starts_with(PHANTOM_ID)
}

/// Fault `process-after-failed-hello` (breaks HELLO-PIPELINE): when the
/// first frame is a `hello` whose credentials will be refused, numbers the
/// publishes pipelined behind it (those that arrive within a moment) before
/// the session core sees the hello and closes with 4004.
pub(crate) async fn publish_behind_refused_hello<R: FrameSource>(
    env: &Arc<Env>,
    wire: Wire,
    source: &mut R,
    hello: &v2::Hello,
) {
    if env.auth.authenticate(&hello.token, crate::now_ms()).is_ok() {
        return;
    }
    let mut pipelined = VecDeque::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), source.next()).await {
            Ok(Inbound::Frame { bytes, .. }) => pipelined.push_back(bytes),
            _ => break,
        }
    }
    let anonymous = crate::auth::Identity::default();
    for bytes in pipelined {
        let Some(env_in) = super::transport::decode(wire, &bytes) else {
            continue;
        };
        if let Some(Body::Publish(p)) = env_in.body {
            let publisher: Arc<str> = Arc::from("courier-fault");
            let _ = env.publish(&anonymous, publisher, p).await;
        }
    }
}

/// Encodes `envs` as the frames a client could have sent.
pub(crate) fn frames(wire: Wire, envs: Vec<v2::Envelope>, text: bool) -> Vec<(Bytes, bool)> {
    envs.iter()
        .filter_map(|e| wire.encode(e).ok())
        .map(|b| (b, text))
        .collect()
}
