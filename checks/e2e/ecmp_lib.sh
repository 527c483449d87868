# shellcheck shell=bash
# Helpers for the ECMP tests (issue 17). Source after lib.sh and ha_lib.sh (its per-director
# lvsadm, pids and the download + keep-alive rounds serve here too):
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/ha_lib.sh"
#   source "$(dirname "$0")/ecmp_lib.sh"
#   ecmp_lab_start 3                 # lvs-lab up --ecmp 3
#   ecmp_nexthop_count               # the router's next hops for the VIP
#   ecmp_client spread "$VIP" 3000 "${ECMP_SOURCES[@]}"
#
# The lab (scripts/lvs-lab-ecmp.sh): the client (198.51.100.2 and 64 more addresses) behind a
# router that reaches the VIP through BGP over the directors director (BIRD), dir2 (FRR) and
# dir3 (BIRD), each running lvsd with its own keepalived.conf.

ECMP_CLIENT=198.51.100.2
ECMP_SOURCES=()
ECMP_SOURCES6=()
for ((ecmp_i = 0; ecmp_i < 64; ecmp_i++)); do
    ECMP_SOURCES+=("198.51.100.$((10 + ecmp_i))")
    ECMP_SOURCES6+=("2001:db8:100::$(printf '%x' $((16 + ecmp_i)))")
done
unset ecmp_i
declare -A ECMP_IP=([director]=192.168.1.21 [dir2]=192.168.1.22 [dir3]=192.168.1.23)
ECMP_CLIENT_PY=$E2E_DIR/ecmp_client.py
# The client's RSTs are counted by ha_round_finish with this pattern.
HA_CLIENT_RE='198\.51\.100\.[0-9]+|2001:db8:100::[0-9a-f]+'

# ecmp_lab_start N [lvs-lab up options]: the ECMP lab with N directors; ha_lib's helpers then
# address its directors (HA_NODES).
ecmp_lab_start() {
    local n=$1
    shift
    lab_start --ecmp "$n" "$@"
    HA_NODES=(director dir2 dir3)
    HA_NODES=("${HA_NODES[@]:0:$n}")
}

# ecmp_nexthops [4|6]: the router's next hops for the VIP (VIP6), one address a line.
ecmp_nexthops() { lab nexthops | awk -v f="${1:-4}" '$1 == f { print $2 }'; }
ecmp_nexthop_count() { ecmp_nexthops "${1:-4}" | grep -c . || true; }
ecmp_has_nexthops() { [[ $(ecmp_nexthop_count "${2:-4}") == "$1" ]]; }
# ecmp_routes_via NODE [4|6]: the router's route for the VIP has NODE as a next hop.
ecmp_routes_via() { ecmp_nexthops "${2:-4}" | grep -qx "${ECMP_IP[$1]}"; }
ecmp_routes_not_via() { ! ecmp_routes_via "$@"; }

# ecmp_conns NODE [SERVICE]: the connections NODE's lvsd scheduled for SERVICE (default VIP:80).
ecmp_conns() {
    ha_lvsadm "$1" -Ln --stats | awk -v s="${2:-$VIP:80}" '$1 == "TCP" && $2 == s { print $3; exit }'
}

# ecmp_client ARGS...: checks/e2e/ecmp_client.py in the client namespace (bounded).
ecmp_client() { lab_exec client timeout 120 /usr/bin/python3 "$ECMP_CLIENT_PY" "$@"; }

# ecmp_pin NODE: the router sends the VIP's traffic to NODE only (a kernel route with a lower
# metric than bgpd's, which stays); ecmp_unpin removes it.
ecmp_pin() { lab_exec router ip route replace "$VIP/32" via "${ECMP_IP[$1]}" dev eth0 metric 1; }
ecmp_unpin() { lab_exec router ip route del "$VIP/32" metric 1 2>/dev/null || true; }

# ecmp_dump: the router's and the directors' routing view, for e2e_dump on a failure.
ecmp_dump() {
    echo "----- router: ip route; BGP; BFD"
    lab_exec router ip route 2>&1 || true
    lab_exec router timeout 10 vtysh --vty_socket "$LAB_STATE/frr-router" -c 'show bgp summary' \
        -c "show ip bgp $VIP/32" -c 'show bfd peers brief' 2>&1 || true
    local n
    for n in "${HA_NODES[@]}"; do
        echo "----- $n: table 100"
        lab_exec "$n" ip route show table 100 2>&1 || true
        if [[ -d $LAB_STATE/bird-$n ]]; then
            lab_exec "$n" timeout 10 birdc -s "$LAB_STATE/bird-$n/bird.ctl" show protocols 2>&1 || true
            tail -n 20 "$LAB_STATE/bird-$n/bird.log" 2>/dev/null || true
        fi
        if [[ -d $LAB_STATE/frr-$n ]]; then
            lab_exec "$n" timeout 10 vtysh --vty_socket "$LAB_STATE/frr-$n" -c 'show bgp summary' 2>&1 || true
            tail -n 20 "$LAB_STATE/frr-$n/bgpd.log" 2>/dev/null || true
        fi
        [[ -s $(ha_dir "$n")/lvsd.log ]] && { echo "----- $n: lvsd.log (last 30 lines)"; tail -n 30 "$(ha_dir "$n")/lvsd.log"; }
    done
    return 0
}

# ecmp_wait_withdrawn NODE SECS: wait (bounded) until the router's route no longer goes through
# NODE; prints the milliseconds it took.
ecmp_wait_withdrawn() { wait_for "$2" "the router withdraws $1 (${ECMP_IP[$1]})" ecmp_routes_not_via "$1"; }
ecmp_wait_announced() { wait_for "$2" "the router routes through $1 (${ECMP_IP[$1]})" ecmp_routes_via "$1"; }

# ecmp_loop_lost FILE: "REQUESTS FAILED" of a curl_loop_start file.
ecmp_loop_lost() { awk '{ n++; if ($3 !~ /^0[12]$/) bad++ } END { printf "%d %d\n", n, bad }' "$1"; }
