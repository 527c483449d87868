#!/usr/bin/env bash
# e2e-planes: afpacket
# `lvs-lab failover`, the operator's demonstration of a takeover in the HA lab (issue 15), does
# what it says: on a lab made by `lvs-lab up --ha`, it kills the MASTER's lvsd under curls and
# downloads and shows (1) the other director MASTER within the bound, (2) `lvsadm -Lnc` on the new
# MASTER listing the downloads' flows it took over (ESTABLISHED, to port 80 of the VIP), (3) the
# curls going on after the takeover, (4) every download intact, (5) the gratuitous ARP from the new
# MASTER's MAC in the client's capture, and (6) no RST received by the client (a RST the client
# itself sends answers a SYN-ACK or reply that arrived after its curl loop's --max-time 1 had
# given up during the takeover: counted, printed, not a loss). The command's whole output is printed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"

ha_lab_start
out=$(e2e_tmpdir)/failover.out
rc=0
with_timeout 150 "$LVS_LAB" failover --prefix "$LAB_PREFIX" >"$out" 2>&1 || rc=$?
sed 's/^/  | /' "$out" >&2
assert_eq 0 "$rc" "lvs-lab failover exit status"

took=$(sed -n 's/^== dir2 is MASTER \([0-9]*\) ms after the kill.*/\1/p' "$out")
[[ -n $took ]] || e2e_fail "no '== dir2 is MASTER N ms after the kill' line"
ha_assert_within "$took" "$(ha_down_bound_ms)" "lvs-lab failover: dir2 MASTER after the kill -9"

# -Lnc on the new MASTER: the synced downloads' entries, between its header and the next '=='.
flows=$(awk '/^== lvsadm -Lnc on dir2/ { on = 1; next } /^==/ { on = 0 } on && /ESTABLISHED/ && /192\.168\.1\.100:80/' "$out" | wc -l)
((flows >= 1)) || e2e_fail "lvsadm -Lnc on dir2 lists no ESTABLISHED flow to the VIP"
e2e_log "ok: -Lnc on the new MASTER lists $flows ESTABLISHED flow(s) to the VIP"

# The curl loop: answered again after the kill (the last answers come from a real server).
kill_at=$(sed -n 's/^== \([0-9:.]*\) kill -9 .*/\1/p' "$out")
answered_after=$(awk -v k="$kill_at" '/curl http:\/\// && $1 > k && /Real Server/' "$out" | wc -l)
((answered_after >= 3)) || e2e_fail "the curl loop got $answered_after answers after the kill at $kill_at"
e2e_log "ok: the curl loop went on: $answered_after answers after the kill"

grep -q '^== downloads intact (sha256): 4 of 4$' "$out" || e2e_fail "not every download intact"
garps=$(awk '/^== the client.s capture: gratuitous ARP/ { on = 1; next } /^==/ { on = 0 } on && /ARP/' "$out" | wc -l)
((garps >= 1)) || e2e_fail "no gratuitous ARP from dir2 in the client's capture"
e2e_log "ok: $garps gratuitous ARP(s) from dir2 in the capture"
grep -q '^== TCP RSTs seen by the client: 0$' "$out" || e2e_fail "the client received TCP RSTs"
rst_sent=$(sed -n 's/^== TCP RSTs sent by the client[^:]*: \([0-9]*\)$/\1/p' "$out")
[[ -n $rst_sent ]] || e2e_fail "no '== TCP RSTs sent by the client' line"
e2e_log "MEASURE lab_failover takeover_ms=$took flows_listed=$flows answers_after=$answered_after garps=$garps client_sent_rsts=$rst_sent"
e2e_log "PASS"
