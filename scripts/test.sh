#!/usr/bin/env bash
# Every test: unit and golden tests (swift test, including the real-packet data-plane tests),
# a bounded fuzz run, the packet path's 0 allocations and 0 retains (lvs-bench --check), the docs checks (checks/docs: man pages, samples, BENCHMARKS.md's tables), the
# Debian package (checks/package) and
# the end-to-end suite in network namespaces. Run as root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "test: run as root (network namespaces, packet sockets)" >&2; exit 1; }
scripts/deps.sh
status=0
# failed NAME: marks the run failed and says which step did (every failing step is named).
failed() { echo "STEP FAILED: $1 (exit ${2:-?})"; status=1; }
echo "== deps (every command the scripts call is installed by deps.sh or on a fresh machine)"
checks/deps/test_deps.sh || failed checks/deps/test_deps.sh $?
echo "== swift test"
timeout 1200 swift build --build-tests 2>&1 | tail -5 || failed "swift build --build-tests" $?
# The unit tests run in a network namespace of their own with only its loopback up: the probe,
# control and metrics tests that listen on 127.0.0.1 do it there, never on the host's; the
# data-plane tests make their own namespaces and veths from inside it.
# The whole output goes to a file: the summary is printed, and on a failure every failing line
# (XCTest's "error:" lines come long before swift-testing's summary).
unit_log=$(mktemp)
unit_rc=0
timeout 1200 unshare --net sh -c 'ip link set lo up && exec swift test --skip-build' >"$unit_log" 2>&1 || unit_rc=$?
if ((unit_rc == 0)); then
    tail -5 "$unit_log"
else
    failed "swift test" "$unit_rc"
    echo "the failing lines (XCTest's errors, swift-testing's ✘, a crash or a signal):"
    grep -E ': error: |^error: |✘|failed \(|timed out|Fatal error|Exited with|signal|[1-9][0-9]* failures? \(' "$unit_log" | grep -v 'Test case passing' | head -60 || true
    tail -20 "$unit_log"
fi
rm -f "$unit_log"
echo "== fuzz (bounded)"
timeout 600 scripts/fuzz.sh "${FUZZ_SECONDS:-30}" || failed fuzz $?
# The packet path's promise, checked on every method: no allocation and no Swift retain per packet,
# new connections and NAT replies included. lvs-bench counts retains only when the Swift runtime
# is linked dynamically, so it is built so here, before the static release build below.
echo "== packet path (lvs-bench --check: 0 allocations, 0 retains)"
if timeout 1200 swift build -c release --product lvs-bench >/dev/null; then
    bench=$(swift build -c release --show-bin-path)/lvs-bench
    for m in dr nat ipip gue gre; do
        timeout 300 "$bench" --method "$m" --connections 10000 --packets 200000 --check | sed -n '/retains\|--check/p' ||
            failed "lvs-bench --check --method $m" $?
    done
else
    failed "lvs-bench build" $?
fi
# One release build for the docs checks, the package and the end-to-end suite: with the Swift
# runtime linked in, as the package ships it (so the e2e suite runs what is installed).
release=(swift build -c release --static-swift-stdlib)
echo "== docs (release build; man pages, samples, BENCHMARKS.md's tables)"
timeout 1200 "${release[@]}" >/dev/null || failed "release build" $?
bin=$("${release[@]}" --show-bin-path)
for t in checks/docs/test_*.sh; do
    LVS_BIN=$bin timeout 300 "$t" || failed "$t" $?
done
echo "== package (the .deb: lintian, systemd-analyze verify, install and purge here, a fresh Debian 12 root)"
PACKAGE_SCRATCH=$root/.build timeout 1800 checks/package/test_package.sh || failed checks/package/test_package.sh $?
# Three tests at once (each in a lab of its own): the suite is mostly waiting on timers and
# transfers, and one after another it would take most of CI's time.
echo "== end-to-end (namespaces, release build, ${E2E_JOBS:=3} at once)"
LVS_BIN=$bin E2E_JOBS=$E2E_JOBS timeout 1800 checks/e2e/run-all.sh || failed checks/e2e/run-all.sh $?
if [ $status -eq 0 ]; then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
exit $status
