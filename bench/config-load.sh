#!/usr/bin/env bash
# bench/config-load.sh: how long lvsd takes to load a big configuration.
#
#   bench/config-load.sh [--bin DIR] [--services N] [--reals N] [--runs N] [--dataplane afpacket]
#
# Generates a keepalived.conf of N virtual servers x N real servers each (default 10 x 100 =
# 1,000 real servers, DR, no checkers, so every real server is up at once) and the same table as
# ipvsadm-save rules, then measures (each --runs times, the median printed):
#   check-config keepalived  `lvsd --check-config keepalived.conf`
#   check-config rules       `lvsd --check-config rules`
#   start keepalived         lvsd --config keepalived.conf started until `lvsadm -Ln` lists every
#                            real server
#   reload keepalived        every weight changed in the file, `lvsadm daemon reload` (returns once
#                            applied), until `lvsadm -Ln` lists the new weights
#   start rules              lvsd --config rules started until `lvsadm -Ln` lists every real server
#   restore                  `lvsadm -C`, then `lvsadm -R < rules` (the lines come back through the
#                            control socket)
# lvsd runs in a network namespace of its own (bench-cfg-PID) on a veth pair whose two ends are
# both inside it; the real servers' addresses are on its connected network, nothing answers there
# and no traffic leaves the namespace. The namespace is deleted on exit.
# The figures are printed, not asserted (the issue's target: under 1 s for 1,000 real servers).
# Exit status: 0 done; 1 error; 2 usage.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)

BIN=""
SERVICES=10
REALS=100
RUNS=3
PLANE=afpacket
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; }
while (($#)); do
    case $1 in
    --bin) BIN=${2:?}; shift 2 ;;
    --services) SERVICES=${2:?}; shift 2 ;;
    --reals) REALS=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --dataplane) PLANE=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "config-load.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$SERVICES" "$REALS" "$RUNS"; do
    [[ $v =~ ^[0-9]+$ && $v -ge 1 ]] || { echo "config-load.sh: --services, --reals and --runs take positive integers" >&2; exit 2; }
done
((SERVICES <= 250 && REALS <= 250)) || { echo "config-load.sh: at most 250 services and 250 real servers each" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "config-load.sh: must run as root (network namespace)" >&2; exit 1; }
[[ -n $BIN ]] || BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
for b in lvsd lvsadm; do [[ -x $BIN/$b ]] || { echo "config-load.sh: $BIN/$b is missing (swift build -c release)" >&2; exit 1; }; done
TOTAL=$((SERVICES * REALS))

NS=bench-cfg-$$
TMP=$(mktemp -d /tmp/bench-cfg.XXXXXX)
SOCK=$TMP/lvsd.sock
LVSD_PID=""
cleanup() {
    if [[ -n $LVSD_PID ]]; then kill "$LVSD_PID" 2>/dev/null || true; wait "$LVSD_PID" 2>/dev/null || true; fi
    local p
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
nsx ip link add eth0 type veth peer name eth1
nsx ip addr add 10.98.0.254/16 dev eth0
nsx ip link set eth0 up
nsx ip link set eth1 up

# gen_keepalived WEIGHT > FILE; gen_rules > FILE
gen_keepalived() {
    local s r
    echo "global_defs {"
    echo "    router_id bench_config_load"
    echo "}"
    for ((s = 1; s <= SERVICES; s++)); do
        echo "virtual_server 10.99.0.$s 80 {"
        echo "    delay_loop 60"
        echo "    lb_algo wrr"
        echo "    lb_kind DR"
        echo "    protocol TCP"
        for ((r = 1; r <= REALS; r++)); do
            echo "    real_server 10.98.$s.$r 80 {"
            echo "        weight $1"
            echo "    }"
        done
        echo "}"
    done
}
gen_rules() {
    local s r
    for ((s = 1; s <= SERVICES; s++)); do
        echo "-A -t 10.99.0.$s:80 -s wrr"
        for ((r = 1; r <= REALS; r++)); do echo "-a -t 10.99.0.$s:80 -r 10.98.$s.$r:80 -g -w 1"; done
    done
}
gen_keepalived 1 >"$TMP/keepalived.conf"
gen_rules >"$TMP/rules"

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
lvsadm_() { nsx env LVSD_SOCKET="$SOCK" timeout 20 "$BIN/lvsadm" "$@"; }
# listed WEIGHT: the number of real servers -Ln shows with that weight.
listed() { lvsadm_ -Ln 2>/dev/null | awk -v w="$1" '$1 == "->" && $2 ~ /^[0-9]/ && $4 == w { n++ } END { print n + 0 }'; }
# wait_listed WEIGHT: polls (every 10 ms, 60 s at most) until all TOTAL real servers have WEIGHT.
wait_listed() {
    local deadline=$((SECONDS + 60))
    until [[ $(listed "$1") == "$TOTAL" ]]; do
        ((SECONDS < deadline)) || { echo "config-load.sh: timed out: $(listed "$1") of $TOTAL real servers with weight $1" >&2; tail -n 20 "$TMP/lvsd.log" >&2; exit 1; }
        sleep 0.01
    done
}
start_lvsd() {
    rm -f "$SOCK"
    # nsenter execs lvsd (ip netns exec would fork: $! would not be lvsd's pid).
    nsenter --net="/run/netns/$NS" "$BIN/lvsd" --interface eth0 --dataplane "$PLANE" --socket "$SOCK" --config "$1" --log-level notice \
        >"$TMP/lvsd.log" 2>&1 &
    LVSD_PID=$!
}
stop_lvsd() {
    kill "$LVSD_PID"
    local deadline=$((SECONDS + 20))
    while kill -0 "$LVSD_PID" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "config-load.sh: lvsd did not stop" >&2; exit 1; }
        sleep 0.05
    done
    wait "$LVSD_PID" 2>/dev/null || true
    LVSD_PID=""
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A RESULT
record() { RESULT[$1]="${RESULT[$1]:-} $2"; }
for ((run = 1; run <= RUNS; run++)); do
    t=$(now_ns); "$BIN/lvsd" --check-config "$TMP/keepalived.conf" >/dev/null; record "check-config keepalived" "$(ms_since "$t")"
    t=$(now_ns); "$BIN/lvsd" --check-config "$TMP/rules" >/dev/null; record "check-config rules" "$(ms_since "$t")"

    gen_keepalived 1 >"$TMP/keepalived.conf"
    t=$(now_ns); start_lvsd "$TMP/keepalived.conf"; wait_listed 1; record "start keepalived" "$(ms_since "$t")"
    gen_keepalived 2 >"$TMP/keepalived.conf"
    t=$(now_ns); lvsadm_ daemon reload >/dev/null; wait_listed 2; record "reload keepalived" "$(ms_since "$t")"
    stop_lvsd

    t=$(now_ns); start_lvsd "$TMP/rules"; wait_listed 1; record "start rules" "$(ms_since "$t")"
    lvsadm_ -C
    t=$(now_ns); lvsadm_ -R <"$TMP/rules"; wait_listed 1; record "restore" "$(ms_since "$t")"
    stop_lvsd
done

echo "bench/config-load.sh: $SERVICES services x $REALS real servers = $TOTAL, --dataplane $PLANE, $RUNS runs, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "binaries: $BIN"
for k in "check-config keepalived" "check-config rules" "start keepalived" "reload keepalived" "start rules" "restore"; do
    # shellcheck disable=SC2086 # one figure per word
    printf '%-26s median %6s ms   runs:%s\n' "$k" "$(printf '%s\n' ${RESULT[$k]} | median)" "${RESULT[$k]}"
done
