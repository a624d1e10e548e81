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
