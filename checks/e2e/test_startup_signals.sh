#!/usr/bin/env bash
# Signals during lvsd's start-up (issue 13 item 8). lvsd installs its signal
# dispositions before it attaches anything: /proc/PID/status shows SIGHUP and
# SIGTERM caught (or blocked) before "lvsd ready". Then, 50 times, a SIGHUP and
# a SIGTERM at random moments of a start (keepalived.conf, the data plane
# under test): lvsd never dies of them; either it finished starting, applied
# the SIGHUP as a reload and stopped, or it stopped during start-up; both
# exit 0 and leave nothing behind: no XDP program on eth0 (ip link, bpftool),
# no tc filter nor clsact qdisc, no lvsd_ nftables table, no socket.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
LVSD=$(lvs_bin)/lvsd
DP_ARGS=(${LVS_LAB_LVSD_ARGS:-})
ITERATIONS=${STARTUP_SIGNAL_ITERATIONS:-50}
tmp=$(e2e_tmpdir)

# The lab's lvsd holds eth0: stop it (SIGTERM) so that ours can start again and again.
lab_pid=$(lvsd_pid)
kill -TERM "$lab_pid"
deadline=$((SECONDS + 10))
while kill -0 "$lab_pid" 2>/dev/null; do
    ((SECONDS < deadline)) || e2e_fail "the lab's lvsd (pid $lab_pid) still running 10s after SIGTERM"
    sleep 0.1
done

conf=$tmp/keepalived.conf
cat >"$conf" <<CONF
global_defs {
    router_id e2e_startup_signals
}
virtual_server $VIP 80 {
    delay_loop 5
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.1.31 80 {
        weight 1
    }
}
CONF
sock=$LAB_STATE/startup.sock
log=$LAB_STATE/lvsd-startup.log
pid=
pidfile=$LAB_STATE/lvsd-startup.pid
# On failure: our lvsd, if one still runs (the lab's namespaces and what is in them go with lab down).
e2e_on_exit bash -c '[[ -s $0 ]] && kill -KILL "$(cat "$0")" 2>/dev/null; true' "$pidfile"

