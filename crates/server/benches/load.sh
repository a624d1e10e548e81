#!/usr/bin/env bash
# Fan-out, latency, idle-memory and connect-time figures of docs/benchmarks.md,
# measured the way /work/shared/reference/performance-anchors.md measured the
# peers: `courier serve` pinned to core 0, `courier load` pinned to core 1,
# loopback, 1,000 subscribers, one publisher, 128-byte payloads.
#
#   cargo build --release -p courier-cli
#   crates/server/benches/load.sh            # RUNS=3 OUT=target/load
#
# Every run writes its `courier load --json` report to $OUT; the summary at
# the end gives median (min-max) over the runs. The idle runs start a fresh
# server each time so that memory freed by an earlier run cannot hide the
# cost of new connections.
#
# On a shared machine (other builds running) the script runs in its own
# session and raises that session's scheduling group to nice -20 when
# allowed, so the two pinned processes get their cores; `uptime` is printed
# before and after so the load can be reported with the figures.
set -euo pipefail

if [ -z "${COURIER_LOAD_SESSION:-}" ]; then
    COURIER_LOAD_SESSION=1 exec setsid -w "$0" "$@"
fi
# Linux autogroups: nice values only compete within a session's group, so
# the group itself is raised (root only; harmless elsewhere).
echo -20 2>/dev/null >/proc/self/autogroup || echo "note: running at normal priority" >&2

BIN=${COURIER:-target/release/courier}
SERVER_BIN=${COURIER_SERVER:-$BIN}   # another build of the server, same generator
RUNS=${RUNS:-3}
OUT=${OUT:-target/load}
PORT=${PORT:-18080}
URL="ws://127.0.0.1:$PORT/ws"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"  # 10,000 connections need more than 10,000 descriptors per process

cat >"$OUT/server.toml" <<EOF
listen = "127.0.0.1:$PORT"
max_messages_per_second = 1000000   # the publisher is one session
max_burst = 1000000
max_connections_per_ip = 30000      # every load connection comes from 127.0.0.1
EOF

SERVER=""
start_server() {
    # Emptied first: the previous server's "listening" line must not be
    # mistaken for this one's (the shell truncates the file only once the
    # background job starts).
    : >"$OUT/server.out"
    taskset -c 0 "$SERVER_BIN" serve --config "$OUT/server.toml" --log warn >"$OUT/server.out" 2>"$OUT/server.err" &
    SERVER=$!
    for _ in $(seq 100); do
        grep -q "listening" "$OUT/server.out" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server did not start" >&2
    exit 1
}
stop_server() {
    kill -TERM "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
}
trap stop_server EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
load() { taskset -c 1 "$BIN" load --url "$URL" --json "$@" 2>/dev/null; }

echo "load before: $(uptime)"
start_server
# One unrecorded run first: the server's first 1,000 connections and
# queues fault in fresh memory, which no later run pays.
load --subscribers 1000 --publishes 1000 --payload-size 128 --channel warmup >/dev/null
TIMEFORMAT='%U %S'
for i in $(seq "$RUNS"); do
    before=$(cpu_ticks)
    # The generator's own CPU (user, system) tells whether it or the server limited the run.
    gen=$( { time load --subscribers 1000 --publishes 3000 --payload-size 128 --channel "fanout$i" >"$OUT/fanout$i.json"; } 2>&1 )
    jq --argjson t $(($(cpu_ticks) - before)) --arg gen "$gen" \
        '. + {server_cpu_seconds: ($t / 100), generator_cpu_seconds: ($gen | split(" ") | map(tonumber) | add)}
           | . + {server_busy: (.server_cpu_seconds / .seconds), generator_busy: (.generator_cpu_seconds / .seconds),
                  server_us_per_delivery: (.server_cpu_seconds * 1e6 / .delivered)}' \
        "$OUT/fanout$i.json" >"$OUT/tmp.json" && mv "$OUT/tmp.json" "$OUT/fanout$i.json"
done
for i in $(seq "$RUNS"); do
    load --subscribers 1000 --publishes 100 --rate 20 --payload-size 128 --channel "rate$i" >"$OUT/rate$i.json"
done
stop_server
for n in 1000 10000; do
    for i in $(seq "$RUNS"); do
        start_server
        load --subscribers "$n" --idle 3 --server-pid "$SERVER" --channel idle >"$OUT/idle$n-$i.json"
        stop_server
    done
done
echo "load after: $(uptime)"

# median (min-max) of a field over a set of reports
stat() {
    jq -s -r --arg f "$1" --argjson scale "${3:-1}" '
        map(.[$f] * $scale) | sort | "\(.[(length / 2 | floor)] | . * 1000 | round / 1000) (\(.[0] | . * 1000 | round / 1000)-\(.[-1] | . * 1000 | round / 1000))"' $2
}
echo
echo "fan-out, closed loop (1,000 subscribers, 3,000 publishes, window 64)"
echo "  delivered msgs/s       $(stat delivered_per_second "$OUT/fanout*.json")"
echo "  latency p50 / p99 ms   $(stat latency_p50_ms "$OUT/fanout*.json") / $(stat latency_p99_ms "$OUT/fanout*.json")"
echo "  server CPU us/delivery $(stat server_us_per_delivery "$OUT/fanout*.json")"
echo "  server, generator busy $(stat server_busy "$OUT/fanout*.json") / $(stat generator_busy "$OUT/fanout*.json")"
echo "  missing, gaps          $(jq -s 'map(.missing + .gaps) | add' $OUT/fanout*.json)"
echo "fixed rate 20 publishes/s (1,000 subscribers, 100 publishes)"
echo "  latency p50 / p99 ms   $(stat latency_p50_ms "$OUT/rate*.json") / $(stat latency_p99_ms "$OUT/rate*.json")"
echo "  latency max ms         $(stat latency_max_ms "$OUT/rate*.json")"
echo "  missing, gaps          $(jq -s 'map(.missing + .gaps) | add' $OUT/rate*.json)"
for n in 1000 10000; do
    echo "idle, $n subscribed connections"
    echo "  server bytes/conn      $(stat server_bytes_per_connection "$OUT/idle$n-*.json")"
    echo "  connect s              $(stat connect_seconds "$OUT/idle$n-*.json")"
    echo "  connect p99 ms         $(stat connect_p99_ms "$OUT/idle$n-*.json")"
done
