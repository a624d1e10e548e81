#!/usr/bin/env bash
# Multi-node figures of docs/benchmarks.md, in one run so they compare:
#   - fan-out, 1,000 subscribers: one node on the memory engine, against two
#     nodes on Redis with the subscribers spread over both and the publisher
#     on one (closed loop, and at a fixed 20 publishes/s for latency);
#   - Redis operations per publish (INFO commandstats around a run);
#   - a reconnect storm: 1,000 `courier-client` clients through nginx on two
#     nodes, one node killed with SIGKILL: time until every disconnected
#     client resumed, the spread of the resumes (jitter), lost/duplicated.
#
#   cargo build --release -p courier-cli -p courier-testkit
#   crates/server/benches/cluster.sh            # RUNS=3 OUT=target/cluster
#
# The deployment under test (every node, Redis, nginx) is pinned to core 0,
# `courier load` to core 1, as in load.sh: two nodes on Redis get the same
# CPU as the one memory node, so the figures show what Redis costs; on
# separate machines each node has its own. Every run writes its
# `courier load --json` report to $OUT; the summary gives median (min-max).
set -euo pipefail

if [ -z "${COURIER_LOAD_SESSION:-}" ]; then
    COURIER_LOAD_SESSION=1 exec setsid -w "$0" "$@"
fi
echo -20 2>/dev/null >/proc/self/autogroup || echo "note: running at normal priority" >&2

BIN=${COURIER:-target/release/courier}
CLUSTER=${COURIER_CLUSTER:-target/release/courier-cluster}
RUNS=${RUNS:-3}
OUT=${OUT:-target/cluster}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

cat >"$OUT/node.toml" <<EOF
max_messages_per_second = 1000000   # the publisher is one session
max_burst = 1000000
max_connections_per_ip = 30000      # every load connection comes from 127.0.0.1
# Clients reset their backoff after a session stayed open one heartbeat
# interval (CLIENT-BACKOFF-JITTER); 5 s lets the storm's clients get there
# before the kill, as long-lived clients in production have.
heartbeat_interval_ms = 5000
EOF

# --- one node, memory engine (as load.sh) -----------------------------------
SERVER=""
start_memory() {
    : >"$OUT/server.out"
    taskset -c 0 "$BIN" serve --config "$OUT/node.toml" --listen 127.0.0.1:0 --log warn >"$OUT/server.out" 2>"$OUT/server.err" &
    SERVER=$!
    for _ in $(seq 100); do
        MEMORY_URL=$(sed -n 's/^courier: listening on //p' "$OUT/server.out")
        [ -n "$MEMORY_URL" ] && return 0
        sleep 0.05
    done
    echo "server did not start" >&2
    exit 1
}
stop_memory() { kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""; }

# --- Redis, two nodes, nginx (courier-cluster, the tests' helpers) ----------
CLUSTER_PID=""
start_cluster() {
    rm -f "$OUT/ctl" && mkfifo "$OUT/ctl"
    : >"$OUT/cluster.out"
    taskset -c 0 "$CLUSTER" --courier "$BIN" --nodes 2 --config "$OUT/node.toml" --log warn \
        <"$OUT/ctl" >"$OUT/cluster.out" 2>"$OUT/cluster.err" &
    CLUSTER_PID=$!
    exec 4>"$OUT/ctl"   # its stdin: closing it stops the deployment
    for _ in $(seq 400); do
        if grep -q '^ready' "$OUT/cluster.out"; then
            REDIS_PORT=$(awk '/^redis/ {split($2, a, ":"); sub("/", "", a[3]); print a[3]}' "$OUT/cluster.out")
            NODE0=$(awk '/^node 0/ {print $3}' "$OUT/cluster.out")
            NODE0_PID=$(awk '/^node 0/ {print $4}' "$OUT/cluster.out")
            NODE1=$(awk '/^node 1/ {print $3}' "$OUT/cluster.out")
            NGINX=$(awk '/^nginx/ {print $2}' "$OUT/cluster.out")
            return 0
        fi
        sleep 0.05
    done
    echo "cluster did not start: $(cat "$OUT/cluster.err")" >&2
    exit 1
}
stop_cluster() { exec 4>&- || true; [ -n "$CLUSTER_PID" ] && wait "$CLUSTER_PID" 2>/dev/null || true; CLUSTER_PID=""; }
trap 'stop_memory; stop_cluster' EXIT

load() { taskset -c 1 "$BIN" load --json "$@" 2>/dev/null; }
redis_calls() {
    redis-cli -p "$REDIS_PORT" INFO commandstats | awk -F'[=,:]' '/^cmdstat_/ {n += $3} END {print n}'
}

