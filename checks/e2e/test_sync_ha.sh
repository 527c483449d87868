#!/usr/bin/env bash
# e2e-planes: afpacket
# Sync completed for failover (issue 15): two lvsd on the lab's segment, each
# running the master AND the backup sync daemon with the same syncid, each
# with an IPv4 and an IPv6 service.
# 1. 50 connections (40 IPv4, 10 IPv6) through the lab's director A.
# 2. Director B starts only then (their usual sync went out with nobody
#    listening): its backup daemon asks for the table when it starts, and
#    B lists all 50 within seconds (full resync; IPv6 entries included).
# 3. Connections made on B (the client's neighbour entries for the VIPs point
#    at B) appear on A: failback keeps what was made on the backup. The IPv6
#    service is persistent: B's new connections follow the synced template.
# 4. Neither applies its own multicast (no loop: served-locally stays 0) nor
#    re-sends what it received; `-L --daemon` lists both daemons as ipvsadm.
# 5. A flood of full-resync requests costs one resync: the rest is queued
#    (one) or refused and counted; lvsd stays healthy.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
PY=/usr/bin/python3
require_scapy

# --sync-refresh-period and --sync-retries: the kernel's ranges, an error naming the option.
for bad in "--sync-retries 4" "--sync-refresh-period=-1" "--sync-refresh-period 2147484"; do
    rc=0
    # shellcheck disable=SC2086 # option and value, split on purpose
    err=$("$(lvs_bin)/lvsd" $bad 2>&1) || rc=$?
    ((rc != 0)) || e2e_fail "lvsd $bad: exit 0"
    assert_match "$err" "${bad%%[ =]*} must be from 0 to" "lvsd $bad: error names the option"
done

lab_start --director lvsd

BIN=$(lvs_bin)
TMP=$(e2e_tmpdir)
SYNCID=3

services() { # lvsadm command...: the IPv6 service, persistent, with both real servers
    "$@" -A -t "[$VIP6]:80" -s rr -p 300 || return 1
    for rip in 2001:db8:1::31 2001:db8:1::32; do "$@" -a -t "[$VIP6]:80" -r "[$rip]:80" -g || return 1; done
}

# Director A: the lab's (it has VIP:80 already), plus the IPv6 service; both daemons.
services lab_lvsadm || e2e_fail "A: IPv6 service"
lab_lvsadm --start-daemon master --syncid $SYNCID || e2e_fail "A: --start-daemon master failed"
lab_lvsadm --start-daemon backup --syncid $SYNCID || e2e_fail "A: --start-daemon backup failed"
assert_eq "master sync daemon (mcast=eth0, syncid=$SYNCID, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
backup sync daemon (mcast=eth0, syncid=$SYNCID, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)" \
    "$(lab_lvsadm -L --daemon)" "A: -L --daemon lists both daemons"

# 1. 50 connections through A.
for i in $(seq 40); do
    a=$(curl_rs "http://$VIP/" 5); [[ $a == 0[12] ]] || e2e_fail "curl $i through A: $a"
done
seen6=""
for i in $(seq 10); do
    a=$(curl_rs "http://[$VIP6]/" 5); [[ $a == 0[12] ]] || e2e_fail "IPv6 curl $i through A: $a"
    seen6+=" $a"
done
rs6=${seen6:1:2}
assert_match "$seen6" "^( $rs6){10}\$" "A: the persistent IPv6 service sends the client to one real server"

conns() { # lvsadm command...: "client vip dest" of the TCP connections, sorted
    "$@" -Lnc | awk '$1=="TCP" && $4 !~ /:0$/ {print $4, $5, $6}' | sort
}
on_a=$(conns lab_lvsadm)
assert_eq 50 "$(grep -c . <<<"$on_a")" "connections on A"

# 2. Director B starts now, with the same services and both daemons.
dir2_up test_sync_ha 2001:db8:1::22/64
lvsadm2 -A -t "$VIP:80" -s rr || e2e_fail "B: -A"
for rip in 192.168.1.31 192.168.1.32; do lvsadm2 -a -t "$VIP:80" -r "$rip:80" -g || e2e_fail "B: -a $rip"; done
services lvsadm2 || e2e_fail "B: IPv6 service"
start=$(date +%s%N)
lvsadm2 --start-daemon backup --syncid $SYNCID || e2e_fail "B: --start-daemon backup failed"
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' <<<"$2"; }
# (Polled on the status line: a listing of the default 4 Mi-entry table is slow in a debug build.)
applied_on_b() { (($(field applied "$(lvsadm2 daemon status | grep '^sync backup:')") >= 50)); }
wait_for 10 "A's 50 connections applied on B (full resync)" applied_on_b >/dev/null ||
    { lvsadm2 daemon status; lab_lvsadm daemon status; e2e_fail "B did not get A's connections after its start"; }
