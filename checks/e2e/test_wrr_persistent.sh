#!/usr/bin/env bash
# wrr with weights 3:1 splits 8 new connections 6/2; edited to persistent rr
# (-p 60) the same client always reaches the same server, and -Lnc shows
# the persistence template (client port 0).
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd

lab_lvsadm -E -t "$VIP:80" -s wrr || e2e_fail "lvsadm -E -s wrr failed"
lab_lvsadm -e -t "$VIP:80" -r 192.168.1.31:80 -g -w 3 || e2e_fail "weight 3 failed"
lab_lvsadm -e -t "$VIP:80" -r 192.168.1.32:80 -g -w 1 || e2e_fail "weight 1 failed"
lab_lvsadm -Ln

c1=0 c2=0
for i in $(seq 1 8); do
    a=$(curl_rs "http://$VIP/")
    case $a in 01) c1=$((c1 + 1)) ;; 02) c2=$((c2 + 1)) ;; *) e2e_fail "wrr curl $i: $a" ;; esac
done
assert_eq "6/2" "$c1/$c2" "wrr 3:1 split of 8 connections (rs1/rs2)"

lab_lvsadm -E -t "$VIP:80" -s rr -p 60 || e2e_fail "lvsadm -E -s rr -p 60 failed"
list=$(lab_lvsadm -Ln) || e2e_fail "lvsadm -Ln failed"
echo "$list"
assert_match "$list" "TCP  192\.168\.1\.100:80 rr persistent 60" "service is persistent"
first=""
for i in $(seq 1 8); do
    a=$(curl_rs "http://$VIP/")
    [[ $a == 0[12] ]] || e2e_fail "persistent curl $i: $a"
    [[ -n $first ]] || first=$a
    [[ $a == "$first" ]] || e2e_fail "persistence broken: curl $i reached $a, the first reached $first"
done
e2e_log "ok: 8 curls all reached Real Server $first"
conns=$(lab_lvsadm -Lnc) || e2e_fail "lvsadm -Lnc failed"
echo "$conns"
tpl=$(grep -E "^TCP .* 192\.168\.1\.12:0 +192\.168\.1\.100:80 +192\.168\.1\.3${first#0}:80" <<<"$conns" || true)
assert_match "$tpl" "." "template line (client port 0) pointing at rs$first"
assert_lvsd_alive
e2e_log "PASS"
