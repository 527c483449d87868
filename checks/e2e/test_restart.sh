#!/usr/bin/env bash
# e2e-planes: afpacket afxdp xdp tc
# Restart without loss (issue 16), on every data plane: 70 rate-limited downloads and 30
# keep-alive HTTP loops through the VIP while lvsd is stopped (SIGTERM) and started again with the
# same command line, five times. lvsd runs the seed's rules from --config (ipvsadm-save) with
# --restart-guard: each stop saves the connection table to its state file (SOCKET.state) and
# leaves the nftables guard (afpacket) or its BPF program attached with its maps (afxdp, xdp, tc:
# the fast path keeps forwarding, frames for lvsd are dropped); each start restores the table
# before the data plane forwards and (BPF planes) adopts the program's `conns` map and replaces
# the program atomically: exactly one lvsd program is attached after each start. Every download finishes intact
# (sha256), no loop request fails, the client sees no RST, and `lvsadm -Lnc` after each start
# lists every ESTABLISHED connection it listed before the stop, bound to the same real server.
# Prints one MEASURE line per restart: the forwarding gap (the longest time between two frames
# lvsd forwarded to the real servers, from just before the SIGTERM to after the new start), how
# long the stop and the start took; and the usual round line.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
HA_NODES=(director)

RESTARTS=${E2E_RESTARTS:-5}
DOWNLOADS=${E2E_RESTART_DOWNLOADS:-70}
LOOPS=${E2E_RESTART_LOOPS:-30} # keep-alive loops, the round's own included
RATE=${E2E_RESTART_RATE:-120k}  # 4 MiB at 120 kB/s: about 35 s, longer than the five restarts (~23 s)
PLANE=$(sed -nE 's/.*--dataplane[= ]([a-z]+).*/\1/p' <<<"${LVS_LAB_LVSD_ARGS:-}")
PLANE=${PLANE:-afpacket}

require_lvs_bins
lab_start_with_seed_rules --restart-guard
LVSD=$(lvs_bin)/lvsd
SOCK=$LAB_STATE/lvsd.sock
# The lab's lvsd command line, as lvs-lab started it (read back from /proc, so it is the same).
mapfile -d '' CMDLINE <"/proc/$(lvsd_pid)/cmdline"
e2e_log "lvsd command line: ${CMDLINE[*]}"
IFACE=
for ((i = 0; i < ${#CMDLINE[@]} - 1; i++)); do
    if [[ ${CMDLINE[i]} == --interface || ${CMDLINE[i]} == -i ]]; then IFACE=${CMDLINE[i + 1]}; break; fi
done

# guards: what keeps the director's kernel off the VIPs (and forwards the fast path) over the gap:
# the number of lvsd_ nftables tables (afpacket), else of lvsd programs attached to $IFACE.
guards() {
    case $PLANE in
    afpacket) lab_exec director nft list tables | grep -c 'lvsd_' || true ;;
    tc) lab_exec director tc filter show dev "$IFACE" ingress | grep -c 'lvs_tc_prog' || true ;;
    *) lab_exec director ip -d link show dev "$IFACE" | grep -c 'prog/xdp' || true ;;
    esac
}

# What lvsd forwards reaches rs1 and rs2 (DR: frames to the VIP); captured there to time the gaps.
for rs in rs1 rs2; do
    setsid ip netns exec "$LAB_PREFIX-$rs" timeout 300 tcpdump -i eth0 -nn -q -s 64 -w "$LAB_STATE/fwd-$rs.pcap" \
        "dst host $VIP and tcp" 2>"$LAB_STATE/fwd-$rs.err" </dev/null &
    echo $! >"$LAB_STATE/fwd-$rs.pid"
    e2e_on_exit kill_quiet "$!"
done
for rs in rs1 rs2; do
    deadline=$((SECONDS + 15))
    until grep -q 'listening on' "$LAB_STATE/fwd-$rs.err" 2>/dev/null; do
        ((SECONDS < deadline)) || e2e_fail "tcpdump did not start in $rs"
        sleep 0.1
    done
done

ha_round_start "$DOWNLOADS" "$RATE"
dir=$E2E_TMP/round$HA_ROUND
for ((i = 2; i <= LOOPS; i++)); do
    lab_exec client timeout 120 /usr/bin/python3 "$HA_PROBE" "http://$VIP/" "$dir/run" \
        >"$dir/loop-$i.txt" 2>"$dir/loop-$i.err" </dev/null &
    e2e_on_exit kill_quiet "$!"
done
sleep 3

