//! `courier load --storm SECS`: the reconnect storm after a node dies.
//! N `courier-client` clients (the library's own reconnect backoff and
//! jitter, resume and dedupe, default settings) subscribe through the URLs
//! (a proxy in front of several nodes), one more client publishes at a
//! fixed rate for SECS seconds to `--publish-url`, and whoever runs the
//! benchmark kills a node meanwhile. The report says how many clients lost
//! their connection, how long until every one of them had reconnected and
//! resumed (from the first disconnect), how the resumes spread over time
//! (the jitter), and what reached each client: every acknowledged message
//! exactly once (`lost` and `duplicated` must be 0).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use courier_client::{Client, ClientConfig, ConnectionEvent, Recovery, SubscriptionEvent};
use tokio::sync::{watch, Semaphore};

use super::LoadArgs;

/// What one client saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Its first disconnect, since the run's start.
    disconnected_at: Option<Duration>,
    /// Its first successful resume after that disconnect.
    resumed_at: Option<Duration>,
    failed_recoveries: u64,
    gaps: u64,
    /// The position at its first subscribe: it must see everything after.
    start: u64,
    last: u64,
    delivered: u64,
    duplicated: u64,
}

/// Shared progress (for the progress line and the end condition).
#[derive(Default)]
struct Progress {
    connected: AtomicU64,
    disconnected: AtomicU64,
    resumed: AtomicU64,
    /// The highest seq acknowledged to the publisher (final once `done`).
    top: AtomicU64,
}

fn config(url: &str, args: &LoadArgs) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.offers([args.subprotocol.name()]);
    if !args.token.is_empty() {
        let token = args.token.clone();
        c.token_provider(move |_| {
            let token = token.clone();
            async move { Ok(Some(token)) }
        });
    }
    c
}

/// One subscriber: records what it sees until `done` says the publisher
/// finished and it has the last acknowledged message (or `done` says stop).
async fn subscriber(
    client: Client,
    channel: String,
    start: Instant,
    progress: Arc<Progress>,
    mut done: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut events = client.events();
    let Ok(mut sub) = client.subscribe(channel).await else {
        return seen;
    };
    let mut first = true;
    loop {
        let finished = *done.borrow() && seen.last >= progress.top.load(Relaxed);
        if finished {
            break;
        }
        tokio::select! {
            e = events.recv() => match e {
                Some(ConnectionEvent::Disconnected { .. }) if seen.disconnected_at.is_none() => {
                    seen.disconnected_at = Some(start.elapsed());
                    progress.disconnected.fetch_add(1, Relaxed);
                }
                Some(_) => {}
                None => break,
            },
            e = sub.recv() => match e {
                Some(SubscriptionEvent::Subscribed { position, recovery }) => match recovery {
                    _ if first => {
                        first = false;
                        seen.start = position.seq;
                        seen.last = position.seq;
                    }
                    Recovery::Recovered { .. } => {
                        if seen.disconnected_at.is_some() && seen.resumed_at.is_none() {
                            seen.resumed_at = Some(start.elapsed());
                            progress.resumed.fetch_add(1, Relaxed);
                        }
                    }
                    Recovery::Failed { .. } => seen.failed_recoveries += 1,
                    Recovery::NotRequested => {}
                },
                Some(SubscriptionEvent::Message(m)) => {
                    if m.seq <= seen.last {
                        seen.duplicated += 1;
                    } else {
                        seen.delivered += 1;
                        seen.last = m.seq;
                    }
                }
                Some(SubscriptionEvent::Gap { .. }) => seen.gaps += 1,
                Some(SubscriptionEvent::Ended(_)) | None => break,
                Some(_) => {}
            },
            _ = done.changed() => {}
        }
    }
    client.close().await;
    seen
}

