#!/usr/bin/env bash
# Neighbour poisoning (issue 13 item 4): from the client namespace, neighbour
# advertisements that claim rs1's IPv4 and IPv6 addresses are at an attacker's
# MAC — routed (hop limit 64) for ::ffff:<RIP>, on-link but IPv4-mapped, with a
# bad ICMPv6 code or checksum (checks/e2e/poison_nd.py, scapy). lvsd must not
# believe any of them: every curl through the VIP and VIP6 still reaches both
# real servers, no frame to the attacker's MAC is seen on rs1's link, and
# `lvsadm daemon status` counts the rejections by reason.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
PY=/usr/bin/python3
require_scapy
lab_start --director lvsd
DMAC=00:50:00:00:04:00
CMAC=00:50:00:00:03:00
AMAC=02:00:de:ad:be:ef
RIP4=192.168.1.31
RIP6=2001:db8:1::31

lab_lvsadm -A -t "[$VIP6]:80" -s rr || e2e_fail "lvsadm -A -t [$VIP6]:80 failed"
for rip in $RIP6 2001:db8:1::32; do
    lab_lvsadm -a -t "[$VIP6]:80" -r "[$rip]:80" -g || e2e_fail "lvsadm -a -r [$rip]:80 failed"
done

# curls WHAT: 6 requests through the VIP and 6 through VIP6; each must be answered, and both
# real servers must answer on each (rs1 is the one the advertisements claim).
curls() {
    local what=$1 url a i seen
    for url in "http://$VIP/" "http://[$VIP6]/"; do
        seen=""
        for i in 1 2 3 4 5 6; do
            a=$(curl_rs "$url" 5)
            [[ $a == 0[12] ]] || e2e_fail "$what: curl $i to $url: $a"
            seen+=" $a"
        done
        assert_match "$seen" '01' "$what: rs1 answered via $url ($seen )"
        assert_match "$seen" '02' "$what: rs2 answered via $url"
    done
}
curls "before the advertisements"

capture_start rs1 poison "ether dst $AMAC"
out=$(with_timeout 120 lab_exec client "$PY" "$E2E_DIR/poison_nd.py" eth0 "$DMAC" "$CMAC" "$AMAC" "$RIP4" "$RIP6" 20 2>&1) ||
    { echo "$out"; e2e_fail "poison_nd.py failed"; }
echo "$out"
assert_match "$out" '^sent 120 ' "advertisements sent"

# lvsd saw them (on every data plane: the XDP planes' neighbour tap, the packet sockets) and
# counted each by reason. 40 routed to ::ffff:<RIP> + 20 routed to RIP6; 20 on-link mapped.
counted() {
    local st
    st=$(lab_lvsadm daemon status) || return 1
    [[ $(awk '/^neighbour not learnt nd-hop-limit:/ {print $NF}' <<<"$st") -ge 60 ]] &&
        [[ $(awk '/^neighbour not learnt nd-ipv4-mapped:/ {print $NF}' <<<"$st") -ge 20 ]] &&
        [[ $(awk '/^neighbour not learnt nd-code:/ {print $NF}' <<<"$st") -ge 20 ]] &&
        [[ $(awk '/^neighbour not learnt nd-checksum:/ {print $NF}' <<<"$st") -ge 20 ]]
}
curls "after the advertisements"
wait_for 15 "lvsd counting the advertisements by reason (lvsadm daemon status)" counted >/dev/null
lab_lvsadm daemon status | grep '^neighbour not learnt' >&2
capture_stop poison
bad=$(grep -c "> $AMAC" "$LAB_STATE/cap-poison.txt" || true)
[[ $bad == 0 ]] || { head "$LAB_STATE/cap-poison.txt" >&2; e2e_fail "$bad frames forwarded to the attacker's MAC $AMAC"; }
e2e_log "ok: no frame to $AMAC on rs1's link"
assert_lvsd_alive
e2e_log "PASS"
