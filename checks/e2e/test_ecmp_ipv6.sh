#!/usr/bin/env bash
# e2e-planes: afpacket
# ECMP with an IPv6 VIP (issue 17, test 8): the BIRD directors (director, dir3) announce VIP6
# (2001:db8:1::100/128, from lvsd's routes in the IPv6 table 100) over their IPv4 BGP sessions;
# dir2 runs FRR 8.4, which has no `ipv6 import-table`, so it announces the IPv4 VIP only.
#  spread: the router's route to VIP6 has two next hops; 1,000 requests from 64 client
#          addresses reach both BIRD directors (each at least 20 %), none failing;
#  death:  30 downloads through VIP6; kill -9 of director's lvsd; the router withdraws it; every
#          download intact, no RST at the client.
# Control-plane test: afpacket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
source "$(dirname "$0")/ecmp_lib.sh"

REQUESTS=1000
MIN_SHARE_PCT=20
ANNOUNCERS=(director dir3)
VICTIM=director
WITHDRAW_BOUND_MS=${E2E_ECMP_WITHDRAW_MS:-3000}

require_lvs_bins
ecmp_lab_start 3
wait_for 20 "two next hops for $VIP6" ecmp_has_nexthops 2 6 >/dev/null
e2e_log "route: $(lab_exec router ip -6 route show "$VIP6" | tr -s '\t\n' '  ')"

# ---- spread
declare -A before got
for n in "${ANNOUNCERS[@]}"; do before[$n]=$(ecmp_conns "$n" "[$VIP6]:80"); done
out=$(ecmp_client spread "$VIP6" "$REQUESTS" "${ECMP_SOURCES6[@]}") || e2e_fail "the client failed: $out"
e2e_log "client: $out"
failed=$(sed -n 's/^answers .*failed=\([0-9]*\).*/\1/p' <<<"$out")
shares=""
for n in "${ANNOUNCERS[@]}"; do
    got[$n]=$(($(ecmp_conns "$n" "[$VIP6]:80") - before[$n]))
    shares+=" $n=${got[$n]}"
done
echo "MEASURE $E2E_NAME spread: requests=$REQUESTS failed=$failed next_hops=$(ecmp_nexthop_count 6)$shares"
assert_eq 0 "$failed" "IPv6 requests that failed"
for n in "${ANNOUNCERS[@]}"; do
    assert_ge $((REQUESTS * MIN_SHARE_PCT / 100)) "${got[$n]}" "IPv6 connections scheduled by $n (at least $MIN_SHARE_PCT %)"
done

# ---- death
ha_round_start 30 400k "[$VIP6]"
sleep 2
pid=$(ha_pid "$VICTIM")
t0=$(now_ms)
kill -KILL "$pid"
e2e_log "kill -9 $VICTIM's lvsd (pid $pid)"
wait_for 15 "the router withdraws $VICTIM for $VIP6" ecmp_has_nexthops 1 6 >/dev/null
t1=$(now_ms)
sleep 3
HA_EXTRA="withdraw_ms=$((t1 - t0))" ha_round_finish kill9-ipv6 60
ha_assert_nothing_lost kill9-ipv6
ha_assert_within "$((t1 - t0))" "$WITHDRAW_BOUND_MS" "the router withdraws $VICTIM for $VIP6 after kill -9"
