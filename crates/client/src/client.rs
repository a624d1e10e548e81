//! The application-facing handles: [`Client`], [`Subscription`] (a stream
//! of [`SubscriptionEvent`]s), [`Typed`] (a stream of decoded messages) and
//! [`Events`] (connection state changes).

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use courier_protocol::wire;
use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ClientConfig;
use crate::driver::{Command, Driver, Shared, State};
use crate::error::{ClientError, PublishError, RequestError, SubscribeError};
use crate::event::{
    ConnectionEvent, Message, Position, PresenceMember, PublishAck, SubscriptionEvent,
};
use crate::handshake;
use crate::session::{CallKind, CallOk};

/// Commands buffered between handles and the driver.
const COMMAND_BUFFER: usize = 1024;

/// A Courier client: one logical session that survives reconnects.
/// Cheap to clone; the connection closes when the last clone (and the last
/// [`Subscription`]) is dropped, or on [`Client::close`].
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use courier_client::{Client, ClientConfig, SubscriptionEvent};
/// use futures_util::StreamExt;
///
/// let client = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/ws")).await?;
/// let mut chat = client.subscribe("chat").await?;
/// client.publish("chat", &serde_json::json!({"text": "hi"})).await?;
/// while let Some(event) = chat.next().await {
///     if let SubscriptionEvent::Message(m) = event {
///         println!("{} #{}: {}", m.channel, m.seq, m.json()?);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    cmd: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    state: watch::Receiver<State>,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts the client and waits for the first session (or a terminal
    /// error: a refused version, rejected credentials, the attempt limit).
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let client = Client::start(config)?;
        let mut state = client.state.clone();
        let outcome = state
            .wait_for(|s| !matches!(s, State::Connecting))
            .await
            .map(|s| s.clone());
        match outcome {
            Ok(State::Stopped(e)) => Err((*e).clone()),
            Ok(_) => Ok(client),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Starts the client without waiting: calls made before the first
    /// session are queued (publishes, subscriptions) or fail with
    /// `NotConnected` (calls). Must run inside a tokio runtime.
    pub fn start(config: ClientConfig) -> Result<Client, ClientError> {
        Client::start_with_events(config).map(|(client, _)| client)
    }

    /// [`Client::start`], with a stream of every connection event from the
    /// very first (a stream taken with [`Client::events`] after `start`
    /// may miss a first session or a terminal error that came quickly).
    pub fn start_with_events(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        if config.offers.is_empty() {
            return Err(ClientError::Config("no subprotocol offered".into()));
        }
        let url =
            handshake::parse_url(&config.url).map_err(|e| ClientError::Config(e.to_string()))?;
        // Trust settings are checked here, once, not on every reconnect.
        let tls = if url.tls {
            Some(crate::tls::client_config(&config)?)
        } else {
            None
        };
        let endpoint = handshake::Endpoint { url, tls };
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_BUFFER);
        let (state_tx, state_rx) = watch::channel(State::Connecting);
        let (events_tx, events_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            state: state_tx,
            listeners: Mutex::new(vec![events_tx]),
        });
        let driver = Driver::new(
            config.clone(),
            endpoint,
            cmd_rx,
            cmd_tx.downgrade(),
            shared.clone(),
        );
        tokio::spawn(driver.run());
        let client = Client {
            cmd: cmd_tx,
            shared,
            state: state_rx,
            config: Arc::new(config),
        };
        Ok((client, Events { rx: events_rx }))
    }

    fn stopped(&self) -> Arc<ClientError> {
        match &*self.state.borrow() {
            State::Stopped(e) => e.clone(),
            _ => Arc::new(ClientError::Closed),
        }
    }

    async fn send(&self, cmd: Command) -> Result<(), Arc<ClientError>> {
        self.cmd.send(cmd).await.map_err(|_| self.stopped())
    }

    /// Connection state changes from now on. Each call returns an
    /// independent stream; one that is not read keeps the last 64 events.
    pub fn events(&self) -> Events {
        let (tx, rx) = mpsc::channel(64);
        // After a stop nothing follows: the stream ends at once.
        if !matches!(*self.state.borrow(), State::Stopped(_)) {
            self.shared
                .listeners
                .lock()
                .expect("listener lock")
                .push(tx);
        }
        Events { rx }
    }

    /// Whether a session is open right now.
    pub fn is_connected(&self) -> bool {
        matches!(*self.state.borrow(), State::Connected)
    }

    /// The terminal error, once the client has stopped.
    pub fn terminal_error(&self) -> Option<Arc<ClientError>> {
        match &*self.state.borrow() {
            State::Stopped(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Subscribes to `channel` and waits for the first `subscribe_ack`.
    /// The subscription resumes by itself after every reconnect.
    pub async fn subscribe(
        &self,
        channel: impl Into<String>,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_with(channel.into(), None).await
    }

    /// Subscribes to `channel` from `from`, a position the application kept
    /// (the last message it processed before a restart, say): the first
    /// `subscribe` carries it as `resume` (RESUME-CLIENT-FROM), the messages
    /// after it are replayed, and the first `SubscriptionEvent::Subscribed`
    /// reports whether that worked (`Recovery::Failed` is possible loss).
    /// Store `Message::epoch` and `Message::seq` of each message handled.
    pub async fn subscribe_from(
        &self,
        channel: impl Into<String>,
        from: Position,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_with(channel.into(), Some(from)).await
    }

    async fn subscribe_with(
        &self,
        channel: String,
        from: Option<Position>,
    ) -> Result<Subscription, SubscribeError> {
        let (tx, rx) = mpsc::channel(self.config.subscription_buffer);
        let (reply, wait) = oneshot::channel();
        self.send(Command::Subscribe {
            channel: channel.clone(),
            from,
            tx,
            reply,
        })
        .await
        .map_err(SubscribeError::Stopped)?;
        wait.await
            .map_err(|_| SubscribeError::Stopped(self.stopped()))??;
        Ok(Subscription {
            channel,
            rx,
            cmd: Some(self.cmd.clone()),
        })
    }

    /// Publishes `payload` (any serde value, or a generated payload type)
    /// with a new dedupe id, and waits for the server's acknowledgement,
    /// across reconnects if need be (the publish is resent with the same id).
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        payload: &T,
    ) -> Result<PublishAck, PublishError> {
        let payload = wire::to_payload(payload).map_err(|e| PublishError::Encode(e.to_string()))?;
        self.publish_with_id(channel, new_id(), payload).await
    }

    /// Publishes an already encoded payload (canonical MessagePack, as
    /// [`wire::to_payload`] makes) with a new dedupe id.
    pub async fn publish_bytes(
        &self,
        channel: &str,
        payload: Bytes,
    ) -> Result<PublishAck, PublishError> {
        self.publish_with_id(channel, new_id(), payload).await
    }

    /// Publishes with a dedupe id of the caller's choosing: retry a publish
    /// that failed with `INTERNAL` with the same id (DEDUP-ID-UNIQUE).
    pub async fn publish_with_id(
        &self,
        channel: &str,
        id: String,
        payload: Bytes,
    ) -> Result<PublishAck, PublishError> {
        let (reply, wait) = oneshot::channel();
        self.send(Command::Publish {
            channel: channel.to_string(),
            id,
            payload,
            reply,
        })
        .await
        .map_err(PublishError::Stopped)?;
        wait.await
            .map_err(|_| PublishError::Stopped(self.stopped()))?
    }

    /// Sends an ephemeral message (feature `ephemeral`): best effort, not
    /// queued while disconnected.
    pub async fn ephemeral<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        payload: &T,
    ) -> Result<(), PublishError> {
        let payload = wire::to_payload(payload).map_err(|e| PublishError::Encode(e.to_string()))?;
        self.send(Command::Ephemeral {
            channel: channel.to_string(),
            payload,
        })
        .await
        .map_err(PublishError::Stopped)
    }

    async fn call(&self, kind: CallKind) -> Result<CallOk, RequestError> {
        let (reply, wait) = oneshot::channel();
        self.send(Command::Call { kind, reply })
            .await
            .map_err(RequestError::Stopped)?;
        wait.await
            .map_err(|_| RequestError::Stopped(self.stopped()))?
    }

    /// The members present on a subscribed channel (feature `presence`).
    pub async fn presence(&self, channel: &str) -> Result<Vec<PresenceMember>, RequestError> {
        match self
            .call(CallKind::Presence {
                channel: channel.to_string(),
            })
            .await?
        {
            CallOk::Presence(m) => Ok(m),
            other => Err(RequestError::Payload(format!("unexpected reply {other:?}"))),
        }
    }

    /// Calls a server method (feature `rpc`) and decodes its result.
    pub async fn rpc<A: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, RequestError> {
        let payload = wire::to_payload(args).map_err(|e| RequestError::Payload(e.to_string()))?;
        let out = self.rpc_bytes(method, payload).await?;
        wire::from_payload(&out).map_err(|e| RequestError::Payload(e.to_string()))
    }

    /// Calls a server method with an encoded payload; returns the encoded result.
    pub async fn rpc_bytes(&self, method: &str, payload: Bytes) -> Result<Bytes, RequestError> {
        match self
            .call(CallKind::Rpc {
                method: method.to_string(),
                payload,
            })
            .await?
        {
            CallOk::Rpc(b) => Ok(b),
            other => Err(RequestError::Payload(format!("unexpected reply {other:?}"))),
        }
    }

    /// Replaces the session's credentials in band (AUTH-REFRESH); on
    /// success the token is also used for later reconnects.
    pub async fn refresh(&self, token: impl Into<String>) -> Result<(), RequestError> {
        self.call(CallKind::Refresh {
            token: token.into(),
        })
        .await
        .map(|_| ())
    }

    /// Ends the session with 1000 (CLOSE-CLIENT-NORMAL) and stops: queued
    /// publishes fail with [`PublishError::Stopped`].
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.cmd.send(Command::Close { done }).await.is_ok() {
            let _ = wait.await;
        }
    }
}

