#!/usr/bin/env bash
# bench/nat-fastpath.sh: one long TCP download through the VIP, DR on the tc fast path against NAT
# on the tc fast path, NAT in lvsd and NAT in the director's kernel (issue 18: "the XDP/tc fast
# path handles both directions, or leaves NAT in lvsd; measure which is faster").
#
#   bench/nat-fastpath.sh [--size MIB] [--runs N] [--data FILE] [--cases "dr-tc nat-tc nat-afpacket nat-kernel"]
#
# Brings up three labs with scripts/lvs-lab, all at once (LVS_BIN: default the release build):
#   dr-tc         prefix nfp-dr-tc:   lvs-lab up                --dataplane tc  (DR; lvsd hands an
#                 established connection to the tc program's map, which forwards the client's
#                 packets in the kernel; the real server answers the client directly)
#   nat-tc        prefix nfp-nat-tc:  lvs-lab up --method nat   --dataplane tc  (NAT in the tc
#                 fast path: lvsd hands an established connection to the tc program, which
#                 forwards both directions; lvsd sees the handshake, the first packets and the FIN)
#   nat-afpacket  prefix nfp-nat-afp: lvs-lab up --method nat   --dataplane afpacket  (NAT in lvsd:
#                 both directions through its user-space path)
#   nat-kernel    prefix nfp-nat-krn: the NAT lab with lvsd stopped and the director's kernel doing
#                 the NAT instead (ip_forward=1, an nftables dnat of VIP:80 to rs1:80, conntrack
#                 un-NATs the replies): NAT with both directions in the kernel's netfilter, the
#                 in-kernel reference (docs/nat.md)
# puts a file of MIB MiB (default 256) on both real servers, and in N interleaved rounds (default
# 3; every case in each round, so a noisy neighbour hits all alike) downloads it once per case
# with `curl -o /dev/null http://VIP/bulk` from the client namespace. For each download:
#   Gbit/s     size_download * 8 / time_total (curl's own figures)
#   lvsd s/GB  utime+stime of the case's lvsd (/proc/PID/stat) over the download, per 10^9 bytes
#   host s/GB  busy time of the whole machine (/proc/stat, both CPUs) over the download, per
#              10^9 bytes: includes the client, nginx and the kernel's softirq work
# Prints every run and the medians; with --data FILE appends the medians as bench/report.sh lines
# (DATE GROUP FIGURE VALUE COMMAND MACHINE). Every lab is removed on exit, also on failure.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
LAB=$ROOT/scripts/lvs-lab
CMDLINE="bench/nat-fastpath.sh${*:+ $*}"

SIZE_MIB=256
RUNS=3
DATA=""
CASES="dr-tc nat-tc nat-afpacket nat-kernel"
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; }
while (($#)); do
    case $1 in
    --size) SIZE_MIB=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --data) DATA=${2:?}; shift 2 ;;
    --cases) CASES=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "nat-fastpath.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -ge 1 && $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] ||
    { echo "nat-fastpath.sh: --size and --runs must be positive integers" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "nat-fastpath.sh: must run as root (namespaces)" >&2; exit 1; }
LVS_BIN=${LVS_BIN:-$ROOT/.build/release}
[[ -x $LVS_BIN/lvsd && -x $LVS_BIN/lvsadm ]] ||
    { echo "nat-fastpath.sh: no lvsd/lvsadm in $LVS_BIN (swift build -c release, or set LVS_BIN)" >&2; exit 1; }
export LVS_BIN

VIP=192.168.1.100
STATE_ROOT=/run/lvs-lab
FILE_NAME=bulk
GROUP="forwarding methods (issue 18)"
# Timeouts (seconds) for every wait.
T_LAB=240
T_DOWN=90
T_CURL=300

