#!/usr/bin/env bash
# Runs every checks/e2e/test_*.sh (or those whose name contains one of the
# arguments), each under a time limit; prints PASS, FAIL or SKIP per test and exits
# non-zero if any failed. A test whose header has a line "# e2e-planes: PLANE..."
# runs only with those data planes (N/A with the others).
#
#   checks/e2e/run-all.sh [-v] [-j N] [NAME-FILTER...]
#   -v                  stream each test's output (default: only on failure); implies -j 1
#   -j N                run N tests at once (default E2E_JOBS or 1). Every test makes its own lab
#                       with a unique prefix, so tests never share a namespace, an interface or a file.
#   E2E_TEST_TIMEOUT    seconds per test (default 900)
#   E2E_ARTIFACTS       where logs and failed labs' state go (default /tmp/lvs-e2e-artifacts)
#   E2E_DATAPLANES      lvsd data planes to run the suite with (default: afpacket afxdp xdp tc);
#                       ignored when LVS_LAB_LVSD_ARGS is set, which then applies to a single run.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
export E2E_ARTIFACTS=${E2E_ARTIFACTS:-/tmp/lvs-e2e-artifacts}
TEST_TIMEOUT=${E2E_TEST_TIMEOUT:-900}
VERBOSE=0
JOBS=${E2E_JOBS:-1}
FILTERS=()
while (($#)); do
    case $1 in
    -v) VERBOSE=1 ;;
    -j) JOBS=${2:?-j needs a number}; shift ;;
    -j*) JOBS=${1#-j} ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) FILTERS+=("$1") ;;
    esac
    shift
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "run-all: -j needs a positive number, not '$JOBS'" >&2; exit 2; }
((VERBOSE)) && JOBS=1

# Every data plane (lvsd carries its BPF program, built by swift build).
CUSTOM_ARGS=${LVS_LAB_LVSD_ARGS-}
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

# The runs: "PLANE TEST-PATH" per applicable (plane, test); N/A ones are said at once.
runs=()
for plane in "${PLANES[@]}"; do
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
        runs+=("$plane $t")
    done
done

# run_one PLANE TEST-PATH LOG: the test under its time limit; writes "RC SECONDS" to LOG.rc.
run_one() {
    local plane=$1 t=$2 logf=$3 rc=0 start=$SECONDS
    if [[ $plane == custom ]]; then
        export LVS_LAB_LVSD_ARGS=$CUSTOM_ARGS
    else
        export LVS_LAB_LVSD_ARGS="--dataplane $plane"
    fi
    export E2E_ARTIFACTS=${logf%/*}
    # The test's scratch directory (lib.sh's E2E_TMP) goes under a directory of this run's own,
    # which must be empty again when the test ends: a test removes what it makes.
    local scratch
    scratch=$(mktemp -d /tmp/lvs-e2e-run.XXXXXX)
    chmod 755 "$scratch" # as /tmp is to a test that lets an unprivileged script into its directory
    export E2E_TMP_ROOT=$scratch
    if ((VERBOSE)); then
        timeout --kill-after=30 "$TEST_TIMEOUT" bash "$t" 2>&1 | tee "$logf" || rc=${PIPESTATUS[0]}
    else
        timeout --kill-after=30 "$TEST_TIMEOUT" bash "$t" >"$logf" 2>&1 || rc=$?
    fi
    if ((rc == 0)) && [[ -n $(ls -A "$scratch") ]]; then
        echo "FAIL: the test left its scratch directory behind: $(ls -A "$scratch" | tr '\n' ' ')" >>"$logf"
        rc=1
    fi
    rm -rf "$scratch"
    echo "$rc $((SECONDS - start))" >"$logf.rc"
}

# report PLANE TEST-PATH LOG: PASS, SKIP or FAIL (with what the test saw) for a finished run.
report() {
    local plane=$1 name tag="" rc took reason
    name=$(basename "$2" .sh)
    local logf=$3
    ((${#PLANES[@]} == 1)) || tag="[$plane] "
    rc=1 took=?
    [[ -s $logf.rc ]] && read -r rc took <"$logf.rc"
    rm -f "$logf.rc"
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
}

# The pool: at most JOBS runs at once; each finished run is reported as it ends.
declare -A running=() # pid -> "PLANE TEST-PATH LOG"
reap() {
    local pid done_pid=
    wait -n -p done_pid "${!running[@]}" || true
    for pid in "${!running[@]}"; do
        kill -0 "$pid" 2>/dev/null && continue
        wait "$pid" 2>/dev/null || true
        # shellcheck disable=SC2086
        report ${running[$pid]}
        unset "running[$pid]"
    done
}
current_plane=""
for run in "${runs[@]}"; do
    read -r plane t <<<"$run"
    if ((JOBS == 1)) && [[ $plane != "$current_plane" && $plane != custom ]]; then
        echo "== data plane: $plane"
    fi
    current_plane=$plane
    dir=$ARTIFACT_ROOT
    ((${#PLANES[@]} == 1)) || dir=$ARTIFACT_ROOT/$plane
    mkdir -p "$dir"
    logf=$dir/$(basename "$t" .sh).log
    while ((${#running[@]} >= JOBS)); do reap; done
    run_one "$plane" "$t" "$logf" &
    running[$!]="$plane $t $logf"
done
while ((${#running[@]})); do reap; done

((passed + failed + skipped)) || { echo "no e2e test matched" >&2; exit 1; }
((failed == 0)) || echo "failed: ${failed_names[*]}"
echo "e2e: $passed passed, $failed failed, $skipped skipped ($not_applicable not applicable to their data plane)"
((failed == 0))
