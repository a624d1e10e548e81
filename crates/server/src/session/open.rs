//! Opening a session from its `hello` (or a transport's equivalent, such
//! as SSE's query and `Authorization` header): authentication, feature
//! negotiation and the `welcome` (WELCOME-FIELDS), queued as the session's
//! first frame.

use std::sync::Arc;

use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Encoding};

use super::{Close, Env, Session};
use crate::auth::Identity;
use crate::features::Features;
use crate::frame::Wire;
use crate::hub::Outbox;

/// What a client asks for when it opens a session.
#[derive(Debug, Default)]
pub(crate) struct Hello {
    /// `hello.token` (empty: anonymous).
    pub token: String,
    /// `hello.features`.
    pub features: Vec<String>,
}

/// AUTH-*, FEATURE-NEGOTIATION: the open session, its `welcome` queued.
pub(crate) fn open(env: &Arc<Env>, wire: Wire, hello: Hello) -> Result<Box<Session>, Close> {
    let identity = env
        .auth
        .authenticate(&hello.token, crate::now_ms())
        .map_err(|e| {
            tracing::info!(error = %e, "credentials refused");
            (e.close_code(), e.reason().to_string())
        })?;
    let sp = wire.subprotocol();
    let features = env.features.negotiate(&hello.features, sp.version);
    let session_id = env.new_session_id();
    let transport = match wire {
        Wire::WebSocket(_) => "ws",
        Wire::Sse(_) => "sse",
    };
    tracing::info!(session = %session_id, user = %identity.user, subprotocol = %sp, transport, "session open");
    #[allow(unused_mut)]
    let mut outbox = Outbox::new(session_id.clone(), wire, features, env.queue_capacity);
    #[cfg(feature = "faults")]
    {
        outbox.ungated = env.config.fault == Some(crate::faults::Fault::UngatedFeatureEvents);
    }
    let outbox = Arc::new(outbox);
    #[allow(unused_mut)]
    let mut w = welcome(env, wire, &session_id, features, &identity);
    // Breaks LIMIT-ALL-ENFORCED: the rate limit is enforced but not advertised.
    #[cfg(feature = "faults")]
    if env.config.fault == Some(crate::faults::Fault::UnadvertisedRateLimit) {
        if let Some(Body::Welcome(v2::Welcome {
            limits: Some(l), ..
        })) = &mut w.body
        {
            (l.max_messages_per_second, l.max_burst) = (0, 0);
        }
    }
    outbox.send(&w);
    Ok(Box::new(Session::new(env.clone(), outbox, identity)))
}

/// WELCOME-FIELDS.
fn welcome(
    env: &Env,
    wire: Wire,
    session_id: &str,
    features: Features,
    identity: &Identity,
) -> v2::Envelope {
    let c = &env.config;
    let sp = wire.subprotocol();
    let encoding = match sp.encoding {
        Encoding::Json => v2::Encoding::Json,
        Encoding::MsgPack => v2::Encoding::Msgpack,
        Encoding::Protobuf => v2::Encoding::Protobuf,
    };
    v2::Envelope {
        body: Some(Body::Welcome(v2::Welcome {
            version: sp.version.number(),
            encoding: encoding as i32,
            session_id: session_id.to_string(),
            features: features.names().map(String::from).collect(),
            heartbeat_interval_ms: c.heartbeat_interval_ms,
            heartbeat_grace_ms: c.heartbeat_grace_ms,
            dedupe_window_ms: c.dedupe_window_ms,
            limits: Some(v2::Limits {
                max_message_bytes: c.max_message_bytes,
                max_messages_per_second: c.max_messages_per_second,
                max_burst: c.max_burst,
                send_queue_frames: c.send_queue_frames,
                max_subscriptions: c.max_subscriptions,
                history_size: c.history_size,
                history_ttl_ms: c.history_ttl_ms,
                max_batch: c.max_batch,
            }),
            token_expires_at_ms: identity.expires_at_ms,
            server: c.server_name.clone(),
            user: identity.user.to_string(),
            // DEDUP-MAX (v2; the codec leaves it out of v1 welcomes).
            dedupe_max_per_channel: c.dedupe_max_per_channel,
        })),
    }
}
