#!/usr/bin/env bash
# Runs every checks/e2e/test_*.sh (or those whose name contains one of the
# arguments), one after another, each under a time limit; prints PASS, FAIL
# or SKIP per test and exits non-zero if any failed. A test whose header has a line
# "# e2e-planes: PLANE..." runs only with those data planes (N/A with the others).
#
#   checks/e2e/run-all.sh [-v] [NAME-FILTER...]
#   -v                  stream each test's output (default: only on failure)
#   E2E_TEST_TIMEOUT    seconds per test (default 900)
#   E2E_ARTIFACTS       where logs and failed labs' state go (default /tmp/lvs-e2e-artifacts)
#   E2E_DATAPLANES      lvsd data planes to run the suite with (default: afpacket afxdp xdp tc);
#                       ignored when LVS_LAB_LVSD_ARGS is set, which then applies to a single run.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
export E2E_ARTIFACTS=${E2E_ARTIFACTS:-/tmp/lvs-e2e-artifacts}
TEST_TIMEOUT=${E2E_TEST_TIMEOUT:-900}
VERBOSE=0
FILTERS=()
for arg in "$@"; do
    case $arg in
    -v) VERBOSE=1 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) FILTERS+=("$arg") ;;
    esac
done

# Every data plane (lvsd carries its BPF program, built by swift build).
if [[ -n ${LVS_LAB_LVSD_ARGS+set} ]]; then
    PLANES=(custom)
elif [[ -n ${E2E_DATAPLANES:-} ]]; then
    read -r -a PLANES <<<"$E2E_DATAPLANES"
else
    PLANES=(afpacket afxdp xdp tc)
fi

ARTIFACT_ROOT=$E2E_ARTIFACTS
passed=0 failed=0 skipped=0 not_applicable=0
failed_names=()
shopt -s nullglob
for plane in "${PLANES[@]}"; do
if [[ $plane != custom ]]; then
    export LVS_LAB_LVSD_ARGS="--dataplane $plane"
    ((${#PLANES[@]} == 1)) || export E2E_ARTIFACTS=$ARTIFACT_ROOT/$plane
    echo "== data plane: $plane"
fi
mkdir -p "$E2E_ARTIFACTS"
tag=""
((${#PLANES[@]} == 1)) || tag="[$plane] "
for t in "$E2E_DIR"/test_*.sh; do
    name=$(basename "$t" .sh)
    if ((${#FILTERS[@]})); then
        match=0
        for f in "${FILTERS[@]}"; do [[ $name == *"$f"* ]] && match=1; done
        ((match)) || continue
    fi
    # Declared data planes: with another plane the test does not apply (not a skip: nothing is missing).
    planes_line=$(grep -m1 '^# e2e-planes:' "$t" || true)
    if [[ -n $planes_line && $plane != custom && " ${planes_line#*:} " != *" $plane "* ]]; then
        echo "N/A  $tag$name: for${planes_line#*:} only"
        not_applicable=$((not_applicable + 1))
        continue
    fi
    logf=$E2E_ARTIFACTS/$name.log
    start=$SECONDS
    rc=0
    if ((VERBOSE)); then
        timeout --kill-after=30 "$TEST_TIMEOUT" bash "$t" 2>&1 | tee "$logf" || rc=${PIPESTATUS[0]}
    else
        timeout --kill-after=30 "$TEST_TIMEOUT" bash "$t" >"$logf" 2>&1 || rc=$?
    fi
    took=$((SECONDS - start))
    case $rc in
    0) echo "PASS $tag$name (${took}s)"; passed=$((passed + 1)) ;;
    77) echo "SKIP $tag$name: $(grep -m1 'SKIP:' "$logf" | sed 's/.*SKIP: //')"; skipped=$((skipped + 1)) ;;
    *)
        ((rc == 124 || rc == 137)) && reason="timed out after ${TEST_TIMEOUT}s" || reason="exit $rc"
        echo "FAIL $tag$name (${took}s, $reason; log: $logf)"
        if ((!VERBOSE)); then
            echo "----- failures reported by $name"
            grep -E 'FAIL|ERROR|timed out' "$logf" | head -n 20 | sed 's/^/    /' || true
            echo "----- last 30 lines of $name"
            tail -n 30 "$logf" | sed 's/^/    /'
            echo "-----"
        fi
        failed=$((failed + 1))
        failed_names+=("$tag$name")
        ;;
    esac
done
done

((passed + failed + skipped)) || { echo "no e2e test matched" >&2; exit 1; }
((failed == 0)) || echo "failed: ${failed_names[*]}"
echo "e2e: $passed passed, $failed failed, $skipped skipped ($not_applicable not applicable to their data plane)"
((failed == 0))
