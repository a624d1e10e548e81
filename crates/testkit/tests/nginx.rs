//! The `NginxProcess` helper: the repository's configuration rendered for
//! test ports, and Debian's nginx running it in front of two plain HTTP
//! listeners (the multi-node tests of `courier-cli` put real nodes there).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use courier_testkit::{render_nginx_conf, workspace_root, NginxProcess, NGINX_CONF};

fn template() -> String {
    std::fs::read_to_string(workspace_root().join(NGINX_CONF)).unwrap()
}

#[test]
fn the_repository_config_is_rendered_with_only_its_ports_changed() {
    let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    let c: SocketAddr = "127.0.0.1:7003".parse().unwrap();
    let out = render_nginx_conf(&template(), 9000, &[a, b, c]).unwrap();
    assert!(out.contains("    listen 127.0.0.1:9000;\n"), "{out}");
    for up in [a, b, c] {
        assert!(
            out.contains(&format!("    server {up} max_fails=1 fail_timeout=5s;\n")),
            "{out}"
        );
    }
    assert!(
        !out.contains("8081") && !out.contains("listen 8080"),
        "{out}"
    );
    // Everything else is the file as shipped.
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.trim_start().starts_with("server 127.") && !l.contains("listen "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(strip(&out), strip(&template()));
    assert!(render_nginx_conf("server { listen 80; }", 1, &[a]).is_err());
    assert!(render_nginx_conf(&template(), 1, &[]).is_err());
}

/// A tiny HTTP server answering every request with its own name.
fn named_upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                name.len()
            );
        }
    });
    addr
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out
}

#[test]
fn nginx_balances_without_affinity_skips_a_dead_upstream_and_reloads() {
    let a = named_upstream("node-a");
    let b = named_upstream("node-b");
    let mut nginx = NginxProcess::start(&workspace_root().join(NGINX_CONF), &[a, b]).unwrap();
    let answers: Vec<String> = (0..4).map(|_| get(nginx.addr(), "/healthz")).collect();
    assert!(
        answers.iter().any(|r| r.ends_with("node-a"))
            && answers.iter().any(|r| r.ends_with("node-b")),
        "round robin, no stickiness: {answers:?}"
    );
    // Paths other than the protocol's and /healthz are not proxied.
    assert!(get(nginx.addr(), "/metrics").starts_with("HTTP/1.1 404"));
    // An upstream that refuses connections is skipped: every request
    // still gets an answer (proxy_next_upstream error).
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    nginx.reload(&[dead, a]).unwrap();
    for _ in 0..4 {
        let r = get(nginx.addr(), "/healthz");
        assert!(r.ends_with("node-a"), "{r}\n{}", nginx.log());
    }
    nginx.stop(Duration::from_secs(5)).unwrap();
    assert!(
        std::net::TcpStream::connect(nginx.addr()).is_err(),
        "stopped"
    );
}
