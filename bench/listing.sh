#!/usr/bin/env bash
# bench/listing.sh: `lvsadm -Lnc` on a table of N connections while a keep-alive load runs.
#
#   bench/listing.sh [--dataplane afpacket|afxdp|xdp|tc] [--connections N] [--duration S]
#                    [--runs N] [--lvsadm-cpus "any|nice|CPUS ..."] [--compare-lvsadm PATH] [--perf]
#                    [--no-build]
#
# Builds (swift build -c release) and starts one lab with scripts/lvs-lab (prefix bench-lst, lvsd
# --dataplane X), pinned as bench/run.sh pins its labs: the lab (lvsd with all its threads, nginx
# x2) on CPU1, trafgen and wrk on CPU0. The table is filled as bench/run.sh fills it: N
# established TCP connections to VIP:9 (rr to rs1:9 and rs2:9, -g; TCP timeout 7200 s first), per
# flow a SYN and an ACK (xdp, tc: three ACKs) from client aliases 192.168.1.128+i, source ports
# 1024-65535, paced trafgen in chunks of 64,512 flows, a chunk re-sent while it loses frames.
#
# Without load: one `lvsadm -Lnc` (its lines, wall time, lvsadm's user+sys CPU, lvsd's CPU); with
# --compare-lvsadm PATH the same with that lvsadm binary (an older build) against the same table.
#
# Then --runs interleaved rounds of --duration s each:
#   alone  wrk -t1 -c64 (keep-alive) from the client namespace to http://VIP/
#   listed the same while `lvsadm -Lnc >/dev/null` runs back to back in the director's namespace,
#          as an operator runs it on the director: niceness 0, not pinned ("any", the default);
#          --lvsadm-cpus adds placements, one listed window per word and round: "nice" (not pinned,
#          `nice -n 19 lvsadm`), or CPUS (`taskset -c CPUS`). A listing still running when wrk ends
#          is waited for (so the next window has no listing in it).
# Prints the requests/s of every window, the medians and the ratio listed / alone per placement
# (the target is at least 0.90), and each listing's wall time and lvsadm CPU. --perf: `perf record
# -g` on lvsd and on lvsadm during one more listed window (the first placement); the top symbols
# are printed.
#
# Exit status: 0 done; 1 error; 2 usage; 3 the table fill stayed below 95 % of N.
# Traffic flows only between the namespaces the lab creates; the lab is taken down on exit.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
LAB=$ROOT/scripts/lvs-lab
CMDLINE="bench/listing.sh${*:+ $*}"

PLANE=afpacket
CONNS=1000000
DUR=10
RUNS=3
LVSADM_CPUS="any"
COMPARE=""
PERF=0
BUILD=1
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; }
while (($#)); do
    case $1 in
    --dataplane) PLANE=${2:?}; shift 2 ;;
    --connections) CONNS=${2:?}; shift 2 ;;
    --duration) DUR=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --lvsadm-cpus) LVSADM_CPUS=${2:?}; shift 2 ;;
    --compare-lvsadm) COMPARE=${2:?}; shift 2 ;;
    --perf) PERF=1; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "listing.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case $PLANE in afpacket | afxdp | xdp | tc) ;; *) echo "listing.sh: unknown data plane '$PLANE' (afpacket, afxdp, xdp, tc)" >&2; exit 2 ;; esac
[[ $DUR =~ ^[0-9]+$ && $DUR -ge 1 && $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] ||
    { echo "listing.sh: --duration and --runs must be positive integers (got '$DUR', '$RUNS')" >&2; exit 2; }
# Chunks of 64,512 flows (source ports 1024-65535), one client alias each, at most 64.
PORTS=64512
MAX_ALIASES=64
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 && $CONNS -le $((MAX_ALIASES * PORTS)) ]] ||
    { echo "listing.sh: --connections must be an integer from 1 to $((MAX_ALIASES * PORTS)) (got '$CONNS')" >&2; exit 2; }
