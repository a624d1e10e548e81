//! `courier-cluster`: a local multi-node deployment for benchmarks and for
//! trying things out, from the same helpers the tests use: a
//! `redis-server`, N `courier serve` nodes on the Redis engine and nginx in
//! front of them with `deploy/nginx/courier.conf`, all on free loopback
//! ports. Prints one line per process, then `ready`; stops everything when
//! its standard input closes (or on `kill NODE` / `restart NODE` lines,
//! kills or restarts that node first).
//!
//! ```text
//! courier-cluster --courier target/release/courier [--nodes 2] [--config extra.toml] [--log warn]
//! redis redis://127.0.0.1:41233/ 5120
//! node 0 ws://127.0.0.1:40111/ws 5121
//! node 1 ws://127.0.0.1:40112/ws 5122
//! nginx ws://127.0.0.1:40113/ws 5123
//! ready
//! ```
//!
//! `--config` is TOML prepended to every node's `[engine]` table (so it
//! must not have one). Used by `crates/server/benches/cluster.sh`.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use courier_testkit::{workspace_root, NginxProcess, Node, RedisProcess, NGINX_CONF};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut courier, mut nodes, mut extra, mut log) =
        (None, 2usize, String::new(), "warn".to_string());
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--courier" => courier = Some(value()?),
            "--nodes" => nodes = value()?.parse().context("--nodes")?,
            "--config" => {
                let path = value()?;
                extra =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            }
            "--log" => log = value()?,
            "-h" | "--help" => {
                println!("usage: courier-cluster --courier PATH [--nodes N] [--config FILE] [--log FILTER]");
                return Ok(());
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    let courier = courier.context("--courier PATH (a `courier` binary) is required")?;
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let redis = RedisProcess::start()?;
    let config = format!(
        "{extra}\n[engine]\nkind = \"redis\"\nurl = \"{}\"\n",
        redis.url()
    );
    let mut running = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        running.push(Node::start_with_log(&courier, &config, &log)?);
    }
    let upstreams: Vec<_> = running.iter().map(Node::addr).collect();
    let nginx = NginxProcess::start(&workspace_root().join(NGINX_CONF), &upstreams)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "redis {} {}", redis.url(), redis.pid().unwrap_or(0))?;
    for (i, n) in running.iter().enumerate() {
        writeln!(out, "node {i} {} {}", n.ws_url(), n.pid().unwrap_or(0))?;
    }
    writeln!(out, "nginx {} {}", nginx.ws_url(), nginx.pid().unwrap_or(0))?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let (cmd, i) = (
            words.next(),
            words.next().and_then(|w| w.parse::<usize>().ok()),
        );
        let Some(node) = i.and_then(|i| running.get_mut(i)) else {
            eprintln!("courier-cluster: expected `kill N` or `restart N`, got {line:?}");
            continue;
        };
        match cmd {
            Some("kill") => node.kill()?,
            Some("restart") => node.restart()?,
            _ => eprintln!("courier-cluster: unknown command {line:?}"),
        }
        println!("done {line}");
    }
    // Dropping stops nginx, the nodes and Redis.
    Ok(())
}
