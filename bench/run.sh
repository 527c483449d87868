#!/usr/bin/env bash
# bench/run.sh: throughput of the lab's Direct-Routing directors, side by side.
#
#   bench/run.sh [--dataplanes "afpacket afxdp xdp tc"] [--connections N] [--duration S]
#                [--runs N] [--out FILE] [--data FILE] [--no-perf] [--no-build] [--rps]
#                [--lvsd-cpu 0|1]
#
# Builds, with scripts/lvs-lab, one lab per lvsd data plane (prefix bench-afpacket,
# bench-afxdp, bench-xdp, bench-tc; lvsd started with LVS_LAB_LVSD_ARGS="--dataplane X") and one
# lab with the kernel's nftables netdev DSR (bench-nft). Paths: lvsd-X for each data
# plane, nft, and direct (client -> rs1 in the nft lab: the ceiling). In --runs
# interleaved rounds (every path in each round, so a noisy neighbour hits all alike):
#   (a) 64-byte UDP frames/s arriving at the real servers' eth0 (rx_packets),
#       trafgen in the client namespace sending to VIP:53 from 64,512 source
#       ports; "direct" sends to rs1's own address (the generator's ceiling)
#   (b) HTTP requests/s with wrk: 64 keep-alive connections, 64 connections
#       with `Connection: close`, 1 keep-alive connection
#   (c) the director's CPU seconds per million packets: utime+stime of the
#       lvsd process from /proc/PID/stat; nft forwards in kernel softirq and
#       has no process, so the whole machine's busy time per million packets
#       is what compares lvsd with nft
#   (d) the median latency of the 1-connection wrk run (wrk --latency, 50th
#       percentile; and what it adds to the direct path's). The mean is kept in
#       the raw runs: a few stalls of milliseconds move it by tens of µs
# Medians go into the section "## Throughput in the lab (bench/run.sh)" of
# --out (default bench/results/DATE-HHMM-HOST-run.md, with the raw runs and perf); the old
# per-LVSD_ARGS sections "## Throughput in the lab (bench/run.sh, ...)" are removed, others are
# kept. The medians of the first table also go, one figure per line, into --data (default: --out
# with .tsv for .md); when that file is in bench/results/, bench/report.sh then renders
# BENCHMARKS.md's tables from bench/results/*.tsv.
#
# --connections N (default 1000000, 0 = skip): each lvsd data plane gets a
# second lab (prefix bench-X-n) whose table is filled with N established TCP
# connections before the rounds; every measurement of a round then runs on
# both labs of a data plane, the empty one and right after it the filled one,
# so drift on the machine during the run hits both alike (nft and direct have
# no connection table). A service VIP:9 (rr to
# rs1:9 and rs2:9, -g) is added; trafgen sends, per flow, a SYN then an ACK
# (for xdp and tc three ACKs: lvsd hands a connection to the fast path's map from its 4th
# input packet on) to VIP:9 from 192.168.1.128+i (client eth0 aliases,
# i < 64) and ports 1024-65535, paced (-t 1us, doubled on loss) in chunks of
# 64,512 flows; a chunk is re-sent (idempotent: SYN and ACK keep ESTABLISHED)
# while it loses frames. lvsd's input-only state machine makes each flow
# ESTABLISHED; the filled labs' TCP timeout is set to 7200 s first (lvsadm
# --set 7200 0 0), so no entry expires during the run (900 s is shorter than
# the fills and rounds together).
# Nothing listens on port 9: the real servers answer with RSTs to the client's
# aliases, whose kernel ignores them. ActiveConn of VIP:9 (`lvsadm -Ln`) is
# checked after the fill and again after the measurements; a table below 95 %
# of N is reported as a failed fill and that path is not measured with it.
# A fill stops early when more than 5 % of N is already missing, or after 600 s.
# A table older than 600 s gets its flows re-sent before the next round.
#
# Idle lvsd processes: all labs are up at once, and every lvsd but the one
# whose path is measured is stopped with SIGSTOP (SIGCONT before use, 0.5 s
# to settle). Idle, an lvsd with an empty table takes ~0.5 % of a core;
# --dataplane xdp and tc make a safety-net pass over their BPF map every 10 min
# within a budget of a tenth of the worker's time (statistics come from
# per-destination counters, expiry asks the map per expiring connection), on
# the CPU1 that the measured lvsd shares. nft and direct are measured with
# every lvsd stopped.
#
# Pinning, the same for every path: trafgen and wrk on CPU0; all labs are
# started under `taskset -c 1`, so nginx (x2 per lab), the UDP echo and lvsd
# (all of its threads) run on CPU1, re-checked with `taskset -a -p` after start.
#
# --rps: in every lab, frames the director sends into the switch are received
# (bridge, then the real servers' IP and TCP/UDP stacks) on CPU0, by RPS on the
# switch's port to the director. Without it veth runs that whole receive inline
# in the sender's transmit, so lvsd's transmit on CPU1 pays for the real
# servers' receive work, while nft's forward (in the client's softirq) already
# runs on CPU0 and is unchanged by it. A real NIC's transmit costs no receive
# work. The report goes to its own section, "(bench/run.sh --rps)".
#
# --lvsd-cpu 0: lvsd runs on CPU0 with the generator and wrk, the CPU where
# nft's forward runs (in the client's softirq), instead of CPU1 with nginx.
# Report section "(bench/run.sh --lvsd-cpu 0)".
#
# Environment: LVSD_ARGS = more lvsd options for every lvsd lab (not --dataplane).
# Exit status: 0 done; 1 error; 2 usage; 3 report written, but a table fill
# stayed below 95 % of N (see the report).
#
# Traffic flows only between the namespaces the labs create.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
LAB=$ROOT/scripts/lvs-lab
CMDLINE="bench/run.sh${*:+ $*}"

DUR=5
RUNS=3
STAMP=$(date -u +%Y-%m-%d-%H%M)-$(hostname -s)
OUT=$ROOT/bench/results/$STAMP-run.md
DATA=""
PERF=1
BUILD=1
DATAPLANES="afpacket afxdp xdp tc"
RPS=0
LVSD_CPU=1
CONNS=1000000
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; }
while (($#)); do
    case $1 in
    --dataplanes) DATAPLANES=${2?}; shift 2 ;;
    --connections) CONNS=${2:?}; shift 2 ;;
    --duration) DUR=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --data) DATA=${2:?}; shift 2 ;;
    --no-perf) PERF=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --rps) RPS=1; shift ;;
    --lvsd-cpu) LVSD_CPU=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n $DATA ]] || DATA=${OUT%.md}.tsv
[[ $DUR =~ ^[0-9]+$ && $DUR -ge 1 && $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] ||
    { echo "run.sh: --duration and --runs must be positive integers" >&2; exit 2; }
# Chunks of 64,512 flows (source ports 1024-65535), one client alias each, at most 64.
PORTS=64512
MAX_ALIASES=64
[[ $CONNS =~ ^[0-9]+$ && $CONNS -le $((MAX_ALIASES * PORTS)) ]] ||
    { echo "run.sh: --connections must be an integer from 0 to $((MAX_ALIASES * PORTS))" >&2; exit 2; }
PLANES=()
for x in $DATAPLANES; do
    case $x in afpacket | afxdp | xdp | tc) ;; *) echo "run.sh: unknown data plane '$x' (afpacket, afxdp, xdp, tc)" >&2; exit 2 ;; esac
    [[ " ${PLANES[*]} " == *" $x "* ]] || PLANES+=("$x")