read -r -a PLACES <<<"$LVSADM_CPUS"
((${#PLACES[@]})) || { echo "listing.sh: --lvsadm-cpus names no placement" >&2; exit 2; }
for w in "${PLACES[@]}"; do
    [[ $w == any || $w == nice || $w =~ ^[0-9]+([,-][0-9]+)*$ ]] ||
        { echo "listing.sh: --lvsadm-cpus takes 'any', 'nice' or CPU lists as taskset -c does (got '$w')" >&2; exit 2; }
done
[[ -z $COMPARE || -x $COMPARE ]] || { echo "listing.sh: --compare-lvsadm: '$COMPARE' is not an executable" >&2; exit 2; }
[[ -z $COMPARE ]] || COMPARE=$(readlink -f "$COMPARE")
[[ $(id -u) == 0 ]] || { echo "listing.sh: must run as root (namespaces)" >&2; exit 1; }
for c in trafgen wrk taskset ip; do
    command -v "$c" >/dev/null || { echo "listing.sh: $c is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
((PERF == 0)) || command -v perf >/dev/null || { echo "listing.sh: --perf needs perf (scripts/deps.sh installs it)" >&2; exit 1; }

# Lab facts (from scripts/lvs-lab).
P=bench-lst
VIP=192.168.1.100
CLIENT_MAC=00:50:00:00:03:00
DIRECTOR_MAC=00:50:00:00:04:00
RS1_IP=192.168.1.31
RS2_IP=192.168.1.32
ALIAS_BASE=128
FILL_PORT=9
STATE_ROOT=/run/lvs-lab
SOCK=$STATE_ROOT/$P/lvsd.sock

# Timeouts (seconds) for every wait.
T_BUILD=1200
T_LAB=240
T_DOWN=90
T_CMD=15
T_LIST=120
T_FILL_CHUNK=120
FILL_TRIES=4
FILL_GAP_US=1
FILL_GAP_MAX_US=16
FILL_MIN_PCT=95
FILL_BUDGET=600
FILL_TIMEOUT=7200

WORK=$(mktemp -d /tmp/lvs-listing.XXXXXX)
T0=$SECONDS
HZ=$(getconf CLK_TCK)
log() { printf '[listing %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

LOOP_PID=""
LAB_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $LOOP_PID ]]; then
        touch "$WORK/stop"
        pkill -TERM -P "$LOOP_PID" 2>/dev/null || true
        kill -TERM "$LOOP_PID" 2>/dev/null || true
        wait "$LOOP_PID" 2>/dev/null || true
    fi
    if ((LAB_STARTED)); then
        timeout "$T_DOWN" "$LAB" down --prefix "$P" >>"$WORK/lab-down.log" 2>&1 ||
            log "lvs-lab down --prefix $P failed (see $WORK/lab-down.log)"
    fi
    ((rc == 0 || rc == 3)) || log "failed (exit $rc); logs in $WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nsx() { local node=$1; shift; ip netns exec "$P-$node" "$@"; }
now() { date +%s.%N; }
ticks_of() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
lvsadm_in() { nsx director env LVSD_SOCKET="$SOCK" timeout "$T_CMD" "$BIN/lvsadm" "$@"; }
lvsd_pid() {
    local f=$STATE_ROOT/$P/lvsd.pid pid
    [[ -f $f ]] || die "no lvsd pid file in $STATE_ROOT/$P"
    pid=$(tr -dc 0-9 <"$f")
    [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == lvsd ]] || die "no lvsd running in $P"
    echo "$pid"
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ------------------------------------------------------------------- lab

pin_lab() {
    local n pid
    for n in director rs1 rs2; do
        for pid in $(ip netns pids "$P-$n" 2>/dev/null); do taskset -a -p -c 1 "$pid" >/dev/null 2>&1 || true; done
    done
}

lab_up() {
    if [[ -d $STATE_ROOT/$P ]]; then
        log "stale lab $P found; taking it down"
        timeout "$T_DOWN" "$LAB" down --prefix "$P" >>"$WORK/lab-down.log" 2>&1 || die "cannot remove the stale lab $P"
    fi
    log "lab $P up (lvsd --dataplane $PLANE)"
    LAB_STARTED=1
    LVS_BIN=$BIN LVS_LAB_LVSD_ARGS="--dataplane $PLANE" timeout "$T_LAB" taskset -c 1 "$LAB" up --director lvsd --prefix "$P" \
        >"$WORK/lab.log" 2>&1 || { tail -n 30 "$WORK/lab.log" >&2; die "lvs-lab up --prefix $P failed"; }
    pin_lab
    nsx client curl -sf --max-time 3 -o /dev/null "http://$VIP/" || die "HTTP to $VIP does not work through lvsd"
}

# ------------------------------------------------------------------ fill

active_fill() {
    lvsadm_in -Ln | awk -v vs="$VIP:$FILL_PORT" '
        $1 == "TCP" || $1 == "UDP" || $1 == "SCTP" || $1 == "FWM" { s = ($1 == "TCP" && $2 == vs) }
        s && $1 == "->" { n += $5 }
        END { print n + 0 }'
}
# lvsd offers a connection to the xdp/tc fast path's map from its 4th input packet on
fill_pkts() { if [[ $PLANE == xdp || $PLANE == tc ]]; then echo 4; else echo 2; fi; }
fill_conf() {
    local src=$1 pkts=$2 k
    printf '{\n  eth(da=%s, sa=%s, type=0x0800),\n  ipv4(saddr=%s, daddr=%s, ttl=64),\n  tcp(sp=dinc(1024, 65535), dp=%s, seq=1000, syn, win=64240)\n}\n' \
        "$DIRECTOR_MAC" "$CLIENT_MAC" "$src" "$VIP" "$FILL_PORT"
    for ((k = 1; k < pkts; k++)); do
        printf '{\n  eth(da=%s, sa=%s, type=0x0800),\n  ipv4(saddr=%s, daddr=%s, ttl=64),\n  tcp(sp=dinc(1024, 65535), dp=%s, seq=1001, aseq=1, ack, win=64240)\n}\n' \
            "$DIRECTOR_MAC" "$CLIENT_MAC" "$src" "$VIP" "$FILL_PORT"
    done
}

FILL_COUNT=0
fill_table() {
    local n=$(((CONNS + PORTS - 1) / PORTS)) i flows try before after got gap=$FILL_GAP_US start=$SECONDS pkts args
    pkts=$(fill_pkts)
    lvsadm_in --set "$FILL_TIMEOUT" 0 0 || die "lvsadm --set $FILL_TIMEOUT 0 0 failed"
    for args in "-A -t $VIP:$FILL_PORT -s rr" "-a -t $VIP:$FILL_PORT -r $RS1_IP:$FILL_PORT -g" "-a -t $VIP:$FILL_PORT -r $RS2_IP:$FILL_PORT -g"; do
        # shellcheck disable=SC2086
        lvsadm_in $args || die "lvsadm $args failed"
    done
    log "fill: $CONNS flows in $n chunk(s), $pkts packets each"
    for ((i = 0; i < n; i++)); do
        flows=$PORTS
        ((CONNS - i * PORTS >= PORTS)) || flows=$((CONNS - i * PORTS))
        nsx client ip addr add "192.168.1.$((ALIAS_BASE + i))/32" dev eth0
        fill_conf "192.168.1.$((ALIAS_BASE + i))" "$pkts" >"$WORK/fill-$i.cfg"
        got=0
        for ((try = 1; try <= FILL_TRIES; try++)); do
            before=$(active_fill)
            taskset -c 0 ip netns exec "$P-client" timeout "$T_FILL_CHUNK" \
                trafgen --dev eth0 --conf "$WORK/fill-$i.cfg" --cpus 1 -n $((pkts * flows)) -t "${gap}us" \
                --no-sock-mem --notouch-irq --no-cpu-stats >>"$WORK/trafgen-fill.log" 2>&1 ||
                die "trafgen (fill chunk $i) failed or timed out (see $WORK/trafgen-fill.log)"
            sleep 0.3 # the last frames through lvsd
            after=$(active_fill)
            got=$((got + after - before))
            log "fill chunk $((i + 1))/$n try $try: table $after (+$((after - before)) of $flows)"
            ((got * 100 >= flows * 99)) && break
            ((gap * 2 <= FILL_GAP_MAX_US)) && gap=$((gap * 2))
            (((after - before) * 100 >= flows)) || break
        done
        ((SECONDS - start < FILL_BUDGET)) || { log "fill: the ${FILL_BUDGET} s budget is spent after chunk $((i + 1))"; break; }
    done
    sleep 1
    FILL_COUNT=$(active_fill)
    log "fill: $FILL_COUNT of $CONNS connections in the table after $((SECONDS - start)) s"
}

# --------------------------------------------------------------- listings

TIMEFORMAT='%R %U %S'
# one_listing BINARY: "lines wall_s lvsadm_user_s lvsadm_sys_s lvsd_cpu_s" of one `-Lnc`, no load
one_listing() {
    local bin=$1 lpid c0 c1 t
    lpid=$(lvsd_pid)
    c0=$(ticks_of "$lpid")
    t=$({ time nsx director env LVSD_SOCKET="$SOCK" timeout "$T_LIST" "$bin" -Lnc >"$WORK/listing.txt" 2>"$WORK/listing.err"; } 2>&1) ||
        { cat "$WORK/listing.err" >&2; die "$bin -Lnc failed"; }
    c1=$(ticks_of "$lpid")
    echo "$(wc -l <"$WORK/listing.txt") $t $(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')"
    rm -f "$WORK/listing.txt"
}

# start_loop TAG PLACE: `lvsadm -Lnc` back to back in the director's namespace until $WORK/stop,
# not pinned (PLACE any), not pinned at niceness 19 (nice) or on CPUs PLACE; one "wall user sys"
# line per finished listing in $WORK/loop-TAG.txt
start_loop() {
    local tag=$1 place=$2 pin=()
    case $place in
    any) ;;
    nice) pin=(nice -n 19) ;;
    *) pin=(taskset -c "$place") ;;
    esac
    rm -f "$WORK/stop"
    : >"$WORK/loop-$tag.txt"
    (
        while [[ ! -e $WORK/stop ]]; do
            { time "${pin[@]}" ip netns exec "$P-director" env LVSD_SOCKET="$SOCK" timeout "$T_LIST" "$BIN/lvsadm" -Lnc \
                >/dev/null 2>>"$WORK/loop.err"; } 2>>"$WORK/loop-$tag.txt" || { echo "lvsadm -Lnc failed" >>"$WORK/loop.err"; exit 1; }
        done
    ) &
    LOOP_PID=$!
}

