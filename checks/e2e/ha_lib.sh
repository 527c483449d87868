# shellcheck shell=bash
# Helpers for the director-HA tests (issue 15). Source after lib.sh:
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/ha_lib.sh"
#   ha_lab_start                     # lvs-lab up --ha; fails fast without VRRP in lvsd
#   ha_round_start 20 400k           # downloads + keep-alive loop + RST capture
#   ha_kill9 director; ha_wait_master dir2 VI_1 "$T0" 10
#   ha_round_finish kill9            # prints the MEASURE line, sets HA_* results
#   ha_assert_nothing_lost kill9
#
# State is observed the same way on lvsd and keepalived: the notify script appends
# "EPOCH.NANOS INSTANCE NAME STATE PRIORITY" to $LAB_STATE/notify-NODE.log. lvsd's
# `lvsadm daemon status` also has one line per instance:
#   vrrp instance VI_1 state MASTER priority 150 effective 150 vrid 51 interface eth0 transitions 2

HA_NODES=(director dir2)
declare -A HA_MAC=([director]=00:50:00:00:04:00 [dir2]=00:50:00:00:05:00 [client]=00:50:00:00:03:00)
# advert_int and the backup's priority in the lab's keepalived.conf.
HA_ADVERT_S=1
HA_BACKUP_PRIO=100
# Allowance for the notify script, the polling and a loaded machine, in ms (E2E_HA_SLACK_MS).
HA_SLACK_MS=${E2E_HA_SLACK_MS:-1500}

# The bound for a silent master: 3 × advert_int + skew ((256 - priority) / 256 s), in ms.
ha_down_bound_ms() { echo $((3 * HA_ADVERT_S * 1000 + (256 - HA_BACKUP_PRIO) * 1000 / 256 + HA_SLACK_MS)); }
# After a priority-0 advert: the skew time only; the brief allows ~1 advert interval.
ha_graceful_bound_ms() { echo $((HA_ADVERT_S * 1000 + HA_SLACK_MS)); }