/// Runs the storm measurement; returns the report.
pub(super) async fn run(args: &LoadArgs, secs: u64) -> anyhow::Result<serde_json::Value> {
    if args.rate <= 0.0 {
        bail!("--storm needs --rate (publishes per second)");
    }
    let start = Instant::now();
    let progress = Arc::new(Progress::default());
    let (done_tx, done_rx) = watch::channel(false);

    // Connect every subscriber (bounded concurrency), round robin over the URLs.
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut opening = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let url = args.url[i % args.url.len()].clone();
        let (gate, cfg) = (gate.clone(), config(&url, args));
        let progress = progress.clone();
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore open");
            let c = cfg.connect().await?;
            progress.connected.fetch_add(1, Relaxed);
            anyhow::Ok(c)
        }));
    }
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for (i, h) in opening.into_iter().enumerate() {
        let client = h
            .await?
            .with_context(|| format!("subscriber {i} failed to connect"))?;
        subscribers.push(tokio::spawn(subscriber(
            client,
            args.channel.clone(),
            start,
            progress.clone(),
            done_rx.clone(),
        )));
    }
    let connect_seconds = start.elapsed().as_secs_f64();
    let ticker = {
        let progress = progress.clone();
        let n = args.subscribers;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!(
                    "storm: connected {}/{n}  disconnected {}  resumed {}  top seq {}",
                    progress.connected.load(Relaxed),
                    progress.disconnected.load(Relaxed),
                    progress.resumed.load(Relaxed),
                    progress.top.load(Relaxed)
                );
            }
        })
    };

    // The publisher: a fixed rate for `secs` seconds, each publish awaited
    // across its own reconnects (the client resends with the same id).
    let publish_url = args
        .publish_url
        .clone()
        .unwrap_or_else(|| args.url[0].clone());
    let publisher = config(&publish_url, args)
        .connect()
        .await
        .context("publisher failed to connect")?;
    let step = Duration::from_secs_f64(1.0 / args.rate);
    let mut next = Instant::now();
    let (mut acked, mut publish_errors) = (0u64, 0u64);
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        next += step;
        tokio::time::sleep_until(next.into()).await;
        match publisher
            .publish(
                &args.channel,
                &serde_json::json!({ "t": start.elapsed().as_micros() as u64 }),
            )
            .await
        {
            Ok(ack) => {
                acked += 1;
                progress.top.fetch_max(ack.seq, Relaxed);
            }
            Err(_) => publish_errors += 1,
        }
    }
    publisher.close().await;
    let _ = done_tx.send(true);

    // Everyone catches up to the last acknowledged message, bounded.
    let limit = Duration::from_secs(args.timeout);
    let mut seen = Vec::with_capacity(subscribers.len());
    let deadline = tokio::time::Instant::now() + limit;
    for s in subscribers {
        let mut s = s;
        match tokio::time::timeout_at(deadline, &mut s).await {
            Ok(r) => seen.push(r?),
            Err(_) => {
                s.abort();
                seen.push(Seen::default());
            }
        }
    }
    ticker.abort();
    Ok(report(
        args,
        connect_seconds,
        acked,
        publish_errors,
        &progress,
        &seen,
    ))
}

fn report(
    args: &LoadArgs,
    connect_seconds: f64,
    acked: u64,
    publish_errors: u64,
    progress: &Progress,
    seen: &[Seen],
) -> serde_json::Value {
    let top = progress.top.load(Relaxed);
    let first = seen.iter().filter_map(|s| s.disconnected_at).min();
    let mut resumed: Vec<Duration> = seen.iter().filter_map(|s| s.resumed_at).collect();
    resumed.sort();
    let disconnected = seen.iter().filter(|s| s.disconnected_at.is_some()).count();
    let since = |d: Duration| {
        first
            .map(|f| d.saturating_sub(f).as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let quantile = |q: f64| -> f64 {
        if resumed.is_empty() {
            return 0.0;
        }
        let i = ((resumed.len() as f64 * q).ceil() as usize).clamp(1, resumed.len()) - 1;
        since(resumed[i])
    };
    // Resumes per 100 ms from the first disconnect: the jitter's spread.
    let mut buckets: Vec<u64> = Vec::new();
    for r in &resumed {
        let b = (since(*r) / 100.0) as usize;
        if buckets.len() <= b {
            buckets.resize(b + 1, 0);
        }
        buckets[b] += 1;
    }
    let peak = buckets.iter().copied().max().unwrap_or(0);
    let all_ms = resumed.last().map(|r| since(*r)).unwrap_or(0.0);
    let lost: u64 = seen
        .iter()
        .map(|s| top.saturating_sub(s.start).saturating_sub(s.delivered))
        .sum();
    serde_json::json!({
        "mode": "storm",
        "urls": args.url,
        "publish_url": args.publish_url.clone().unwrap_or_else(|| args.url[0].clone()),
        "subprotocol": args.subprotocol.name(),
        "clients": args.subscribers,
        "connect_seconds": connect_seconds,
        "rate": args.rate,
        "acked": acked,
        "publish_errors": publish_errors,
        "top_seq": top,
        "disconnected": disconnected,
        "resumed": resumed.len(),
        "not_resumed": disconnected - resumed.len().min(disconnected),
        "all_resumed_ms": all_ms,
        "resume_p50_ms": quantile(0.5),
        "resume_p90_ms": quantile(0.9),
        "resume_p99_ms": quantile(0.99),
        "resumes_peak_per_second": peak * 10,
        "resumes_mean_per_second": if all_ms > 0.0 { (resumed.len() as f64 / (all_ms / 1000.0)).round() } else { 0.0 },
        "failed_recoveries": seen.iter().map(|s| s.failed_recoveries).sum::<u64>(),
        "gaps": seen.iter().map(|s| s.gaps).sum::<u64>(),
        "delivered": seen.iter().map(|s| s.delivered).sum::<u64>(),
        "lost": lost,
        "duplicated": seen.iter().map(|s| s.duplicated).sum::<u64>(),
    })
}
