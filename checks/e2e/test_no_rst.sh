#!/usr/bin/env bash
# The director's kernel must stay out of VIP traffic: while curls and a bare
# connect to VIP:80 run, the client receives no TCP RST at all and no frame
# from the director's MAC with IP source VIP. Then with the VIP removed from
# the director's lo, lvsd itself answers ARP for the VIP and curl still works.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
DMAC=00:50:00:00:04:00

check_capture() {
    local cap=$LAB_STATE/cap-$1.txt bad
    bad=$(grep -E "Flags \[[^]]*R" "$cap" | grep -E "> 192\.168\.1\.12\.[0-9]+: " || true)
    [[ -z $bad ]] || { echo "$bad" | head -n 5; e2e_fail "$1: the client received TCP RST(s)"; }
    bad=$(grep -E "^[^ ]+ $DMAC > .*ethertype IPv4 .*: 192\.168\.1\.100[.: ]" "$cap" || true)
    [[ -z $bad ]] || { echo "$bad" | head -n 5; e2e_fail "$1: the director sent frames with IP source $VIP"; }
    e2e_log "ok: $1: no RST to the client, nothing from $DMAC with IP source $VIP ($(wc -l <"$cap") frames)"
}

connect_only() {
    # A connect and a close without a request, then a half request.
    lab_exec client /usr/bin/python3 - "$VIP" <<'PY'
import socket, sys, time
for payload in (b"", b"GET / HTTP/1.1\r\n"):
    s = socket.create_connection((sys.argv[1], 80), timeout=5)
    if payload:
        s.sendall(payload)
    time.sleep(0.3)
    s.close()
print("connected")
PY
}

# ------------------------------------------------------ VIP on director lo
capture_start client withlo
seen=""
for i in $(seq 1 6); do
    a=$(curl_rs "http://$VIP/")
    [[ $a == 0[12] ]] || e2e_fail "curl $i: $a"
    seen+=" $a"
done
assert_match "$seen" '01' "rs1 answered ($seen )"
assert_match "$seen" '02' "rs2 answered"
out=$(with_timeout 30 connect_only) || e2e_fail "connect to $VIP:80 failed"
assert_eq connected "$out" "bare connects to $VIP:80"
sleep 1
capture_stop withlo
check_capture withlo
n=$(grep -cE "> 192\.168\.1\.12\.[0-9]+: Flags \[S\.\]" "$LAB_STATE/cap-withlo.txt" || true)
assert_ge 8 "$n" "SYN-ACKs seen by the client"

# -------------------------------------------------- VIP not on director lo
lab_exec director ip addr del "$VIP/32" dev lo || e2e_fail "cannot remove $VIP from the director's lo"
lab_exec client ip neigh flush all
capture_start client nolo 'arp or ip'
for i in 1 2 3 4; do
    a=$(curl_rs "http://$VIP/")
    [[ $a == 0[12] ]] || e2e_fail "curl $i without the VIP on the director's lo: $a"
done
e2e_log "ok: 4 curls without the VIP on the director's lo"
out=$(with_timeout 30 connect_only) || e2e_fail "connect to $VIP:80 failed (VIP not on lo)"
sleep 1
capture_stop nolo
check_capture nolo
arp=$(grep -E "Reply 192\.168\.1\.100 is-at " "$LAB_STATE/cap-nolo.txt" || true)
echo "$arp"
assert_match "$arp" "^[^ ]+ $DMAC > 00:50:00:00:03:00, .*is-at $DMAC" "ARP reply for $VIP from the director's MAC"
bad=$(grep -E "Reply 192\.168\.1\.100 is-at " "$LAB_STATE/cap-nolo.txt" | grep -v "is-at $DMAC" || true)
[[ -z $bad ]] || e2e_fail "someone else answered ARP for $VIP: $bad"
neigh=$(lab_exec client ip neigh show "$VIP")
assert_match "$neigh" "lladdr $DMAC" "client's neighbour entry for $VIP"
assert_lvsd_alive
e2e_log "PASS"
