#!/usr/bin/env bash
# A UDP service through lvsd: datagrams from different source ports reach
# both real servers (rr), lvsadm -Lnc lists UDP entries, -Ln counts them as
# InActConn.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd

lab_lvsadm -A -u "$VIP:53" -s rr || e2e_fail "lvsadm -A -u $VIP:53 failed"
for rip in 192.168.1.31 192.168.1.32; do
    lab_lvsadm -a -u "$VIP:53" -r "$rip" -g || e2e_fail "lvsadm -a -u $VIP:53 -r $rip failed"
done
capture_start client client

# 8 datagrams, each from a fresh socket (new source port), 2 s timeout each.
out=$(with_timeout 60 lab_exec client /usr/bin/python3 "$LAB_STATE/udp-probe.py" "$VIP" 8) || e2e_fail "udp probe failed"
capture_stop client
echo "$out"
assert_eq 8 "$(grep -c '^Real Server 0[12]$' <<<"$out")" "answers to 8 datagrams"
assert_ge 3 "$(grep -c '^Real Server 01$' <<<"$out")" "answers from rs1 (rr)"
assert_ge 3 "$(grep -c '^Real Server 02$' <<<"$out")" "answers from rs2 (rr)"
ports=$(grep -Eo "192\.168\.1\.12\.[0-9]+ > 192\.168\.1\.100\.53: " "$LAB_STATE/cap-client.txt" | sort -u | wc -l)
assert_eq 8 "$ports" "distinct client source ports in the capture"

conns=$(lab_lvsadm -Lnc) || e2e_fail "lvsadm -Lnc failed"
echo "$conns"
n=$(grep -Ec "^UDP .* 192\.168\.1\.12:[0-9]+ +192\.168\.1\.100:53 +192\.168\.1\.3[12]:53" <<<"$conns" || true)
assert_eq 8 "$n" "UDP entries in lvsadm -Lnc"

list=$(lab_lvsadm -Ln) || e2e_fail "lvsadm -Ln failed"
echo "$list"
total=0
for rip in 192.168.1.31 192.168.1.32; do
    inact=$(awk -v s="$VIP:53" -v d="$rip:53" '$1=="UDP"{ins=($2==s)} ins && $1=="->" && $2==d {print $6}' <<<"$list")
    assert_ge 1 "$inact" "InActConn of $rip:53"
    total=$((total + inact))
done
assert_eq 8 "$total" "InActConn total of the UDP service"
assert_lvsd_alive
e2e_log "PASS"
