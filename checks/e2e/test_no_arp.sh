#!/usr/bin/env bash
# lvsd --no-arp with the VIPs owned by the director's kernel (a backup director, or a VIP held by
# VRRP: the documented use): the kernel answers ARP for VIP and neighbour solicitations for VIP6,
# lvsd answers neither, and the client resolves both to the director's MAC and gets its answers
# through lvsd. Issue 13 item 7: before the fix, afxdp and xdp redirected those requests to lvsd,
# which handed them back (`.pass`) and so dropped them, and tc marked them PACKET_OTHERHOST, which
# the kernel discards: the VIP was unreachable.
# e2e-planes: afpacket afxdp xdp tc
source "$(dirname "$0")/lib.sh"

require_lvs_bins
LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --no-arp" lab_start --director lvsd
DMAC=00:50:00:00:04:00

# The VIPs on the director's interface (the lab already has VIP on lo, VIP6 on eth0).
lab_exec director ip addr add "$VIP/32" dev eth0 || e2e_fail "cannot add $VIP to the director's eth0"
lab_exec director ip -4 addr show dev eth0
lab_exec director ip -6 addr show dev eth0

lab_lvsadm -A -t "[$VIP6]:80" -s rr || e2e_fail "lvsadm -A -t [$VIP6]:80 failed"
for rip in 2001:db8:1::31 2001:db8:1::32; do
    lab_lvsadm -a -t "[$VIP6]:80" -r "[$rip]:80" -g || e2e_fail "lvsadm -a -r [$rip]:80 failed"
done
lab_lvsadm -Ln

lab_exec client ip neigh flush to "$VIP" || true
lab_exec client ip -6 neigh flush to "$VIP6" || true
capture_start client arp 'arp or icmp6'
for url in "http://$VIP/" "http://[$VIP6]/"; do
    seen=""
    for i in 1 2 3 4; do
        a=$(curl_rs "$url" 5)
        [[ $a == 0[12] ]] || e2e_fail "$url: curl $i: $a"
        seen+=" $a"
    done
    assert_match "$seen" '01' "$url: rs1 answered ($seen )"
    assert_match "$seen" '02' "$url: rs2 answered"
done
capture_stop arp

neigh=$(lab_exec client ip neigh show "$VIP")
assert_match "$neigh" "lladdr $DMAC" "client resolved $VIP to the director's MAC"
neigh6=$(lab_exec client ip -6 neigh show "$VIP6")
assert_match "$neigh6" "lladdr $DMAC" "client resolved $VIP6 to the director's MAC"
cap=$LAB_STATE/cap-arp.txt
grep -Eq "^[^ ]+ $DMAC > .*Reply $VIP is-at $DMAC" "$cap" || { cat "$cap"; e2e_fail "no ARP reply for $VIP from the director"; }
grep -Eq "^[^ ]+ $DMAC > .*neighbor advertisement, tgt is $VIP6" "$cap" ||
    { cat "$cap"; e2e_fail "no neighbour advertisement for $VIP6 from the director"; }

# Through lvsd: the connections are its own, and it answered no ARP/ND itself (the kernel did).
stats=$(lab_lvsadm -Ln --stats)
echo "$stats"
for svc in "$VIP:80" "[$VIP6]:80"; do
    conns=$(awk -v s="$svc" '$1 == "TCP" && $2 == s { print $3 }' <<<"$stats")
    assert_eq 4 "$conns" "connections lvsd scheduled for $svc"
done
status=$(lab_lvsadm daemon status)
echo "$status"
replies=$(sed -nE 's/.*replies ([0-9]+).*/\1/p' <<<"$status" | head -n 1)
assert_eq 0 "$replies" "replies lvsd sent itself (--no-arp)"
assert_lvsd_alive
e2e_log "PASS"
