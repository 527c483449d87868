#!/usr/bin/env bash
# bench/run.sh: throughput of the lab's Direct-Routing directors, side by side.
#
#   bench/run.sh [--duration S] [--runs N] [--out FILE] [--no-perf] [--no-build]
#
# Builds two labs with scripts/lvs-lab (prefix bench-lvsd: lvsd as director;
# prefix bench-nft: the kernel's nftables netdev DSR) and measures, in N
# interleaved rounds (lvsd, nft, direct in each round, so a noisy neighbour
# hits all three alike):
#   (a) 64-byte UDP frames/s arriving at the real servers' eth0 (rx_packets),
#       trafgen in the client namespace sending to VIP:53 from 64,512 source
#       ports; "direct" sends to rs1's own address (the generator's ceiling)
#   (b) HTTP requests/s with wrk: 64 keep-alive connections, 64 connections
#       with `Connection: close`, 1 keep-alive connection
#   (c) the director's CPU seconds per million packets: utime+stime of the
#       lvsd process from /proc/PID/stat; nft forwards in kernel softirq and
#       has no process, so only the whole machine's busy time is given there
#   (d) the average latency of the 1-connection wrk run
# and writes medians into the section "## Throughput in the lab (bench/run.sh)"
# of BENCHMARKS.md (other sections are kept).
#
# Pinning, the same for every path: trafgen and wrk on CPU0; both labs are
# started under `taskset -c 1`, so nginx (x2), the UDP echo and lvsd (all of
# its threads) run on CPU1, re-checked with `taskset -a -p` after start.
#
# Traffic flows only between the namespaces the labs create.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
LAB=$ROOT/scripts/lvs-lab
CMDLINE="bench/run.sh${*:+ $*}"

