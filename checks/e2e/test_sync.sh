#!/usr/bin/env bash
# The connection synchronisation daemon: the lab's director runs
# `--start-daemon master`, a second director (its own namespace on the lab's
# bridge, its own lvsd with the same service) runs `--start-daemon backup`.
# Connections made through the VIP appear within seconds in the backup's
# `lvsadm -Lnc` (same client ports, destinations and states); `-L --daemon`
# prints the kernel's lines on both; the kernel's errors for a second start,
# a stop of a stopped daemon and an unknown interface; then the same sync
# over an IPv6 group (ff02::81).
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd

BIN=$(lvs_bin)
TMP=$(e2e_tmpdir)

# The second director (dir2_up in lib.sh). The backup runs with --no-arp: only the master answers
# ARP for the VIP.
dir2_up test_sync
lab_exec client ip neigh flush dev eth0 || true
lvsadm2 -A -t "$VIP:80" -s rr || e2e_fail "backup: -A failed"
lvsadm2 -a -t "$VIP:80" -r 192.168.1.31:80 -g || e2e_fail "backup: -a rs1 failed"
lvsadm2 -a -t "$VIP:80" -r 192.168.1.32:80 -g || e2e_fail "backup: -a rs2 failed"

# Daemons.
lab_lvsadm --start-daemon master || e2e_fail "--start-daemon master failed"
lvsadm2 --start-daemon backup || e2e_fail "--start-daemon backup failed"
assert_eq "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)" \
    "$(lab_lvsadm -L --daemon)" "master: -L --daemon"
assert_eq "backup sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)" \
    "$(lvsadm2 -L --daemon)" "backup: -L --daemon"

# Traffic through the master.
for i in 1 2 3 4 5 6; do
    body=$(with_timeout 20 lab_exec client curl -sS --max-time 5 "http://$VIP/") || e2e_fail "curl $i through the VIP failed"
    assert_match "$body" 'Real Server 0[12]' "curl $i through the VIP"
done

master_conns() { lab_lvsadm -Lnc | awk '$1=="TCP" && $5=="'"$VIP"':80" {print $3, $4, $5, $6}' | sort; }
backup_conns() { lvsadm2 -Lnc | awk '$1=="TCP" && $5=="'"$VIP"':80" {print $3, $4, $5, $6}' | sort; }
expected=$(master_conns)
echo "master:"; echo "$expected"
assert_eq 6 "$(grep -c . <<<"$expected")" "connections on the master"
synced_all() {
    local got
    got=$(backup_conns)
    [[ $(comm -23 <(master_conns | awk '{print $2, $3, $4}') <(awk '{print $2, $3, $4}' <<<"$got") | wc -l) == 0 ]]
}
wait_for 10 "connections synced to the backup" synced_all >/dev/null || { lvsadm2 -Lnc; e2e_fail "backup lacks synced connections"; }
got=$(backup_conns)
echo "backup:"; echo "$got"
assert_eq 6 "$(grep -c . <<<"$got")" "synced connections on the backup"
assert_eq "$(awk '{print $2, $3, $4}' <<<"$expected")" "$(awk '{print $2, $3, $4}' <<<"$got")" "same client ports, VIP and destinations"
assert_ge 1 "$(grep -Ec '^(FIN_WAIT|TIME_WAIT|CLOSE_WAIT|CLOSE) ' <<<"$got" || true)" "closing states synced"
list2=$(lvsadm2 -Ln)
echo "$list2"
inact=$(awk '$1=="->" && $2 ~ /^192\.168\.1\.3[12]:80$/ {s+=$6} END {print s+0}' <<<"$list2")
assert_eq 6 "$inact" "synced connections counted as InActConn on the backup"

# Errors as the kernel's.
rc=0
err=$(lab_lvsadm --start-daemon master 2>&1) || rc=$?
assert_eq 255 "$rc" "second --start-daemon master exit code"
assert_eq "Daemon has already run" "$err" "second --start-daemon master message"
rc=0
err=$(lab_lvsadm --start-daemon backup --mcast-interface nosuch0 2>&1) || rc=$?
assert_eq 255 "$rc" "unknown interface exit code"
assert_eq "No such device" "$err" "unknown interface message"
lab_lvsadm --stop-daemon master || e2e_fail "--stop-daemon master failed"
assert_eq "" "$(lab_lvsadm -L --daemon)" "master: no daemon after stop"
rc=0
err=$(lab_lvsadm --stop-daemon master 2>&1) || rc=$?
assert_eq 255 "$rc" "stop of a stopped daemon exit code"
assert_eq "No daemon is running" "$err" "stop of a stopped daemon message"
lvsadm2 --stop-daemon backup || e2e_fail "--stop-daemon backup failed"
assert_eq "" "$(lvsadm2 -L --daemon)" "backup: no daemon after stop"
# Restart works after a stop.
lab_lvsadm --start-daemon master --syncid 7 || e2e_fail "restart of the master failed"
assert_match "$(lab_lvsadm -L --daemon)" '^master sync daemon \(mcast=eth0, syncid=7,' "restarted master"

# An IPv6 group (the kernel takes one too): the same sync over ff02::81.
lab_lvsadm --stop-daemon master || e2e_fail "--stop-daemon master failed"
lab_lvsadm --start-daemon master --mcast-group ff02::81 || e2e_fail "--start-daemon master --mcast-group ff02::81 failed"
lvsadm2 --start-daemon backup --mcast-group ff02::81 || e2e_fail "backup --mcast-group ff02::81 failed"
assert_eq "master sync daemon (mcast=eth0, syncid=0, maxlen=1452, group=ff02::81, port=8848, ttl=1)" \
    "$(lab_lvsadm -L --daemon)" "master over IPv6: -L --daemon"
before=$(backup_conns | awk '{print $2}' | sort)
for i in 1 2 3; do
    body=$(with_timeout 20 lab_exec client curl -sS --max-time 5 "http://$VIP/") || e2e_fail "curl $i (IPv6 group) failed"
done
new_ports() { comm -13 <(echo "$before") <(backup_conns | awk '{print $2}' | sort) | grep -c .; }
three_new() { (($(new_ports) >= 3)); }
wait_for 10 "connections synced over the IPv6 group" three_new >/dev/null || { lvsadm2 -Lnc; e2e_fail "nothing synced over ff02::81"; }
e2e_log "ok: connections synced over the IPv6 group ff02::81"
lvsadm2 --stop-daemon backup || true
assert_lvsd_alive
kill -0 "$(tr -dc 0-9 <"$TMP/lvsd2.pid")" || e2e_fail "backup lvsd died"
e2e_log "PASS"
