#!/usr/bin/env bash
# keg serve against memcached, same load generator, same run.
#
#   benches/serve_vs_memcached.sh            # 3 runs of 10 s per server and value size
#   RUNS=5 SECONDS_PER_RUN=20 benches/serve_vs_memcached.sh
#   CLIENT_THREADS=2 benches/serve_vs_memcached.sh   # the 16 connections on 2 polling threads
#   KEG_BASELINE=/path/to/other/keg benches/serve_vs_memcached.sh   # also another keg build, in turn
#
# Starts Debian's memcached (installed with apt-get if it is missing) and
# `keg serve` (durability flushed, the default, and synced) on 127.0.0.1,
# and drives each with examples/memcache_load.rs: 16 connections, 90% get /
# 10% set, Zipf(0.99) keys over 100,000 keys (all stored first), values of
# 100 B and 4 KiB. Within a run the servers take turns, so drift on a noisy
# machine hits them alike. Prints every run, then the medians with their
# ranges and keg's ratio to memcached.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CONNECTIONS=${CONNECTIONS:-16}
KEYS=${KEYS:-100000}
# memcached's worker threads (keg serve has a thread per connection).
THREADS=${THREADS:-$(nproc)}
SIZES=${SIZES:-"100 4096"}
# 0: one blocking load thread per connection (like one web worker process
# each); N: the connections spread over N threads that poll (like memtier).
CLIENT_THREADS=${CLIENT_THREADS:-0}
MEMCACHED_PORT=${MEMCACHED_PORT:-21211}
KEG_PORT=${KEG_PORT:-21212}

if ! command -v memcached >/dev/null; then
    echo "installing memcached (Debian package)" >&2
    apt-get update -qq && apt-get install -y -qq memcached >/dev/null
fi
MEMCACHED=$(command -v memcached)
# Debian's package starts a memcached service on 11211; this benchmark uses its own ports.

cargo build --release --quiet --bin keg --example memcache_load
KEG=target/release/keg
LOAD=target/release/examples/memcache_load

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 200); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

stop() {
    kill -TERM "$1"
    wait "$1" 2>/dev/null || true
    PIDS=("${PIDS[@]/$1/}")
}

load() { # port size
    "$LOAD" --addr "127.0.0.1:$1" --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" \
        --keys "$KEYS" --value-size "$2" --get-percent 90 --zipf 0.99 --threads "$CLIENT_THREADS"
}

RESULTS="$WORK/results"
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
    for size in $SIZES; do
        # memcached: 1 GiB of memory holds every key; a worker thread per CPU.
        "$MEMCACHED" -u root -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -t "$THREADS" -m 1024 -c 1024 &
        pid=$!
        PIDS+=("$pid")
        wait_port "$MEMCACHED_PORT"
        line=$(load "$MEMCACHED_PORT" "$size")
        stop "$pid"
        echo "run=$run size=$size server=memcached $line" | tee -a "$RESULTS"

        for build in keg ${KEG_BASELINE:+baseline}; do
            bin=$KEG
            extra=()
            if [ "$build" = baseline ]; then
                bin=$KEG_BASELINE
                # An older build may take --threads; give it memcached's count.
                "$bin" serve --help | grep -q -- --threads && extra=(--threads "$THREADS")
            fi
            for durability in flushed synced; do
                dir="$WORK/keg-$run-$size-$durability"
                "$bin" serve "$dir" --listen "127.0.0.1:$KEG_PORT" --max-bytes 4GiB \
                    --durability "$durability" --quiet "${extra[@]}" &
                pid=$!
                PIDS+=("$pid")
                wait_port "$KEG_PORT"
                line=$(load "$KEG_PORT" "$size")
                stop "$pid"
                rm -rf "$dir"
                name=keg-$durability
                [ "$build" = baseline ] && name=baseline-$durability
                echo "run=$run size=$size server=$name $line" | tee -a "$RESULTS"
            done
        done
    done
done

echo
python3 - "$RESULTS" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split())
    rows[(int(f["size"]), f["server"])].append(f)

def med(fs, k):
    v = [float(f[k]) for f in fs]
    return statistics.median(v), min(v), max(v)

print("| value | server | ops/s (median, range) | p50 µs | p99 µs | vs memcached: ops/s | p99 |")
print("|---|---|---|---|---|---|---|")
for size in sorted({s for s, _ in rows}):
    base = rows.get((size, "memcached"))
    for server in ["memcached", "keg-flushed", "keg-synced", "baseline-flushed", "baseline-synced"]:
        fs = rows.get((size, server))
        if not fs:
            continue
        ops, lo, hi = med(fs, "ops_per_sec")
        p50 = med(fs, "p50_us")
        p99 = med(fs, "p99_us")
        ratio = p99ratio = ""
        if base and server != "memcached":
            ratio = "%.2fx" % (ops / med(base, "ops_per_sec")[0])
            p99ratio = "%.2fx" % (p99[0] / max(med(base, "p99_us")[0], 1))
        label = "%d B" % size if size < 1024 else "%d KiB" % (size // 1024)
        print("| %s | %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %s | %s |" % (
            label, server, ops, lo, hi, *p50, *p99, ratio, p99ratio))
errors = sum(int(f["errors"]) for fs in rows.values() for f in fs)
print("\n%d runs per cell; load errors: %d" % (len(next(iter(rows.values()))), errors))
EOF
