//! The `RedisProcess` helper against a real `redis-server`.

use courier_testkit::RedisProcess;

#[test]
fn starts_kills_and_restarts_empty_on_the_same_port() {
    let mut redis = RedisProcess::start().unwrap();
    let port = redis.port();
    assert_eq!(redis.command("SET k v").unwrap(), "+OK\r\n");
    assert_eq!(redis.command("GET k").unwrap(), "$1\r\nv\r\n");

    redis.kill().unwrap();
    assert!(!redis.is_running());
    assert!(
        redis.command("PING").is_err(),
        "nothing answers once killed"
    );

    redis.restart().unwrap();
    assert_eq!(redis.port(), port, "restarted on the same port");
    assert_eq!(
        redis.command("GET k").unwrap(),
        "$-1\r\n",
        "restarted empty"
    );

    redis.stop().unwrap();
    assert!(redis.command("PING").is_err(), "stopped with SIGTERM");
}

#[test]
fn two_servers_get_different_ports_and_drop_kills_them() {
    let a = RedisProcess::start().unwrap();
    let b = RedisProcess::start().unwrap();
    assert_ne!(a.port(), b.port());
    let addr = a.addr();
    drop(a);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "dropped = killed"
    );
    assert_eq!(b.command("PING").unwrap(), "+PONG\r\n");
}

#[test]
fn a_persistent_server_keeps_its_data_across_a_kill() {
    let mut redis = RedisProcess::start_persistent().unwrap();
    assert_eq!(redis.command("SET k v").unwrap(), "+OK\r\n");
    redis.kill().unwrap();
    redis.restart().unwrap();
    assert_eq!(redis.command("GET k").unwrap(), "$1\r\nv\r\n");
}