# stop_loop: the listing under way ends (bounded by T_LIST), then the loop
stop_loop() {
    local i
    touch "$WORK/stop"
    for ((i = 0; i < (T_LIST + 10) * 10; i++)); do kill -0 "$LOOP_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$LOOP_PID" 2>/dev/null; then
        log "the listing loop did not stop in $((T_LIST + 10)) s; killing it"
        pkill -TERM -P "$LOOP_PID" 2>/dev/null || true
        kill -TERM "$LOOP_PID" 2>/dev/null || true
    fi
    wait "$LOOP_PID" 2>/dev/null || true
    LOOP_PID=""
    [[ ! -s $WORK/loop.err ]] || { cat "$WORK/loop.err" >&2; die "lvsadm -Lnc failed in the loop"; }
}

# wrk_run TAG: keep-alive c64 for DUR s; prints req/s
wrk_run() {
    local f=$WORK/wrk-$1.txt rps
    taskset -c 0 ip netns exec "$P-client" timeout $((DUR + 15)) \
        wrk -t1 -c64 -d"${DUR}s" --timeout 2s "http://$VIP/" >"$f" 2>&1 || { cat "$f" >&2; die "wrk failed ($1)"; }
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
    [[ -n $rps ]] || { cat "$f" >&2; die "cannot parse wrk's output ($f)"; }
    echo "$rps"
}

