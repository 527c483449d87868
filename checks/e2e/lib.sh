# shellcheck shell=bash
# Helpers for the end-to-end tests. Source it from checks/e2e/test_*.sh:
#
#   source "$(dirname "$0")/lib.sh"
#   lab_start --director nft        # unique prefix; `lvs-lab down` always runs
#   body=$(lab_exec client curl -sS http://192.168.1.100/)
#   assert_match "$body" 'Real Server 0[12]' "curl through the VIP"
#
# Exit codes: 0 pass, 77 skip (e2e_skip), anything else fail. On failure the
# EXIT trap prints the lab's logs and captures (and copies the state dir to
# $E2E_ARTIFACTS) before tearing the lab down.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
LVS_LAB=${LVS_LAB:-$REPO_ROOT/scripts/lvs-lab}
E2E_ARTIFACTS=${E2E_ARTIFACTS:-/tmp/lvs-e2e-artifacts}
E2E_NAME=$(basename "${0%.sh}")
LAB_PREFIX=""
LAB_STATE=""
E2E_ON_EXIT=()
# The test's scratch directory (e2e_tmpdir), made now so that `tmp=$(e2e_tmpdir)` in a subshell
# names this one; removed at exit, by this trap or by e2e_trap's.
E2E_TMP=$(mktemp -d "${E2E_TMP_ROOT:-/tmp}/lvs-e2e.XXXXXX")
trap '[[ -z $E2E_TMP ]] || rm -rf "$E2E_TMP"' EXIT

VIP=192.168.1.100
VIP6=2001:db8:1::100

e2e_log() { printf '[%s] %s\n' "$E2E_NAME" "$*" >&2; }
e2e_fail() {
    printf '[%s] FAIL: %s\n' "$E2E_NAME" "$*" >&2
    exit 1
}
e2e_skip() {
    printf '[%s] SKIP: %s\n' "$E2E_NAME" "$*" >&2
    exit 77
}

# The directory with lvsd and lvsadm, the same rule as lvs-lab's.
lvs_bin() {
    if [[ -z ${LVS_BIN:-} ]]; then
        LVS_BIN=$(cd "$REPO_ROOT" && timeout 120 swift build -c release --show-bin-path 2>/dev/null) ||
            LVS_BIN=$REPO_ROOT/.build/release
        export LVS_BIN
    fi
    echo "$LVS_BIN"
}

# Skip the test (exit 77) when the daemon has not been built yet.
require_lvs_bins() {
    local bin
    bin=$(lvs_bin)
    [[ -x $bin/lvsd && -x $bin/lvsadm ]] ||
        e2e_skip "lvsd/lvsadm not built in $bin (run: swift build -c release, or set LVS_BIN)"
}

# ------------------------------------------------------------- assertions

assert_eq() {
    local expected=$1 actual=$2 msg=${3:-values differ}
    [[ $expected == "$actual" ]] || e2e_fail "$msg: expected '$expected', got '$actual'"
    e2e_log "ok: $msg ($actual)"
}

assert_match() {
    local actual=$1 regex=$2 msg=${3:-no match}
    [[ $actual =~ $regex ]] || e2e_fail "$msg: '$actual' does not match /$regex/"
    e2e_log "ok: $msg"
}

assert_ge() {
    local min=$1 actual=$2 msg=${3:-too small}
    [[ $actual =~ ^[0-9]+$ ]] && ((actual >= min)) || e2e_fail "$msg: expected >= $min, got '$actual'"
    e2e_log "ok: $msg ($actual >= $min)"
}

# with_timeout SECONDS CMD...: run CMD (a command or a function of this
# shell) and fail with a clear message when it takes longer.
with_timeout() {
    local secs=$1 rc=0
    shift
    if [[ $(type -t "$1") == function ]]; then
        timeout --kill-after=5 "$secs" bash -c "$(declare -f); $(declare -p LAB_PREFIX LAB_STATE LVS_LAB E2E_NAME VIP VIP6 E2E_TMP LVS_BIN 2>/dev/null); set -euo pipefail; $(printf '%q ' "$@")" || rc=$?
    else
        timeout --kill-after=5 "$secs" "$@" || rc=$?
    fi
    if ((rc == 124 || rc == 137)); then
        e2e_log "timed out after ${secs}s: $*"
    fi
    return "$rc"
}

# The test's scratch directory, removed by the EXIT trap (do not set your own EXIT trap: it would
# replace the one that removes it and tears the lab down).
e2e_tmpdir() { echo "$E2E_TMP"; }

