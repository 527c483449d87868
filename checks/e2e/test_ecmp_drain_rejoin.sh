#!/usr/bin/env bash
# e2e-planes: afpacket
# ECMP graceful drain and rejoin of a director (issue 17, tests 4 and 5), in one lab.
#  drain:  downloads, a keep-alive loop and a loop of new connections run over three directors;
#          dir2's lvsd gets SIGTERM: it withdraws the VIP (the router's route loses dir2 while
#          lvsd still runs), keeps forwarding for --announce-hold, then exits. No request fails,
#          every download is intact, the client sees no RST.
#  rejoin: the same load over the two others; dir2's lvsd starts again and announces the VIP;
#          the router moves some flows onto dir2 (and between the others), whose directors pick
#          them up in mid-stream (sloppy_tcp) and send them to the same real server (mh-sorted):
#          nothing fails, no RST.
# Control-plane test: afpacket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
source "$(dirname "$0")/ecmp_lib.sh"

NODE=dir2
DOWNLOADS=30
RATE=500k
# the lab's --announce-hold (lvs-lab: LVS_LAB_ECMP_HOLD, default 2 s)
HOLD_S=${LVS_LAB_ECMP_HOLD:-2}

require_lvs_bins
ecmp_lab_start 3
tmp=$(e2e_tmpdir)

# ---- drain
ha_round_start "$DOWNLOADS" "$RATE"
curl_loop_start "$tmp/loop-drain"
sleep 2
pid=$(ha_pid "$NODE")
t0=$(now_ms)
kill -TERM "$pid"
e2e_log "SIGTERM to $NODE's lvsd (pid $pid)"
ecmp_wait_withdrawn "$NODE" 15 >/dev/null
t1=$(now_ms)
alive_at_withdraw=0
kill -0 "$pid" 2>/dev/null && alive_at_withdraw=1
deadline=$((SECONDS + HOLD_S + 15))
while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || e2e_fail "$NODE's lvsd still runs $((HOLD_S + 15)) s after SIGTERM"
    sleep 0.1
done
t2=$(now_ms)
e2e_log "$NODE: withdrawn after $((t1 - t0)) ms, lvsd exited after $((t2 - t0)) ms (hold ${HOLD_S} s)"
sleep 2
curl_loop_stop
read -r loop_n loop_lost < <(ecmp_loop_lost "$tmp/loop-drain")
HA_EXTRA="withdraw_ms=$((t1 - t0)) exit_ms=$((t2 - t0)) hold_s=$HOLD_S new_conn_requests=$loop_n new_conn_lost=$loop_lost" \
    ha_round_finish drain 60
ha_assert_nothing_lost drain
assert_eq 1 "$alive_at_withdraw" "drain: lvsd still ran when the router had withdrawn $NODE"
assert_eq 0 "$loop_lost" "drain: requests of the new-connection loop that failed"
assert_eq 0 "$HA_FAILED" "drain: requests of the keep-alive loop that failed"

# ---- rejoin
ha_round_start "$DOWNLOADS" "$RATE"
curl_loop_start "$tmp/loop-rejoin"
sleep 2
t0=$(now_ms)
ha_start_lvsd "$NODE"
ecmp_wait_announced "$NODE" 30 >/dev/null
t1=$(now_ms)
e2e_log "$NODE: announced again $((t1 - t0)) ms after its start; router: $VIP via $(ecmp_nexthops | tr '\n' ' ')"
sleep 3
picked=$(ha_lvsadm "$NODE" -Lnc | awk '$1 == "TCP" && $3 == "ESTABLISHED"' | wc -l)
curl_loop_stop
read -r loop_n loop_lost < <(ecmp_loop_lost "$tmp/loop-rejoin")
HA_EXTRA="announce_ms=$((t1 - t0)) rejoined_established=$picked new_conn_requests=$loop_n new_conn_lost=$loop_lost" \
    ha_round_finish rejoin 60
ha_assert_nothing_lost rejoin
assert_eq 0 "$loop_lost" "rejoin: requests of the new-connection loop that failed"
assert_eq 3 "$(ecmp_nexthop_count)" "rejoin: next hops"
