//! `courier load`: a load generator for any Courier server. N subscribers
//! on one channel, one publisher sending M payloads of a given size at a
//! fixed rate or as fast as a closed loop allows; reports connect time,
//! delivered messages/s, end-to-end latency and errors. With `--idle` it
//! holds N idle connections instead and reports the server's memory per
//! connection. `--duration` bounds a run by time instead of count, and
//! `--slow K` adds K subscribers that read slowly (or never), to measure
//! what one slow consumer costs the others. It uses raw connections with
//! the protocol codec (no client library bookkeeping) so that the numbers
//! are the server's.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::wire::{self, msgpack};
use courier_protocol::{Codec, Subprotocol};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

mod close;
mod frames;
mod slow;
mod storm;
use close::Closed;
use frames::Frame;

/// Arguments of `courier load`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// WebSocket URL of the server; repeat it for the nodes of one
    /// deployment: subscribers are spread over the URLs in turn.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: Vec<String>,
    /// URL of the publisher's connection (default: the first `--url`):
    /// with several nodes, the publisher on one and subscribers on all.
    #[arg(long)]
    publish_url: Option<String>,
    /// Reconnect-storm mode: `courier-client` clients (their own backoff,
    /// jitter and resume) subscribed through the URLs while one more
    /// publishes at `--rate` for this many seconds; kill a node meanwhile.
    /// Reports how long until every disconnected client resumed, the spread
    /// of the resumes, and lost/duplicated deliveries (docs/benchmarks.md).
    #[arg(long)]
    storm: Option<u64>,
    /// Subscriber connections.
    #[arg(long, short = 'n', default_value_t = 100)]
    subscribers: usize,
    /// Publishes to send (fan-out mode).
    #[arg(long, short = 'm', default_value_t = 1000)]
    publishes: u64,
    /// Payload size in bytes (canonical MessagePack, including the timestamp).
    #[arg(long, default_value_t = 128)]
    payload_size: usize,
    /// Publishes per second; 0 = as fast as the closed loop allows.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Closed loop: most publishes not yet delivered to every subscriber.
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// Channel name.
    #[arg(long, default_value = "load")]
    channel: String,
    /// Subprotocol of every connection.
    #[arg(long, default_value = "courier.v2.msgpack")]
    subprotocol: Subprotocol,
    /// Bearer token for hello.
    #[arg(long, default_value = "")]
    token: String,
    /// Ask for the v2 `batch` feature (the server may coalesce deliveries).
    #[arg(long)]
    batch: bool,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Idle mode: hold the connections this many seconds, publish nothing.
    #[arg(long)]
    idle: Option<u64>,
    /// PID of a server on this machine: report its RSS before and after connecting.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Fan-out mode: stop publishing after this many seconds (`--publishes`
    /// stays an upper bound); what was published is then awaited briefly.
    #[arg(long)]
    duration: Option<u64>,
    /// Extra subscribers that read one frame per `--slow-read-ms` (never,
    /// when 0); they are left out of the delivery and latency figures.
    #[arg(long, default_value_t = 0)]
    slow: usize,
    /// How often a slow subscriber reads one frame, in milliseconds.
    #[arg(long, default_value_t = 100)]
    slow_read_ms: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

type Ws = WebSocketStream<TcpStream>;

/// Latency histogram: microseconds, log-linear buckets (≤ 1.6% error).
struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const SUB_BITS: u32 = 6;

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..(64 << SUB_BITS)).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
    fn index(us: u64) -> usize {
        if us < (1 << SUB_BITS) {
            return us as usize;
        }
        let exp = 63 - us.leading_zeros();
        let shift = exp - SUB_BITS;
        (((exp - SUB_BITS + 1) << SUB_BITS) as u64 + ((us >> shift) & ((1 << SUB_BITS) - 1)))
            as usize
    }
    fn lower(i: usize) -> u64 {
        let (e, m) = ((i >> SUB_BITS) as u32, (i & ((1 << SUB_BITS) - 1)) as u64);
        if e == 0 {
            return m;
        }
        let shift = e - 1;
        ((1u64 << SUB_BITS) + m) << shift
    }
    fn record(&self, us: u64) {
        self.buckets[Self::index(us).min(self.buckets.len() - 1)].fetch_add(1, Relaxed);
        // A plain load first: a read-modify-write per delivery costs the
        // generator more than the comparison.
        if us > self.max.load(Relaxed) {
            self.max.fetch_max(us, Relaxed);
        }
    }
    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }
    fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let target = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= target {
                return Self::lower(i);
            }
        }
        self.max.load(Relaxed)
    }
}

