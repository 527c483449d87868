#!/usr/bin/env bash
# Sync input bounds (issue 13 item 10): the lab's lvsd runs the backup sync
# daemon, its service is persistent (-p 60) and its table small
# (--max-connections 4096: 1024 templates, at most 512 of them synced). From
# the client namespace, 2000 synced templates with a timeout of 0xFFFFFF s
# (checks/e2e/sync_flood.py, scapy). lvsd keeps 512 of them, each with at most
# the service's 60 s, counts the other 1488 (`daemon status`: template-limit),
# and the client's curls through the VIP are all answered.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
PY=/usr/bin/python3
require_scapy
LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --max-connections 4096" lab_start --director lvsd
RIP=192.168.1.31

lab_lvsadm -E -t "$VIP:80" -s rr -p 60 || e2e_fail "lvsadm -E -p 60 failed"
lab_lvsadm --start-daemon backup --mcast-interface eth0 || e2e_fail "--start-daemon backup failed"

out=$(with_timeout 120 lab_exec client "$PY" "$E2E_DIR/sync_flood.py" eth0 192.168.1.12 "$VIP" "$RIP" 2000 2>&1) ||
    { echo "$out"; e2e_fail "sync_flood.py failed"; }
echo "$out"
assert_match "$out" 'sent 2000 templates' "synced templates sent"

# Wait until the backup has taken in the flood: its synced templates stop growing.
flood_templates() { lab_lvsadm -Lnc | awk '$1 == "TCP" && $4 ~ /^10\.77\./ { n++ } END { print n + 0 }'; }
settled() {
    local a b
    a=$(flood_templates) || return 1
    sleep 1
    b=$(flood_templates) || return 1
    ((a >= 512 && a == b))
}
wait_for 30 "the backup to take in the synced templates (lvsadm -Lnc)" settled >/dev/null

# Local clients still get templates: the client's requests are all answered, by one server.
seen=""
for i in 1 2 3 4 5 6; do
    a=$(curl_rs "http://$VIP/" 5)
    [[ $a == 0[12] ]] || e2e_fail "curl $i after the sync flood: $a"
    seen+=" $a"
done
assert_match "$seen" '^( 01)+$|^( 02)+$' "persistent: one real server for the client ($seen )"

sync_line() { lab_lvsadm daemon status | grep '^sync backup:'; }
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' <<<"$2"; }
line=$(sync_line) || e2e_fail "no 'sync backup:' line in lvsadm daemon status"
echo "$line"
assert_eq 512 "$(field applied "$line")" "synced templates kept (half of the 1024-entry template table)"
assert_eq 1488 "$(field template-limit "$line")" "synced templates refused at the limit, counted"
assert_eq 512 "$(field clamped "$line")" "kept templates whose timeout was lowered to -p 60"
assert_match "$line" 'synced-templates 512 \(limit 512\)' "synced templates in the table"

# Each kept template expires within the service's persistence timeout, not in 194 days.
expires=$(lab_lvsadm -Lnc | awk '$1 == "TCP" && $4 ~ /^10\.77\./ { split($2, t, ":"); s = t[1] * 60 + t[2]; if (s > m) m = s } END { print m + 0 }')
((expires > 0 && expires <= 60)) || { lab_lvsadm -Lnc | head >&2; e2e_fail "synced templates expire in up to $expires s, more than -p 60"; }
e2e_log "ok: synced templates expire within $expires s (<= 60)"

assert_lvsd_alive
e2e_log "PASS"
