#!/usr/bin/env bash
# lvsd's life: clear last log lines and a non-zero exit for a bad interface
# and a bad --fwmark rule; SIGTERM ends it within 5 s and removes its
# nftables table (afpacket), XDP program (afxdp, xdp) or tc program and
# clsact qdisc (tc) and its socket; an
# unsupported --dataplane fails clearly; lvsadm without lvsd says so in one line;
# --config loads an ipvsadm-save file (with a comment line) at start; a bad
# config line fails naming the file and the line.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
LVSD=$(lvs_bin)/lvsd
LVSADM=$(lvs_bin)/lvsadm
# The data plane under test comes from LVS_LAB_LVSD_ARGS (as for the lab's lvsd).
DP_ARGS=(${LVS_LAB_LVSD_ARGS:-})
XDP=0 TC=0
[[ " ${DP_ARGS[*]} " == *" --dataplane afxdp "* || " ${DP_ARGS[*]} " == *" --dataplane xdp "* ]] && XDP=1
[[ " ${DP_ARGS[*]} " == *" --dataplane tc "* ]] && TC=1
# The lab's lvsd keeps one nftables table with afpacket, none with afxdp/xdp/tc (its BPF program instead).
LAB_TABLES=$((XDP || TC ? 0 : 1))

# run_lvsd_fail NAME ARGS...: lvsd must exit non-zero within 15 s; prints
# its last log line.
run_lvsd_fail() {
    local name=$1 rc=0 logf=$LAB_STATE/lvsd-$1.log
    shift
    lab_exec director timeout 15 "$LVSD" --socket "$LAB_STATE/$name.sock" "$@" >"$logf" 2>&1 </dev/null || rc=$?
    ((rc != 0)) || e2e_fail "$name: lvsd exited 0"
    ((rc != 124)) || e2e_fail "$name: lvsd still running after 15s"
    [[ ! -e $LAB_STATE/$name.sock ]] || e2e_fail "$name: lvsd left its socket behind"
    e2e_log "ok: $name: lvsd exited $rc"
    grep -v '^[[:space:]]*$' "$logf" | tail -n 1
}

lvsd_tables() { lab_exec director nft list tables | grep -c 'lvsd_' || true; }

# stop_lvsd PID SOCK: SIGTERM, gone within 5 s, no lvsd_ table, no socket.
stop_lvsd() {
    local pid=$1 sock=$2 deadline
    kill -TERM "$pid" || e2e_fail "cannot signal lvsd pid $pid"
    deadline=$((SECONDS + 5))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || e2e_fail "lvsd (pid $pid) still running 5s after SIGTERM"
        sleep 0.1
    done
    e2e_log "ok: lvsd (pid $pid) ended within 5s of SIGTERM"
    local t
    t=$(lab_exec director nft list tables)
    [[ $t != *lvsd_* ]] || e2e_fail "nftables table left behind after SIGTERM: $t"
    e2e_log "ok: no lvsd_ nftables table left"
    t=$(lab_exec director ip -d link show eth0)
    [[ $t != *prog/xdp* ]] || e2e_fail "XDP program left attached after SIGTERM: $t"
    e2e_log "ok: no XDP program left on eth0"
    t=$(lab_exec director tc filter show dev eth0 ingress 2>&1)
    [[ $t != *lvs_tc_prog* ]] || e2e_fail "tc program left attached after SIGTERM: $t"
    t=$(lab_exec director tc qdisc show dev eth0)
    [[ $t != *clsact* ]] || e2e_fail "clsact qdisc (created by lvsd) left behind after SIGTERM: $t"
    e2e_log "ok: no tc program nor clsact qdisc left on eth0"
    [[ ! -e $sock ]] || e2e_fail "socket $sock left behind after SIGTERM"
    e2e_log "ok: socket $sock removed"
}

# 1. bad interface
last=$(run_lvsd_fail badif --interface nosuch0)
assert_match "$last" "nosuch0" "bad interface: last log line names it ($last)"
assert_match "$last" "critical|error" "bad interface: last log line is an error"
# 2. bad --fwmark rule (nothing left behind: the lab's lvsd table only)
last=$(run_lvsd_fail badfwmark --interface eth0 --fwmark 'bogus==')
assert_match "$last" "fwmark" "bad fwmark: last log line says fwmark ($last)"
assert_match "$last" "bogus==" "bad fwmark: last log line quotes the rule"
assert_eq "$LAB_TABLES" "$(lvsd_tables)" "nftables lvsd_ tables (the lab's lvsd only)"
if ((XDP)); then
    t=$(lab_exec director ip -d link show eth0)
    assert_match "$t" "prog/xdp" "afxdp: the lab's lvsd has its XDP program on eth0"