/// Counters shared by every task.
struct Stats {
    start: Instant,
    delivered: AtomicU64,
    published: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    gaps: AtomicU64,
    connected: AtomicU64,
    latency: Histogram,
    connect: Histogram,
    /// Closed loop: for publish `i`, slot `i % window` counts the
    /// subscribers that have not received it yet (a ring: publish `i +
    /// window` is sent only after publish `i` reached everyone).
    pending: Vec<AtomicU64>,
    /// Closed loop: publishes `0..frontier` reached every subscriber.
    frontier: AtomicU64,
    /// Signalled when the frontier moves (exactly then: the publisher
    /// never waits on a timer for a window that is already open).
    progress: Notify,
    first_error: std::sync::Mutex<Option<String>>,
    /// How the server closed the publisher, if it did: nothing more will be
    /// published, and the report says why.
    publisher_closed: std::sync::Mutex<Option<Closed>>,
    /// Set once the publisher's connection is gone (closed, reset).
    publisher_gone: std::sync::atomic::AtomicBool,
}

impl Stats {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Relaxed);
        self.first_error.lock().expect("lock").get_or_insert(what);
    }
    /// Records the end of the publisher's connection (the first close
    /// reported wins: the `disconnect` notice comes before the close frame)
    /// and wakes a publisher waiting for its window.
    fn publisher_ended(&self, closed: Option<Closed>) {
        if let Some(c) = closed {
            self.publisher_closed.lock().expect("lock").get_or_insert(c);
        }
        self.publisher_gone.store(true, Relaxed);
        self.progress.notify_one();
    }

    /// Records that one subscriber received publish `index` (closed loop).
    fn received(&self, index: u64) {
        if self.pending.is_empty() {
            return;
        }
        let slot = &self.pending[(index % self.pending.len() as u64) as usize];
        if slot.fetch_sub(1, Relaxed) == 1 {
            // The last subscriber: the publish reached everyone. Every
            // subscriber reads in order, so no earlier slot is still open.
            self.frontier.fetch_max(index + 1, Relaxed);
            self.progress.notify_one();
        }
    }
}

fn frame(codec: &Codec, body: Body) -> anyhow::Result<WsMessage> {
    let bytes = codec.encode(&v2::Envelope { body: Some(body) })?;
    Ok(if codec.subprotocol().encoding.is_text() {
        WsMessage::Text(String::from_utf8(bytes.to_vec())?.into())
    } else {
        WsMessage::Binary(bytes)
    })
}

fn decode(codec: &Codec, msg: WsMessage) -> Option<anyhow::Result<v2::Envelope>> {
    let (bytes, text) = match msg {
        WsMessage::Text(t) => (Bytes::from(t), true),
        WsMessage::Binary(b) => (b, false),
        _ => return None,
    };
    Some(codec.decode_frame(&bytes, Some(text)).map_err(Into::into))
}

/// What a subscriber needs from a `message`: its seq and the publish stamp.
#[derive(Debug, PartialEq, Eq)]
struct Delivery {
    seq: u64,
    stamp: Option<u64>,
}

/// Reads a MessagePack `message` frame without building the envelope
/// (no copies, no payload validation): the generator must cost far less
/// per delivery than the server it measures. `None` for anything else
/// (other types, batches, unexpected shapes), which takes the full decode.
fn fast_message(frame: &[u8]) -> Option<Delivery> {
    let mut buf = frame;
    let msgpack::Item::Map(n) = msgpack::read(&mut buf).ok()? else {
        return None;
    };
    let (mut is_message, mut seq, mut stamp_at) = (false, None, None);
    for _ in 0..n {
        // Canonical order puts `type` and `seq` before `payload`: stop as
        // soon as all three are known instead of walking the rest.
        if is_message && seq.is_some() && stamp_at.is_some() {
            break;
        }
        let msgpack::Item::Str(key) = msgpack::read(&mut buf).ok()? else {
            return None;
        };
        match key {
            b"type" => match msgpack::read(&mut buf).ok()? {
                msgpack::Item::Str(b"message") => is_message = true,
                _ => return None,
            },
            b"seq" => match msgpack::read(&mut buf).ok()? {
                msgpack::Item::Uint(v) => seq = Some(v),
                _ => return None,
            },
            b"payload" => {
                stamp_at = Some(buf);
                msgpack::skip(&mut buf).ok()?;
            }
            _ => msgpack::skip(&mut buf).ok()?,
        }
    }
    match (is_message, seq) {
        (true, Some(seq)) => Some(Delivery {
            seq,
            stamp: stamp_at.and_then(stamp),
        }),
        _ => None,
    }
}