declare -A PREFIX=([dr-tc]=nfp-dr-tc [nat-tc]=nfp-nat-tc [nat-afpacket]=nfp-nat-afp [nat-kernel]=nfp-nat-krn)
declare -A UPARGS=([dr-tc]="" [nat-tc]="--method nat" [nat-afpacket]="--method nat" [nat-kernel]="--method nat")
declare -A PLANE=([dr-tc]=tc [nat-tc]=tc [nat-afpacket]=afpacket [nat-kernel]=afpacket)
declare -A LABEL=([dr-tc]="DR on tc (tc fast path)" [nat-tc]="NAT on tc (tc fast path, both directions)"
    [nat-afpacket]="NAT on afpacket (lvsd's user-space path)"
    [nat-kernel]="NAT in the director's kernel (nftables dnat + conntrack, no lvsd; the in-kernel reference)")
RS1_PRIVATE=10.0.0.31
LIST=()
for c in $CASES; do
    [[ -n ${PREFIX[$c]:-} ]] || { echo "nat-fastpath.sh: unknown case '$c' (dr-tc, nat-tc, nat-afpacket, nat-kernel)" >&2; exit 2; }
    LIST+=("$c")
done

WORK=$(mktemp -d /tmp/nat-fastpath.XXXXXX)
T0=$SECONDS
log() { printf '[nat-fastpath %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

LABS_UP=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${LABS_UP[@]}"; do
        timeout "$T_DOWN" "$LAB" down --prefix "$p" >>"$WORK/lab-down.log" 2>&1 ||
            log "lvs-lab down --prefix $p failed (see $WORK/lab-down.log)"
    done
    ((rc == 0)) || log "failed (exit $rc); logs in $WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# utime+stime of a process, in clock ticks
ticks_of() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# busy ticks of the whole machine (everything but idle and iowait)
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
HZ=$(getconf CLK_TCK)

lab_up() {
    local c=$1 p=${PREFIX[$1]} st
    st=$STATE_ROOT/$p
    if [[ -d $st ]]; then
        log "stale lab $p found; taking it down"
        timeout "$T_DOWN" "$LAB" down --prefix "$p" >>"$WORK/lab-down.log" 2>&1 || die "cannot remove stale lab $p"
    fi
    log "lab $p up (${UPARGS[$c]:-dr} --dataplane ${PLANE[$c]})"
    LABS_UP+=("$p")
    # shellcheck disable=SC2086 # the words, split on purpose
    LVS_LAB_LVSD_ARGS="--dataplane ${PLANE[$c]}" timeout "$T_LAB" "$LAB" up --prefix "$p" ${UPARGS[$c]} \
        >"$WORK/lab-$p.log" 2>&1 || { tail -n 30 "$WORK/lab-$p.log" >&2; die "lvs-lab up --prefix $p failed"; }
    # The file, on both real servers (rr alternates between them); one copy, hard-linked.
    head -c "$((SIZE_MIB * 1024 * 1024))" /dev/zero >"$st/rs1/www/$FILE_NAME"
    ln -f "$st/rs1/www/$FILE_NAME" "$st/rs2/www/$FILE_NAME"
    [[ $c != nat-kernel ]] || kernel_nat "$p"
}

# The nat-kernel case: lvsd stopped (it removes what it installed), the director's kernel forwards
# and NATs VIP:80 to rs1 with nftables; conntrack rewrites the replies back to the VIP.
kernel_nat() {
    local p=$1 pid i
    pid=$(tr -dc 0-9 <"$STATE_ROOT/$p/lvsd.pid")
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    [[ ! -d /proc/$pid ]] || die "$p: lvsd (pid $pid) did not stop within 10 s"
    ip netns exec "$p-director" sysctl -qw net.ipv4.ip_forward=1
    printf 'table ip nfp_nat {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n  ip daddr %s tcp dport 80 dnat to %s:80\n }\n}\n' \
        "$VIP" "$RS1_PRIVATE" | ip netns exec "$p-director" nft -f -
}

# One download through case $1's VIP; prints "BYTES SECONDS LVSD_TICKS HOST_TICKS".
download() {
    local c=$1 p=${PREFIX[$1]} pid=self t0 b0 t1 b1 out
    if [[ $c != nat-kernel ]]; then
        pid=$(tr -dc 0-9 <"$STATE_ROOT/$p/lvsd.pid")
        [[ -d /proc/$pid ]] || die "$p: lvsd (pid $pid) is not running; $(tail -n 20 "$STATE_ROOT/$p/lvsd.log")"
    fi
    t0=$(ticks_of "$pid")
    b0=$(busy_ticks)
    out=$(ip netns exec "$p-client" timeout "$T_CURL" curl -sS --max-time "$((T_CURL - 10))" -o /dev/null \
        -w '%{http_code} %{size_download} %{time_total}' "http://$VIP/$FILE_NAME") ||
        die "$p: curl failed ($out); lvsd log: $(tail -n 20 "$STATE_ROOT/$p/lvsd.log")"
    t1=$(ticks_of "$pid")
    b1=$(busy_ticks)
    # no lvsd in the nat-kernel case: its column is 0
    [[ $c != nat-kernel ]] || t1=$t0
    read -r code bytes secs <<<"$out"
    [[ $code == 200 && $bytes == $((SIZE_MIB * 1024 * 1024)) ]] ||
        die "$p: download incomplete (HTTP $code, $bytes bytes of $((SIZE_MIB * 1024 * 1024)))"
    echo "$bytes $secs $((t1 - t0)) $((b1 - b0))"
}

for c in "${LIST[@]}"; do lab_up "$c"; done
log "load before the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= RUNS; r++)); do
    for c in "${LIST[@]}"; do
        read -r bytes secs lt ht <<<"$(download "$c")"
        awk -v c="$c" -v r="$r" -v b="$bytes" -v s="$secs" -v lt="$lt" -v ht="$ht" -v hz="$HZ" 'BEGIN {
            printf "%s\t%d\t%.3f\t%.3f\t%.3f\n", c, r, b * 8 / s / 1e9, lt / hz / (b / 1e9), ht / hz / (b / 1e9) }' |
            tee -a "$WORK/runs.tsv" >&2
    done