e2e_log "ok: full resync: B applied A's 50 connections $((($(date +%s%N) - start) / 1000000)) ms after its backup daemon started"
assert_eq "" "$(comm -23 <(echo "$on_a") <(conns lvsadm2))" "B lists all of A's connections (-Lnc)"
assert_eq 10 "$(conns lvsadm2 | grep -c '^\[')" "IPv6 connections on B"
lvsadm2 --start-daemon master --syncid $SYNCID || e2e_fail "B: --start-daemon master failed"
line=$(lab_lvsadm daemon status | grep '^sync master:') || e2e_fail "no 'sync master:' line on A"
echo "$line"
assert_eq 1 "$(field resync-started "$line")" "A: one full resync"
assert_ge 50 "$(field resync-entries "$line")" "A: entries sent by the resync"

# 3. Connections made on B (the client's neighbour entries point at B) appear on A.
lab_exec client ip neigh replace "$VIP" lladdr "$MAC_DIR2" dev eth0 nud permanent
lab_exec client ip -6 neigh replace "$VIP6" lladdr "$MAC_DIR2" dev eth0 nud permanent
for i in $(seq 6); do
    a=$(curl_rs "http://$VIP/" 5); [[ $a == 0[12] ]] || e2e_fail "curl $i through B: $a"
done
# The client's persistence template came with the resync: B sends its new IPv6 connections
# to the same real server (B's own rr would alternate).
seen6=""
for i in $(seq 4); do
    a=$(curl_rs "http://[$VIP6]/" 5); [[ $a == 0[12] ]] || e2e_fail "IPv6 curl $i through B: $a"
    seen6+=" $a"
done
assert_match "$seen6" "^( $rs6){4}\$" "B: new connections follow the synced template to rs$rs6"
made_on_b=$(comm -13 <(echo "$on_a") <(conns lvsadm2))
assert_eq 10 "$(grep -c . <<<"$made_on_b")" "connections made on B"
b_on_a() { [[ -z $(comm -23 <(echo "$made_on_b") <(conns lab_lvsadm)) ]]; }
wait_for 10 "B's connections on A" b_on_a >/dev/null || { lab_lvsadm -Lnc; e2e_fail "A lacks the connections made on B"; }
e2e_log "ok: the 10 connections made on B are on A"
lab_exec client ip neigh del "$VIP" dev eth0 || true
lab_exec client ip -6 neigh del "$VIP6" dev eth0 || true

# 4. No loop, no re-sending: each backup took in only the other's entries.
assert_eq 60 "$(conns lab_lvsadm | grep -c .)" "A: its 50 and B's 10, once each"
assert_eq 60 "$(conns lvsadm2 | grep -c .)" "B: A's 50 and its 10, once each"
for who in A B; do
    if [[ $who == A ]]; then st=$(lab_lvsadm daemon status); else st=$(lvsadm2 daemon status); fi
    bl=$(grep '^sync backup:' <<<"$st") || e2e_fail "$who: no 'sync backup:' line"
    echo "$who $bl"
    assert_eq 0 "$(field served-locally "$bl")" "$who: none of its own entries came back"
done

# 5. A flood of full-resync requests at A.
before=$(field resync-started "$(lab_lvsadm daemon status | grep '^sync master:')")
reqs_before=$(field resync-requests "$(lab_lvsadm daemon status | grep '^sync master:')")
out=$(with_timeout 120 lab_exec client "$PY" "$E2E_DIR/sync_flood.py" eth0 192.168.1.12 "$VIP" 192.168.1.31 3000 requests $SYNCID 2>&1) ||
    { echo "$out"; e2e_fail "sync_flood.py requests failed"; }
assert_match "$out" 'sent 3000 requests' "requests sent"
sleep 1
line=$(lab_lvsadm daemon status | grep '^sync master:')
echo "$line"
reqs=$(($(field resync-requests "$line") - reqs_before))
assert_ge 100 "$reqs" "A read the flood's requests"
started=$(($(field resync-started "$line") - before))
((started <= 2)) || e2e_fail "a flood of $reqs requests started $started full resyncs"
e2e_log "ok: $reqs requests started $started full resync(s)"
assert_ge $((reqs - 2)) "$(field resync-refused "$line")" "requests refused and counted"
a=$(curl_rs "http://$VIP/" 5); [[ $a == 0[12] ]] || e2e_fail "curl through A after the flood: $a"
assert_lvsd_alive
kill -0 "$(tr -dc 0-9 <"$TMP/lvsd2.pid")" || e2e_fail "B's lvsd died"
e2e_log "PASS"