/// Connects to `url`, sends hello, waits for welcome; returns the socket and codec.
async fn open(args: &LoadArgs, url: &str) -> anyhow::Result<(Ws, Codec)> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(args.subprotocol.name()),
    );
    let addr = format!(
        "{}:{}",
        req.uri().host().unwrap_or("127.0.0.1"),
        req.uri().port_u16().unwrap_or(80)
    );
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    // 4 KiB read buffer: 10k connections must not cost the generator 1.3 GB.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(config)).await?;
    let codec = Codec::new(args.subprotocol).with_max_message_bytes(1 << 20);
    let features = if args.batch {
        vec!["batch".to_string()]
    } else {
        vec![]
    };
    let hello = v2::Hello {
        token: args.token.clone(),
        client: "courier-load".into(),
        features,
    };
    ws.send(frame(&codec, Body::Hello(hello))?).await?;
    while let Some(msg) = ws.next().await {
        match decode(&codec, msg?) {
            Some(Ok(v2::Envelope {
                body: Some(Body::Welcome(_)),
            })) => return Ok((ws, codec)),
            Some(Ok(v2::Envelope {
                body: Some(Body::Disconnect(d)),
            })) => bail!("disconnect {}: {}", d.code, d.reason),
            Some(Err(e)) => return Err(e),
            _ => {}
        }
    }
    bail!("connection closed before welcome")
}

/// Opens a subscriber at `url` and waits for its subscribe_ack.
async fn subscribe(args: &LoadArgs, url: &str) -> anyhow::Result<(Ws, Codec)> {
    let (mut ws, codec) = open(args, url).await?;
    let sub = v2::Subscribe {
        id: "s".into(),
        channel: args.channel.clone(),
        resume: None,
    };
    ws.send(frame(&codec, Body::Subscribe(sub))?).await?;
    while let Some(msg) = ws.next().await {
        match decode(&codec, msg?) {
            Some(Ok(v2::Envelope {
                body: Some(Body::SubscribeAck(_)),
            })) => return Ok((ws, codec)),
            Some(Ok(v2::Envelope {
                body: Some(Body::Error(e)),
            })) => bail!("subscribe refused: {}", e.message),
            Some(Err(e)) => return Err(e),
            _ => {}
        }
    }
    bail!("connection closed before subscribe_ack")
}

/// Reads the publish timestamp (µs since start) from a payload `[t, pad]`.
fn stamp(payload: &[u8]) -> Option<u64> {
    let mut buf = payload;
    match (msgpack::read(&mut buf).ok()?, msgpack::read(&mut buf).ok()?) {
        (msgpack::Item::Array(2), msgpack::Item::Uint(t)) => Some(t),
        _ => None,
    }
}

