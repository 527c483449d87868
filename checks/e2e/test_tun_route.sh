#!/usr/bin/env bash
# e2e-planes: afpacket
# Tunnel routes follow the kernel's route notifications, not a poll: on the TUN lab (`lvs-lab up
# --method tun`, IPIP, the real servers behind the router) with lvsd's safety refresh set to an
# hour (--tunnel-route-refresh 3600), the director's route to 10.9.0.0/24 changes and lvsd
# follows within 15 s: a lower route MTU (1300: a 1,500-byte UDP datagram with DF gets ICMP
# "fragmentation needed" with 1280, the MTU minus IPIP's 20 bytes), the MTU back (1480), and a
# move to another address of the router as gateway (its MAC resolved afresh). The curls
# alternate after each change; lvsd logs each change with the route it replaced.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
export LVS_LAB_TUN_TYPE=ipip
export LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --tunnel-route-refresh 3600"
lab_start --director lvsd --method tun
NET=10.9.0.0/24
RS=(10.9.0.31 10.9.0.32)
GW=192.168.1.254
GW2=192.168.1.253

curls() {
    local what=$1 seen="" a i
    for i in 1 2 3 4; do
        a=$(curl_rs "http://$VIP/")
        [[ $a == 0[12] ]] || e2e_fail "$what: curl $i: $a"
        seen+=" $a"
    done
    for ((i = 1; i < 4; i++)); do
        [[ ${seen:i*3:3} != "${seen:(i-1)*3:3}" ]] || e2e_fail "$what: rr does not alternate:$seen"
    done
    e2e_log "$what: rr$seen"
}

# A UDP service on the same real servers, for the DF probe.
lab_lvsadm -A -u "$VIP:9999" -s rr || e2e_fail "lvsadm -A -u $VIP:9999 failed"
for rip in "${RS[@]}"; do
    lab_lvsadm -a -u "$VIP:9999" -r "$rip:9999" -i || e2e_fail "lvsadm -a -u -r $rip:9999 -i failed"
done

# probe: one 1,500-byte UDP datagram with DF (IP_PMTUDISC_PROBE: DF set, the client's cached
# path MTU ignored) from the client to VIP:9999.
probe() {
    lab_exec client /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 3)  # IP_MTU_DISCOVER = IP_PMTUDISC_PROBE
s.sendto(b"x" * 1472, (sys.argv[1], 9999))' "$VIP"
}

# frag_needed MTU NAME: probes every 0.5 s until the client's capture shows "fragmentation
# needed" with MTU from the VIP (15 s at most); prints how long it took.
frag_needed() {
    local mtu=$1 name=$2 start=$SECONDS
    capture_start client "$name" icmp
    until grep -q "$VIP > 192\.168\.1\.12: ICMP $VIP unreachable - need to frag (mtu $mtu)" "$LAB_STATE/cap-$name.txt"; do
        ((SECONDS - start < 15)) || { capture_stop "$name"; e2e_fail "$name: no ICMP fragmentation needed with MTU $mtu within 15 s"; }
        probe || e2e_fail "$name: cannot send the probe"
        sleep 0.5
    done
    capture_stop "$name"
    grep -m1 "need to frag" "$LAB_STATE/cap-$name.txt"
    e2e_log "$name: MTU $mtu reported after about $((SECONDS - start)) s"
}

# logged REGEX: lvsd's log has a line matching REGEX (ERE).
logged() { grep -Eq "$1" "$LAB_STATE/lvsd.log"; }

curls "before"
frag_needed 1480 mtu1500

# The route's MTU lowered: 1300 - 20.
lab_exec director ip route replace "$NET" via "$GW" mtu 1300 || e2e_fail "director: ip route replace $NET mtu 1300 failed"
frag_needed 1280 mtu1300
curls "route mtu 1300"
assert_match "$(grep -E 'mtu=1300 real_server=10\.9\.0\.31 .*tunnel real server route' "$LAB_STATE/lvsd.log" | tail -n 1)" \
    "was=dev eth0 via $GW src 192\.168\.1\.21 mtu 1500 " "lvsd logged the change from MTU 1500 to 1300 for 10.9.0.31"

# The MTU back to the link's.
lab_exec director ip route replace "$NET" via "$GW" || e2e_fail "director: ip route replace $NET failed"
frag_needed 1480 mtu-back

# Another gateway: a second address of the router; lvsd resolves its MAC and forwards through it.
lab_exec router ip addr add "$GW2/24" dev eth0 || e2e_fail "router: cannot add $GW2"
lab_exec director ip route replace "$NET" via "$GW2" || e2e_fail "director: ip route replace $NET via $GW2 failed"
ms=$(wait_for 15 "lvsd logs the route to 10.9.0.31 through $GW2" \
    logged "gateway=$GW2 .*real_server=10\.9\.0\.31 .*was=dev eth0 via $GW src .*tunnel real server route")
e2e_log "the new gateway logged about $ms ms after the change (log polled every 0.2 s)"
curls "via $GW2"
grep -E "tunnel real server route" "$LAB_STATE/lvsd.log" >&2
# One pass per burst of notifications (a few here), not a pass every turn nor a loop of passes
# that set off notifications of their own.
passes=$(grep -c "tunnel routes looked up again" "$LAB_STATE/lvsd.log" || true)
e2e_log "passes made: $passes"
((passes >= 3 && passes < 30)) || e2e_fail "$passes passes over all the tunnel routes (3 to 29 expected)"
assert_lvsd_alive
e2e_log "PASS"