ha_sock() { if [[ $1 == director ]]; then echo "$LAB_STATE/lvsd.sock"; else echo "$LAB_STATE/$1/lvsd.sock"; fi; }
ha_dir() { if [[ $1 == director ]]; then echo "$LAB_STATE"; else echo "$LAB_STATE/$1"; fi; }
ha_lvsadm() {
    local n=$1
    shift
    lab_exec "$n" env LVSD_SOCKET="$(ha_sock "$n")" timeout 10 "$(lvs_bin)/lvsadm" "$@"
}
ha_pid() { tr -dc 0-9 <"$(ha_dir "$1")/lvsd.pid" 2>/dev/null || true; }
ha_alive() { local p; p=$(ha_pid "$1"); [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }

# ha_status_field NODE INSTANCE KEY: a value from the instance's status line (key value pairs).
ha_status_field() {
    ha_lvsadm "$1" daemon status 2>/dev/null | awk -v i="$2" -v key="$3" '
        $1 == "vrrp" && $2 == "instance" && $3 == i {
            for (k = 4; k < NF; k++) if ($k == key) { print $(k + 1); exit } }'
}
# LVS_LAB_HA_VRRP=keepalived: keepalived runs VRRP next to an lvsd --no-arp (lvs-lab's
# baseline pair); states then come from the notify files only.
HA_VRRP=${LVS_LAB_HA_VRRP:-lvsd}
ha_ka_pids() { local d; d=$(ha_dir "$1"); tr -dc '0-9\n' < <(cat "$d/keepalived-vrrp.pid" "$d/keepalived.pid" 2>/dev/null) | tr '\n' ' '; }
ha_state() {
    local s
    if [[ $HA_VRRP == keepalived ]]; then
        s=$(ha_last_notified "$1" "$2")
        kill -0 $(ha_ka_pids "$1") 2>/dev/null || s=stopped
    else
        s=$(ha_status_field "$1" "$2" state)
    fi
    echo "${s:-none}"
}
ha_is_state() { [[ $(ha_state "$1" "$2") == "$3" ]]; }

# ha_now: epoch seconds with nanoseconds (the notify script's clock).
ha_now() { date +%s.%N; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# ha_notified NODE INSTANCE STATE AFTER: NODE's notify script reported STATE for INSTANCE
# after AFTER (epoch seconds); prints that time.
ha_notified() {
    awk -v i="$2" -v s="$3" -v t="$4" '$3 == i && $4 == s && $1 + 0 > t + 0 { print $1; f = 1; exit }
        END { exit !f }' "$LAB_STATE/notify-$1.log" 2>/dev/null
}
# ha_last_notified NODE INSTANCE: the last state NODE's notify script reported for INSTANCE.
ha_last_notified() { awk -v i="$2" '$3 == i { s = $4 } END { print s }' "$LAB_STATE/notify-$1.log" 2>/dev/null; }

# ha_wait_notified NODE INSTANCE STATE AFTER SECS: wait (bounded) for the notify line; prints
# its time. Fails the test with both directors' states when it does not come.
ha_wait_notified() {
    local n=$1 inst=$2 st=$3 after=$4 secs=$5 t deadline
    deadline=$(($(now_ms) + secs * 1000))
    until t=$(ha_notified "$n" "$inst" "$st" "$after"); do
        if (($(now_ms) >= deadline)); then
            ha_show_states >&2
            e2e_fail "$n: no notify '$inst $st' within ${secs}s"
        fi
        sleep 0.05
    done
    echo "$t"
}

ha_show_states() {
    local n
    for n in "${HA_NODES[@]}"; do
        echo "--- $n: lvsd $(ha_alive "$n" && echo "pid $(ha_pid "$n")" || echo 'not running'); notify log tail:"
        tail -n 6 "$LAB_STATE/notify-$n.log" 2>/dev/null || echo "(none)"
        ha_alive "$n" && ha_lvsadm "$n" daemon status 2>&1 | grep -i vrrp
    done
}

# ha_lab_start: the HA lab; then, within a few seconds, both lvsd must show their VRRP
# instances in `lvsadm daemon status` (a clear, fast failure while lvsd has no VRRP), and
# the election must settle: director MASTER, dir2 BACKUP for VI_1 (and VI_6).
ha_lab_start() {
    require_lvs_bins
    lab_start --director lvsd --ha
    local n out deadline
    [[ $HA_VRRP == keepalived ]] && e2e_log "VRRP by keepalived next to lvsd --no-arp (LVS_LAB_HA_VRRP=keepalived)"
    for n in "${HA_NODES[@]}"; do
        [[ $HA_VRRP == keepalived ]] && break
        deadline=$((SECONDS + 5))
        until [[ $(ha_state "$n" VI_1) != none ]]; do
            if ((SECONDS >= deadline)); then
                out=$(ha_lvsadm "$n" daemon status 2>&1 || true)
                printf '%s\n' "----- $n: lvsadm daemon status" "$out" >&2
                e2e_fail "$n: no 'vrrp instance VI_1' line in lvsadm daemon status after 5s (lvsd does not run VRRP)"
            fi
            sleep 0.2
        done
    done
    ha_wait_settled director 15
}

# ha_wait_settled MASTER SECS: MASTER is MASTER and the other BACKUP, for VI_1 and VI_6.
ha_wait_settled() {
    local m=$1 secs=$2 b=dir2 inst
    [[ $m == dir2 ]] && b=director
    for inst in VI_1 VI_6; do
        wait_for "$secs" "$m MASTER for $inst" ha_is_state "$m" "$inst" MASTER >/dev/null
        wait_for "$secs" "$b BACKUP for $inst" ha_is_state "$b" "$inst" BACKUP >/dev/null
    done
    e2e_log "ok: $m is MASTER, $b BACKUP (VI_1, VI_6)"
}

# ha_kill9 NODE: SIGKILL to NODE's lvsd (and keepalived, VRRP child first, in the baseline pair).
ha_kill9() {
    local p
    p=$(ha_pid "$1")
    [[ -n $p ]] || e2e_fail "$1: no lvsd pid"
    [[ $HA_VRRP == keepalived ]] && p="$(ha_ka_pids "$1") $p"
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL $p
}
# ha_bpf_left NODE: what of a data plane's BPF is still attached to NODE's eth0 (after a
# kill -9 it keeps forwarding the fast path's flows): "xdp", "tc", "xdp+tc" or "none".
ha_bpf_left() {
    local link tcf left=""
    link=$(lab_exec "$1" ip -d link show dev eth0 2>/dev/null || true)
    tcf=$(lab_exec "$1" tc filter show dev eth0 ingress 2>/dev/null || true)
    [[ $link == *"prog/xdp"* ]] && left=xdp
    [[ -n $tcf ]] && left=${left:+$left+}tc
    echo "${left:-none}"
}

# ha_term NODE: SIGTERM, and a bounded wait for the exit.
ha_term() {
    local p q
    p=$(ha_pid "$1")
    [[ -n $p ]] || e2e_fail "$1: no lvsd pid"
    [[ $HA_VRRP == keepalived ]] && p="$(tr -dc 0-9 <"$(ha_dir "$1")/keepalived.pid") $p"
    # shellcheck disable=SC2086 # a list of pids
    kill -TERM $p
    local deadline=$((SECONDS + 15))
    for q in $p; do
        while kill -0 "$q" 2>/dev/null; do
            ((SECONDS < deadline)) || e2e_fail "$1: pid $q still runs 15s after SIGTERM"
            sleep 0.1
        done
    done
}
ha_start_lvsd() { with_timeout 60 "$LVS_LAB" start-lvsd --prefix "$LAB_PREFIX" --node "$1" >&2 || e2e_fail "lvs-lab start-lvsd --node $1 failed"; }

# ------------------------------------------------------------ measuring harness

# The client's keep-alive loop: one HTTP/1.1 connection, a request every 50 ms (10 s timeout:
# a request delayed by the takeover is late, not failed), a new connection after a failure;
# lines "START_MS END_MS ok|ERR:WHY CONN".
HA_PROBE=$E2E_DIR/ha_probe.py
# The client's addresses (ERE), for telling the RSTs it received from those it sent.
HA_CLIENT_RE=${HA_CLIENT_RE:-'192\.168\.1\.12|2001:db8:1::12'}

# ha_round_start N RATE [URL_HOST]: N downloads of /slow/big at RATE (nginx's limit_rate)
# through the VIP, the keep-alive loop, and a capture of RSTs on the client. URL_HOST
# defaults to the VIP ("[VIP6]" for IPv6). Rounds are numbered 1, 2, ... (HA_ROUND is the
# last one started); several may run at once.
HA_ROUND=0
ha_round_start() {
    local n=$1 rate=$2 host=${3:-$VIP} i dir
    HA_ROUND=$((HA_ROUND + 1))
    e2e_tmpdir >/dev/null
    dir=$E2E_TMP/round$HA_ROUND
    mkdir -p "$dir"
    echo "$n" >"$dir/n"
    ha_rst_capture_start "rst$HA_ROUND"
    for ((i = 1; i <= n; i++)); do
        (
            rc=0
            lab_exec client timeout 90 curl -sS -g --max-time 80 -o "$dir/dl-$i" \
                "http://$host/slow/big?rate=$rate" 2>"$dir/dl-$i.err" || rc=$?
            echo "$rc" >"$dir/dl-$i.rc"
        ) </dev/null &
        e2e_on_exit kill_quiet "$!"
    done
    touch "$dir/run"
    lab_exec client timeout 120 /usr/bin/python3 "$HA_PROBE" "http://$host/" "$dir/run" \
        >"$dir/loop.txt" 2>"$dir/loop.err" </dev/null &
    echo $! >"$dir/loop.pid"
    e2e_on_exit kill_quiet "$!"
    e2e_log "round $HA_ROUND: $n downloads of /slow/big at $rate/s and a keep-alive loop via $host"
}

# ha_rst_capture_start NAME: TCP RSTs (IPv4 and IPv6) on the client's eth0, in cap-NAME.txt.
ha_rst_capture_start() {
    local f=$LAB_STATE/cap-$1
    rm -f "$f.txt" "$f.err"
    setsid ip netns exec "$LAB_PREFIX-client" timeout 300 tcpdump -i eth0 -e -nn -l \
        '(ip and tcp[tcpflags] & tcp-rst != 0) or (ip6 and ip6[6] == 6 and ip6[53] & 4 != 0)' \
        >"$f.txt" 2>"$f.err" </dev/null &
    echo $! >"$f.pid"
    local deadline=$((SECONDS + 15))
    until grep -q 'listening on' "$f.err" 2>/dev/null; do
        ((SECONDS < deadline)) || { cat "$f.err" >&2; e2e_fail "tcpdump did not start in the client"; }
        sleep 0.1
    done
}

# ha_round_finish LABEL [DOWNLOAD_SECS] [ROUND]: wait (bounded) for the downloads, stop the
# loop and the capture of ROUND (default the last started); sets HA_ROUND_N, HA_INTACT,
# HA_REQS, HA_FAILED, HA_GAP_MS, HA_RSTS and prints them on one MEASURE line.
ha_round_finish() {
    local label=$1 secs=${2:-60} round=${3:-$HA_ROUND} i want got deadline loop_pid
    local HA_ROUND_DIR
    HA_ROUND_DIR=$E2E_TMP/round$round
    HA_ROUND_N=$(<"$HA_ROUND_DIR/n")
    loop_pid=$(<"$HA_ROUND_DIR/loop.pid")
    deadline=$((SECONDS + secs))
    for ((i = 1; i <= HA_ROUND_N; i++)); do
        until [[ -f $HA_ROUND_DIR/dl-$i.rc ]]; do
            ((SECONDS < deadline)) || break
            sleep 0.2
        done
    done
    rm -f "$HA_ROUND_DIR/run"
    local deadline2=$((SECONDS + 10))
    while kill -0 "$loop_pid" 2>/dev/null; do
        ((SECONDS < deadline2)) || { kill "$loop_pid" 2>/dev/null || true; break; }
        sleep 0.1
    done
    capture_stop "rst$round"
    want=$(<"$LAB_STATE/big.sha256")
    HA_INTACT=0
    for ((i = 1; i <= HA_ROUND_N; i++)); do
        got=$(sha256sum "$HA_ROUND_DIR/dl-$i" 2>/dev/null | cut -d' ' -f1)
        if [[ $got == "$want" ]]; then
            HA_INTACT=$((HA_INTACT + 1))
        else
            e2e_log "download $i: exit $(cat "$HA_ROUND_DIR/dl-$i.rc" 2>/dev/null || echo 'none (still running)'), $(stat -c %s "$HA_ROUND_DIR/dl-$i" 2>/dev/null || echo 0) bytes: $(head -c 160 "$HA_ROUND_DIR/dl-$i.err" 2>/dev/null)"
        fi
    done
    # The longest gap: the most time between two answered requests of the loop (its start
    # and its end count as answers, so a loop that ends in failures shows their length).
    read -r HA_REQS HA_FAILED HA_GAP_MS HA_CONNS < <(awk '
        NF >= 3 { n++; if (!last) last = $1
                  if ($3 == "ok") { g = $2 - last; if (g > max) max = g; last = $2 } else bad++
                  end = $2; if ($4 > c) c = $4 }
        END { if (n && end - last > max) max = end - last; printf "%d %d %d %d\n", n, bad, max, c }' "$HA_ROUND_DIR/loop.txt")
    # RSTs the client received (sent to it: from a real server or a director); those it sent
    # itself (closing a connection it gave up on) are counted apart.
    HA_RSTS=$(grep -Ec "> ($HA_CLIENT_RE)\.[0-9]+: " "$LAB_STATE/cap-rst$round.txt" || true)
    HA_RSTS_SENT=$(grep -Ec " ($HA_CLIENT_RE)\.[0-9]+ > " "$LAB_STATE/cap-rst$round.txt" || true)
    echo "MEASURE $E2E_NAME $label: downloads_intact=$HA_INTACT/$HA_ROUND_N loop_requests=$HA_REQS loop_failed=$HA_FAILED longest_gap_ms=$HA_GAP_MS loop_connections=$HA_CONNS client_rsts=$HA_RSTS client_sent_rsts=$HA_RSTS_SENT ${HA_EXTRA:-}"
    if ((HA_FAILED)); then
        e2e_log "failed requests of the loop:"
        awk '$3 != "ok"' "$HA_ROUND_DIR/loop.txt" | head -n 10 >&2
    fi
    if ((HA_RSTS + HA_RSTS_SENT)); then
        e2e_log "RSTs on the client's link:"
        head -n 10 "$LAB_STATE/cap-rst$round.txt" >&2
    fi
}

# ha_assert_nothing_lost LABEL: every download intact, no RST at the client.
ha_assert_nothing_lost() {
    assert_eq "$HA_ROUND_N" "$HA_INTACT" "$1: downloads intact (sha256)"
    assert_eq 0 "$HA_RSTS" "$1: TCP RSTs seen by the client"
}

# ha_assert_within MS BOUND WHAT
ha_assert_within() {
    [[ $1 =~ ^[0-9]+$ ]] && (($1 <= $2)) || e2e_fail "$3: took ${1} ms, bound ${2} ms"
    e2e_log "ok: $3: $1 ms (bound $2 ms)"
}

# ha_dump: both directors' VRRP view, for e2e_dump on a failure.
ha_dump() {
    local n
    for n in "${HA_NODES[@]}"; do
        echo "----- $n: lvsadm daemon status"
        ha_lvsadm "$n" daemon status 2>&1 || true
        echo "----- $n: lvsadm -Lnc (first 30 lines)"
        ha_lvsadm "$n" -Lnc 2>&1 | head -n 30 || true
        echo "----- $n: lvsadm -Ln --stats"
        ha_lvsadm "$n" -Ln --stats 2>&1 || true
        echo "----- $n: notify log"
        tail -n 20 "$LAB_STATE/notify-$n.log" 2>/dev/null || true
    done
    [[ -s $LAB_STATE/dir2/lvsd.log ]] && { echo "----- dir2/lvsd.log (last 40 lines)"; tail -n 40 "$LAB_STATE/dir2/lvsd.log"; }
    echo "----- client: ip neigh"
    lab_exec client ip neigh 2>&1 || true
}