# established: "CLIENT:PORT -> RS:PORT" of the ESTABLISHED connections -Lnc lists.
established() { lab_lvsadm -Lnc | awk '$3 == "ESTABLISHED" { print $4 " -> " $6 }' | sort; }
# open: "CLIENT:PORT" of the client's TCP connections to port 80 that are still established (a
# download that finished between two listings is not missing from the second).
open_on_client() { lab_exec client ss -Htn state established '( dport = :80 )' | awk '{ print $3 }' | sort; }
# missing BEFORE AFTER: the connections listed before, not after, and still open on the client.
missing() { comm -23 <(echo "$1") <(echo "$2") | awk '{ print $1 }' | sort | comm -12 - <(open_on_client); }
before_n=$(established | wc -l)
e2e_log "before the restarts: $before_n ESTABLISHED connections listed"
assert_ge "$((DOWNLOADS + LOOPS - 5))" "$before_n" "ESTABLISHED connections before the restarts"

# running PID: the process exists and has not exited (the lab's first lvsd is not this shell's
# child: once exited it stays a zombie until init reaps it, which here took up to 2 s).
running() { local st; st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [[ $st != Z ]]; }
declare -a KILL_AT READY_AT
# The service's Conns counter (state file version 2 carries the counters over each restart).
service_conns() { lab_lvsadm -Ln --stats | awk '$1 == "TCP" { print $3; exit }'; }
conns_first=$(service_conns)
# One of the restarts goes through `lvsadm daemon restart` (lvsd re-executes itself in place,
# same PID); the others are a SIGTERM and a new lvsd with the same command line.
BY_COMMAND=${E2E_RESTART_BY_COMMAND:-3}
# restart_by_command R PID: asks lvsd to restart in place and waits for the next "lvsd ready".
restart_by_command() {
    local r=$1 pid=$2 ready out deadline
    ready=$(grep -c 'lvsd ready' "$LAB_STATE/lvsd.log" || true)
    KILL_AT[r]=$(ha_now)
    out=$(lab_lvsadm daemon restart 2>&1) || e2e_fail "restart $r: lvsadm daemon restart failed: $out"
    e2e_log "restart $r by lvsadm daemon restart: $out"
    deadline=$((SECONDS + 30))
    until (($(grep -c 'lvsd ready' "$LAB_STATE/lvsd.log" || true) > ready)) && [[ -S $SOCK ]]; do
        running "$pid" || e2e_fail "restart $r: lvsd (pid $pid) exited instead of restarting in place"
        ((SECONDS < deadline)) || e2e_fail "restart $r: lvsd not ready again 30 s after lvsadm daemon restart"
        sleep 0.01
    done
    READY_AT[r]=$(ha_now)
    stopped=${KILL_AT[r]} saved=${KILL_AT[r]}
    assert_eq "$pid" "$(lvsd_pid)" "restart $r: lvsd kept its PID (re-executed in place)"
}
for ((r = 1; r <= RESTARTS; r++)); do
    before=$(established)
    echo "r$r $(for ((i = 1; i <= DOWNLOADS; i++)); do stat -c %s "$dir/dl-$i" 2>/dev/null || echo 0; done | tr '\n' ' ')" >>"$E2E_TMP/sizes"
    cp "$E2E_TMP/sizes" "$LAB_STATE/download-sizes.txt" 2>/dev/null || true # kept for a failure
    lab_lvsadm -Ln --stats >"$LAB_STATE/stats-r$r.txt" 2>&1 || true
    pid=$(lvsd_pid)
    if ((r == BY_COMMAND)); then
        restart_by_command "$r" "$pid"
    else
        KILL_AT[r]=$(ha_now)
        kill -TERM "$pid"
        deadline=$((SECONDS + 15))
        while running "$pid"; do
            ((SECONDS < deadline)) || e2e_fail "restart $r: lvsd (pid $pid) still runs 15 s after SIGTERM"
            sleep 0.01
        done
        stopped=$(ha_now)
        assert_eq 1 "$(guards)" "restart $r: the guard ($PLANE) left over the gap"
        [[ -s $SOCK.state ]] || e2e_fail "restart $r: no state file $SOCK.state after the stop"
        saved=$(stat -c %.3Y "$SOCK.state")
        # Same command line; the log goes on in lvsd.log.
        setsid ip netns exec "$LAB_PREFIX-director" "${CMDLINE[@]}" >>"$LAB_STATE/lvsd.log" 2>&1 </dev/null &
        echo $! >"$LAB_STATE/lvsd.pid"
        deadline=$((SECONDS + 30))
        until [[ -S $SOCK ]]; do
            kill -0 "$(lvsd_pid)" 2>/dev/null || e2e_fail "restart $r: the new lvsd exited"
            ((SECONDS < deadline)) || e2e_fail "restart $r: no control socket 30 s after the start"
            sleep 0.01
        done
        READY_AT[r]=$(ha_now)
    fi
    # A listing is not atomic: a restored connection whose next packet moves it from the synced
    # table into a worker's table while -Lnc walks them can be missed by one listing. The union
    # of a few listings (0.2 s apart) must hold every connection.
    after=$(established)
    for ((try = 1; try < 10; try++)); do
        missing=$(missing "$before" "$after" | grep -c . || true)
        ((missing == 0)) && break
        sleep 0.2
        after=$(sort -u <(echo "$after") <(established))
    done
    missing=$(missing "$before" "$after" | grep -c . || true)
    e2e_log "restart $r: stop $(ms_between "${KILL_AT[r]}" "$stopped") ms (state saved after $(ms_between "${KILL_AT[r]}" "$saved") ms), start $(ms_between "$stopped" "${READY_AT[r]}") ms; ESTABLISHED before $(echo "$before" | grep -c . || true), after $(echo "$after" | grep -c . || true), missing $missing"
    ((missing == 0)) || e2e_log "restart $r: missing: $(missing "$before" "$after" | tr '\n' ' ')"
    assert_eq 0 "$missing" "restart $r: open connections listed before the stop and not after the start"
    assert_eq 1 "$(guards)" "restart $r: guards ($PLANE: the new lvsd's only)"
    sleep 2