# e2e_on_exit CMD...: run CMD (quoted words) from the EXIT trap, before the
# lab goes down; for tests that start things lvs-lab down does not know of.
e2e_on_exit() { E2E_ON_EXIT+=("$(printf '%q ' "$@")"); }

# e2e_trap: the EXIT trap without a lab (lab_start sets it too).
e2e_trap() {
    trap '_e2e_exit' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
}

# ------------------------------------------------------------------- lab

lab() { "$LVS_LAB" "$1" --prefix "$LAB_PREFIX" "${@:2}"; }
lab_exec() {
    local node=$1
    shift
    ip netns exec "$LAB_PREFIX-$node" "$@"
}
lab_lvsadm() { lab_exec director env LVSD_SOCKET="$LAB_STATE/lvsd.sock" timeout 20 "$(lvs_bin)/lvsadm" "$@"; }

# lab_start [lvs-lab up options]: a lab with a unique prefix; from here on
# the EXIT trap always runs `lvs-lab down` for it.
lab_start() {
    [[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces)"
    LAB_PREFIX="e2e$$-$((RANDOM % 10000))"
    LAB_STATE=/run/lvs-lab/$LAB_PREFIX
    e2e_trap
    e2e_log "lab up: prefix $LAB_PREFIX $*"
    with_timeout 300 "$LVS_LAB" up --prefix "$LAB_PREFIX" "$@" || e2e_fail "lvs-lab up $* failed"
}

# Logs and captures of the lab, for a failed test.
e2e_dump() {
    [[ -n $LAB_PREFIX ]] || return 0
    echo "===== [$E2E_NAME] diagnostics for lab $LAB_PREFIX" >&2
    timeout 20 "$LVS_LAB" status --prefix "$LAB_PREFIX" >&2 2>&1 || true
    [[ -d $LAB_STATE ]] || return 0
    if [[ -S $LAB_STATE/lvsd.sock ]]; then
        # what lvsd itself saw: counters by reason, per-destination statistics, the connections
        echo "----- lvsadm daemon status" >&2
        lab_lvsadm daemon status >&2 2>&1 || true
        echo "----- lvsadm -Ln --stats" >&2
        lab_lvsadm -Ln --stats >&2 2>&1 || true
        echo "----- lvsadm -Lnc (first 40 lines)" >&2
        lab_lvsadm -Lnc 2>&1 | head -n 40 >&2 || true
    fi
    # the HA tests' second director and VRRP states (ha_lib.sh)
    if declare -F ha_dump >/dev/null; then ha_dump >&2 || true; fi
    # the ECMP tests' router and routing daemons (ecmp_lib.sh)
    if declare -F ecmp_dump >/dev/null; then ecmp_dump >&2 || true; fi
    local f
    for f in "$LAB_STATE"/lvsd*.log "$LAB_STATE"/rs*/error.log "$LAB_STATE"/rs*/udp-echo.log \
        "$LAB_STATE"/rs*/realserver.log "$LAB_STATE"/cap-*.txt; do
        [[ -s $f ]] || continue
        local n=40
        [[ $f == */cap-*.txt ]] && n=15
        echo "----- ${f#"$LAB_STATE"/} (last $n lines)" >&2
        tail -n "$n" "$f" >&2 || true
    done
    local dest=$E2E_ARTIFACTS/$LAB_PREFIX
    rm -rf "$dest"
    mkdir -p "$dest"
    (cd "$LAB_STATE" && find . -type f ! -name big ! -name '*.sock' -size -2M -exec cp --parents {} "$dest/" \;) 2>/dev/null || true
    echo "===== state copied to $E2E_ARTIFACTS/$LAB_PREFIX" >&2
}

_e2e_exit() {
    local rc=$?
    # Cleanup must finish: ignore further TERM/INT (down has its own timeout).
    trap - EXIT
    trap '' TERM INT
    if ((rc != 0 && rc != 77)); then
        e2e_dump || true
    fi
    local c
    for c in ${E2E_ON_EXIT[@]+"${E2E_ON_EXIT[@]}"}; do
        timeout --kill-after=5 60 bash -c "$(declare -f); $c" >&2 || true
    done
    [[ -z $E2E_TMP ]] || rm -rf "$E2E_TMP"
    if [[ -n $LAB_PREFIX ]]; then
        timeout --kill-after=5 120 "$LVS_LAB" down --prefix "$LAB_PREFIX" >&2 || {
            e2e_log "lvs-lab down failed"
            ((rc != 0)) || rc=1
        }
    fi
    exit "$rc"
}

# ------------------------------------------------------- lvsd lab helpers

# require_fastpath_plane: skips the test unless lvsd runs a BPF fast path (--dataplane xdp or
# tc); sets PLANE to it.
require_fastpath_plane() {
    if [[ " ${LVS_LAB_LVSD_ARGS:-} " =~ [[:space:]]--dataplane[=[:space:]](xdp|tc)[[:space:]] ]]; then
        PLANE=${BASH_REMATCH[1]}
    else
        e2e_skip "only for --dataplane xdp and tc (LVS_LAB_LVSD_ARGS='${LVS_LAB_LVSD_ARGS:-}')"
    fi
}

lvsd_pid() { tr -dc 0-9 <"$LAB_STATE/lvsd.pid"; }

# lvsd_kill9: kill -9 the lab's lvsd and wait until it is gone (or a zombie).
lvsd_kill9() {
    local pid
    pid=$(lvsd_pid)
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null && [[ $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) != Z ]]; do sleep 0.01; done
}