done
log "load after the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"

# Median (and range) of column $2 of case $1's runs.
stat_of() {
    awk -F'\t' -v c="$1" -v k="$2" '$1 == c { v[++n] = $k }
        END {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%.2f (%.2f-%.2f)", m, v[1], v[n] }' "$WORK/runs.tsv"
}

printf '\n%-14s %-22s %-22s %-22s\n' case "Gbit/s" "lvsd CPU s/GB" "host CPU s/GB"
for c in "${LIST[@]}"; do
    printf '%-14s %-22s %-22s %-22s\n' "$c" "$(stat_of "$c" 3)" "$(stat_of "$c" 4)" "$(stat_of "$c" 5)"
done
if [[ -n $DATA ]]; then
    date=$(date -u '+%Y-%m-%d %H:%M UTC')
    machine="the 2-vCPU Firecracker VM (AMD EPYC, KVM), kernel $(uname -r | cut -d. -f1-2), $(basename "$(dirname "$LVS_BIN/.")") build, lab in namespaces (veth + bridge), shared machine (load $(cut -d' ' -f1 /proc/loadavg))"
    for c in "${LIST[@]}"; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$date" "$GROUP" \
            "one TCP download through the VIP ($SIZE_MIB MiB, curl), Gbit/s, median (range) of $RUNS: ${LABEL[$c]}" \
            "$(stat_of "$c" 3)" "$CMDLINE" "$machine"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$date" "$GROUP" \
            "the same download: lvsd CPU s per GB (utime+stime, /proc/PID/stat) / whole machine busy s per GB: ${LABEL[$c]}" \
            "$(stat_of "$c" 4) / $(stat_of "$c" 5)" "$CMDLINE" "$machine"
    done >>"$DATA"
    log "medians appended to $DATA"
fi