# leftovers: what a stopped lvsd must not leave on the director (empty when clean).
leftovers() {
    local out=() t
    t=$(lab_exec director ip -d link show eth0)
    [[ $t != *prog/xdp* ]] || out+=("XDP program on eth0 (ip link): $(grep -o 'prog/xdp.*' <<<"$t")")
    if command -v bpftool >/dev/null; then
        t=$(lab_exec director bpftool net show dev eth0 2>&1)
        grep -qE 'id [0-9]+' <<<"$t" && out+=("BPF program on eth0 (bpftool net): $(tr '\n' ' ' <<<"$t")")
    fi
    t=$(lab_exec director tc filter show dev eth0 ingress 2>&1)
    [[ -z $t ]] || out+=("tc ingress filter on eth0: $t")
    t=$(lab_exec director tc qdisc show dev eth0)
    [[ $t != *clsact* ]] || out+=("clsact qdisc on eth0: $t")
    t=$(lab_exec director nft list tables)
    [[ $t != *lvsd_* ]] || out+=("nftables table: $t")
    [[ ! -e $sock ]] || out+=("control socket $sock")
    ((${#out[@]} == 0)) || printf '%s\n' "${out[@]}"
}
t=$(leftovers)
[[ -z $t ]] || e2e_fail "the lab's lvsd left something behind before the test began: $t"

# handlers_installed PID: SIGHUP (1) and SIGTERM (15) caught (SigCgt: the dispositions are
# process-wide). A signal blocked only by the thread /proc shows (SigBlk) does not count: while
# that thread blocks it around a thread's creation, the signal goes to another thread, whose
# default action would end lvsd.
handlers_installed() {
    local cgt
    cgt=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $cgt ]] || return 1
    local mask=$((0x$cgt))
    (((mask & 0x1) && (mask & 0x4000)))
}
ready() { grep -q 'lvsd ready' "$log"; }

# start_lvsd: starts lvsd; returns once its signal dispositions are in place. Fails if it got
# ready (attached everything) first, or exits, or 15 s pass.
start_lvsd() {
    : >"$log"
    setsid ip netns exec "$LAB_PREFIX-director" "$LVSD" --interface eth0 --socket "$sock" --config "$conf" \
        "${DP_ARGS[@]}" >"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    local deadline=$((SECONDS + 15)) was_ready
    while :; do
        was_ready=0
        ready && was_ready=1
        handlers_installed "$pid" && break
        ((was_ready == 0)) || e2e_fail "lvsd (pid $pid) was ready (data plane attached) before it caught SIGHUP and SIGTERM: $(grep -E '^Sig(Cgt|Blk|Ign)' "/proc/$pid/status" | tr '\n' ' ')"
        kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd (pid $pid) exited during start-up without a signal: $(tail -n 3 "$log")"
        ((SECONDS < deadline)) || e2e_fail "lvsd (pid $pid): no SIGHUP/SIGTERM handler 15s after its start"
        sleep 0.005
    done
}

# wait_exit: waits (15 s at most) for lvsd to end; sets rc to its exit status.
wait_exit() {
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            e2e_fail "lvsd (pid $pid) still running 15s after SIGTERM: $(tail -n 5 "$log")"
        fi
        sleep 0.02
    done
    rc=0
    wait "$pid" || rc=$?
    pid=
    : >"$pidfile"
}

# sleep_ms MS
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# 1. Calibration, and the plain case: start, wait until ready, SIGHUP reloads, SIGTERM stops.
t0=$(now_ms)
start_lvsd
t_handlers=$(now_ms)
deadline=$((SECONDS + 30))
until ready; do
    kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd exited during start-up: $(tail -n 5 "$log")"
    ((SECONDS < deadline)) || e2e_fail "lvsd not ready 30s after its start"
    sleep 0.01
done
startup_ms=$(($(now_ms) - t_handlers))
e2e_log "lvsd ${DP_ARGS[*]}: handlers after $((t_handlers - t0)) ms, ready ${startup_ms} ms later"
kill -HUP "$pid"
deadline=$((SECONDS + 10))
until grep -q 'configuration reloaded' "$log"; do
    kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd died of SIGHUP once started: $(tail -n 5 "$log")"
    ((SECONDS < deadline)) || e2e_fail "no reload 10s after SIGHUP: $(tail -n 5 "$log")"
    sleep 0.05
done
kill -TERM "$pid"
wait_exit
assert_eq 0 "$rc" "exit status after SIGHUP then SIGTERM once started"
t=$(leftovers)
[[ -z $t ]] || e2e_fail "left behind after SIGTERM: $t"
e2e_log "ok: started, reloaded on SIGHUP, stopped cleanly on SIGTERM"

# 2. SIGHUP then SIGTERM at random moments of a start (measured from the handlers being in place).
span=$((startup_ms < 50 ? 50 : startup_ms))
reloaded=0 stopped_early=0
for ((n = 1; n <= ITERATIONS; n++)); do
    hup_at=$((RANDOM * 32768 + RANDOM))
    hup_at=$((hup_at % (span + 1)))
    term_after=$(((RANDOM * 32768 + RANDOM) % (span + 1)))
    start_lvsd
    sleep_ms "$hup_at"
    kill -HUP "$pid" 2>/dev/null || true
    sleep_ms "$term_after"
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit
    what="iteration $n (SIGHUP at +${hup_at} ms, SIGTERM ${term_after} ms later)"
    ((rc == 0)) || e2e_fail "$what: lvsd exited $rc (by signal $((rc > 128 ? rc - 128 : 0))): $(tail -n 5 "$log")"
    t=$(leftovers)
    [[ -z $t ]] || e2e_fail "$what: left behind: $t"$'\n'"$(tail -n 8 "$log")"
    if ready; then
        grep -q 'configuration reloaded' "$log" || e2e_fail "$what: lvsd was ready but did not apply the SIGHUP as a reload: $(tail -n 5 "$log")"
        reloaded=$((reloaded + 1))
    else
        grep -q 'SIGTERM during start-up' "$log" || e2e_fail "$what: lvsd stopped before it was ready without saying why: $(tail -n 5 "$log")"
        stopped_early=$((stopped_early + 1))
    fi
done
e2e_log "ok: $ITERATIONS starts with SIGHUP and SIGTERM: $reloaded finished starting and reloaded, $stopped_early stopped during start-up; every one exited 0 and left nothing behind"
e2e_log "PASS"
