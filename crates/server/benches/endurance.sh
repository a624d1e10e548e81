#!/usr/bin/env bash
# Memory over time, the figures of docs/benchmarks.md "Endurance": load.sh's
# setup (`courier serve` pinned to core 0, `courier load` to core 1, loopback),
# with the server's RSS sampled while it runs.
#
#   cargo build --release -p courier-cli
#   crates/server/benches/endurance.sh              # all parts; OUT=target/endurance
#   PARTS="publish slow" crates/server/benches/endurance.sh
#   PARTS=publish DEDUPE_MAX=4294967295 crates/server/benches/endurance.sh  # bound lifted
#
# Parts:
#   publish  one publisher at full speed for $PUBLISH_SECONDS (60) s on one
#            channel, one subscriber: the dedupe record must not grow with the
#            publish rate (DEDUP-MAX). COURIER_SERVER=<other build> measures
#            another server with the same generator (before/after).
#   soak     $SOAK_CONNECTIONS (10,000) subscribed idle connections for
#            $SOAK_SECONDS (600) s, heartbeats answered: RSS growth ≈ 0.
#   slow     1,000 fast subscribers at full publish rate for $SLOW_SECONDS (30)
#            s, without and then with one subscriber that reads one frame per
#            100 ms: the fast ones' p99 and the server's RSS.
# Each part writes `courier load --json` reports and rss-<part>.txt
# ("seconds-since-start rss-kib" per line) to $OUT and prints a summary.
set -euo pipefail

if [ -z "${COURIER_LOAD_SESSION:-}" ]; then
    COURIER_LOAD_SESSION=1 exec setsid -w "$0" "$@"
fi
echo -20 2>/dev/null >/proc/self/autogroup || echo "note: running at normal priority" >&2

BIN=${COURIER:-target/release/courier}
SERVER_BIN=${COURIER_SERVER:-$BIN}
OUT=${OUT:-target/endurance}
PORT=${PORT:-18090}
PARTS=${PARTS:-publish soak slow}
PUBLISH_SECONDS=${PUBLISH_SECONDS:-60}
SOAK_CONNECTIONS=${SOAK_CONNECTIONS:-10000}
SOAK_SECONDS=${SOAK_SECONDS:-600}
SLOW_SECONDS=${SLOW_SECONDS:-30}
# The server's dedupe_max_per_channel (DEDUP-MAX); 4294967295 lifts the bound,
# so only the 120 s window limits the record: the "before" of the publish part.
DEDUPE_MAX=${DEDUPE_MAX:-100000}
URL="ws://127.0.0.1:$PORT/ws"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

cat >"$OUT/server.toml" <<EOF
listen = "127.0.0.1:$PORT"
max_messages_per_second = 1000000   # the publisher is one session
max_burst = 1000000
max_connections_per_ip = 30000      # every load connection comes from 127.0.0.1
dedupe_max_per_channel = $DEDUPE_MAX
EOF