fi
if ((TC)); then
    t=$(lab_exec director tc filter show dev eth0 ingress)
    assert_match "$t" "lvs_tc_prog" "tc: the lab's lvsd has its tc program on eth0's ingress"
fi
# 2b. an unsupported data plane
last=$(run_lvsd_fail baddp --interface eth0 --dataplane nosuchplane)
assert_match "$last" "nosuchplane" "bad dataplane: last log line names it ($last)"
assert_match "$last" "critical|error" "bad dataplane: last log line is an error"
# 2c. a --poll-spin-us out of range
last=$(run_lvsd_fail badspin --interface eth0 --poll-spin-us 1000001)
assert_match "$last" "poll-spin-us" "bad --poll-spin-us: last log line names the option ($last)"
assert_match "$last" "1000001" "bad --poll-spin-us: last log line quotes the value"

# 3. SIGTERM on the lab's lvsd
stop_lvsd "$(lvsd_pid)" "$LAB_STATE/lvsd.sock"

# 4. lvsadm without lvsd: one line, non-zero
rc=0
out=$(lab_lvsadm -Ln 2>&1) || rc=$?
echo "$out"
((rc != 0)) || e2e_fail "lvsadm -Ln without lvsd exited 0"
assert_eq 1 "$(wc -l <<<"$out")" "lvsadm -Ln without lvsd: number of lines"
assert_match "$out" "lvsd" "lvsadm -Ln without lvsd: the line names lvsd"

# 5. --config
cfg=$LAB_STATE/rules.save
cat >"$cfg" <<CFG
# saved by ipvsadm-save, with a comment line
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 192.168.1.31:80 -g -w 1
-a -t $VIP:80 -r 192.168.1.32:80 -g -w 1
-A -u $VIP:53 -s rr
-a -u $VIP:53 -r 192.168.1.31:53 -g -w 1
CFG
sock=$LAB_STATE/cfg.sock
setsid ip netns exec "$LAB_PREFIX-director" "$LVSD" --interface eth0 --socket "$sock" --config "$cfg" "${DP_ARGS[@]}" \
    >"$LAB_STATE/lvsd-config.log" 2>&1 </dev/null &
pid=$!
e2e_on_exit kill "$pid"
deadline=$((SECONDS + 30))
until [[ -S $sock ]]; do
    kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd --config exited"
    ((SECONDS < deadline)) || e2e_fail "lvsd --config: no socket after 30s"
    sleep 0.1
done
list=$(lab_exec director env LVSD_SOCKET="$sock" timeout 20 "$LVSADM" -Ln) || e2e_fail "lvsadm -Ln (config) failed"
echo "$list"
assert_match "$list" "TCP  192\.168\.1\.100:80 rr" "config: TCP service loaded"
assert_match "$list" "-> 192\.168\.1\.31:80 +Route +1 " "config: rs1 loaded"
assert_match "$list" "-> 192\.168\.1\.32:80 +Route +1 " "config: rs2 loaded"
assert_match "$list" "UDP  192\.168\.1\.100:53 rr" "config: UDP service loaded"
seen=""
for i in 1 2 3 4; do
    a=$(curl_rs "http://$VIP/")
    [[ $a == 0[12] ]] || e2e_fail "curl $i via the config-loaded lvsd: $a"
    seen+=" $a"
done
assert_match "$seen" "01.*02|02.*01" "config-loaded lvsd balances over both ($seen )"
stop_lvsd "$pid" "$sock"

# 6. a bad config line
bad=$LAB_STATE/bad.save
printf '# comment\n-A -t %s:80 -s rr\n-a -t %s:80 -r 192.168.1.31:80 -g -w banana\n' "$VIP" "$VIP" >"$bad"
last=$(run_lvsd_fail badcfg --interface eth0 --config "$bad")
assert_match "$last" "$bad:3" "bad config: last log line names file and line ($last)"
assert_eq 0 "$(lvsd_tables)" "nftables lvsd_ tables after the failed start"
e2e_log "PASS"
