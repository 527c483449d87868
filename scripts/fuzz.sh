#!/usr/bin/env bash
# Fuzzes the frame parser and Engine.process with libFuzzer (and AddressSanitizer) for a bounded time.
#   scripts/fuzz.sh [SECONDS]   (default 60; CI runs a short bounded run)
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/Fuzz"
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --product FrameFuzz >/dev/null
bin=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld --show-bin-path)/FrameFuzz
corpus="$root/Fuzz/corpus"
mkdir -p "$root/fuzz-artifacts"
"$bin" -max_total_time="$seconds" -max_len=2048 -artifact_prefix="$root/fuzz-artifacts/" -print_final_stats=1 "$corpus" 2>&1 | tail -15