/// Runs one subscriber until it has `expected` messages (or forever when
/// idle), reading raw frames (see `frames`).
async fn run_subscriber(ws: Ws, codec: Codec, index: usize, expected: u64, stats: Arc<Stats>) {
    // Nothing is buffered in `ws`: the subscribe_ack was the last frame
    // before the publisher starts (a lost frame would show as missing).
    let mut sock = frames::RawSocket::new(ws.into_inner(), index);
    let fast = codec.subprotocol().encoding == courier_protocol::Encoding::MsgPack;
    let data_opcode = if codec.subprotocol().encoding.is_text() {
        1
    } else {
        2
    };
    let mut last_seq = 0u64;
    let mut count = 0u64;
    let mut failure: Option<String> = None;
    let mut replies: Vec<(u8, Vec<u8>)> = Vec::new();
    while count < expected && failure.is_none() {
        let mut on_message = |d: Delivery| {
            let now = stats.start.elapsed().as_micros() as u64;
            if last_seq != 0 && d.seq != last_seq + 1 {
                stats.gaps.fetch_add(1, Relaxed);
            }
            last_seq = d.seq;
            if let Some(t) = d.stamp {
                stats.latency.record(now.saturating_sub(t));
            }
            stats.delivered.fetch_add(1, Relaxed);
            stats.received(count);
            count += 1;
            // Stop reading at the last expected message: nothing else comes.
            count < expected
        };
        let read = sock
            .read(|frame| match frame {
                Frame::Data(bytes, text) => {
                    if let Some(d) = fast.then(|| fast_message(bytes)).flatten() {
                        return on_message(d);
                    }
                    let env: v2::Envelope = match codec.decode_frame(bytes, Some(text)) {
                        Ok(env) => env,
                        Err(e) => {
                            failure = Some(e.to_string());
                            return false;
                        }
                    };
                    let envs = match env.body {
                        Some(Body::Batch(b)) => b.envelopes,
                        body => vec![v2::Envelope { body }],
                    };
                    let mut more = true;
                    for env in envs {
                        match env.body {
                            Some(Body::Message(m)) => {
                                more = on_message(Delivery {
                                    seq: m.seq,
                                    stamp: stamp(&m.payload),
                                });
                            }
                            Some(Body::Ping(p)) => {
                                let pong = v2::Envelope {
                                    body: Some(Body::Pong(v2::Pong { ts: p.ts })),
                                };
                                if let Ok(b) = codec.encode(&pong) {
                                    replies.push((data_opcode, b.to_vec()));
                                }
                            }
                            Some(Body::Disconnect(d)) => {
                                failure = Some(format!("disconnect {} {}", d.code, d.reason));
                                return false;
                            }
                            _ => {}
                        }
                    }
                    more
                }
                Frame::Ping(p) => {
                    replies.push((10, p.to_vec()));
                    true
                }
                Frame::Other(10) => true,
                Frame::Close => {
                    failure = Some("connection closed".into());
                    false
                }
                Frame::Other(op) => {
                    failure = Some(format!("unexpected frame, opcode {op}"));
                    false
                }
            })
            .await;
        match read {
            Ok(true) => {}
            Ok(false) => failure = failure.or(Some("connection closed".into())),
            Err(e) => failure = Some(e.to_string()),
        }
        for (opcode, bytes) in replies.drain(..) {
            let _ = sock.send(opcode, &bytes).await;
        }
    }
    match failure {
        Some(f) => stats.error(format!("subscriber {index}: {f}")),
        None => {
            let _ = sock.send(8, &[]).await;
        }
    }
}

/// A payload `[t, "xxx…"]` of exactly `size` bytes (at least 11).
fn payload(t: u64, size: usize) -> anyhow::Result<Bytes> {
    let base = wire::to_payload(&(t, ""))?.len();
    let mut pad = size.saturating_sub(base);
    loop {
        let p = wire::to_payload(&(t, "x".repeat(pad)))?;
        if p.len() <= size || pad == 0 {
            return Ok(p);
        }
        pad -= 1;
    }
}

