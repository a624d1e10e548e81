//! A fault-injecting TCP proxy on 127.0.0.1. `blackhole()` silently stops
//! forwarding on every existing link in both directions while keeping the
//! sockets open (no FIN, no close frame): the failure only a heartbeat
//! deadline can detect. Links opened afterwards forward normally.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// How long a black-holed link is held open before the proxy lets go.
const HOLD: Duration = Duration::from_secs(20);

pub struct Proxy {
    pub url: String,
    /// Links opened so far.
    pub links: Arc<AtomicU64>,
    /// Links with a number below this are black-holed.
    cut: Arc<AtomicU64>,
}

impl Proxy {
    /// Proxies `ws://127.0.0.1:PORT/ws` to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let links = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicU64::new(0));
        let (links2, cut2) = (links.clone(), cut.clone());
        tokio::spawn(async move {
            // Bounded: a test opens a handful of links.
            for _ in 0..256 {
                let Ok((down, _)) = listener.accept().await else {
                    break;
                };
                let Ok(up) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let id = links2.fetch_add(1, Ordering::SeqCst);
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pump(dr, uw, id, cut2.clone()));
                tokio::spawn(pump(ur, dw, id, cut2.clone()));
            }
        });
        Proxy { url, links, cut }
    }

    /// Black-holes every link opened so far.
    pub fn blackhole(&self) {
        self.cut
            .store(self.links.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, id: u64, cut: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if id < cut.load(Ordering::SeqCst) {
            // Swallow everything from now on, keep both sockets open.
            let _ = tokio::time::timeout(HOLD, async {
                while let Ok(n) = from.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            drop(to);
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