echo "load before: $(uptime)"
start_memory
load --url "$MEMORY_URL" --subscribers 1000 --publishes 1000 --channel warmup >/dev/null
for i in $(seq "$RUNS"); do
    load --url "$MEMORY_URL" --subscribers 1000 --publishes 3000 --channel "fanout$i" >"$OUT/fanout-memory$i.json"
    load --url "$MEMORY_URL" --subscribers 1000 --publishes 100 --rate 20 --channel "rate$i" >"$OUT/rate-memory$i.json"
done
stop_memory

start_cluster
TWO=(--url "$NODE0" --url "$NODE1" --publish-url "$NODE0")
load "${TWO[@]}" --subscribers 1000 --publishes 1000 --channel warmup >/dev/null
for i in $(seq "$RUNS"); do
    before=$(redis_calls)
    load "${TWO[@]}" --subscribers 1000 --publishes 3000 --channel "fanout$i" >"$OUT/fanout-redis$i.json"
    after=$(redis_calls)
    # Commands per publish, everything included (scripts, pub/sub, presence refresh, INFO itself).
    jq --argjson c $((after - before)) '. + {redis_commands_per_publish: ($c / .published)}' \
        "$OUT/fanout-redis$i.json" >"$OUT/tmp.json" && mv "$OUT/tmp.json" "$OUT/fanout-redis$i.json"
    load "${TWO[@]}" --subscribers 1000 --publishes 100 --rate 20 --channel "rate$i" >"$OUT/rate-redis$i.json"
done
stop_cluster

# The storm: a fresh deployment per run; node 0 is killed once every client
# is subscribed and publishes flow; the publisher is on node 1, which survives.
for i in $(seq "$RUNS"); do
    start_cluster
    taskset -c 1 "$BIN" load --url "$NGINX" --publish-url "$NODE1" --subscribers 1000 \
        --storm 15 --rate 50 --channel "storm$i" --timeout 60 >"$OUT/storm$i.json" 2>"$OUT/storm$i.err" &
    LOADER=$!
    for _ in $(seq 600); do grep -q "connected 1000/1000" "$OUT/storm$i.err" 2>/dev/null && break; sleep 0.05; done
    sleep 6   # > heartbeat_interval_ms: the clients' backoff has reset
    kill -KILL "$NODE0_PID"
    wait "$LOADER" || echo "storm run $i reported a failure (see $OUT/storm$i.json)" >&2
    stop_cluster
done
echo "load after: $(uptime)"

stat() {
    jq -s -r --arg f "$1" --argjson scale "${3:-1}" '
        map(.[$f] * $scale) | sort | "\(.[(length / 2 | floor)] | . * 1000 | round / 1000) (\(.[0] | . * 1000 | round / 1000)-\(.[-1] | . * 1000 | round / 1000))"' $2
}
echo
for e in memory redis; do
    echo "fan-out, closed loop, 1,000 subscribers, 3,000 publishes ($e: $([ $e = memory ] && echo 'one node' || echo 'two nodes, publisher on one'))"
    echo "  delivered msgs/s       $(stat delivered_per_second "$OUT/fanout-$e*.json")"
    echo "  latency p50 / p99 ms   $(stat latency_p50_ms "$OUT/fanout-$e*.json") / $(stat latency_p99_ms "$OUT/fanout-$e*.json")"
    echo "  missing, gaps          $(jq -s 'map(.missing + .gaps) | add' $OUT/fanout-$e*.json)"
    echo "fixed rate 20 publishes/s, 1,000 subscribers ($e)"
    echo "  latency p50 / p99 ms   $(stat latency_p50_ms "$OUT/rate-$e*.json") / $(stat latency_p99_ms "$OUT/rate-$e*.json")"
    echo "  missing, gaps          $(jq -s 'map(.missing + .gaps) | add' $OUT/rate-$e*.json)"
done
echo "  Redis commands/publish $(stat redis_commands_per_publish "$OUT/fanout-redis*.json")"
echo "reconnect storm: 1,000 clients through nginx on two nodes, one killed"
echo "  disconnected           $(stat disconnected "$OUT/storm*.json")"
echo "  all resumed after ms   $(stat all_resumed_ms "$OUT/storm*.json")"
echo "  resume p50 / p99 ms    $(stat resume_p50_ms "$OUT/storm*.json") / $(stat resume_p99_ms "$OUT/storm*.json")"
echo "  resumes/s peak, mean   $(stat resumes_peak_per_second "$OUT/storm*.json"), $(stat resumes_mean_per_second "$OUT/storm*.json")"
echo "  lost, duplicated, failed recoveries, not resumed  $(jq -s 'map(.lost) | add' $OUT/storm*.json), $(jq -s 'map(.duplicated) | add' $OUT/storm*.json), $(jq -s 'map(.failed_recoveries) | add' $OUT/storm*.json), $(jq -s 'map(.not_resumed) | add' $OUT/storm*.json)"