async fn run_publisher(args: LoadArgs, stats: Arc<Stats>) -> anyhow::Result<()> {
    let url = args.publish_url.as_deref().unwrap_or(&args.url[0]);
    let (ws, codec) = open(&args, url).await.context("publisher")?;
    let (mut tx, mut rx) = ws.split();
    let reader_stats = stats.clone();
    let reader_codec = codec;
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            if let WsMessage::Close(frame) = &msg {
                let closed = frame.as_ref().map(|f| Closed {
                    code: u16::from(f.code),
                    reason: f.reason.to_string(),
                });
                reader_stats.publisher_ended(closed);
                break;
            }
            match decode(&reader_codec, msg) {
                Some(Ok(v2::Envelope {
                    body: Some(Body::PublishAck(_)),
                })) => {
                    reader_stats.acked.fetch_add(1, Relaxed);
                }
                Some(Ok(v2::Envelope {
                    body: Some(Body::Error(e)),
                })) => reader_stats.error(format!("publish: {}", e.message)),
                Some(Ok(v2::Envelope {
                    body: Some(Body::Disconnect(d)),
                })) => {
                    let closed = Closed {
                        code: u16::try_from(d.code).unwrap_or(u16::MAX),
                        reason: d.reason,
                    };
                    reader_stats.error(format!("publisher closed: {}", closed.summary()));
                    reader_stats.publisher_ended(Some(closed));
                }
                _ => {}
            }
        }
        reader_stats.publisher_ended(None);
    });
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut next = Instant::now();
    let stop = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs(s));
    for i in 0..args.publishes {
        if stop.is_some_and(|s| Instant::now() >= s) {
            break;
        }
        match interval {
            Some(step) => {
                next += step;
                tokio::time::sleep_until(next.into()).await;
            }
            None => {
                // Closed loop: at most `window` publishes not yet delivered
                // to every subscriber.
                while i >= stats.frontier.load(Relaxed) + args.window
                    && !stats.publisher_gone.load(Relaxed)
                {
                    stats.progress.notified().await;
                }
                let slot = &stats.pending[(i % args.window) as usize];
                slot.store(args.subscribers as u64, Relaxed);
            }
        }
        if stats.publisher_gone.load(Relaxed) {
            break;
        }
        let t = stats.start.elapsed().as_micros() as u64;
        let p = v2::Publish {
            id: format!("load-{i}"),
            channel: args.channel.clone(),
            payload: payload(t, args.payload_size)?,
        };
        if let Err(e) = tx.send(frame(&codec, Body::Publish(p))?).await {
            // Closed under us: the reader has (or will have) the close code.
            if stats.publisher_gone.load(Relaxed) {
                break;
            }
            return Err(e.into());
        }
        stats.published.fetch_add(1, Relaxed);
    }
    // Let the last acks arrive, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.acked.load(Relaxed) < stats.published.load(Relaxed)
        && !stats.publisher_gone.load(Relaxed)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = tx.close().await;
    reader.abort();
    Ok(())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn spawn_progress(stats: Arc<Stats>, args: &LoadArgs) -> tokio::task::JoinHandle<()> {
    let (n, tty) = (args.subscribers, std::io::stderr().is_terminal());
    tokio::spawn(async move {
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let d = stats.delivered.load(Relaxed);
            let rate = (d - last.1) as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), d);
            let line = format!(
                "connected {}/{n}  published {}  delivered {d} ({:.0}/s)  errors {}",
                stats.connected.load(Relaxed),
                stats.published.load(Relaxed),
                rate,
                stats.errors.load(Relaxed)
            );
            if tty {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
        }
    })
}