SERVER=""
SAMPLER=""
start_server() {
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
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
    SAMPLER=""
    kill -TERM "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
}
trap stop_server EXIT
# sample <file> <interval>: the server's RSS in KiB, one line per interval.
sample() {
    local t0
    t0=$(date +%s.%N)
    while kill -0 "$SERVER" 2>/dev/null; do
        awk -v t0="$t0" -v now="$(date +%s.%N)" '/^VmRSS/ {printf "%.1f %d\n", now - t0, $2}' "/proc/$SERVER/status" || true
        sleep "$2"
    done >"$1" 2>/dev/null &
    SAMPLER=$!
}
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
load() { taskset -c 1 "$BIN" load --url "$URL" --json "$@" 2>/dev/null; }
# rss_at <file> <second>: the first sample at or after that second.
rss_at() { awk -v s="$2" '$1 >= s {print $2; exit}' "$1"; }
rss_max() { awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$1"; }

echo "load before: $(uptime)"
for part in $PARTS; do
    case $part in
    publish)
        start_server
        sample "$OUT/rss-publish.txt" 1
        load --subscribers 1 --publishes 1000000000 --duration "$PUBLISH_SECONDS" --window 256 \
            --channel dedupe --timeout $((PUBLISH_SECONDS + 60)) >"$OUT/publish.json" || true
        records=$(metric courier_dedupe_records)
        evicted=$(metric courier_dedupe_evicted_early_total)
        stop_server
        f="$OUT/rss-publish.txt"
        echo
        echo "full-speed publish, one channel, $PUBLISH_SECONDS s ($SERVER_BIN, dedupe_max_per_channel $DEDUPE_MAX)"
        echo "  published, per second  $(jq -r '.published' "$OUT/publish.json"), $(jq -r '.published / .seconds | round' "$OUT/publish.json")"
        echo "  server RSS KiB at 0/5/15/30/45/end s, max: $(rss_at "$f" 0) $(rss_at "$f" 5) $(rss_at "$f" 15) $(rss_at "$f" 30) $(rss_at "$f" 45) $(tail -1 "$f" | cut -d' ' -f2), $(rss_max "$f")"
        echo "  dedupe records, evicted early: ${records:-n/a}, ${evicted:-n/a}"
        echo "  missing, gaps          $(jq -r '.missing + .gaps' "$OUT/publish.json")"
        ;;
    soak)
        start_server
        sample "$OUT/rss-soak.txt" 10
        load --subscribers "$SOAK_CONNECTIONS" --idle "$SOAK_SECONDS" --server-pid "$SERVER" \
            --channel soak --timeout $((SOAK_SECONDS + 120)) >"$OUT/soak.json" || true   # the summary says what failed
        disconnects=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^courier_disconnects_total/ {s += $2} END {print s}')
        open=$(metric 'courier_connections{transport="ws"}')
        stop_server
        f="$OUT/rss-soak.txt"
        # The connections are all open by the first minute; growth is
        # measured from there to the end.
        first=$(rss_at "$f" 60)
        last=$(tail -1 "$f" | cut -d' ' -f2)
        echo
        echo "soak: $SOAK_CONNECTIONS idle subscribed connections, $SOAK_SECONDS s"
        echo "  connect s              $(jq -r '.connect_seconds' "$OUT/soak.json")"
        echo "  server bytes/conn      $(jq -r '.server_bytes_per_connection' "$OUT/soak.json")"
        echo "  RSS KiB at 60 s, end   $first, $last (growth $((last - first)) KiB over $((SOAK_SECONDS - 60)) s)"
        echo "  RSS KiB max            $(rss_max "$f")"
        echo "  open at end, closes    ${open:-n/a}, ${disconnects:-n/a}"
        ;;
    slow)
        for slow in 0 1; do
            start_server
            sample "$OUT/rss-slow$slow.txt" 1
            load --subscribers 1000 --slow "$slow" --slow-read-ms 100 --publishes 1000000000 \
                --duration "$SLOW_SECONDS" --channel "slow$slow" --timeout $((SLOW_SECONDS + 60)) \
                >"$OUT/slow$slow.json" || true
            closes=$(metric 'courier_disconnects_total{code="4100"}')
            stop_server
            f="$OUT/rss-slow$slow.txt"
            echo
            echo "1,000 fast subscribers at full rate, $SLOW_SECONDS s, $slow slow subscriber(s)"
            echo "  delivered msgs/s       $(jq -r '.delivered_per_second' "$OUT/slow$slow.json")"
            echo "  latency p50 / p99 ms   $(jq -r '.latency_p50_ms' "$OUT/slow$slow.json") / $(jq -r '.latency_p99_ms' "$OUT/slow$slow.json")"
            echo "  missing, gaps          $(jq -r '.missing + .gaps' "$OUT/slow$slow.json")"
            echo "  server RSS KiB at 5 s, end, max: $(rss_at "$f" 5) $(tail -1 "$f" | cut -d' ' -f2) $(rss_max "$f")"
            echo "  4100 closes            ${closes:-n/a}"
            if [ "$slow" = 1 ]; then
                echo "  slow: frames read, 4100 seen, dropped: $(jq -r '"\(.slow_frames_read), \(.slow_closed_4100), \(.slow_dropped)"' "$OUT/slow$slow.json")"
            fi
        done
        ;;
    *)
        echo "unknown part $part" >&2
        exit 2
        ;;
    esac
done
echo "load after: $(uptime)"
