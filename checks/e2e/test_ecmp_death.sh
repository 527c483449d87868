#!/usr/bin/env bash
# e2e-planes: afpacket
# ECMP director death (issue 17, test 3): 60 long downloads (4 MB at 400 kB/s) run over three
# directors, with a keep-alive loop and a loop of new connections; lvsd on dir2 (FRR) gets
# kill -9. Its announced route goes with the process, FRR withdraws the VIP, and the router
# moves dir2's flows to the other directors, which pick them up in mid-stream (sloppy_tcp) and
# send them to the same real server (mh). Every download completes with the right sha256, the
# client sees no RST; the note gets the convergence time (kill to the router's route without
# dir2) and the requests the loop of new connections lost.
# Then a whole director dies: dir3's link goes down (lvsd, BIRD and the BFD session with it); the
# router's BFD notices (100 ms x 3) and withdraws dir3; the downloads again all complete.
# Control-plane test (the routing moves the flows; the data plane only has to pick them up):
# afpacket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
source "$(dirname "$0")/ecmp_lib.sh"

VICTIM=${E2E_ECMP_VICTIM:-dir2}
DOWNLOADS=60
RATE=400k
# kill -9 to the router's route without the victim: the routing daemon's netlink event and one
# BGP update (the BFD session stays up: the routing daemon lives).
WITHDRAW_BOUND_MS=${E2E_ECMP_WITHDRAW_MS:-3000}

require_lvs_bins
ecmp_lab_start 3
tmp=$(e2e_tmpdir)
ha_round_start "$DOWNLOADS" "$RATE"
curl_loop_start "$tmp/loop"
sleep 2
pid=$(ha_pid "$VICTIM")
t0=$(now_ms)
kill -KILL "$pid"
e2e_log "kill -9 $VICTIM's lvsd (pid $pid)"
ecmp_wait_withdrawn "$VICTIM" 15 >/dev/null
t1=$(now_ms)
e2e_log "router: $VIP via $(ecmp_nexthops | tr '\n' ' ')$((t1 - t0)) ms after the kill"
sleep 3
curl_loop_stop
read -r loop_n loop_lost < <(ecmp_loop_lost "$tmp/loop")
HA_EXTRA="withdraw_ms=$((t1 - t0)) new_conn_requests=$loop_n new_conn_lost=$loop_lost" ha_round_finish kill9 60
ha_assert_nothing_lost kill9
ha_assert_within "$((t1 - t0))" "$WITHDRAW_BOUND_MS" "the router withdraws $VICTIM after kill -9"
assert_eq 2 "$(ecmp_nexthop_count)" "next hops left"

# ---- a whole director dies: its link goes down
DEAD=dir3
BFD_BOUND_MS=$((100 * 3 + ${E2E_ECMP_SLACK_MS:-1000}))
ha_round_start 30 "$RATE"
sleep 2
t0=$(now_ms)
lab_exec "$DEAD" ip link set eth0 down
e2e_log "$DEAD: eth0 down"
ecmp_wait_withdrawn "$DEAD" 15 >/dev/null
t1=$(now_ms)
e2e_log "router: $VIP via $(ecmp_nexthops | tr '\n' ' ')$((t1 - t0)) ms after the link went down"
sleep 3
HA_EXTRA="withdraw_ms=$((t1 - t0))" ha_round_finish linkdown 60
ha_assert_nothing_lost linkdown
ha_assert_within "$((t1 - t0))" "$BFD_BOUND_MS" "the router withdraws $DEAD by BFD"
