#!/usr/bin/env bash
# e2e-planes: afpacket afxdp xdp tc
# A dead lvsd lets go of the VIP (issue 16, --orphan-timeout): a UDP flow runs through the VIP
# (a datagram every 20 ms, answered by the real servers), lvsd is killed with SIGKILL and no lvsd
# starts again. Before the orphan timeout (3 s) the dead lvsd's leftovers still claim the VIP's
# frames: afpacket's nftables guard drops them (--restart-guard or not, a SIGKILL leaves it), the
# xdp and tc programs still forward the established flow from their map; afxdp's XDP program has
# lost its AF_XDP sockets with the process and passes the frames. After the timeout the
# director no longer touches them: no answer comes back (nothing reaches a real server), the
# director's kernel receives the frames (its Ip InReceives grows by about the datagrams sent),
# and the leftovers count what they let through: the guard's `iifname != @alive` accept rule
# (afpacket), the programs' CLVS_STAT_ORPHANED counter (afxdp, xdp, tc), while the guard's drop
# rules and the fast path's forwarded counter stand still. Prints the counters of each window.
source "$(dirname "$0")/lib.sh"

# 6 s, not the default 3: the last heartbeat comes up to timeout/4 before the kill, later still
# when a loaded machine runs the heartbeat thread late; window A must end well before it expires.
TIMEOUT=6
PLANE=afpacket
if [[ " ${LVS_LAB_LVSD_ARGS:-} " =~ [[:space:]]--dataplane[=[:space:]]([a-z]+)[[:space:]] ]]; then PLANE=${BASH_REMATCH[1]}; fi
require_lvs_bins
lvs_bin >/dev/null
export LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --restart-guard --orphan-timeout $TIMEOUT"
lab_start --director lvsd
tmp=$(e2e_tmpdir)

if ! lab_lvsadm -Ln | grep -q "^UDP  $VIP:53"; then
    lab_lvsadm -A -u "$VIP:53" -s rr || e2e_fail "lvsadm -A -u $VIP:53 failed"
    lab_lvsadm -a -u "$VIP:53" -r 192.168.1.31 -g || e2e_fail "lvsadm -a -u $VIP:53 failed"
fi
assert_match "$(lab_lvsadm daemon status)" "orphan timeout: $TIMEOUT" "lvsd reports its orphan timeout"

# The flow: one client port, a datagram every 20 ms; each answer's time (epoch s) on stdout.
lab_exec client timeout 60 /usr/bin/python3 - "$VIP" 18 >"$tmp/answers" 2>"$tmp/sender.err" <<'PY' &
import select, socket, sys, time
vip, duration = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40153))
end = time.time() + duration
while time.time() < end:
    s.sendto(b"ping", (vip, 53))
    wait_until = time.time() + 0.02
    while True:
        left = wait_until - time.time()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        s.recvfrom(2048)
        print("%.3f" % time.time(), flush=True)
PY
sender=$!
e2e_on_exit kill_quiet "$sender"

epoch() { date +%s.%N; }
# answers FROM TO: answers received between two epoch times.
answers() { awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b' "$tmp/answers" | wc -l; }
# The director's kernel: IP packets its stack received (Ip InReceives).
kernel_in() {
    lab_exec director awk '$1 == "Ip:" && !h { for (i = 2; i <= NF; i++) if ($i == "InReceives") c = i; h = 1; next }
                           $1 == "Ip:" { print $c }' /proc/net/snmp
}
# The dead lvsd's leftovers: "guard_drop=N alive_accept=N" (afpacket) or the program's
# counters "service=N fast=N orphaned=N" (the `stats` map of the program on the director's eth0).
leftovers() {
    if [[ $PLANE == afpacket ]]; then
        lab_exec director nft list table netdev "lvsd_$PID" | awk '
            /counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n = $(i + 1)
                                if ($0 ~ /@alive/) a += n; else if ($0 ~ /drop/) d += n }
            END { printf "guard_drop=%d alive_accept=%d\n", d, a }'
    else
        lab_exec director /usr/bin/python3 - <<'PY'
import json, subprocess
def tool(*a): return json.loads(subprocess.run(["bpftool", "-j", *a], check=True, capture_output=True, text=True).stdout)
net = tool("net", "show", "dev", "eth0")[0]
ids = [p.get("id") or p.get("prog_id") for p in net.get("xdp", []) + net.get("tc", [])]
stats = None
for pid in ids:
    for m in tool("prog", "show", "id", str(pid)).get("map_ids", []):
        if tool("map", "show", "id", str(m)).get("name") == "stats":
            stats = m
totals = {}
for e in tool("map", "dump", "id", str(stats)):
    f = e.get("formatted", e)
    key = f["key"] if isinstance(f["key"], int) else int(f["key"][0], 16)
    total = 0
    for v in f["values"]:
        val = v["value"]
        total += val if isinstance(val, int) else int.from_bytes(bytes(int(b, 16) for b in val), "little")
    totals[key] = total
# enum clvs_xdp_stat: SERVICE 0, ADDRESS 1, NEIGHBOUR 2, PASSED 3, FAST 4, ORPHANED 5
print("service=%d fast=%d orphaned=%d" % (totals.get(0, 0), totals.get(4, 0), totals.get(5, 0)))
PY
    fi
}
# field NAME SNAPSHOT: a counter of a `leftovers` line.
field() { tr ' ' '\n' <<<"$2" | awk -F= -v n="$1" '$1 == n { print $2 }'; }

