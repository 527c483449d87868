#!/usr/bin/env bash
# e2e-planes: afpacket
# ECMP spread (issue 17, test 1): three directors (lvsd + BIRD, FRR, BIRD) announce the VIP by
# BGP; the router's route to the VIP has three next hops, and 3,000 requests from 64 client
# addresses (ephemeral ports) reach every director, each at least 20 % of them, none failing.
# Control-plane test: the routing and the router's hashing do not depend on lvsd's data plane,
# so it runs on afpacket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
source "$(dirname "$0")/ecmp_lib.sh"

REQUESTS=3000
MIN_SHARE_PCT=20

require_lvs_bins
ecmp_lab_start 3
assert_eq 3 "$(ecmp_nexthop_count)" "next hops of the router's route to $VIP"
e2e_log "route: $(lab_exec router ip route show "$VIP" | tr -s '\t\n' '  ')"

declare -A before
for n in "${HA_NODES[@]}"; do before[$n]=$(ecmp_conns "$n"); done
t0=$(now_ms)
out=$(ecmp_client spread "$VIP" "$REQUESTS" "${ECMP_SOURCES[@]}") || e2e_fail "the client failed: $out"
t1=$(now_ms)
e2e_log "client: $out"
failed=$(sed -n 's/^answers .*failed=\([0-9]*\).*/\1/p' <<<"$out")
rs1=$(sed -n 's/^answers rs01=\([0-9]*\).*/\1/p' <<<"$out")
rs2=$(sed -n 's/^answers .*rs02=\([0-9]*\).*/\1/p' <<<"$out")
shares=""
declare -A got
for n in "${HA_NODES[@]}"; do
    got[$n]=$(($(ecmp_conns "$n") - before[$n]))
    shares+=" $n=${got[$n]}"
done
echo "MEASURE $E2E_NAME: requests=$REQUESTS failed=$failed next_hops=3$shares rs01=$rs1 rs02=$rs2 client_ms=$((t1 - t0))"
assert_eq 0 "$failed" "requests that failed"
for n in "${HA_NODES[@]}"; do
    assert_ge $((REQUESTS * MIN_SHARE_PCT / 100)) "${got[$n]}" "connections scheduled by $n (at least $MIN_SHARE_PCT %)"
done
