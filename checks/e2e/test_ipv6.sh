#!/usr/bin/env bash
# An IPv6 TCP service through lvsd: [VIP6]:80 rr over both real servers'
# IPv6 addresses; curls alternate; then with VIP6 removed from the
# director's eth0, lvsd itself answers the neighbour solicitations for VIP6.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
DMAC=00:50:00:00:04:00

lab_lvsadm -A -t "[$VIP6]:80" -s rr || e2e_fail "lvsadm -A -t [$VIP6]:80 failed"
for rip in 2001:db8:1::31 2001:db8:1::32; do
    lab_lvsadm -a -t "[$VIP6]:80" -r "[$rip]:80" -g || e2e_fail "lvsadm -a -r [$rip]:80 failed"
done
lab_lvsadm -Ln

curls() {
    local what=$1 seen="" a i
    for i in 1 2 3 4 5 6; do
        a=$(curl_rs "http://[$VIP6]/")
        [[ $a == 0[12] ]] || e2e_fail "$what: curl $i: $a"
        seen+=" $a"
    done
    assert_match "$seen" '01' "$what: rs1 answered ($seen )"
    assert_match "$seen" '02' "$what: rs2 answered"
    for ((i = 1; i < 6; i++)); do
        [[ ${seen:i*3:3} != "${seen:(i-1)*3:3}" ]] || e2e_fail "$what: rr does not alternate:$seen"
    done
}
curls "VIP6 on the director's eth0"

stats=$(lab_lvsadm -Ln --stats) || e2e_fail "lvsadm -Ln --stats failed"
echo "$stats"
for rip in 2001:db8:1::31 2001:db8:1::32; do
    assert_eq 3 "$(awk -v d="[$rip]:80" '$1=="->" && $2==d {print $3}' <<<"$stats")" "conns on [$rip]:80"
done

# Neighbour discovery answered by lvsd, not the director's kernel.
lab_exec director ip -6 addr del "$VIP6/128" dev eth0 || e2e_fail "cannot remove $VIP6 from the director's eth0"
lab_exec client ip -6 neigh flush all
capture_start client nd 'icmp6 or ip6'
curls "VIP6 not on the director"
capture_stop nd
na=$(grep -E "neighbor advertisement, tgt is $VIP6" "$LAB_STATE/cap-nd.txt" || true)
echo "$na"
assert_match "$na" "^[^ ]+ $DMAC > 00:50:00:00:03:00, " "neighbour advertisement for $VIP6 from the director's MAC"
neigh=$(lab_exec client ip -6 neigh show "$VIP6")
assert_match "$neigh" "lladdr $DMAC" "client's neighbour entry for $VIP6"
bad=$(grep -E "^[^ ]+ $DMAC > .*ethertype IPv6 .*: $VIP6\.80 > " "$LAB_STATE/cap-nd.txt" || true)
[[ -z $bad ]] || e2e_fail "director sent TCP from $VIP6 to the client: $bad"
bad=$(grep -E "Flags \[[^]]*R" "$LAB_STATE/cap-nd.txt" | grep -E "> 2001:db8:1::12\.[0-9]+: " || true)
[[ -z $bad ]] || e2e_fail "client received RST(s): $bad"
assert_lvsd_alive
e2e_log "PASS"
