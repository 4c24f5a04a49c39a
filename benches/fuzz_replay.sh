#!/bin/sh
# Replays a fixed set of inputs through fuzz-target binaries (no mutation,
# `-runs=0`), three times each, interleaved, and prints user, system and wall
# seconds per run: what BENCHMARKS.md section 12 compares.
#
#   benches/fuzz_replay.sh CORPUS_DIR BINARY...
#
# Build a target at a commit with
#   (cd fuzz && cargo +nightly fuzz build --sanitizer=none open_dir)
# and copy fuzz/target/x86_64-unknown-linux-gnu/release/open_dir aside; for
# ops_model on code from before issue 14, replay only inputs whose first byte
# has bit 6 clear (the CUTS settings bit, which older code ignores).
set -eu
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
corpus=$1
shift
echo "$(ls "$corpus" | wc -l) inputs in $corpus; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2 3; do
    for bin in "$@"; do
        /usr/bin/time -f "$bin round $round: user %U s, sys %S s, wall %e s" "$bin" -runs=0 "$corpus" 2>&1 | tail -1
    done
done