DUR=5
RUNS=3
OUT=$ROOT/BENCHMARKS.md
PERF=1
BUILD=1
while (($#)); do
    case $1 in
    --duration) DUR=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --no-perf) PERF=0; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,25p' "$SELF"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $DUR =~ ^[0-9]+$ && $DUR -ge 1 && $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] ||
    { echo "run.sh: --duration and --runs must be positive integers" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run.sh: must run as root (namespaces)" >&2; exit 1; }

# Lab facts (from scripts/lvs-lab).
VIP=192.168.1.100
CLIENT_IP=192.168.1.12
CLIENT_MAC=00:50:00:00:03:00
DIRECTOR_MAC=00:50:00:00:04:00
RS1_IP=192.168.1.31
RS1_MAC=00:50:00:00:01:00
RS2_IP=192.168.1.32
PL=bench-lvsd
# LVSD_ARGS: extra lvsd options for the lvsd lab, e.g. "--dataplane afxdp"; each setting gets its
# own section in BENCHMARKS.md.
SECTION="## Throughput in the lab (bench/run.sh${LVSD_ARGS:+, lvsd $LVSD_ARGS})"
PN=bench-nft
STATE_ROOT=/run/lvs-lab

# Timeouts (seconds) for every wait.
T_APT=600
T_BUILD=1200
T_LAB=240
T_DOWN=90
T_CMD=15

WORK=$(mktemp -d /tmp/lvs-bench.XXXXXX)
T0=$SECONDS
log() { printf '[bench %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ cleanup

BG_PIDS=()
LABS_UP=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${BG_PIDS[@]}"; do
        kill -INT "$p" 2>/dev/null || true
    done
    sleep 0.3
    for p in "${BG_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    for p in "${LABS_UP[@]}"; do
        echo_signal "$p" CONT
        timeout "$T_DOWN" "$LAB" down --prefix "$p" >>"$WORK/lab-down.log" 2>&1 ||
            log "lvs-lab down --prefix $p failed (see $WORK/lab-down.log)"
    done
    ((rc == 0)) || log "failed (exit $rc); logs in $WORK"
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
    command -v trafgen >/dev/null && command -v wrk >/dev/null || die "trafgen/wrk still missing"
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
        [[ -f $f ]] && kill "-$sig" "$(tr -dc 0-9 <"$f")" 2>/dev/null || true
    done
}

lvsd_pid() { tr -dc 0-9 <"$STATE_ROOT/$PL/lvsd.pid"; }

# pin_lab PREFIX: every process in the lab's rs/director namespaces to CPU1
pin_lab() {
    local p=$1 n pid
    for n in director rs1 rs2; do
        for pid in $(ip netns pids "$p-$n" 2>/dev/null); do
            taskset -a -p -c 1 "$pid" >/dev/null 2>&1 || true
        done
    done
}

lab_up() {
    local p=$1 mode=$2
    if [[ -d $STATE_ROOT/$p ]]; then
        log "stale lab $p found; taking it down"
        timeout "$T_DOWN" "$LAB" down --prefix "$p" >>"$WORK/lab-down.log" 2>&1 || die "cannot remove stale lab $p"
    fi
    log "lab $p up (director: $mode)"
    LABS_UP+=("$p")
    LVS_BIN=$BIN LVS_LAB_LVSD_ARGS="${LVSD_ARGS:-}" timeout "$T_LAB" taskset -c 1 "$LAB" up --director "$mode" --prefix "$p" >"$WORK/lab-$p.log" 2>&1 ||
        { tail -n 30 "$WORK/lab-$p.log" >&2; die "lvs-lab up --prefix $p failed"; }
    pin_lab "$p"
    # many short connections from one client address
    nsx "$p" client sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
    # The Python UDP echo would spend CPU1 answering the flood (competing with
    # lvsd there, not with nft): paused for the bench. Frames are counted at
    # the real servers' eth0 either way; the paused socket just drops them.
    echo_signal "$p" STOP
}

lvsd_udp_service() {
    local sock=$STATE_ROOT/$PL/lvsd.sock args
    for args in "-A -u $VIP:53 -s rr" "-a -u $VIP:53 -r $RS1_IP:53 -g" "-a -u $VIP:53 -r $RS2_IP:53 -g"; do
        # shellcheck disable=SC2086
        nsx "$PL" director env LVSD_SOCKET="$sock" timeout "$T_CMD" "$BIN/lvsadm" $args >>"$WORK/lvsadm.log" 2>&1 ||
            { cat "$WORK/lvsadm.log" >&2; die "lvsadm $args failed"; }
    done
    nsx "$PL" director env LVSD_SOCKET="$sock" timeout "$T_CMD" "$BIN/lvsadm" -Ln >>"$WORK/lvsadm.log" 2>&1 || true
}

# lab and destination of a path
lab_of() { [[ $1 == lvsd ]] && echo "$PL" || echo "$PN"; }
ip_of() { [[ $1 == direct ]] && echo "$RS1_IP" || echo "$VIP"; }
mac_of() { [[ $1 == direct ]] && echo "$RS1_MAC" || echo "$DIRECTOR_MAC"; }

# check a lab-local UDP/HTTP path once before measuring (bounded)
smoke() {
    local path=$1 p
    p=$(lab_of "$path")
    nsx "$p" client curl -sf --max-time 3 -o /dev/null "http://$(ip_of "$path")/" ||
        die "HTTP to $(ip_of "$path") does not work through $path"
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

# udp_run PATH ROUND: appends "path round pps offered lvsd_ticks busy_ticks secs" to $WORK/udp.tsv
udp_run() {
    local path=$1 round=$2 p cfg tg lpid=""
    p=$(lab_of "$path")
    cfg=$WORK/udp-$path.cfg
    trafgen_conf "$path" >"$cfg"
    [[ $path == lvsd ]] && lpid=$(lvsd_pid)
    taskset -c 0 ip netns exec "$p-client" timeout -s INT $((DUR + 10)) \
        trafgen --dev eth0 --conf "$cfg" --cpus 1 --no-sock-mem --notouch-irq --no-cpu-stats \
        >"$WORK/trafgen-$path-$round.log" 2>&1 &
    tg=$!
    BG_PIDS+=("$tg")
    sleep 1.5 # warm-up: every flow seen once, connection entries created
    kill -0 "$tg" 2>/dev/null || { cat "$WORK/trafgen-$path-$round.log" >&2; die "trafgen ended early"; }
    local t1 r1 o1 l1=0 b1 t2 r2 o2 l2=0 b2
    t1=$(now); r1=$(($(rx_of "$p" rs1) + $(rx_of "$p" rs2))); o1=$(tx_of "$p" client)
    [[ -n $lpid ]] && l1=$(ticks_of "$lpid"); b1=$(busy_ticks)
    sleep "$DUR"
    t2=$(now); r2=$(($(rx_of "$p" rs1) + $(rx_of "$p" rs2))); o2=$(tx_of "$p" client)
    [[ -n $lpid ]] && l2=$(ticks_of "$lpid"); b2=$(busy_ticks)
    kill -INT "$tg" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do kill -0 "$tg" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tg" 2>/dev/null || true
    wait "$tg" 2>/dev/null || true
    awk -v path="$path" -v r="$round" -v t="$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')" \
        -v rx=$((r2 - r1)) -v off=$((o2 - o1)) -v lt=$((l2 - l1)) -v bt=$((b2 - b1)) \
        'BEGIN { printf "%s\t%s\t%.0f\t%.0f\t%d\t%d\t%.3f\t%d\n", path, r, rx / t, off / t, lt, bt, t, rx }' >>"$WORK/udp.tsv"
    log "udp  $path round $round: $(tail -n 1 "$WORK/udp.tsv" | awk '{ printf "%d pkt/s at RS, %d offered", $3, $4 }')"
}

# ------------------------------------------------------------- HTTP (b,d)

# to microseconds: 69.12us, 1.20ms, 1.00s
to_us() { awk '{ v = $1 + 0; if ($1 ~ /us$/) print v; else if ($1 ~ /ms$/) print v * 1000; else if ($1 ~ /s$/) print v * 1000000; else print v }'; }

# http_run PATH ROUND MODE(ka|close|one): appends "path round mode rps lat_us lvsd_ticks requests errors"
http_run() {
    local path=$1 round=$2 mode=$3 p conns=64 hdr=() lpid="" l1=0 l2=0 f
    p=$(lab_of "$path")
    [[ $mode == one ]] && conns=1
    [[ $mode == close ]] && hdr=(-H 'Connection: close')
    [[ $path == lvsd ]] && lpid=$(lvsd_pid)
    f=$WORK/wrk-$path-$mode-$round.txt
    [[ -n $lpid ]] && l1=$(ticks_of "$lpid")
    taskset -c 0 ip netns exec "$p-client" timeout $((DUR + 15)) \
        wrk -t1 -c"$conns" -d"${DUR}s" --timeout 2s "${hdr[@]}" "http://$(ip_of "$path")/" >"$f" 2>&1 ||
        { cat "$f" >&2; die "wrk failed ($path $mode)"; }
    [[ -n $lpid ]] && l2=$(ticks_of "$lpid")
    local rps lat req err
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
    lat=$(awk '$1 == "Latency" { print $2; exit }' "$f" | to_us)
    req=$(awk '/requests in/ { print $1; exit }' "$f")
    err=$(awk '/Socket errors|Non-2xx/ { s = s $0 ";" } END { gsub(/ +/, " ", s); print (s == "" ? "-" : s) }' "$f")
    [[ -n $rps && -n $lat ]] || { cat "$f" >&2; die "cannot parse wrk output ($f)"; }
    printf '%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n' "$path" "$round" "$mode" "$rps" "$lat" $((l2 - l1)) "$req" "$err" >>"$WORK/http.tsv"
    log "http $path $mode round $round: $rps req/s, avg latency ${lat} us${err:+ (errors: $err)}"
}

# ---------------------------------------------------------------- perf (c)

perf_lvsd() {
    ((PERF)) || { echo "perf: skipped (--no-perf)" >"$WORK/perf.txt"; return 0; }
    command -v perf >/dev/null || { echo "perf: not installed" >"$WORK/perf.txt"; return 0; }
    local lpid cfg tg
    lpid=$(lvsd_pid)
    cfg=$WORK/udp-lvsd.cfg
    log "perf record -g on lvsd during one more ${DUR}s UDP run"
    taskset -c 0 ip netns exec "$PL-client" timeout -s INT $((DUR + 10)) \
        trafgen --dev eth0 --conf "$cfg" --cpus 1 --no-sock-mem --notouch-irq --no-cpu-stats \
        >"$WORK/trafgen-perf.log" 2>&1 &
    tg=$!
    BG_PIDS+=("$tg")
    sleep 1
    # cpu-clock: this VM has no hardware counters (`perf stat -e instructions` is unsupported)
    timeout $((DUR + 20)) perf record -e cpu-clock -F 2999 -g -p "$lpid" -o "$WORK/perf.data" -- sleep "$DUR" \
        >"$WORK/perf-record.log" 2>&1 || log "perf record failed (see $WORK/perf-record.log)"
    kill -INT "$tg" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do kill -0 "$tg" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tg" 2>/dev/null || true
    wait "$tg" 2>/dev/null || true
    [[ -s $WORK/perf.data ]] || { echo "perf: no data" >"$WORK/perf.txt"; return 0; }
    local dm=cat
    command -v swift >/dev/null && dm="swift demangle --simplified"
    {
        echo "self time by object (user space: lvsd, libc, swift runtime; kernel: [kernel.kallsyms]):"
        timeout 120 perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none \
            2>/dev/null | grep -E '^ +[0-9]' | head -n 8 | sed -E 's/ +/ /g; s/^ //'
        echo
        echo "self time by symbol (perf record -e cpu-clock -g -p LVSD, ${DUR}s of 64-byte UDP):"
        timeout 120 perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none \
            --percent-limit 1.5 2>/dev/null | grep -E '^ +[0-9]' | head -n 25 | $dm |
            sed -E 's/ +/ /g; s/^ //' | cut -c1-150
        echo
        echo "inclusive time (children), top entries:"
        timeout 120 perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none \
            --percent-limit 8 2>/dev/null | grep -E '^ +[0-9]' | head -n 25 | $dm |
            sed -E 's/ +/ /g; s/^ //' | cut -c1-150
    } >"$WORK/perf.txt" 2>&1 || true
}

# ------------------------------------------------------------------ report

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# udp_med PATH COLUMN
udp_col() { awk -F'\t' -v p="$1" -v c="$2" '$1 == p { print $c }' "$WORK/udp.tsv" | median; }
http_col() { awk -F'\t' -v p="$1" -v m="$2" -v c="$3" '$1 == p && $3 == m { print $c }' "$WORK/http.tsv" | median; }
fmt_k() { awk -v v="$1" 'BEGIN { if (v == "") print "—"; else if (v >= 10000) printf "%.1f k", v / 1000; else printf "%.0f", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "—"; else printf "%.2f×", a / b }'; }

write_report() {
    local kern date udp_l udp_n udp_d off_l off_n off_d
    kern=$(uname -r)
    date=$(date -u '+%Y-%m-%d %H:%M UTC')
    udp_l=$(udp_col lvsd 3); udp_n=$(udp_col nft 3); udp_d=$(udp_col direct 3)
    off_l=$(udp_col lvsd 4); off_n=$(udp_col nft 4); off_d=$(udp_col direct 4)
    # (c) lvsd CPU-s per Mpkt, per run then median; lvsd CPU share of a core
    local cpu_l util_l busy_l busy_n busy_d
    cpu_l=$(awk -F'\t' -v hz="$HZ" '$1 == "lvsd" && $8 > 0 { print ($5 / hz) / ($8 / 1e6) }' "$WORK/udp.tsv" | median)
    util_l=$(awk -F'\t' -v hz="$HZ" '$1 == "lvsd" { print 100 * ($5 / hz) / $7 }' "$WORK/udp.tsv" | median)
    for x in lvsd nft direct; do
        printf -v "busy_${x:0:1}" '%s' "$(awk -F'\t' -v p="$x" -v hz="$HZ" '$1 == p && $8 > 0 { print ($6 / hz) / ($8 / 1e6) }' "$WORK/udp.tsv" | median)"
    done
    local ka_l ka_n ka_d cl_l cl_n cl_d one_l one_n one_d lat_l lat_n lat_d us_ka us_cl
    ka_l=$(http_col lvsd ka 4); ka_n=$(http_col nft ka 4); ka_d=$(http_col direct ka 4)
    cl_l=$(http_col lvsd close 4); cl_n=$(http_col nft close 4); cl_d=$(http_col direct close 4)
    one_l=$(http_col lvsd one 4); one_n=$(http_col nft one 4); one_d=$(http_col direct one 4)
    lat_l=$(http_col lvsd one 5); lat_n=$(http_col nft one 5); lat_d=$(http_col direct one 5)
    us_ka=$(awk -F'\t' -v hz="$HZ" '$1 == "lvsd" && $3 == "ka" && $7 > 0 { print 1e6 * ($6 / hz) / $7 }' "$WORK/http.tsv" | median)
    us_cl=$(awk -F'\t' -v hz="$HZ" '$1 == "lvsd" && $3 == "close" && $7 > 0 { print 1e6 * ($6 / hz) / $7 }' "$WORK/http.tsv" | median)
    local f2='%.2f' f1='%.1f' f0='%.0f'
    pf() { awk -v v="$2" -v f="$1" 'BEGIN { if (v == "") print "—"; else printf f, v }'; }

    {
        echo "$SECTION"
        echo
        echo "- date: $date"
        echo "- command: \`$CMDLINE\` (as root, from the repository root; ${RUNS} interleaved rounds of lvsd, nft, direct; ${DUR} s per measurement)"
        echo "- kernel: \`$kern\`; $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)); lvsd \`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)\`, one worker thread"
        echo "- pinning: trafgen and wrk on CPU0; nginx ×2, the UDP echo (paused during the bench) and lvsd (all threads) on CPU1"
        echo "- **noisy**: the machine was shared with another engineer's test runs, so every figure carries that noise; medians of ${RUNS}, the raw runs are below"
        echo
        echo "| measure (median of ${RUNS}) | direct client→rs1 (ceiling) | lvsd | nft netdev DSR | lvsd / nft |"
        echo "|---|---|---|---|---|"
        echo "| (a) 64-byte UDP frames/s arriving at rs1+rs2 | $(fmt_k "$udp_d") | $(fmt_k "$udp_l") | $(fmt_k "$udp_n") | **$(ratio "$udp_l" "$udp_n")** (target ≥ 1.30×) |"
        echo "| &nbsp;&nbsp;offered by trafgen (client eth0 tx/s) | $(fmt_k "$off_d") | $(fmt_k "$off_l") | $(fmt_k "$off_n") | $(ratio "$off_l" "$off_n") |"
        echo "| (b) HTTP req/s, 64 keep-alive connections | $(fmt_k "$ka_d") | $(fmt_k "$ka_l") | $(fmt_k "$ka_n") | **$(ratio "$ka_l" "$ka_n")** (target ≥ 1.00×) |"
        echo "| (b) HTTP req/s, 64 connections, \`Connection: close\` | $(fmt_k "$cl_d") | $(fmt_k "$cl_l") | $(fmt_k "$cl_n") | **$(ratio "$cl_l" "$cl_n")** (target ≥ 1.00×) |"
        echo "| (b) HTTP req/s, 1 keep-alive connection | $(fmt_k "$one_d") | $(fmt_k "$one_l") | $(fmt_k "$one_n") | **$(ratio "$one_l" "$one_n")** (target ≥ 1.00×) |"
        echo "| (d) average latency, 1 connection (µs, lower is better) | $(pf "$f0" "$lat_d") | $(pf "$f0" "$lat_l") | $(pf "$f0" "$lat_n") | $(ratio "$lat_l" "$lat_n") |"
        echo "| (c) director CPU-s per million UDP packets | — | $(pf "$f2" "$cpu_l") (lvsd utime+stime) | n/a (kernel softirq, no process) | — |"
        echo "| &nbsp;&nbsp;lvsd CPU during the UDP run (% of one core) | — | $(pf "$f0" "$util_l") % | — | — |"
        echo "| &nbsp;&nbsp;whole machine busy CPU-s per million UDP packets¹ | $(pf "$f2" "$busy_d") | $(pf "$f2" "$busy_l") | $(pf "$f2" "$busy_n") | $(ratio "$busy_l" "$busy_n") |"
        echo "| &nbsp;&nbsp;lvsd CPU µs per HTTP request (keep-alive / close) | — | $(pf "$f1" "$us_ka") / $(pf "$f1" "$us_cl") | — | — |"
        echo
        echo "¹ /proc/stat user+nice+system+irq+softirq of both CPUs over the window, divided by the frames that arrived: it includes the generator, the real servers' receive path and whatever the other engineer ran, so it is only a rough cross-check; for nft the kernel DR cost is roughly the nft figure minus the direct one."
        echo
        echo "What is measured: (a) rx_packets of eth0 in the rs1 and rs2 namespaces over ${DUR} s after a 1.5 s warm-up, trafgen (one process, CPU0) sending 60-byte frames (64 on the wire with FCS) from 192.168.1.12, source ports 1024–65535 in turn, to VIP:53 (direct: to rs1's address and MAC). (b) \`wrk -t1 -c64|-c1 -d${DUR}s\` from the client namespace to http://VIP/ (direct: http://rs1/; one nginx instead of two, both on CPU1). (c) utime+stime of lvsd from /proc/PID/stat across the same window. The \`direct\` row bounds what one trafgen on CPU0 can offer and deliver, not a director."
        echo
        echo "<details><summary>raw runs</summary>"
        echo
        echo '```'
        echo "UDP: path round frames/s@RS offered/s lvsd_ticks busy_ticks seconds frames (ticks: 1/$HZ s)"
        cat "$WORK/udp.tsv"
        echo "HTTP: path round mode req/s latency_us lvsd_ticks requests errors"
        cat "$WORK/http.tsv"
        echo '```'
        echo
        echo "</details>"
        echo
        echo "<details><summary>perf on lvsd during 64-byte UDP</summary>"
        echo
        echo '```'
        cat "$WORK/perf.txt" 2>/dev/null || echo "perf: not run"
        echo '```'
        echo
        echo "</details>"
        echo
    } >"$WORK/section.md"

    # Replace our section (from its heading to the next "## "), keep the rest.
    local head="$SECTION"
    if [[ ! -f $OUT ]]; then
        printf '# Benchmarks\n\n' >"$OUT"
    fi
    awk -v head="$head" -v sec="$WORK/section.md" '
        function emit(  l) { while ((getline l < sec) > 0) print l; close(sec); done = 1 }
        $0 == head { emit(); skip = 1; next }
        skip && /^## / { skip = 0 }
        !skip { print }
        END { if (!done) { print ""; emit() } }
    ' "$OUT" >"$WORK/out.md"
    cat -s "$WORK/out.md" >"$OUT"
    log "wrote $OUT"
    cat "$WORK/section.md" | sed -n '1,25p' >&2
}

# -------------------------------------------------------------------- main

ensure_packages
if ((BUILD)); then
    log "swift build -c release"
    (cd "$ROOT" && timeout "$T_BUILD" swift build -c release) >"$WORK/build.log" 2>&1 ||
        { tail -n 30 "$WORK/build.log" >&2; die "swift build failed"; }
fi
BIN=$(cd "$ROOT" && timeout 120 swift build -c release --show-bin-path 2>/dev/null || echo "$ROOT/.build/release")
[[ -x $BIN/lvsd && -x $BIN/lvsadm ]] || die "lvsd/lvsadm not found in $BIN"

lab_up "$PL" lvsd
lab_up "$PN" nft
lvsd_udp_service
pin_lab "$PL"
log "lvsd pid $(lvsd_pid), affinity: $(taskset -p "$(lvsd_pid)" | awk '{ print $NF }')"
for path in lvsd nft direct; do smoke "$path"; done

: >"$WORK/udp.tsv"
: >"$WORK/http.tsv"
for ((r = 1; r <= RUNS; r++)); do
    for path in lvsd nft direct; do udp_run "$path" "$r"; done
    for mode in ka close one; do
        for path in lvsd nft direct; do http_run "$path" "$r" "$mode"; done
    done
done
perf_lvsd
write_report
log "done in $((SECONDS - T0)) s"