# perf_window: one more listed window with perf record on lvsd and on the loop's first lvsadm;
# the top symbols into $WORK/perf.txt
perf_window() {
    local lpid data=$WORK/perf-lvsd.data i apid=""
    lpid=$(lvsd_pid)
    start_loop perf "${PLACES[0]}"
    timeout $((DUR + 20)) perf record -e cpu-clock -F 999 -g -p "$lpid" -o "$data" -- sleep "$DUR" >"$WORK/perf-record.log" 2>&1 &
    local prec=$!
    # the first lvsadm of the loop (bounded wait for it to start)
    for ((i = 0; i < 50; i++)); do
        apid=$(pgrep -P "$LOOP_PID" -x timeout 2>/dev/null | head -n 1 || true)
        [[ -z $apid ]] || apid=$(pgrep -P "$apid" -x lvsadm 2>/dev/null | head -n 1 || true)
        [[ -z $apid ]] || break
        sleep 0.1
    done
    local arec=""
    if [[ -n $apid ]]; then
        timeout $((T_LIST + 10)) perf record -e cpu-clock -F 999 -g -p "$apid" -o "$WORK/perf-lvsadm.data" >"$WORK/perf-record-lvsadm.log" 2>&1 &
        arec=$!
    fi
    wrk_run perf >/dev/null
    wait "$prec" || true
    stop_loop
    [[ -z $arec ]] || wait "$arec" 2>/dev/null || true
    local dm=cat
    command -v swift >/dev/null && dm="swift demangle --simplified"
    for who in lvsd lvsadm; do
        [[ -s $WORK/perf-$who.data ]] || { echo "perf: no data for $who"; continue; }
        echo "perf on $who during a listed window (self time, top symbols):"
        timeout 120 perf report -i "$WORK/perf-$who.data" --no-children --sort comm,dso,symbol --stdio -g none --percent-limit 1 2>/dev/null |
            grep -E '^ +[0-9]' | head -n 25 | $dm | sed -E 's/ +/ /g; s/^ //' | cut -c1-160
        echo
    done >"$WORK/perf.txt"
}

