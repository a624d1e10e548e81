#!/usr/bin/env bash
# Instruction counts (valgrind's callgrind, user space only) of a server per
# connection and per lone delivery, driven by the shared peer harness's load
# generator. Unlike wall-clock figures on this shared 2-core VM, these
# counts repeat to within ~1% between runs, so small changes to the
# connection or delivery path can be compared (docs/benchmarks.md).
#
#   cargo build --release -p courier-cli
#   CARGO_TARGET_DIR=target/peer-bench/target cargo build --release --locked \
#     --manifest-path ../shared/bench/Cargo.toml -p loadgen -p peer-rust-fastws
#   crates/server/benches/callgrind.sh connect          # per connection
#   crates/server/benches/callgrind.sh lone             # per lone delivery
#   PEER=fastws crates/server/benches/callgrind.sh lone # the same for fastwebsockets
#
# connect: N1 and N2 subscribers connect (hello, subscribe), then leave;
#   (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one connection's life.
# lone: 200 subscribers, then R1 and R2 publishes at 50/s, each written to
#   every subscriber alone; (Ir(R2) - Ir(R1)) / ((R2 - R1) * 200) is the cost
#   of one delivery, the publish's own share (decode, numbering, encoding,
#   the ack) spread over its 200 deliveries.
set -euo pipefail

MODE=${1:?usage: callgrind.sh connect|lone}
PEER=${PEER:-courier}                                  # courier | fastws
COURIER=${COURIER:-target/release/courier}
BENCH_BIN=${BENCH_BIN:-target/peer-bench/target/release}
BENCH_DIR=${BENCH_DIR:-../shared/bench}
PORT=${PORT:-19331}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

# Ir of the server over one loadgen run: run ARGS...
run() {
    local out
    out=$(mktemp -d)
    if [ "$PEER" = fastws ]; then
        PORT=$PORT taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
            "$BENCH_BIN/peer-rust-fastws" >/dev/null 2>"$out/err" &
        DRIVER=bench
    else
        taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
            "$COURIER" serve --config "$BENCH_DIR/peers/courier/bench.toml" \
            --listen "127.0.0.1:$PORT" --log warn >/dev/null 2>"$out/err" &
        DRIVER=courier
    fi
    local pid=$! i
    for i in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    sleep 1
    taskset -c 1 timeout 300 "$BENCH_BIN/loadgen" --url "ws://127.0.0.1:$PORT/" --driver "$DRIVER" \
        --label callgrind --out "$out/report.jsonl" --payload-bytes 128 --msgs 0 --warmup-msgs 0 \
        --settle-s 0.2 --connect-timeout-s 60 "$@" >/dev/null 2>&1
    sleep 1
    kill -TERM "$pid"
    wait "$pid" || true
    grep -h '^summary\|^totals' "$out"/cg* | head -1 | awk '{print $2}'
    rm -rf "$out"
}

case "$MODE" in
connect)
    N1=${N1:-1000} N2=${N2:-5000}
    a=$(run --test idle --subs "$N1" --rate-msgs 1 --rate 5 --channel idle --connect-deadline-s 250)
    b=$(run --test idle --subs "$N2" --rate-msgs 1 --rate 5 --channel idle --connect-deadline-s 250)
    echo "$PEER: $a Ir at $N1 connections, $b at $N2: $(( (b - a) / (N2 - N1) )) Ir per connection"
    ;;
lone)
    R1=${R1:-20} R2=${R2:-120} SUBS=200
    a=$(run --test fanout --subs "$SUBS" --rate-msgs "$R1" --rate 50)
    b=$(run --test fanout --subs "$SUBS" --rate-msgs "$R2" --rate 50)
    echo "$PEER: $a Ir at $R1 publishes, $b at $R2: $(( (b - a) / ((R2 - R1) * SUBS) )) Ir per delivery"
    ;;
*)
    echo "usage: callgrind.sh connect|lone" >&2
    exit 2
    ;;
esac