fn new_id() -> String {
    // DEDUP-ID-UNIQUE: random 128-bit ids.
    uuid::Uuid::new_v4().to_string()
}

/// A subscription: a [`Stream`] of [`SubscriptionEvent`]s in stream order.
/// Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    channel: String,
    rx: mpsc::Receiver<SubscriptionEvent>,
    cmd: Option<mpsc::Sender<Command>>,
}

impl Subscription {
    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next event; `None` after the client stopped or the server ended
    /// the subscription (an [`SubscriptionEvent::Ended`] comes first).
    pub async fn recv(&mut self) -> Option<SubscriptionEvent> {
        self.rx.recv().await
    }

    /// The next message, skipping other events.
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            match self.rx.recv().await? {
                SubscriptionEvent::Message(m) => return Some(m),
                SubscriptionEvent::Ended(_) => return None,
                _ => {}
            }
        }
    }

    /// Turns this into a stream of `T` decoded from each message's payload,
    /// skipping the other events.
    pub fn typed<T: DeserializeOwned>(self) -> Typed<T> {
        Typed {
            inner: self,
            _t: PhantomData,
        }
    }

    /// Unsubscribes now (also done on drop).
    pub async fn unsubscribe(mut self) {
        if let Some(cmd) = self.cmd.take() {
            let _ = cmd
                .send(Command::Unsubscribe {
                    channel: self.channel.clone(),
                })
                .await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(cmd) = self.cmd.take() {
            let _ = cmd.try_send(Command::Unsubscribe {
                channel: std::mem::take(&mut self.channel),
            });
        }
    }
}

impl Stream for Subscription {
    type Item = SubscriptionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// A [`Stream`] of decoded payloads of one subscription.
#[derive(Debug)]
pub struct Typed<T> {
    inner: Subscription,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Stream for Typed<T> {
    type Item = Result<(Message, T), wire::PayloadError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.inner.rx.poll_recv(cx) {
                Poll::Ready(Some(SubscriptionEvent::Message(m))) => {
                    let decoded = m.decode::<T>().map(|t| (m, t));
                    return Poll::Ready(Some(decoded));
                }
                Poll::Ready(Some(SubscriptionEvent::Ended(_))) | Poll::Ready(None) => {
                    return Poll::Ready(None)
                }
                Poll::Ready(Some(_)) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A [`Stream`] of [`ConnectionEvent`]s.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<ConnectionEvent>,
}

impl Events {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<ConnectionEvent> {
        self.rx.recv().await
    }
}

impl Events {
    /// An event already waiting, without waiting for one.
    pub fn try_next_now(&mut self) -> Option<ConnectionEvent> {
        self.rx.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = ConnectionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