# lvsd_respawn CMD...: starts lvsd again in the director with that command line (its log appended,
# its pid file updated) and waits up to 30 s until its control socket answers.
lvsd_respawn() {
    local deadline=$((SECONDS + 30))
    setsid ip netns exec "$LAB_PREFIX-director" "$@" >>"$LAB_STATE/lvsd.log" 2>&1 </dev/null &
    echo $! >"$LAB_STATE/lvsd.pid"
    until [[ -S $LAB_STATE/lvsd.sock ]] && lab_lvsadm -Ln >/dev/null 2>&1; do
        kill -0 "$(lvsd_pid)" 2>/dev/null || e2e_fail "the new lvsd exited"
        ((SECONDS < deadline)) || e2e_fail "no control socket 30 s after the new start"
        sleep 0.05
    done
}

# require_trafgen: trafgen (Debian's netsniff-ng); skips the test when it cannot be installed.
require_trafgen() {
    if ! command -v trafgen >/dev/null; then
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq netsniff-ng >&2 || true
        command -v trafgen >/dev/null || e2e_skip "trafgen not available (apt netsniff-ng)"
    fi
}

# require_scapy: python3-scapy (Debian's, else PyPI's) for tests that write frames themselves;
# skips the test when neither can be installed.
require_scapy() {
    if ! /usr/bin/python3 -c 'import scapy' 2>/dev/null; then
        (DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq python3-scapy ||
            timeout 600 /usr/bin/python3 -m pip install -q scapy) >&2 || true
        /usr/bin/python3 -c 'import scapy' 2>/dev/null || e2e_skip "scapy not available (apt python3-scapy or pip scapy)"
    fi
}

# One request through URL from the client; prints 01, 02 or ERR:...
curl_rs() {
    local out
    if out=$(lab_exec client curl -sS -g --max-time "${2:-10}" "$1" 2>&1); then
        if [[ $out =~ Real\ Server\ (0[12]) ]]; then echo "${BASH_REMATCH[1]}"; else echo "ERR:unexpected:$out"; fi
    else
        echo "ERR:${out//$'\n'/ }"
    fi
}

# capture_start NODE NAME [FILTER]: tcpdump -e -nn in NODE's eth0, text to
# $LAB_STATE/cap-NAME.txt (printed by e2e_dump on failure).
capture_start() {
    local node=$1 name=$2 filter=${3:-}
    local f=$LAB_STATE/cap-$name
    rm -f "$f.txt" "$f.err"
    # shellcheck disable=SC2086
    setsid ip netns exec "$LAB_PREFIX-$node" timeout 300 tcpdump -i eth0 -e -nn -l $filter \
        >"$f.txt" 2>"$f.err" </dev/null &
    echo $! >"$f.pid"
    local deadline=$((SECONDS + 15))
    until grep -q 'listening on' "$f.err" 2>/dev/null; do
        ((SECONDS < deadline)) || { cat "$f.err" >&2; e2e_fail "tcpdump did not start in $node"; }
        sleep 0.1
    done
}