sleep 3
PID=$(lvsd_pid)
before=$(answers "$(awk -v t="$(epoch)" 'BEGIN { printf "%.3f", t - 2 }')" "$(epoch)")
e2e_log "lvsd (pid $PID, $PLANE) forwards: $before answers in the last 2 s"
assert_ge 50 "$before" "answers in the 2 s before the kill (a datagram every 20 ms)"
KILL=$(epoch)
kill -KILL "$PID"
e2e_log "kill -9 $PID; no lvsd starts again"

# Window A: 0.5 s to 2.0 s after the kill, well before the timeout.
sleep 0.5
a0=$(epoch) ak0=$(kernel_in) al0=$(leftovers)
sleep 1.5
a1=$(epoch) ak1=$(kernel_in) al1=$(leftovers)
A_ANSWERS=$(answers "$a0" "$a1") A_KERNEL=$((ak1 - ak0))
late=$(awk -v k="$KILL" -v a="$a1" -v t="$TIMEOUT" 'BEGIN { print (a - k > t * 3 / 4 - 0.5) ? 1 : 0 }')
((late == 0)) || e2e_fail "window A ended $(awk -v k="$KILL" -v a="$a1" 'BEGIN { printf "%.1f", a - k }') s after the kill: too close to the timeout to tell (machine overloaded)"
# Window B: from 1 s after the timeout, 3 s long.
sleep "$(awk -v k="$KILL" -v now="$(epoch)" -v t="$TIMEOUT" 'BEGIN { d = k + t + 1 - now; printf "%.3f", (d > 0 ? d : 0) }')"
b0=$(epoch) bk0=$(kernel_in) bl0=$(leftovers)
sleep 3
b1=$(epoch) bk1=$(kernel_in) bl1=$(leftovers)
B_ANSWERS=$(answers "$b0" "$b1") B_KERNEL=$((bk1 - bk0))
wait "$sender" || true
e2e_log "before the timeout ($(awk -v a="$a0" -v b="$a1" 'BEGIN { printf "%.1f", b - a }') s): answers $A_ANSWERS, director kernel InReceives +$A_KERNEL, leftovers $al0 -> $al1"
e2e_log "after the timeout ($(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.1f", b - a }') s): answers $B_ANSWERS, director kernel InReceives +$B_KERNEL, leftovers $bl0 -> $bl1"
if [[ $PLANE == afpacket ]]; then
    lab_exec director nft list table netdev "lvsd_$PID" >&2 || true
fi

# About 75 datagrams in 1.5 s, 150 in 3 s.
case $PLANE in
    afpacket)
        assert_eq 0 "$A_ANSWERS" "answers before the timeout (the guard drops, nobody forwards)"
        assert_ge 40 "$(($(field guard_drop "$al1") - $(field guard_drop "$al0")))" "frames the dead lvsd's guard dropped before the timeout"
        assert_eq 0 "$(($(field alive_accept "$al1") - $(field alive_accept "$al0")))" "frames the guard let through before the timeout"
        ((A_KERNEL < 40)) || e2e_fail "the director's kernel received $A_KERNEL packets before the timeout: the guard did not hold"
        assert_eq 0 "$(($(field guard_drop "$bl1") - $(field guard_drop "$bl0")))" "frames the guard dropped after the timeout"
        assert_ge 75 "$(($(field alive_accept "$bl1") - $(field alive_accept "$bl0")))" "frames the expired guard let through to the kernel"
        ;;
    xdp | tc)
        assert_ge 40 "$A_ANSWERS" "answers before the timeout (the $PLANE program still forwards the flow)"
        assert_ge 40 "$(($(field fast "$al1") - $(field fast "$al0")))" "frames the $PLANE program forwarded before the timeout"
        assert_eq 0 "$(($(field orphaned "$al1") - $(field orphaned "$al0")))" "frames the $PLANE program left to the kernel as orphaned before the timeout"
        assert_eq 0 "$(($(field fast "$bl1") - $(field fast "$bl0")))" "frames the $PLANE program forwarded after the timeout"
        assert_ge 75 "$(($(field orphaned "$bl1") - $(field orphaned "$bl0")))" "frames the $PLANE program left to the kernel (orphaned) after the timeout"
        ;;
    afxdp)
        assert_eq 0 "$A_ANSWERS" "answers before the timeout (the AF_XDP sockets went with the process)"
        assert_ge 75 "$(($(field orphaned "$bl1") - $(field orphaned "$bl0")))" "frames the XDP program left to the kernel (orphaned) after the timeout"
        ;;
esac
assert_eq 0 "$B_ANSWERS" "answers after the timeout (nothing reaches a real server)"
assert_ge 75 "$B_KERNEL" "IP packets the director's kernel received after the timeout (the VIP's frames reach its stack)"
echo "MEASURE $E2E_NAME plane=$PLANE orphan_timeout_s=$TIMEOUT answers_before_timeout=$A_ANSWERS answers_after=$B_ANSWERS kernel_in_before=$A_KERNEL kernel_in_after=$B_KERNEL"
e2e_log "PASS"
