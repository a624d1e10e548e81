//! Fan-out benchmark of the reference server, in the shape of
//! /work/shared/reference/performance-anchors.md: the server runs in a child
//! process on one core (a current-thread runtime), the load generator in
//! this process; N subscribers on one channel, one publisher, 128-byte
//! payloads, closed loop (at most 64 publishes in flight). Reports delivered
//! messages per second and the server's resident memory per idle connection.
//!
//! `cargo bench -p courier-server --bench fanout -- [subscribers] [messages]`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, wire, Codec, Subprotocol};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const PROTOCOL: &str = "courier.v2.msgpack";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve();
    }
    // `cargo bench` passes `--bench`; numeric arguments are ours.
    let nums: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let subscribers = nums.first().copied().unwrap_or(1000);
    let messages = nums.get(1).copied().unwrap_or(2000);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let pid = child.id();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let before = rss_kib(pid);
        let mut subs = Vec::new();
        for _ in 0..subscribers {
            subs.push(open(&addr).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = rss_kib(pid);
        let per_conn = (idle.saturating_sub(before)) as f64 * 1024.0 / subscribers as f64;

        let delivered = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for (i, mut ws) in subs.into_iter().enumerate() {
            send(
                &mut ws,
                Body::Subscribe(v2::Subscribe {
                    id: "s".into(),
                    channel: "bench".into(),
                    resume: None,
                }),
            )
            .await;
            let delivered = delivered.clone();
            readers.push(tokio::spawn(async move {
                let mut seen = 0usize;
                // The first frame is the subscribe_ack; then messages only.
                while let Some(Ok(m)) = ws.next().await {
                    if matches!(m, Message::Binary(_)) {
                        seen += 1;
                        if seen > 1 {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        if seen == messages + 1 {
                            break;
                        }
                    }
                }
                let _ = i;
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut publisher = open(&addr).await;
        let cpu_before = cpu_secs(pid);
        let payload = wire::to_payload(&"x".repeat(120)).unwrap();
        let start = Instant::now();
        let (mut sent, mut acked) = (0usize, 0usize);
        while acked < messages {
            // Bursts of 64: refill the window once it has fully drained.
            while sent < messages && sent - acked < 64 && (sent == acked || sent % 64 != 0) {
                let p = v2::Publish {
                    id: format!("p{sent}"),
                    channel: "bench".into(),
                    payload: payload.clone(),
                };
                publisher.feed(binary(Body::Publish(p))).await.unwrap();
                sent += 1;
            }
            publisher.flush().await.unwrap();
            match publisher.next().await {
                Some(Ok(Message::Binary(_))) => acked += 1,
                Some(Ok(_)) => {}
                other => panic!("publisher: {other:?}"),
            }
        }
        for r in readers {
            r.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let server_cpu = cpu_secs(pid) - cpu_before;
        let total = delivered.load(Ordering::Relaxed);
        println!("subscribers={subscribers} messages={messages} payload=128B");
        println!(
            "delivered {total} in {secs:.3} s = {:.0} msgs/s",
            total as f64 / secs
        );
        println!(
            "server CPU {server_cpu:.2} s over {secs:.2} s wall ({:.0}% of one core)",
            100.0 * server_cpu / secs
        );
        println!(
            "server RSS idle: {per_conn:.0} bytes per connection ({before} KiB -> {idle} KiB)"
        );
    });
    child.kill().ok();
    child.wait().ok();
}

/// The server process: one core (current-thread runtime), limits raised for load.
fn serve() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = courier_server::ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_connections_per_ip: 100_000,
            max_messages_per_second: 1_000_000,
            max_burst: 1_000_000,
            send_queue_frames: 4096,
            ..Default::default()
        };
        if let Ok(n) = std::env::var("READ_BUFFER") {
            config.ws_read_buffer_bytes = n.parse().unwrap();
        }
        let server = courier_server::start(config).await.unwrap();
        println!("listening {}", server.local_addr());
        std::future::pending::<()>().await;
    });
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(addr: &str) -> Ws {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", PROTOCOL.parse().unwrap());
    let config = WebSocketConfig::default().read_buffer_size(8192);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .unwrap();
    send(&mut ws, Body::Hello(v2::Hello::default())).await;
    ws.next().await.unwrap().unwrap(); // welcome
    ws
}

fn binary(body: Body) -> Message {
    let codec = Codec::new(PROTOCOL.parse::<Subprotocol>().unwrap());
    Message::Binary(codec.encode(&v2::Envelope { body: Some(body) }).unwrap())
}

async fn send(ws: &mut Ws, body: Body) {
    ws.send(binary(body)).await.unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of process `pid`.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}