# capture_stop NAME: flush and stop the capture (bounded).
capture_stop() {
    local f=$LAB_STATE/cap-$1 pid
    sleep 0.5
    pid=$(tr -dc 0-9 <"$f.pid" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
        sleep 0.1
    done
    rm -f "$f.pid"
}

# lvsd_alive: the lab's lvsd still runs and its control socket answers.
assert_lvsd_alive() {
    local pid
    pid=$(lvsd_pid)
    kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd (pid $pid) is not running any more"
    lab_lvsadm -Ln >/dev/null || e2e_fail "lvsd control socket does not answer (lvsadm -Ln failed)"
    e2e_log "ok: lvsd (pid $pid) alive, control socket answers"
}

# ------------------------------------------------- keepalived.conf helpers

# ka_lab_start FILE: a lab whose lvsd reads FILE (keepalived.conf) with
# --config instead of the seed's commands.
ka_lab_start() {
    [[ -r $1 ]] || e2e_fail "config file $1 is not readable"
    LVS_LAB_LVSD_CONFIG=$1 lab_start --director lvsd
}

# now_ms: wall-clock milliseconds (for the curl log and deadlines).
now_ms() { date +%s%3N; }

# wait_for SECONDS WHAT CMD...: poll CMD (a command or function) every
# 0.2 s until it succeeds; fails the test after SECONDS with WHAT, printing
# the rules and the lvsd log tail. Prints the milliseconds it took on stdout.
wait_for() {
    local secs=$1 what=$2 start deadline
    shift 2
    start=$(now_ms)
    deadline=$((start + secs * 1000))
    until "$@" >/dev/null 2>&1; do
        if (($(now_ms) >= deadline)); then
            lab_lvsadm -Ln >&2 || true
            e2e_fail "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.2
    done
    echo $(($(now_ms) - start))
}

# dest_weight RIP [VIP:PORT]: the weight of RIP:80 in the TCP service
# (default VIP:80) from `lvsadm -Ln`; empty when RIP is not listed.
dest_weight() {
    local rip=$1 svc=${2:-$VIP:80}
    lab_lvsadm -Ln | awk -v s="$svc" -v d="$rip:80" '
        $1 == "TCP" || $1 == "UDP" || $1 == "FWM" { in_svc = ($1 == "TCP" && $2 == s) }
        in_svc && $1 == "->" && $2 == d && !done { print $4; done = 1 }'
}
dest_listed() { [[ -n $(dest_weight "$1") ]]; }
dest_absent() { local w; w=$(dest_weight "$1") || return 1; [[ -z $w ]]; }
dest_has_weight() { [[ $(dest_weight "$1") == "$2" ]]; }

# nginx_stop NODE / nginx_start NODE: stop or start the nginx of rs1/rs2
# (bounded waits); nginx_start waits until it answers locally. nginx_stop
# sets NGINX_KILL_MS to when SIGTERM was sent.
NGINX_KILL_MS=0
nginx_stop() {
    local d=$LAB_STATE/$1 pid
    pid=$(tr -dc 0-9 <"$d/nginx.pid" 2>/dev/null || true)
    [[ -n $pid ]] || e2e_fail "$1: no nginx pid in $d/nginx.pid"
    NGINX_KILL_MS=$(now_ms)
    kill "$pid" || e2e_fail "$1: cannot signal nginx (pid $pid)"
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || e2e_fail "$1: nginx (pid $pid) still running 10s after SIGTERM"
        sleep 0.1
    done
    e2e_log "$1: nginx stopped ($(($(now_ms) - NGINX_KILL_MS)) ms after SIGTERM)"
}
nginx_start() {
    local d=$LAB_STATE/$1
    lab_exec "$1" timeout 15 nginx -c "$d/nginx.conf" -p "$d" || e2e_fail "$1: nginx did not start"
    wait_for 15 "$1 nginx answering locally" lab_exec "$1" curl -sf --max-time 2 http://127.0.0.1/ >/dev/null
    e2e_log "$1: nginx started"
}

# curl_loop_start FILE: a background client loop, one request through the
# VIP every ~0.1 s with a 2 s timeout, each line "START_MS END_MS RESULT"
# (RESULT as curl_rs: 01, 02 or ERR:...). curl_loop_stop ends it.
CURL_LOOP_PID=""
CURL_LOOP_STOP=""
curl_loop_start() {
    local out=$1
    CURL_LOOP_STOP=$out.stop
    rm -f "$CURL_LOOP_STOP"
    : >"$out"
    (
        while [[ ! -e $CURL_LOOP_STOP ]]; do
            s=$(now_ms)
            r=$(curl_rs "http://$VIP/" 2)
            echo "$s $(now_ms) ${r// /_}" >>"$out"
            sleep 0.1
        done
    ) </dev/null &
    CURL_LOOP_PID=$!
    e2e_on_exit kill_quiet "$CURL_LOOP_PID"
}
kill_quiet() { kill "$@" 2>/dev/null || true; }
curl_loop_stop() {
    [[ -n $CURL_LOOP_PID ]] || return 0
    touch "$CURL_LOOP_STOP"
    local deadline=$((SECONDS + 10))
    while kill -0 "$CURL_LOOP_PID" 2>/dev/null; do
        ((SECONDS < deadline)) || { kill "$CURL_LOOP_PID" 2>/dev/null || true; break; }
        sleep 0.1
    done
    wait "$CURL_LOOP_PID" 2>/dev/null || true
    CURL_LOOP_PID=""
}

# curl_results FILE FROM_MS [TO_MS]: the results of the requests started in
# [FROM_MS, TO_MS) (default: to the end), space-separated.
curl_results() {
    awk -v a="$2" -v b="${3:-99999999999999}" '$1 >= a && $1 < b { printf "%s ", $3 }' "$1"
}

# assert_log PATTERN MSG: the lab's lvsd log has a line matching PATTERN (ERE).
assert_log() {
    grep -Eq "$1" "$LAB_STATE/lvsd.log" || e2e_fail "${2:-lvsd log}: no line matching /$1/ in lvsd.log"
    e2e_log "ok: ${2:-lvsd log} ($(grep -Ec "$1" "$LAB_STATE/lvsd.log") lines /$1/)"
}

# A second director on the lab's switch (the sync tests): namespace $LAB_PREFIX-dir2 with one veth
# into the switch, 192.168.1.22 (and IP6, if given) and MAC 02:00:00:00:01:22; its lvsd
# (--no-arp: only the lab's director answers ARP for the VIP) with socket $TMP/lvsd2.sock, and
# `lvsadm2` to drive it. Removed at exit, with lvsd2's log copied to the artifacts.
#   dir2_up LOG-NAME [IP6/PREFIX]     (TMP and BIN must be set)
NS2="" SOCK2="" IP_DIR2=192.168.1.22 MAC_DIR2=02:00:00:00:01:22
dir2_down() {
    local ns=$1 pidfile=$2 log=$3 name=$4 pid
    [[ -f $log ]] && mkdir -p "$E2E_ARTIFACTS" && cp "$log" "$E2E_ARTIFACTS/$name-lvsd2.log"
    if [[ -f $pidfile ]]; then
        pid=$(tr -dc 0-9 <"$pidfile")
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    ip netns del "$ns" 2>/dev/null || true
}
dir2_up() {
    NS2="$LAB_PREFIX-dir2" SOCK2="$TMP/lvsd2.sock"
    e2e_on_exit dir2_down "$NS2" "$TMP/lvsd2.pid" "$TMP/lvsd2.log" "$1"
    ip netns add "$NS2"
    ip -n "$NS2" link set lo up
    ip -n "$LAB_PREFIX-sw" link add dir2 type veth peer name eth0 netns "$NS2"
    ip -n "$LAB_PREFIX-sw" link set dir2 master br0
    ip -n "$LAB_PREFIX-sw" link set dir2 up
    ip -n "$NS2" link set eth0 address "$MAC_DIR2"
    ip -n "$NS2" addr add "$IP_DIR2/24" dev eth0
    [[ -z ${2:-} ]] || ip -n "$NS2" addr add "$2" dev eth0 nodad
    ip -n "$NS2" link set eth0 up
    # shellcheck disable=SC2206 # more lvsd options (the data plane), split on purpose
    local extra=(${LVS_LAB_LVSD_ARGS:-})
    ip netns exec "$NS2" "$BIN/lvsd" --interface eth0 --socket "$SOCK2" --no-arp --log-level debug "${extra[@]}" \
        >"$TMP/lvsd2.log" 2>&1 &
    echo $! >"$TMP/lvsd2.pid"
    local deadline=$((SECONDS + 30))
    until [[ -S $SOCK2 ]]; do
        ((SECONDS < deadline)) || { cat "$TMP/lvsd2.log" >&2; e2e_fail "the second director's lvsd did not start within 30s"; }
        sleep 0.1
    done
}
lvsadm2() { ip netns exec "$NS2" env LVSD_SOCKET="$SOCK2" timeout 20 "$BIN/lvsadm" "$@"; }

# lab_start_with_seed_rules [LVSD-OPTIONS...]: the seed's service (VIP:80, rr, rs1 and rs2 by DR)
# given to lvsd as a rules file at start (--config), so that a restarted lvsd gets it again with
# the same command line; the options are added to LVS_LAB_LVSD_ARGS.
lab_start_with_seed_rules() {
    local rules
    rules=$(e2e_tmpdir)/seed.rules
    cat >"$rules" <<RULES
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 192.168.1.31:80 -g -w 1
-a -t $VIP:80 -r 192.168.1.32:80 -g -w 1
RULES
    export LVS_LAB_LVSD_CONFIG=$rules
    export LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} $*"
    lab_start --director lvsd
}