done
sleep 3
echo "end $(for ((i = 1; i <= DOWNLOADS; i++)); do stat -c %s "$dir/dl-$i" 2>/dev/null || echo 0; done | tr '\n' ' ')" >>"$E2E_TMP/sizes"
lab_lvsadm -Lnc >"$LAB_STATE/lnc-end.txt" 2>&1 || e2e_log "lvsadm -Lnc failed: $(tail -n 3 "$LAB_STATE/lnc-end.txt")"
grep -E 'lvsd stopped|stopping the data plane|data plane stopped|restart|left attached' "$LAB_STATE/lvsd.log" | cut -c1-200 >&2 || true
assert_log 'restart state restored' "the restarted lvsd restored the state"
conns_last=$(service_conns)
e2e_log "service Conns: $conns_first before the restarts, $conns_last after them"
assert_ge "$conns_first" "$conns_last" "the service's Conns counter after the restarts (carried over)"
if ((BY_COMMAND >= 1 && BY_COMMAND <= RESTARTS)); then
    assert_log 'restarting in place' "lvsadm daemon restart re-executed lvsd"
fi
if [[ $PLANE != afpacket ]]; then
    assert_log 'programs left attached for the next lvsd' "the stops left the BPF programs attached"
    assert_log 'adopted the conns map of previous program' "the starts adopted the conns map"
fi
if grep -q 'restart state refused' "$LAB_STATE/lvsd.log"; then e2e_fail "a state file was refused"; fi

# Progress of the downloads (bytes at each restart and 3 s after the last), kept for a failure.
cp "$E2E_TMP/sizes" "$LAB_STATE/download-sizes.txt" 2>/dev/null || true
HA_EXTRA="restarts=$RESTARTS" ha_round_finish "restart x$RESTARTS" 70
loop_failed=0
for ((i = 2; i <= LOOPS; i++)); do
    loop_failed=$((loop_failed + $(awk '$3 != "ok"' "$dir/loop-$i.txt" | wc -l)))
done
for rs in rs1 rs2; do kill_quiet "$(<"$LAB_STATE/fwd-$rs.pid")"; done
sleep 1

# The forwarding gap of each restart: the longest time between two frames forwarded to a real
# server, from 0.2 s before the SIGTERM to 5 s after the new lvsd's socket appeared.
times=$E2E_TMP/fwd-times
for rs in rs1 rs2; do timeout 60 tcpdump -r "$LAB_STATE/fwd-$rs.pcap" -nn -tt 2>/dev/null | awk '{ print $1 }'; done | sort -n >"$times"
total=0 worst=0
for ((r = 1; r <= RESTARTS; r++)); do
    gap=$(awk -v a="${KILL_AT[r]}" -v b="${READY_AT[r]}" '
        $1 >= a - 0.2 && $1 <= b + 5 { if (last && $1 - last > max) max = $1 - last; last = $1 }
        END { printf "%d", max * 1000 }' "$times")
    echo "MEASURE $E2E_NAME plane=$PLANE restart $r: forwarding_gap_ms=$gap sigterm_to_ready_ms=$(ms_between "${KILL_AT[r]}" "${READY_AT[r]}")"
    total=$((total + gap))
    ((gap > worst)) && worst=$gap
done
echo "MEASURE $E2E_NAME plane=$PLANE restarts=$RESTARTS forwarding_gap_mean_ms=$((total / RESTARTS)) forwarding_gap_max_ms=$worst connections=$((DOWNLOADS + LOOPS))"

ha_assert_nothing_lost "restart x$RESTARTS"
assert_eq 0 "$HA_FAILED" "the round's keep-alive loop: failed requests"
assert_eq 0 "$loop_failed" "the other $((LOOPS - 1)) keep-alive loops: failed requests"
assert_lvsd_alive
