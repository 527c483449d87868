#!/usr/bin/env bash
# Fuzzes the frame parser and Engine.process with libFuzzer (and AddressSanitizer) for a bounded time.
#   scripts/fuzz.sh [SECONDS]   (default 60; CI runs a short bounded run)
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/Fuzz"
if ! out=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --product FrameFuzz 2>&1); then
    echo "fuzz.sh: the fuzz target does not build:" >&2
    grep -E "error:" <<<"$out" | sort -u | head -20 >&2
    exit 1
fi
bin=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --show-bin-path)/FrameFuzz
# New inputs go to the (ignored) working corpus; the committed seeds are only read.
corpus="$root/fuzz-artifacts/corpus"
mkdir -p "$corpus"
"$bin" -max_total_time="$seconds" -max_len=2048 -artifact_prefix="$root/fuzz-artifacts/" -print_final_stats=1 \
    "$corpus" "$root/Fuzz/seeds" 2>&1 | tail -15