# ------------------------------------------------------------------- main

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
if ((BUILD)); then
    log "swift build -c release"
    (cd "$ROOT" && timeout "$T_BUILD" swift build -c release) >"$WORK/build.log" 2>&1 ||
        { tail -n 30 "$WORK/build.log" >&2; die "swift build failed"; }
    if [[ $PLANE == xdp ]]; then
        log "make -C bpf (xdp_pass.o for the lab's switch port)"
        timeout 300 make -C "$ROOT/bpf" >>"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; die "make -C bpf failed"; }
    fi
fi
BIN=$(cd "$ROOT" && timeout 120 swift build -c release --show-bin-path 2>/dev/null || echo "$ROOT/.build/release")
[[ -x $BIN/lvsd && -x $BIN/lvsadm ]] || die "lvsd/lvsadm not found in $BIN"

lab_up
fill_table
((FILL_COUNT * 100 >= CONNS * FILL_MIN_PCT)) || { log "ERROR: only $FILL_COUNT of $CONNS connections in the table (< $FILL_MIN_PCT %)"; exit 3; }

read -r L_LINES L_WALL L_USER L_SYS L_LVSD < <(one_listing "$BIN/lvsadm")
log "one listing, no load: $L_LINES lines, ${L_WALL} s, lvsadm ${L_USER} s user + ${L_SYS} s sys, lvsd ${L_LVSD} s CPU"
if [[ -n $COMPARE ]]; then
    read -r C_LINES C_WALL C_USER C_SYS C_LVSD < <(one_listing "$COMPARE")
    log "one listing with $COMPARE, no load: $C_LINES lines, ${C_WALL} s, lvsadm ${C_USER} s user + ${C_SYS} s sys, lvsd ${C_LVSD} s CPU"