done
((${#PLANES[@]})) || { echo "run.sh: --dataplanes names no data plane" >&2; exit 2; }
[[ " ${LVSD_ARGS:-} " != *" --dataplane"* ]] ||
    { echo "run.sh: LVSD_ARGS must not set --dataplane (use --dataplanes)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run.sh: must run as root (namespaces)" >&2; exit 1; }

# Lab facts (from scripts/lvs-lab).
VIP=192.168.1.100
CLIENT_IP=192.168.1.12
CLIENT_MAC=00:50:00:00:03:00
DIRECTOR_MAC=00:50:00:00:04:00
RS1_IP=192.168.1.31
RS1_MAC=00:50:00:00:01:00
RS2_IP=192.168.1.32
# Fill sources: 192.168.1.128 + i, outside the lab's .12/.21/.31/.32/.100.
ALIAS_BASE=128
FILL_PORT=9
PN=bench-nft
SECTION="## Throughput in the lab (bench/run.sh)"
[[ $LVSD_CPU == 0 || $LVSD_CPU == 1 ]] || { echo "run.sh: --lvsd-cpu must be 0 or 1" >&2; exit 2; }
# (plain ifs: under set -e an assignment whose last command substitution fails would end the script)
VARIANT=""
if ((RPS)); then VARIANT+=" --rps"; fi
if ((LVSD_CPU != 1)); then VARIANT+=" --lvsd-cpu $LVSD_CPU"; fi
[[ -z $VARIANT ]] || SECTION="## Throughput in the lab (bench/run.sh$VARIANT)"
OLD_SECTIONS="## Throughput in the lab (bench/run.sh, "
STATE_ROOT=/run/lvs-lab

# lvsd paths (one lab each, and one more with the filled table), then the nft lab's two paths.
LVSD_PATHS=()
for x in "${PLANES[@]}"; do LVSD_PATHS+=("lvsd-$x"); done
ALL_PATHS=("${LVSD_PATHS[@]}" nft direct)

# Timeouts (seconds) for every wait.
T_APT=600
T_BUILD=1200
T_LAB=240
T_DOWN=90
T_CMD=15
T_FILL_CHUNK=120
# Fill: pacing gap in µs (doubled after a lossy chunk, up to the cap), tries per chunk,
# the share of N that must be in the table, and when a table is refreshed.
FILL_GAP_US=1
FILL_GAP_MAX_US=16
FILL_TRIES=4
FILL_MIN_PCT=95
# at most this long per table (s); the filled labs' ESTABLISHED timeout (s), and the age after
# which a table's flows are re-sent before a round
FILL_BUDGET=600
FILL_TIMEOUT=7200
REFRESH_AGE=3600

WORK=$(mktemp -d /tmp/lvs-bench.XXXXXX)
T0=$SECONDS
log() { printf '[bench %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ cleanup

BG_PIDS=()
LABS_UP=()
cleanup() {
    local rc=$? p pid
    trap - EXIT INT TERM
    for p in "${BG_PIDS[@]}"; do
        kill -INT "$p" 2>/dev/null || true
    done
    sleep 0.3
    for p in "${BG_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    for p in "${LABS_UP[@]}"; do
        # a stopped lvsd would sit on lvs-lab's TERM until the KILL after its timeout
        pid=$(lvsd_pid_of "$p" 2>/dev/null || true)
        [[ -n $pid ]] && kill -CONT "$pid" 2>/dev/null
        echo_signal "$p" CONT
        timeout "$T_DOWN" "$LAB" down --prefix "$p" >>"$WORK/lab-down.log" 2>&1 ||
            log "lvs-lab down --prefix $p failed (see $WORK/lab-down.log)"
    done
    ((rc == 0 || rc == 3)) || log "failed (exit $rc); logs in $WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- packages

ensure_packages() {
    local need=()
    command -v trafgen >/dev/null || need+=(netsniff-ng)
    command -v wrk >/dev/null || need+=(wrk)
    command -v taskset >/dev/null || need+=(util-linux)
    if [[ " ${PLANES[*]} " =~ \ (afxdp|xdp|tc)\  ]] && ((BUILD)); then
        command -v clang >/dev/null || need+=(clang)
    fi
    command -v perf >/dev/null || ((PERF == 0)) || need+=(linux-perf)
    ((${#need[@]})) || return 0
    log "installing: ${need[*]}"
    mkdir -p "$STATE_ROOT"
    (
        flock -w "$T_APT" 9 || exit 1
        timeout "$T_APT" apt-get update -qq || exit 1
        DEBIAN_FRONTEND=noninteractive timeout "$T_APT" apt-get install -y -qq "${need[@]}" && exit 0
        # linux-perf is optional: retry without it
        local rest=() x
        for x in "${need[@]}"; do [[ $x == linux-perf ]] || rest+=("$x"); done
        ((${#rest[@]})) || exit 0
        DEBIAN_FRONTEND=noninteractive timeout "$T_APT" apt-get install -y -qq "${rest[@]}"
    ) 9>"$STATE_ROOT/.apt.lock" >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; die "apt-get install failed"; }
    if ! command -v trafgen >/dev/null || ! command -v wrk >/dev/null; then die "trafgen/wrk still missing"; fi
}

# ------------------------------------------------------------------ helpers

nsx() { local p=$1 node=$2; shift 2; ip netns exec "$p-$node" "$@"; }
rx_of() { nsx "$1" "$2" cat /sys/class/net/eth0/statistics/rx_packets; }
tx_of() { nsx "$1" "$2" cat /sys/class/net/eth0/statistics/tx_packets; }
now() { date +%s.%N; }
# utime+stime of a process, in clock ticks
ticks_of() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# busy ticks of the whole machine (everything but idle and iowait)
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
HZ=$(getconf CLK_TCK)

echo_signal() {
    local p=$1 sig=$2 n f
    for n in rs1 rs2; do
        f=$STATE_ROOT/$p/$n/udp-echo.pid
        if [[ -f $f ]]; then kill "-$sig" "$(tr -dc 0-9 <"$f")" 2>/dev/null || true; fi
    done
}

# lab and destination of a path: an lvsd path's lab is bench-X, or bench-X-n while the
# filled tables are measured (TABLE=N)
TABLE=0
lab_of() { case $1 in lvsd-*) if [[ $TABLE == N ]]; then echo "bench-${1#lvsd-}-n"; else echo "bench-${1#lvsd-}"; fi ;; *) echo "$PN" ;; esac; }
# every lab with an lvsd (both tables)
lvsd_labs() {
    local x
    for x in "${PLANES[@]}"; do
        echo "bench-$x"
        ((CONNS > 0)) && echo "bench-$x-n"
    done
    return 0
}
ip_of() { [[ $1 == direct ]] && echo "$RS1_IP" || echo "$VIP"; }
mac_of() { [[ $1 == direct ]] && echo "$RS1_MAC" || echo "$DIRECTOR_MAC"; }
is_lvsd() { [[ $1 == lvsd-* ]]; }
# the report's name of a path
label_of() { case $1 in lvsd-*) echo "lvsd ${1#lvsd-}" ;; nft) echo "nft DSR" ;; direct) echo "direct (ceiling)" ;; esac; }

# lvsd's pid in lab P, checked to be an lvsd process (never signal a reused pid)
lvsd_pid_of() {
    local f=$STATE_ROOT/$1/lvsd.pid pid
    [[ -f $f ]] || return 1
    pid=$(tr -dc 0-9 <"$f")
    [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == lvsd ]] || return 1
    echo "$pid"
}
lvsd_pid() { lvsd_pid_of "$(lab_of "$1")" || die "no lvsd running in $(lab_of "$1")"; }

lvsadm_in() {
    local p=$1
    shift
    nsx "$p" director env LVSD_SOCKET="$STATE_ROOT/$p/lvsd.sock" timeout "$T_CMD" "$BIN/lvsadm" "$@"
}

# activate PATH: only the lvsd of PATH's lab (for the current TABLE) runs (SIGCONT), every other
# lvsd is stopped (SIGSTOP); nft and direct stop them all. A process that was stopped gets 0.5 s
# to catch up on its timers.
ACTIVE=""
activate() {
    local want="" q pid
    is_lvsd "$1" && want=$(lab_of "$1")
    [[ $want == "$ACTIVE" ]] && return 0
    for q in $(lvsd_labs); do
        pid=$(lvsd_pid_of "$q") || die "no lvsd running in $q"
        if [[ $q == "$want" ]]; then
            kill -CONT "$pid"
        else
            kill -STOP "$pid"
        fi
    done
    ACTIVE=$want
    [[ -z $want ]] || sleep 0.5
}

# pin_lab PREFIX: every process in the lab's rs namespaces to CPU1, the director's
# (lvsd) to --lvsd-cpu
pin_lab() {
    local p=$1 n pid cpu
    for n in director rs1 rs2; do
        cpu=1
        [[ $n != director ]] || cpu=$LVSD_CPU
        for pid in $(ip netns pids "$p-$n" 2>/dev/null); do
            taskset -a -p -c "$cpu" "$pid" >/dev/null 2>&1 || true
        done
    done
}

lab_up() {
    local p=$1 mode=$2 args=${3:-}
    if [[ -d $STATE_ROOT/$p ]]; then
        log "stale lab $p found; taking it down"
        timeout "$T_DOWN" "$LAB" down --prefix "$p" >>"$WORK/lab-down.log" 2>&1 || die "cannot remove stale lab $p"
    fi
    log "lab $p up (director: $mode${args:+ $args})"
    LABS_UP+=("$p")
    LVS_BIN=$BIN LVS_LAB_LVSD_ARGS="$args" timeout "$T_LAB" taskset -c 1 "$LAB" up --director "$mode" --prefix "$p" >"$WORK/lab-$p.log" 2>&1 ||
        { tail -n 30 "$WORK/lab-$p.log" >&2; die "lvs-lab up --prefix $p failed"; }
    pin_lab "$p"
    # A lab idle for over the bridge's default 300 s (while the other tables fill) would forget
    # the hosts' MACs, and the bridge would flood frames for rs1 to every port: counted at both
    # real servers. An hour outlasts the run.
    nsx "$p" sw ip link set br0 type bridge ageing_time 360000 || die "cannot set the bridge's ageing time in $p"
    if ((RPS)); then
        nsx "$p" sw sh -c 'echo 1 >/sys/class/net/director/queues/rx-0/rps_cpus' ||
            die "cannot set RPS on the switch port to the director in $p"
    fi
    # many short connections from one client address
    nsx "$p" client sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
    # The Python UDP echo would spend CPU1 answering the flood (competing with
    # lvsd there, not with nft): paused for the bench. Frames are counted at
    # the real servers' eth0 either way; the paused socket just drops them.
    echo_signal "$p" STOP
}

# service VIP:PORT (PROTO -t|-u) with rr to rs1 and rs2, direct routing
lvsd_service() {
    local p=$1 proto=$2 port=$3 args
    for args in "-A $proto $VIP:$port -s rr" "-a $proto $VIP:$port -r $RS1_IP:$port -g" "-a $proto $VIP:$port -r $RS2_IP:$port -g"; do
        # shellcheck disable=SC2086
        lvsadm_in "$p" $args >>"$WORK/lvsadm.log" 2>&1 ||
            { cat "$WORK/lvsadm.log" >&2; die "lvsadm $args failed in $p"; }
    done
}

# idle_pct PATH: CPU share of one core the (active) lvsd takes over 2 s without traffic
idle_pct() {
    local pid a b
    pid=$(lvsd_pid "$1")
    a=$(ticks_of "$pid")
    sleep 2
    b=$(ticks_of "$pid")
    awk -v t=$((b - a)) -v hz="$HZ" 'BEGIN { printf "%.1f", 100 * t / hz / 2 }'
}

# check a lab-local HTTP path once before measuring (bounded)
smoke() {
    local path=$1 p
    p=$(lab_of "$path")
    nsx "$p" client curl -sf --max-time 3 -o /dev/null "http://$(ip_of "$path")/" ||
        die "HTTP to $(ip_of "$path") does not work through $path"
}

# stop_bg PID: INT, 5 s, then KILL
stop_bg() {
    local pid=$1 i
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- UDP (a,c)

# 60 bytes + 4 FCS = 64 bytes on the wire. UDP checksum 0 (none, valid for
# IPv4) so the varying source port needs no checksum update.
trafgen_conf() {
    local path=$1
    cat <<EOF
{
  eth(da=$(mac_of "$path"), sa=$CLIENT_MAC, type=0x0800),
  ipv4(saddr=$CLIENT_IP, daddr=$(ip_of "$path"), ttl=64),
  udp(sp=dinc(1024, 65535), dp=53, csum=0),
  fill(0x41, 18)
}
EOF
}

# start_udp PATH LOGTAG: trafgen flooding PATH from CPU0, in the background; sets TG
start_udp() {
    local path=$1 tag=$2 p cfg
    p=$(lab_of "$path")
    cfg=$WORK/udp-$path.cfg
    trafgen_conf "$path" >"$cfg"
    taskset -c 0 ip netns exec "$p-client" timeout -s INT $((DUR + 10)) \
        trafgen --dev eth0 --conf "$cfg" --cpus 1 --no-sock-mem --notouch-irq --no-cpu-stats \
        >"$WORK/trafgen-$tag.log" 2>&1 &
    TG=$!
    BG_PIDS+=("$TG")
}

# udp_run PATH TABLE ROUND: appends "path table round pps offered lvsd_ticks busy_ticks secs frames"
# to $WORK/udp.tsv (TABLE: 0 = empty connection table, N = filled)
udp_run() {
    local path=$1 table=$2 round=$3 p lpid="" tag=$1-$2-$3
    p=$(lab_of "$path")
    activate "$path"
    is_lvsd "$path" && lpid=$(lvsd_pid "$path")
    start_udp "$path" "$tag"
    sleep 1.5 # warm-up: every flow seen once, connection entries created
    kill -0 "$TG" 2>/dev/null || { cat "$WORK/trafgen-$tag.log" >&2; die "trafgen ended early"; }
    local t1 r1 o1 l1=0 b1 t2 r2 o2 l2=0 b2
    t1=$(now); r1=$(($(rx_of "$p" rs1) + $(rx_of "$p" rs2))); o1=$(tx_of "$p" client)
    [[ -n $lpid ]] && l1=$(ticks_of "$lpid"); b1=$(busy_ticks)
    sleep "$DUR"
    t2=$(now); r2=$(($(rx_of "$p" rs1) + $(rx_of "$p" rs2))); o2=$(tx_of "$p" client)
    [[ -n $lpid ]] && l2=$(ticks_of "$lpid"); b2=$(busy_ticks)
    stop_bg "$TG"
    awk -v path="$path" -v tb="$table" -v r="$round" -v t="$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')" \
        -v rx=$((r2 - r1)) -v off=$((o2 - o1)) -v lt=$((l2 - l1)) -v bt=$((b2 - b1)) \
        'BEGIN { printf "%s\t%s\t%s\t%.0f\t%.0f\t%d\t%d\t%.3f\t%d\n", path, tb, r, rx / t, off / t, lt, bt, t, rx }' >>"$WORK/udp.tsv"
    log "udp  $path table=$table round $round: $(tail -n 1 "$WORK/udp.tsv" | awk '{ printf "%d pkt/s at RS, %d offered", $4, $5 }')"
    # more at the real servers than offered: frames were duplicated (flooded) on the way
    if awk -v rx=$((r2 - r1)) -v off=$((o2 - o1)) 'BEGIN { exit !(rx > off * 1.02) }'; then
        echo "$path table=$table round $round: $((r2 - r1)) frames at the real servers, $((o2 - o1)) offered" >>"$WORK/flooded.txt"
        log "ERROR: $path table=$table round $round counted more frames at the real servers than were offered"
    fi
}

# ------------------------------------------------------------- HTTP (b,d)

# to microseconds: 69.12us, 1.20ms, 1.00s
to_us() { awk '{ v = $1 + 0; if ($1 ~ /us$/) print v; else if ($1 ~ /ms$/) print v * 1000; else if ($1 ~ /s$/) print v * 1000000; else print v }'; }

# http_run PATH TABLE ROUND MODE(ka|close|one): appends
# "path table round mode rps median_latency_us lvsd_ticks requests errors mean_latency_us" to $WORK/http.tsv
http_run() {
    local path=$1 table=$2 round=$3 mode=$4 p conns=64 hdr=() lpid="" l1=0 l2=0 f
    p=$(lab_of "$path")
    activate "$path"
    [[ $mode == one ]] && conns=1
    [[ $mode == close ]] && hdr=(-H 'Connection: close')
    is_lvsd "$path" && lpid=$(lvsd_pid "$path")
    f=$WORK/wrk-$path-$table-$mode-$round.txt
    [[ -n $lpid ]] && l1=$(ticks_of "$lpid")
    taskset -c 0 ip netns exec "$p-client" timeout $((DUR + 15)) \
        wrk -t1 -c"$conns" -d"${DUR}s" --timeout 2s --latency "${hdr[@]}" "http://$(ip_of "$path")/" >"$f" 2>&1 ||
        { cat "$f" >&2; die "wrk failed ($path $mode)"; }
    [[ -n $lpid ]] && l2=$(ticks_of "$lpid")
    local rps lat mean req err
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
    lat=$(awk '$1 == "50%" { print $2; exit }' "$f" | to_us)
    mean=$(awk '$1 == "Latency" { print $2; exit }' "$f" | to_us)
    req=$(awk '/requests in/ { print $1; exit }' "$f")
    err=$(awk '/Socket errors|Non-2xx/ { s = s $0 ";" } END { gsub(/ +/, " ", s); print (s == "" ? "-" : s) }' "$f")
    [[ -n $rps && -n $lat && -n $mean ]] || { cat "$f" >&2; die "cannot parse wrk output ($f)"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n' "$path" "$table" "$round" "$mode" "$rps" "$lat" $((l2 - l1)) "$req" "$err" "$mean" >>"$WORK/http.tsv"
    log "http $path table=$table $mode round $round: $rps req/s, median latency ${lat} us (mean ${mean} us)${err:+ (errors: $err)}"
}

# round ROUND PATH:TABLE...: every measurement of one round, the paths (each with the empty
# table, 0, or the filled one, N) interleaved
round() {
    local r=$1 item mode
    shift
    for item in "$@"; do
        TABLE=${item#*:}
        udp_run "${item%:*}" "$TABLE" "$r"
    done
    for mode in ka close one; do
        for item in "$@"; do
            TABLE=${item#*:}
            http_run "${item%:*}" "$TABLE" "$r" "$mode"
        done
    done
}

# ---------------------------------------------------------------- perf (c)

# perf_lvsd PATH TABLE: profile of PATH's lvsd during one more UDP run, into $WORK/perf-PATH-TABLE.txt
perf_lvsd() {
    local path=$1 table=$2 out=$WORK/perf-$1-$2.txt data=$WORK/perf-$1-$2.data
    TABLE=$table
    ((PERF)) || { echo "perf: skipped (--no-perf)" >"$out"; return 0; }
    command -v perf >/dev/null || { echo "perf: not installed" >"$out"; return 0; }
    local lpid
    activate "$path"
    lpid=$(lvsd_pid "$path")
    log "perf record -g on $path (table=$table) during one more ${DUR}s UDP run"
    start_udp "$path" "perf-$path-$table"
    sleep 1
    # cpu-clock: this VM has no hardware counters (`perf stat -e instructions` is unsupported)
    timeout $((DUR + 20)) perf record -e cpu-clock -F 2999 -g -p "$lpid" -o "$data" -- sleep "$DUR" \
        >"$WORK/perf-record-$path-$table.log" 2>&1 || log "perf record failed (see $WORK/perf-record-$path-$table.log)"
    stop_bg "$TG"
    [[ -s $data ]] || { echo "perf: no data" >"$out"; return 0; }
    local dm=cat
    command -v swift >/dev/null && dm="swift demangle --simplified"
    {
        echo "self time by object (user space: lvsd, libc, swift runtime; kernel: [kernel.kallsyms]):"
        timeout 120 perf report -i "$data" --no-children --sort dso --stdio -g none \
            2>/dev/null | grep -E '^ +[0-9]' | head -n 8 | sed -E 's/ +/ /g; s/^ //'
        echo
        echo "self time by symbol (perf record -e cpu-clock -g -p LVSD, ${DUR}s of 64-byte UDP):"
        timeout 120 perf report -i "$data" --no-children --sort dso,symbol --stdio -g none \
            --percent-limit 1.5 2>/dev/null | grep -E '^ +[0-9]' | head -n 25 | $dm |
            sed -E 's/ +/ /g; s/^ //' | cut -c1-150
        echo
        echo "inclusive time (children), top entries:"
        timeout 120 perf report -i "$data" --children --sort symbol --stdio -g none \
            --percent-limit 8 2>/dev/null | grep -E '^ +[0-9]' | head -n 25 | $dm |
            sed -E 's/ +/ /g; s/^ //' | cut -c1-150
    } >"$out" 2>&1 || true
    rm -f "$data"
}

# --------------------------------------------------- connection table fill

# ActiveConn of TCP VIP:9 in lab P (established and pre-established entries)
active_fill() {
    lvsadm_in "$1" -Ln | awk -v vs="$VIP:$FILL_PORT" '
        $1 == "TCP" || $1 == "UDP" || $1 == "SCTP" || $1 == "FWM" { s = ($1 == "TCP" && $2 == vs) }
        s && $1 == "->" { n += $5 }
        END { print n + 0 }'
}

# the fast path's map entries (xdp, tc; "" when the data plane has none)
xdp_entries() { lvsadm_in "$1" daemon status | awk '/^(xdp|tc) fast path:/ { print $4 }'; }

# Packets per flow: a SYN and an ACK make the entry ESTABLISHED. lvsd --dataplane xdp/tc offers a
# connection to its fast path's map from the 4th input packet on (offloadAfterPackets, counting the
# SYN), as a connection carrying data would reach it: there, SYN and three ACKs.
fill_pkts() { if [[ $1 == lvsd-xdp || $1 == lvsd-tc ]]; then echo 4; else echo 2; fi; }

# fill_conf SRC PKTS: per flow a SYN, then PKTS-1 ACKs (trafgen sends the blocks in turn, each
# with its own counter, so flow k's packets are adjacent); source ports 1024.. from alias SRC.
fill_conf() {
    local src=$1 pkts=$2 k
    cat <<EOF
{
  eth(da=$DIRECTOR_MAC, sa=$CLIENT_MAC, type=0x0800),
  ipv4(saddr=$src, daddr=$VIP, ttl=64),
  tcp(sp=dinc(1024, 65535), dp=$FILL_PORT, seq=1000, syn, win=64240)
}
EOF
    for ((k = 1; k < pkts; k++)); do
        cat <<EOF
{
  eth(da=$DIRECTOR_MAC, sa=$CLIENT_MAC, type=0x0800),
  ipv4(saddr=$src, daddr=$VIP, ttl=64),
  tcp(sp=dinc(1024, 65535), dp=$FILL_PORT, seq=1001, aseq=1, ack, win=64240)
}
EOF
    done
}

chunks() { echo $(((CONNS + PORTS - 1) / PORTS)); }
chunk_flows() { local i=$1 left=$((CONNS - $1 * PORTS)); ((left < PORTS)) && echo "$left" || echo "$PORTS"; }

# send_chunk PATH I GAP_US: chunk I's flows once; prints the seconds it took
send_chunk() {
    local path=$1 i=$2 gap=$3 p flows t1 t2
    p=$(lab_of "$path")
    flows=$(chunk_flows "$i")
    t1=$(now)
    taskset -c 0 ip netns exec "$p-client" timeout "$T_FILL_CHUNK" \
        trafgen --dev eth0 --conf "$WORK/fill-$path-$i.cfg" --cpus 1 -n $(($(fill_pkts "$path") * flows)) -t "${gap}us" \
        --no-sock-mem --notouch-irq --no-cpu-stats >>"$WORK/trafgen-fill-$p.log" 2>&1 ||
        die "trafgen (fill chunk $i of $p) failed or timed out (see $WORK/trafgen-fill-$p.log)"
    t2=$(now)
    awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", b - a }'
}

# Per lvsd path: fill facts for the report.
declare -A FILL_STOP FILL_TIME FILL_SENT FILL_RATE FILL_COUNT FILL_END FILL_XDP FILL_IDLE IDLE0 FILL_OK FILL_AT FILL_TRIES_USED FILL_GAP

# fill_table PATH: VIP:9 service, client aliases, then every chunk until it is in the table
fill_table() {
    local path=$1 p n i flows ip gap=$FILL_GAP_US try before after got secs total=0 sent=0 tries=0 start flows_done=0 missing
    p=$(lab_of "$path")
    activate "$path"
    lvsadm_in "$p" --set "$FILL_TIMEOUT" 0 0 >>"$WORK/lvsadm.log" 2>&1 || die "lvsadm --set $FILL_TIMEOUT 0 0 failed in $p"
    lvsd_service "$p" -t "$FILL_PORT"
    n=$(chunks)
    for ((i = 0; i < n; i++)); do
        ip=192.168.1.$((ALIAS_BASE + i))
        nsx "$p" client ip addr add "$ip/32" dev eth0
        fill_conf "$ip" "$(fill_pkts "$path")" >"$WORK/fill-$path-$i.cfg"
    done
    log "fill $path: $CONNS flows in $n chunk(s), $(fill_pkts "$path") packets each, gap ${gap} us"
    FILL_AT[$path]=$SECONDS
    FILL_STOP[$path]=""
    start=$(active_fill "$p")
    for ((i = 0; i < n; i++)); do
        flows=$(chunk_flows "$i")
        got=0
        for ((try = 1; try <= FILL_TRIES; try++)); do
            before=$(active_fill "$p")
            secs=$(send_chunk "$path" "$i" "$gap")
            sleep 0.3 # the last frames through lvsd
            after=$(active_fill "$p")
            got=$((got + after - before))
            total=$(awk -v a="$total" -v b="$secs" 'BEGIN { print a + b }')
            sent=$((sent + $(fill_pkts "$path") * flows))
            tries=$((tries + 1))
            log "fill $path chunk $((i + 1))/$n try $try: ${secs} s, table $after (+$((after - before)) of $flows)"
            ((got * 100 >= flows * 99)) && break
            # lossy: slower from now on; a try that adds under 1 % will not finish the chunk
            ((gap * 2 <= FILL_GAP_MAX_US)) && gap=$((gap * 2))
            (((after - before) * 100 >= flows)) || break
            ((SECONDS - FILL_AT[$path] < FILL_BUDGET)) || break
        done
        # more than 5 % of N already missing: the fill cannot succeed, stop spending time on it
        flows_done=$((flows_done + flows))
        missing=$((flows_done - (after - start)))
        if ((i + 1 < n && SECONDS - FILL_AT[$path] >= FILL_BUDGET)); then
            FILL_STOP[$path]="stopped after $flows_done of $CONNS flows: the ${FILL_BUDGET} s budget is spent"
            log "fill $path: ${FILL_STOP[$path]}"
            break
        fi
        if ((i + 1 < n && missing * 100 > CONNS * (100 - FILL_MIN_PCT))); then
            FILL_STOP[$path]="stopped after $flows_done of $CONNS flows, $missing of them missing"
            log "fill $path: ${FILL_STOP[$path]}: it cannot reach ${FILL_MIN_PCT} %"
            break
        fi
    done
    sleep 1
    FILL_COUNT[$path]=$(active_fill "$p")
    FILL_XDP[$path]=$(xdp_entries "$p")
    FILL_TIME[$path]=$total
    FILL_SENT[$path]=$sent
    FILL_TRIES_USED[$path]=$tries
    FILL_GAP[$path]=$gap
    FILL_RATE[$path]=$(awk -v s="$sent" -v t="$total" 'BEGIN { printf "%.0f", (t > 0 ? s / t : 0) }')
    FILL_IDLE[$path]=$(idle_pct "$path")
    if ((FILL_COUNT[$path] * 100 >= CONNS * FILL_MIN_PCT)); then FILL_OK[$path]=1; else FILL_OK[$path]=0; fi
    log "fill $path: table ${FILL_COUNT[$path]} of $CONNS ($((FILL_COUNT[$path] * 100 / CONNS)) %) after $tries chunk sends, ${total} s of sending (${FILL_RATE[$path]} frames/s); fast-path map: ${FILL_XDP[$path]:-n/a}; lvsd idle ${FILL_IDLE[$path]} % of a core"
    ((FILL_OK[$path])) || log "ERROR: $path: only ${FILL_COUNT[$path]} of $CONNS connections in the table (< ${FILL_MIN_PCT} %); not measured with it"
}

# refresh PATH: the flows once more (idempotent), so no entry reaches its timeout mid-run
refresh_table() {
    local path=$1 n i
    activate "$path"
    n=$(chunks)
    log "refresh $path: table is $((SECONDS - FILL_AT[$path])) s old; re-sending its flows"
    FILL_AT[$path]=$SECONDS
    for ((i = 0; i < n; i++)); do send_chunk "$path" "$i" "${FILL_GAP[$path]}" >/dev/null; done
}

# ------------------------------------------------------------------ report

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# udp_col PATH TABLE COLUMN, http_col PATH TABLE MODE COLUMN: medians
udp_col() { awk -F'\t' -v p="$1" -v t="$2" -v c="$3" '$1 == p && $2 == t { print $c }' "$WORK/udp.tsv" | median; }
http_col() { awk -F'\t' -v p="$1" -v t="$2" -v m="$3" -v c="$4" '$1 == p && $2 == t && $4 == m { print $c }' "$WORK/http.tsv" | median; }
# CPU-s per million frames at the real servers: lvsd's own (column 6) or the machine's (column 7)
cpu_col() { awk -F'\t' -v p="$1" -v t="$2" -v c="$3" -v hz="$HZ" '$1 == p && $2 == t && $9 > 0 { print ($c / hz) / ($9 / 1e6) }' "$WORK/udp.tsv" | median; }
# lvsd CPU µs per HTTP request
us_req() { awk -F'\t' -v p="$1" -v t="$2" -v m="$3" -v hz="$HZ" '$1 == p && $2 == t && $4 == m && $8 > 0 { print 1e6 * ($7 / hz) / $8 }' "$WORK/http.tsv" | median; }
fmt_k() { awk -v v="$1" 'BEGIN { if (v == "") print "—"; else if (v >= 10000) printf "%.1f k", v / 1000; else printf "%.0f", v }'; }
pf() { awk -v v="$2" -v f="$1" 'BEGIN { if (v == "") print "—"; else printf f, v }'; }
# judge A B OP T: "A/B× met|missed" against A/B OP T (OP: >=, <=, <)
judge() {
    awk -v a="$1" -v b="$2" -v op="$3" -v t="$4" 'BEGIN {
        if (a == "" || b == "" || b == 0) { print "—"; exit }
        r = a / b
        ok = (op == ">=") ? (r >= t) : (op == "<=") ? (r <= t) : (r < t)
        # three decimals where two would round a miss onto the line (0.997 is not 1.00)
        f = (sprintf("%.2f", r) + 0 == t + 0) ? "%.3f× %s" : "%.2f× %s"
        printf f, r, (ok ? "met" : "**missed**") }'
}

# judge_ticks A B TA TB: like judge A B <= 1.10 for lvsd's CPU per Mpkt, whose ticks (TA, TB: the
# medians of utime+stime over a window, 1/HZ s each) can be few: a data plane that forwards in BPF
# uses 2-10 ticks per 5 s, where one tick more is +10-50 %. Two reads of the clock are each ±1 tick,
# so a difference of at most 2 ticks is within the resolution and says nothing either way.
judge_ticks() {
    awk -v a="$1" -v b="$2" -v ta="$3" -v tb="$4" 'BEGIN {
        if (a == "" || b == "" || b == 0) { print "—"; exit }
        r = a / b
        d = ta - tb; if (d < 0) d = -d
        if (r > 1.10 && d <= 2) { printf "%.2f× (%d vs %d ticks: within the clock resolution)", r, ta, tb; exit }
        printf "%.2f× %s", r, (r <= 1.10 ? "met" : "**missed**") }'
}

# metrics PATH TABLE: sets M_udp M_off M_ka M_cl M_one M_lat M_cpu M_busy M_uska M_uscl M_ticks
metrics() {
    local path=$1 t=$2
    M_udp=$(udp_col "$path" "$t" 4); M_off=$(udp_col "$path" "$t" 5)
    M_ka=$(http_col "$path" "$t" ka 5); M_cl=$(http_col "$path" "$t" close 5); M_one=$(http_col "$path" "$t" one 5)
    M_lat=$(http_col "$path" "$t" one 6)
    M_cpu=""; M_uska=""; M_uscl=""; M_ticks=""
    if is_lvsd "$path"; then
        M_cpu=$(cpu_col "$path" "$t" 6); M_uska=$(us_req "$path" "$t" ka); M_uscl=$(us_req "$path" "$t" close)
        M_ticks=$(udp_col "$path" "$t" 6)
    fi
    M_busy=$(cpu_col "$path" "$t" 7)
}

N_LABEL=""
n_label() { awk -v n="$CONNS" 'BEGIN { if (n % 1000000 == 0) printf "%dM", n / 1e6; else if (n % 1000 == 0) printf "%dk", n / 1000; else print n }'; }

write_report() {
    local date path t label
    date=$(date -u '+%Y-%m-%d %H:%M UTC')
    local -a phase2=()
    if ((CONNS > 0)); then
        for path in "${LVSD_PATHS[@]}"; do ((FILL_OK[$path])) && phase2+=("$path"); done
    fi
    {
        echo "$SECTION"
        echo
        echo "- date: $date"
        echo "- command: \`$CMDLINE\` (as root, from the repository root; ${LVSD_ARGS:+LVSD_ARGS=\"$LVSD_ARGS\"; }${RUNS} interleaved round(s) of ${ITEMS[*]} (:N = the lab with the filled table); ${DUR} s per measurement; $((SECONDS - T0)) s in all)"
        echo "- kernel: \`$(uname -r)\`; $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)); lvsd \`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)\`, one worker thread; machine load before the run: $LOAD0 (loadavg 1/5/15 min)"
        echo "- pinning: trafgen and wrk on CPU0; nginx ×2, the UDP echo (paused during the bench)$( ((LVSD_CPU == 1)) && echo " and lvsd (all threads)") on CPU1$( ((LVSD_CPU == 0)) && echo "; --lvsd-cpu 0: lvsd (all threads) on CPU0 with trafgen and wrk, where nft's forward runs"), in every lab$( ((RPS)) && echo "; --rps: the switch's port to the director hands what the director sends to CPU0 (rps_cpus 1), so the bridge and the real servers receive it there, as they do nft's forward"); every lvsd but the measured one is stopped (SIGSTOP); idle lvsd with an empty table: $(for path in "${LVSD_PATHS[@]}"; do printf '%s %s %%, ' "${path#lvsd-}" "${IDLE0[$path]}"; done | sed 's/, $//') of a core"
        if ((CONNS > 0)); then
            echo "- table fill ($CONNS established TCP connections to VIP:$FILL_PORT, per flow a SYN and an ACK (xdp, tc: three ACKs, so the fast path's map takes them), from $(chunks) client alias(es), paced trafgen):"
            for path in "${LVSD_PATHS[@]}"; do
                printf '  - %s: %s of %s in the table (%s %%) after %s s of sending %s frames (%s frames/s, %s chunk sends, final gap %s µs), %s at the end of the measurements%s; idle lvsd with the table: %s %% of a core%s\n' \
                    "$(label_of "$path")" "${FILL_COUNT[$path]}" "$CONNS" "$((FILL_COUNT[$path] * 100 / CONNS))" "${FILL_TIME[$path]}" "${FILL_SENT[$path]}" \
                    "${FILL_RATE[$path]}" "${FILL_TRIES_USED[$path]}" "${FILL_GAP[$path]}" "${FILL_END[$path]:-—}" \
                    "${FILL_XDP[$path]:+; fast-path map entries (every offloaded TCP/UDP flow): ${FILL_XDP[$path]} of at most 4,194,304}" "${FILL_IDLE[$path]}" \
                    "$( ((FILL_OK[$path])) || echo "; **fill failed (< ${FILL_MIN_PCT} %${FILL_STOP[$path]:+; ${FILL_STOP[$path]}}): not measured with the table**")"
            done
        fi
        echo
        echo "| path (median of ${RUNS}) | 64-byte UDP frames/s at rs1+rs2 | offered/s | HTTP req/s, keep-alive, 64 conns | HTTP req/s, close, 64 conns | HTTP req/s, keep-alive, 1 conn | latency, 1 conn (µs, median) | lvsd CPU-s per Mpkt | machine busy CPU-s per Mpkt¹ | lvsd CPU µs per request (keep-alive / close) |"
        echo "|---|---|---|---|---|---|---|---|---|---|"
        for t in 0 N; do
            for path in "${ALL_PATHS[@]}"; do
                [[ $t == 0 ]] || { is_lvsd "$path" && [[ " ${phase2[*]} " == *" $path "* ]]; } || continue
                metrics "$path" "$t"
                label=$(label_of "$path")
                [[ $t == N ]] && label="$label, $N_LABEL conns"
                echo "| $label | $(fmt_k "$M_udp") | $(fmt_k "$M_off") | $(fmt_k "$M_ka") | $(fmt_k "$M_cl") | $(fmt_k "$M_one") | $(pf %.0f "$M_lat") | $(if is_lvsd "$path"; then pf %.2f "$M_cpu"; else echo "n/a"; fi) | $(pf %.2f "$M_busy") | $(if is_lvsd "$path"; then echo "$(pf %.1f "$M_uska") / $(pf %.1f "$M_uscl")"; else echo "—"; fi) |"
            done
        done
        echo
        if [[ -s $WORK/flooded.txt ]]; then
            echo "**Invalid UDP measurements: more frames reached the real servers than were offered (duplicated on the way), in:** $(paste -sd ';' "$WORK/flooded.txt")"
            echo
        fi
        echo "¹ /proc/stat user+nice+system+irq+softirq of both CPUs over the UDP window, divided by the frames that arrived. nft forwards in the sender's softirq on CPU0 and has no process, so this is the figure that compares lvsd with nft: generator and real-server work per frame are the same on every path, and the direct row shows them alone (a director's cost is roughly its row minus direct's). It includes whatever else ran on the machine."
        echo
        local nu nka ncl none nlat nbusy du dlat
        metrics nft 0; nu=$M_udp; nka=$M_ka; ncl=$M_cl; none=$M_one; nlat=$M_lat; nbusy=$M_busy
        metrics direct 0; du=$M_udp; dlat=$M_lat
        echo "Targets, empty table (ratio lvsd / nft unless stated; met or missed):"
        echo
        echo "| lvsd data plane | UDP vs nft (≥ 1.30×) | UDP vs direct (≥ 0.90×) | keep-alive c64 vs nft (≥ 1.00×) | close c64 vs nft (≥ 1.00×) | keep-alive c1 vs nft (≥ 1.00×) | latency added at c1 vs direct: lvsd / nft (µs) | machine CPU per Mpkt vs nft (< 1.00×) |"
        echo "|---|---|---|---|---|---|---|---|"
        for path in "${LVSD_PATHS[@]}"; do
            metrics "$path" 0
            echo "| ${path#lvsd-} | $(judge "$M_udp" "$nu" '>=' 1.30) | $(judge "$M_udp" "$du" '>=' 0.90) | $(judge "$M_ka" "$nka" '>=' 1.00) | $(judge "$M_cl" "$ncl" '>=' 1.00) | $(judge "$M_one" "$none" '>=' 1.00) | $(awk -v a="$M_lat" -v n="$nlat" -v d="$dlat" 'BEGIN { if (a == "" || d == "") print "—"; else printf "%+.0f / %+.0f", a - d, n - d }') | $(judge "$M_busy" "$nbusy" '<' 1.00) |"
        done
        echo
        if ((CONNS > 0)); then
            echo "Targets with $CONNS established connections in the table (ratio to the same data plane's empty-table median; throughput must stay ≥ 0.90×, latency and CPU ≤ 1.10×; the machine's CPU per Mpkt is the figure the director target compares with nft, lvsd's own is judged within its clock's resolution):"
            echo
            echo "| lvsd data plane | table entries (after fill / at the end) | UDP | keep-alive c64 | close c64 | keep-alive c1 | latency c1 | machine CPU per Mpkt | lvsd CPU per Mpkt |"
            echo "|---|---|---|---|---|---|---|---|---|"
            local eu eka ecl eone elat ecpu ebusy eticks
            for path in "${LVSD_PATHS[@]}"; do
                if ! ((FILL_OK[$path])); then
                    echo "| ${path#lvsd-} | ${FILL_COUNT[$path]} / — | **fill failed** | not measured | not measured | not measured | not measured | not measured | not measured |"
                    continue
                fi
                metrics "$path" 0; eu=$M_udp; eka=$M_ka; ecl=$M_cl; eone=$M_one; elat=$M_lat; ecpu=$M_cpu; ebusy=$M_busy; eticks=$M_ticks
                metrics "$path" N
                echo "| ${path#lvsd-} | ${FILL_COUNT[$path]} / ${FILL_END[$path]:-—} | $(judge "$M_udp" "$eu" '>=' 0.90) | $(judge "$M_ka" "$eka" '>=' 0.90) | $(judge "$M_cl" "$ecl" '>=' 0.90) | $(judge "$M_one" "$eone" '>=' 0.90) | $(judge "$M_lat" "$elat" '<=' 1.10) | $(judge "$M_busy" "$ebusy" '<=' 1.10) | $(judge_ticks "$M_cpu" "$ecpu" "$M_ticks" "$eticks") |"
            done
            echo
            echo "Each data plane has two labs, one with the empty table and one filled before the rounds (bench-X and bench-X-n, TCP timeout 7200 s); every measurement of a round runs on both, one right after the other, so drift on the machine hits both alike. nft and direct have no connection table and are measured once per round."
            echo
        fi
        echo "What is measured: (a) rx_packets of eth0 in the rs1 and rs2 namespaces over ${DUR} s after a 1.5 s warm-up, trafgen (one process, CPU0) sending 60-byte frames (64 on the wire with FCS) from $CLIENT_IP, source ports 1024–65535 in turn, to VIP:53 (direct: to rs1's address and MAC). (b) \`wrk -t1 -c64|-c1 -d${DUR}s\` from the client namespace to http://VIP/ (direct: http://rs1/; one nginx instead of two, both on CPU1). (c) utime+stime of lvsd from /proc/PID/stat across the same window. (d) wrk's median latency with one connection (\`--latency\`, 50th percentile; the mean, in the raw runs, moves by tens of µs with a few stalls of milliseconds). The \`direct\` row bounds what one trafgen on CPU0 can offer and deliver, not a director."
        echo
        echo "<details><summary>raw runs</summary>"
        echo
        echo '```'
        echo "UDP: path table round frames/s@RS offered/s lvsd_ticks busy_ticks seconds frames (ticks: 1/$HZ s; table N = $CONNS connections)"
        cat "$WORK/udp.tsv"
        echo "HTTP: path table round mode req/s median_latency_us lvsd_ticks requests errors mean_latency_us"
        cat "$WORK/http.tsv"
        echo '```'
        echo
        echo "</details>"
        echo
        local f
        for path in "${LVSD_PATHS[@]}"; do
            for t in 0 N; do
                f=$WORK/perf-$path-$t.txt
                [[ -f $f ]] || continue
                echo "<details><summary>perf on $(label_of "$path") during 64-byte UDP$([[ $t == N ]] && echo ", $N_LABEL connections in the table")</summary>"
                echo
                echo '```'
                cat "$f"
                echo '```'
                echo
                echo "</details>"
                echo
            done
        done
    } >"$WORK/section.md"

    # Replace our section (from its heading to the next "## "), drop the old
    # per-LVSD_ARGS sections, keep the rest.
    if [[ ! -f $OUT ]]; then
        printf '# Benchmarks\n\n' >"$OUT"
    fi
    awk -v head="$SECTION" -v old="$OLD_SECTIONS" -v sec="$WORK/section.md" '
        function emit(  l) { while ((getline l < sec) > 0) print l; close(sec); done = 1 }
        /^## / { skip = 0 }
        $0 == head { emit(); skip = 1; next }
        index($0, old) == 1 { skip = 1; next }
        !skip { print }
        END { if (!done) { print ""; emit() } }
    ' "$OUT" >"$WORK/out.md"
    cat -s "$WORK/out.md" >"$OUT"
    log "wrote $OUT"
    sed -n '1,40p' "$WORK/section.md" >&2
}

# write_data: the figures of write_report's first table, one per line, into $DATA
# (DATE GROUP FIGURE VALUE COMMAND MACHINE, tab-separated): bench/report.sh renders BENCHMARKS.md's
# tables from bench/results/*.tsv. An lvsd path measured with the filled table too gives both
# values, "empty / filled", in one figure.
write_data() {
    local date group machine path label sfx t v
    local -a cols
    date=$(date -u '+%Y-%m-%d %H:%M UTC')
    group=${SECTION#\#\# }
    machine="$(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), lvsd $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)"
    {
        echo "# bench/run.sh: DATE GROUP FIGURE VALUE COMMAND MACHINE, tab-separated (bench/report.sh renders it)"
        for path in "${ALL_PATHS[@]}"; do
            label=$(label_of "$path")
            local -a tables=(0)
            sfx=""
            if ((CONNS > 0)) && is_lvsd "$path" && ((${FILL_OK[$path]:-0})); then
                tables+=(N)
                sfx=" (empty table / $N_LABEL connections)"
            fi
            local -A val=()
            for t in "${tables[@]}"; do
                metrics "$path" "$t"
                cols=("$(fmt_k "$M_udp")" "$(fmt_k "$M_ka")" "$(fmt_k "$M_cl")" "$(fmt_k "$M_one")" "$(pf %.0f "$M_lat")" "$(pf %.2f "$M_busy")")
                for v in 0 1 2 3 4 5; do val[$v]=${val[$v]:+${val[$v]} / }${cols[$v]}; done
            done
            local -a names=("64-byte UDP frames/s at rs1+rs2" "HTTP req/s, keep-alive, 64 conns" "HTTP req/s, close, 64 conns" "HTTP req/s, keep-alive, 1 conn" "latency, 1 conn (µs, median)" "machine busy CPU-s per Mpkt")
            for v in 0 1 2 3 4 5; do
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$date" "$group" "$label: ${names[$v]}$sfx" "${val[$v]}" "$CMDLINE" "$machine"
            done
        done
    } >"$DATA"
    log "wrote $DATA"
}

# -------------------------------------------------------------------- main

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
N_LABEL=$(n_label)
ensure_packages
if ((BUILD)); then
    log "swift build -c release"
    (cd "$ROOT" && timeout "$T_BUILD" swift build -c release) >"$WORK/build.log" 2>&1 ||
        { tail -n 30 "$WORK/build.log" >&2; die "swift build failed"; }
    if [[ " ${PLANES[*]} " =~ \ xdp\  ]]; then
        log "make -C bpf (xdp_pass.o for the lab's switch port; lvsd's program is built into lvsd)"
        timeout 300 make -C "$ROOT/bpf" >>"$WORK/build.log" 2>&1 ||
            { tail -n 30 "$WORK/build.log" >&2; die "make -C bpf failed"; }
    fi
fi
BIN=$(cd "$ROOT" && timeout 120 swift build -c release --show-bin-path 2>/dev/null || echo "$ROOT/.build/release")
[[ -x $BIN/lvsd && -x $BIN/lvsadm ]] || die "lvsd/lvsadm not found in $BIN"

TABLES=(0)
((CONNS > 0)) && TABLES+=(N)
for TABLE in "${TABLES[@]}"; do
    for path in "${LVSD_PATHS[@]}"; do
        lab_up "$(lab_of "$path")" lvsd "--dataplane ${path#lvsd-}${LVSD_ARGS:+ $LVSD_ARGS}"
    done
done
lab_up "$PN" nft
for TABLE in "${TABLES[@]}"; do
    for path in "${LVSD_PATHS[@]}"; do
        p=$(lab_of "$path")
        lvsd_service "$p" -u 53
        pin_lab "$p"
        log "$path ($p): lvsd pid $(lvsd_pid "$path"), affinity: $(taskset -p "$(lvsd_pid "$path")" | awk '{ print $NF }')"
    done
done
for TABLE in "${TABLES[@]}"; do
    for path in "${ALL_PATHS[@]}"; do
        [[ $TABLE == 0 ]] || is_lvsd "$path" || continue
        activate "$path"
        smoke "$path"
    done
done
TABLE=0
for path in "${LVSD_PATHS[@]}"; do
    activate "$path"
    IDLE0[$path]=$(idle_pct "$path")
    log "$path: idle lvsd with an empty table: ${IDLE0[$path]} % of a core"
done

FAILED_FILL=0
FILLED=()
if ((CONNS > 0)); then
    TABLE=N
    # the slowest fill first, so the tables' ages at the end are closest
    for path in "${LVSD_PATHS[@]}"; do
        [[ $path == lvsd-xdp || $path == lvsd-tc ]] && fill_table "$path"
    done
    for path in "${LVSD_PATHS[@]}"; do
        [[ $path == lvsd-xdp || $path == lvsd-tc ]] || fill_table "$path"
    done
    for path in "${LVSD_PATHS[@]}"; do
        if ((FILL_OK[$path])); then FILLED+=("$path"); else FAILED_FILL=1; fi
    done
fi

: >"$WORK/udp.tsv"
: >"$WORK/http.tsv"
# each round: every lvsd path with its empty table, then with its filled one, then nft and direct
ITEMS=()
for path in "${LVSD_PATHS[@]}"; do
    ITEMS+=("$path:0")
    [[ " ${FILLED[*]} " == *" $path "* ]] && ITEMS+=("$path:N")
done
ITEMS+=(nft:0 direct:0)
for ((r = 1; r <= RUNS; r++)); do
    TABLE=N
    for path in "${FILLED[@]}"; do
        ((SECONDS - FILL_AT[$path] < REFRESH_AGE)) || refresh_table "$path"
    done
    round "$r" "${ITEMS[@]}"
done
for path in "${LVSD_PATHS[@]}"; do perf_lvsd "$path" 0; done
for path in "${FILLED[@]}"; do perf_lvsd "$path" N; done

if ((CONNS > 0)); then
    TABLE=N
    for path in "${LVSD_PATHS[@]}"; do
        activate "$path"
        FILL_END[$path]=$(active_fill "$(lab_of "$path")")
        log "$path: $((FILL_END[$path])) connections to VIP:$FILL_PORT in the table at the end"
        if ((FILL_OK[$path] && FILL_END[$path] * 100 < CONNS * FILL_MIN_PCT)); then
            log "ERROR: $path: the table fell to ${FILL_END[$path]} (< ${FILL_MIN_PCT} % of $CONNS) during the measurements"
            FAILED_FILL=1
        fi
    done
fi
activate nft # every lvsd stopped, as the labs go down
write_report
write_data
if [[ $(dirname "$(readlink -f "$DATA")") == "$ROOT/bench/results" ]]; then
    "$ROOT/bench/report.sh" --write "$ROOT/BENCHMARKS.md" && log "BENCHMARKS.md's tables rendered from bench/results/*.tsv"
fi
log "done in $((SECONDS - T0)) s; logs in $WORK"
if ((FAILED_FILL)); then
    log "a connection table stayed below ${FILL_MIN_PCT} % of $CONNS (see the report): exit 3"
    exit 3
fi