/// Runs `courier load`. One thread: the generator is meant to be pinned to
/// one core (`taskset`), and a single-threaded runtime wakes tasks without
/// cross-thread signalling.
pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: LoadArgs) -> anyhow::Result<()> {
    if args.subscribers == 0 {
        bail!("--subscribers must be at least 1");
    }
    if args.window == 0 {
        bail!("--window must be at least 1");
    }
    if let Some(secs) = args.storm {
        let report = storm::run(&args, secs).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        let bad = ["lost", "duplicated", "not_resumed"]
            .into_iter()
            .filter(|k| report[*k].as_u64().unwrap_or(0) > 0)
            .collect::<Vec<_>>();
        if !bad.is_empty() {
            bail!("reconnect storm: {} not 0", bad.join(", "));
        }
        return Ok(());
    }
    let stats = Arc::new(Stats {
        start: Instant::now(),
        delivered: AtomicU64::new(0),
        published: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        gaps: AtomicU64::new(0),
        connected: AtomicU64::new(0),
        latency: Histogram::new(),
        connect: Histogram::new(),
        pending: if args.rate > 0.0 || args.idle.is_some() {
            Vec::new()
        } else {
            (0..args.window).map(|_| AtomicU64::new(0)).collect()
        },
        frontier: AtomicU64::new(0),
        progress: Notify::new(),
        first_error: Default::default(),
        publisher_closed: Default::default(),
        publisher_gone: Default::default(),
    });
    let progress = spawn_progress(stats.clone(), &args);
    let rss_before = args.server_pid.and_then(rss_kib);

    // Connect every subscriber, bounded concurrency.
    let connect_start = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut opening = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let (gate, args, stats) = (gate.clone(), args.clone(), stats.clone());
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore open");
            let t = Instant::now();
            let url = &args.url[i % args.url.len()];
            let r = subscribe(&args, url).await;
            if r.is_ok() {
                stats.connected.fetch_add(1, Relaxed);
                stats.connect.record(t.elapsed().as_micros() as u64);
            }
            r
        }));
    }
    let mut subs = Vec::with_capacity(args.subscribers);
    for (i, h) in opening.into_iter().enumerate() {
        match h.await? {
            Ok(s) => subs.push(s),
            Err(e) => bail!("subscriber {i} failed to connect: {e:#}"),
        }
    }
    let connect_time = connect_start.elapsed();
    let mut slow_subs = Vec::with_capacity(args.slow);
    for i in 0..args.slow {
        match subscribe(&args, &args.url[i % args.url.len()]).await {
            Ok(s) => slow_subs.push(s),
            Err(e) => bail!("slow subscriber {i} failed to connect: {e:#}"),
        }
    }

    let limit = Duration::from_secs(args.timeout);
    let mut report = serde_json::json!({
        "url": args.url.join(" "), "publish_url": args.publish_url.as_deref().unwrap_or(&args.url[0]), "subprotocol": args.subprotocol.name(), "subscribers": args.subscribers,
        "connect_seconds": connect_time.as_secs_f64(),
        "connect_p50_ms": stats.connect.quantile(0.5) as f64 / 1000.0,
        "connect_p99_ms": stats.connect.quantile(0.99) as f64 / 1000.0,
    });

    if let Some(secs) = args.idle {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after = args.server_pid.and_then(rss_kib);
        if let (Some(b), Some(a)) = (rss_before, rss_after) {
            let per = (a.saturating_sub(b) * 1024) as f64 / args.subscribers as f64;
            report["server_rss_before_kib"] = b.into();
            report["server_rss_after_kib"] = a.into();
            report["server_bytes_per_connection"] = (per.round() as u64).into();
        }
        let holders: Vec<_> = subs
            .into_iter()
            .enumerate()
            .map(|(i, (ws, codec))| {
                tokio::spawn(run_subscriber(ws, codec, i, u64::MAX, stats.clone()))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        holders.iter().for_each(|h| h.abort());
    } else {
        let expected = args.publishes;
        let mut readers: Vec<_> = subs
            .into_iter()
            .enumerate()
            .map(|(i, (ws, codec))| {
                tokio::spawn(run_subscriber(ws, codec, i, expected, stats.clone()))
            })
            .collect();
        let t0 = Instant::now();
        let (slow_stop, slow_stopped) = tokio::sync::watch::channel(false);
        let slow_every = Duration::from_millis(args.slow_read_ms);
        let slow: Vec<_> = slow_subs
            .into_iter()
            .map(|(ws, codec)| tokio::spawn(slow::run(ws, codec, slow_every, slow_stopped.clone())))
            .collect();
        let mut publisher = tokio::spawn(run_publisher(args.clone(), stats.clone()));
        let mut published = None;
        {
            let all = async {
                for r in readers.iter_mut() {
                    let _ = r.await;
                }
            };
            tokio::pin!(all);
            let mut deadline = tokio::time::Instant::now() + limit;
            let mut cut_short = false;
            loop {
                tokio::select! {
                    _ = &mut all => break,
                    r = &mut publisher, if published.is_none() => {
                        published = Some(r);
                        if stats.publisher_gone.load(Relaxed) || args.duration.is_some() {
                            // Nothing more will be published: give what is
                            // in flight a moment, then report.
                            cut_short = true;
                            deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(2));
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        if !cut_short {
                            stats.error(format!("timed out after {limit:?}"));
                        }
                        break;
                    }
                }
            }
        }
        readers.iter().for_each(|r| r.abort());
        let elapsed = t0.elapsed().as_secs_f64();
        if !slow.is_empty() {
            // Their outcome so far: how many frames they took, how they ended.
            let _ = slow_stop.send(true);
            let mut outcomes = Vec::new();
            for s in slow {
                outcomes.push(s.await.unwrap_or_default());
            }
            report["slow_subscribers"] = outcomes.len().into();
            report["slow_frames_read"] = outcomes.iter().map(|o| o.frames).sum::<u64>().into();
            report["slow_closed_4100"] = outcomes
                .iter()
                .filter(|o| o.code == Some(courier_protocol::close::SLOW_CONSUMER))
                .count()
                .into();
            report["slow_dropped"] = outcomes.iter().filter(|o| o.dropped).count().into();
        }
        let published = match published {
            Some(r) => r,
            None => publisher.await,
        };
        // The report comes first whatever happened: a failed publisher is
        // an error in it, not a reason to print nothing.
        match published {
            Ok(Ok(())) => {}
            Ok(Err(e)) => stats.error(format!("publisher: {e:#}")),
            Err(e) => stats.error(format!("publisher task: {e}")),
        }
        let delivered = stats.delivered.load(Relaxed);
        let sent = stats.published.load(Relaxed);
        let acked = stats.acked.load(Relaxed);
        // After a close, publishes the server never acknowledged were never
        // accepted: only acknowledged ones can go missing.
        let accepted = if stats.publisher_gone.load(Relaxed) {
            acked
        } else {
            sent
        };
        let lost = (accepted * args.subscribers as u64).saturating_sub(delivered);
        let ms = |us: u64| us as f64 / 1000.0;
        for (k, v) in [
            ("publishes", serde_json::json!(args.publishes)),
            ("published", sent.into()),
            ("acked", acked.into()),
            ("payload_bytes", args.payload_size.into()),
            (
                "rate",
                if args.rate > 0.0 {
                    args.rate.into()
                } else {
                    "closed-loop".into()
                },
            ),
            ("delivered", delivered.into()),
            ("missing", lost.into()),
            ("gaps", stats.gaps.load(Relaxed).into()),
            ("seconds", elapsed.into()),
            (
                "delivered_per_second",
                (delivered as f64 / elapsed).round().into(),
            ),
            ("latency_p50_ms", ms(stats.latency.quantile(0.5)).into()),
            ("latency_p99_ms", ms(stats.latency.quantile(0.99)).into()),
            ("latency_max_ms", ms(stats.latency.max.load(Relaxed)).into()),
        ] {
            report[k] = v;
        }
    }
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    report["errors"] = stats.errors.load(Relaxed).into();
    if let Some(e) = stats.first_error.lock().expect("lock").clone() {
        report["first_error"] = e.into();
    }
    let closed = stats.publisher_closed.lock().expect("lock").clone();
    if let Some(c) = &closed {
        report["publisher_closed"] = c.summary().into();
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for (k, v) in report.as_object().expect("object") {
            writeln!(out, "{k:>28}  {v}")?;
        }
    }
    drop(out);
    if let Some(c) = closed {
        bail!(
            "the server closed the publisher after {} publishes: {}\n{}",
            stats.published.load(Relaxed),
            c.summary(),
            c.hint()
        );
    }
    if stats.errors.load(Relaxed) > 0 {
        bail!("{} errors", stats.errors.load(Relaxed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_two_percent() {
        let h = Histogram::new();
        for us in 1..=100_000u64 {
            h.record(us);
        }
        for (q, want) in [(0.5, 50_000f64), (0.99, 99_000f64)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max.load(Relaxed), 100_000);
        assert_eq!(h.count(), 100_000);
    }

    #[test]
    fn payload_has_the_requested_size_and_carries_the_stamp() {
        for size in [32, 128, 1000] {
            let p = payload(123_456_789, size).unwrap();
            assert_eq!(p.len(), size);
            assert_eq!(stamp(&p), Some(123_456_789));
        }
    }

    #[test]
    fn fast_message_reads_what_the_codec_reads() {
        let codec = Codec::new("courier.v2.msgpack".parse().unwrap());
        let payload = payload(987_654, 128).unwrap();
        let message = v2::Envelope {
            body: Some(Body::Message(v2::Message {
                channel: "load".into(),
                epoch: "e-1".into(),
                seq: 70_000,
                id: "load-3".into(),
                ts: 1_700_000_000_000,
                payload: payload.clone(),
                publisher: "s_1".into(),
            })),
        };
        let bytes = codec.encode(&message).unwrap();
        assert_eq!(
            fast_message(&bytes),
            Some(Delivery {
                seq: 70_000,
                stamp: Some(987_654)
            })
        );
        // Anything else takes the full decode.
        let ping = codec
            .encode(&v2::Envelope {
                body: Some(Body::Ping(v2::Ping { ts: 5 })),
            })
            .unwrap();
        assert_eq!(fast_message(&ping), None);
        // Cut before the payload: not enough to report a delivery.
        assert_eq!(fast_message(&bytes[..bytes.len() / 3]), None);
        assert_eq!(fast_message(b""), None);
    }
}
