#!/usr/bin/env bash
# e2e-planes: afpacket
# ECMP withdraw when blind (issue 17, test 6): the switch drops every frame between dir2 and the
# real servers (an nftables bridge table in the lab's switch namespace). dir2's health checks
# (TCP_CHECK, delay_loop 1 s, connect_timeout 1 s) fail, no real server is up, the VIP is no
# longer ready: lvsd withdraws its route from table 100, and the router its next hop, within two
# health-check intervals. The requests of a loop of new connections keep being answered by the
# other directors. The cut is then lifted: dir2 announces the VIP again.
# Control-plane test: afpacket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
source "$(dirname "$0")/ecmp_lib.sh"

NODE=dir2
# the lab's checks: delay_loop 1 s, connect_timeout 1 s, one retry after 1 s: one interval is a
# check that times out (2 s); a cut real server is down after two of them
CHECK_INTERVAL_MS=2000
SLACK_MS=${E2E_ECMP_SLACK_MS:-2500}
CUT_TABLE=ecmp_cut

require_lvs_bins
ecmp_lab_start 3
tmp=$(e2e_tmpdir)
declare -A MACS=([dir2]=00:50:00:00:05:00 [rs1]=00:50:00:00:01:00 [rs2]=00:50:00:00:02:00)
announced_in_table() { [[ -n $(lab_exec "$NODE" ip route show table 100 "$VIP/32") ]]; }
withdrawn_in_table() { ! announced_in_table; }
uncut() { lab_exec sw nft delete table bridge "$CUT_TABLE" 2>/dev/null || true; }
e2e_on_exit uncut

announced_in_table || e2e_fail "$NODE: no route for $VIP in table 100 before the cut"
curl_loop_start "$tmp/loop"
sleep 1
t0=$(now_ms)
lab_exec sw nft -f - <<EOF2 || e2e_fail "cannot install the cut in the switch"
table bridge $CUT_TABLE {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ether saddr ${MACS[dir2]} ether daddr { ${MACS[rs1]}, ${MACS[rs2]} } drop
        ether saddr { ${MACS[rs1]}, ${MACS[rs2]} } ether daddr ${MACS[dir2]} drop
    }
}
EOF2
e2e_log "cut: the switch drops frames between $NODE and the real servers"
wait_for 20 "$NODE withdraws $VIP from table 100" withdrawn_in_table >/dev/null
t1=$(now_ms)
ecmp_wait_withdrawn "$NODE" 15 >/dev/null
t2=$(now_ms)
e2e_log "$NODE: table 100 without $VIP after $((t1 - t0)) ms, the router without $NODE after $((t2 - t0)) ms"
sleep 1
uncut
t3=$(now_ms)
ecmp_wait_announced "$NODE" 30 >/dev/null
t4=$(now_ms)
curl_loop_stop
read -r loop_n loop_lost < <(ecmp_loop_lost "$tmp/loop")
echo "MEASURE $E2E_NAME: table_withdraw_ms=$((t1 - t0)) router_withdraw_ms=$((t2 - t0)) reannounce_ms=$((t4 - t3)) check_interval_ms=$CHECK_INTERVAL_MS new_conn_requests=$loop_n new_conn_lost=$loop_lost"
ha_assert_within "$((t1 - t0))" $((2 * CHECK_INTERVAL_MS + SLACK_MS)) "$NODE withdraws $VIP when blind (two check intervals)"
assert_eq 3 "$(ecmp_nexthop_count)" "next hops after the cut is lifted"