fi

: >"$WORK/rounds.tsv"
for ((r = 1; r <= RUNS; r++)); do
    alone=$(wrk_run "alone-$r")
    printf '%s\talone\t-\t%s\t0\n' "$r" "$alone" >>"$WORK/rounds.tsv"
    log "round $r: alone $alone req/s"
    for w in "${PLACES[@]}"; do
        start_loop "$r-$w" "$w"
        sleep 0.5 # the first listing under way
        listed=$(wrk_run "listed-$r-$w")
        stop_loop
        n=$(grep -c . "$WORK/loop-$r-$w.txt" || true)
        printf '%s\tlisted\t%s\t%s\t%s\n' "$r" "$w" "$listed" "$n" >>"$WORK/rounds.tsv"
        log "round $r: with lvsadm -Lnc looping (lvsadm CPUs: $w) $listed req/s ($n listing(s) finished)"
    done
done
PERF_TEXT=""
if ((PERF)); then
    log "perf record on lvsd and lvsadm during one more listed window"
    perf_window
    PERF_TEXT=$(cat "$WORK/perf.txt")
fi

A=$(awk -F'\t' '$2 == "alone" { print $4 }' "$WORK/rounds.tsv" | median)
RESULTS=()
for w in "${PLACES[@]}"; do
    L=$(awk -F'\t' -v w="$w" '$2 == "listed" && $3 == w { print $4 }' "$WORK/rounds.tsv" | median)
    RESULTS+=("$(awk -v a="$A" -v l="$L" -v w="$w" 'BEGIN { r = l / a
        printf "lvsadm %s: median %s req/s, **ratio %.3f** (target ≥ 0.90: %s)", (w == "any" ? "not pinned" : w == "nice" ? "not pinned, nice -n 19" : "on CPU " w), l, r, (r >= 0.90 ? "met" : "missed") }')")
done
{
    echo "## Connection listing under load (bench/listing.sh)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); command: \`$CMDLINE\` (as root, from the repository root); lvsd \`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)\` --dataplane $PLANE; kernel \`$(uname -r)\`; $(nproc) CPUs; load before the run: $LOAD0"
    echo "- table: $FILL_COUNT established TCP connections; pinning: lvsd (all threads) and nginx x2 on CPU1, wrk and trafgen on CPU0; lvsadm (niceness 0, in the director's namespace, output to /dev/null): $LVSADM_CPUS"
    echo "- one \`lvsadm -Lnc\` without load: $L_LINES lines in $L_WALL s; lvsadm CPU $L_USER s user + $L_SYS s sys; lvsd CPU $L_LVSD s"
    [[ -z $COMPARE ]] || echo "- the same with \`$COMPARE\`: $C_LINES lines in $C_WALL s; lvsadm CPU $C_USER s user + $C_SYS s sys; lvsd CPU $C_LVSD s"
    echo "- wrk -t1 -c64 keep-alive, $DUR s per window, $RUNS interleaved round(s): median alone $A req/s; with \`lvsadm -Lnc\` back to back:"
    for x in "${RESULTS[@]}"; do echo "  - $x"; done
    echo
    echo '```'
    echo "round window lvsadm_cpus req/s listings_finished"
    tr '\t' ' ' <"$WORK/rounds.tsv"
    echo "listings under load, per window ROUND-PLACEMENT (wall_s lvsadm_user_s lvsadm_sys_s; ...):"
    for f in "$WORK"/loop-[0-9]*.txt; do f=${f##*/loop-}; echo "${f%.txt}: $(paste -sd ';' "$WORK/loop-$f")"; done
    echo '```'
    [[ -z $PERF_TEXT ]] || { echo; echo '```'; echo "$PERF_TEXT"; echo '```'; }
}
log "done in $((SECONDS - T0)) s; logs in $WORK"
