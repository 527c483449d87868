#!/usr/bin/env bash
# e2e-planes: afpacket
# VRRP changes applied by a reload (issue 15 follow-up), keepalived 2.2.7's way, on the HA pair
# under traffic (rate-limited sha256-checked downloads and a keep-alive loop through the VIP,
# a round per step, each printing a MEASURE line):
#   1. both directors reloaded 10 times with the same file: "VRRP: unchanged", no transition,
#      no gratuitous ARP / unsolicited NA on the client's link, every request answered; then a
#      file with an interface that does not exist is refused whole;
#   2. dir2's priority raised above director's by a reload: dir2 preempts within 3 x advert_int
#      + skew, director goes BACKUP, the client's ARP entry follows, nothing lost;
#   3. a second address added to VI_1 on both by a reload: the MASTER (dir2) answers ARP for
#      it and announces it (and only it), director does not; no transition;
#   3b. lvs_sync_daemon's id changed on both by a reload: the sync daemons restart with it (as
#      keepalived's do), a download made through dir2 is in director's table; unchanged: no restart;
#   4. VI_1 removed from the MASTER's (dir2's) file by a reload: its priority-0 advert makes
#      director MASTER within about one advert interval; dir2 notifies VI_1 FAULT (keepalived's
#      default for a deleted instance); nothing lost.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"

ha_lab_start
VIP_ADDED=192.168.1.101
conf() { echo "$LAB_STATE/keepalived-$1.conf"; }

# ha_reload NODE: lvsadm daemon reload on NODE; prints its answer, fails the test if it failed.
ha_reload() {
    local out
    out=$(ha_lvsadm "$1" daemon reload 2>&1) || e2e_fail "$1: lvsadm daemon reload failed: $out"
    echo "$out"
}
transitions() { echo "$(ha_status_field "$1" VI_1 transitions)/$(ha_status_field "$1" VI_6 transitions)"; }
neigh4() { lab_exec client ip -4 neigh show "$1" dev eth0 | awk '{ for (k = 1; k < NF; k++) if ($k == "lladdr") print $(k + 1) }'; }
neigh_is() { lab_exec client ping -c1 -W1 "$1" >/dev/null 2>&1 || true; [[ $(neigh4 "$1") == "${HA_MAC[$2]}" ]]; }
has_addr() { lab_exec "$1" ip -4 addr show dev eth0 | grep -q " $2/"; }
# garps CAPTURE ADDRESS: gratuitous ARPs (sender = target = ADDRESS) in cap-CAPTURE.txt.
garps() {
    local re=${2//./\\.}
    grep -cE "Request who-has $re( \([0-9a-f:]+\))? tell $re," "$LAB_STATE/cap-$1.txt" || true
}
# unsolicited NAs for VIP6 (to all nodes) in cap-CAPTURE.txt.
nas() { grep -cE "> ff02::1: ICMP6, neighbor advertisement, tgt is $VIP6" "$LAB_STATE/cap-$1.txt" || true; }
ANNOUNCE_FILTER='arp or (icmp6 and ip6[40] == 136)'
# wait_delayed_announcements NODE: an election's second block of gratuitous ARPs / NAs
# (garp_master_delay, 5 s after NODE's last MASTER) is over: it is not a reload's.
wait_delayed_announcements() {
    local last wait_s
    last=$(awk '$4 == "MASTER" { t = $1 } END { printf "%.3f", t }' "$LAB_STATE/notify-$1.log")
    wait_s=$(awk -v t="$last" -v now="$(ha_now)" 'BEGIN { w = t + 5.5 - now; printf "%.2f", (w > 0 && w < 6 ? w : 0) }')
    e2e_log "waiting ${wait_s}s for $1's delayed gratuitous ARPs of its election"
    sleep "$wait_s"
}

# ------------------------------------------------------------ 1. the same file, 10 times
curl_rs "http://$VIP/" >/dev/null
wait_delayed_announcements director
before_d=$(transitions director) before_2=$(transitions dir2)
capture_start client garp1 "$ANNOUNCE_FILTER"
ha_round_start 2 1m
sleep 1
for i in $(seq 10); do
    for n in director dir2; do
        out=$(ha_reload "$n")
        [[ $out == *"VRRP: unchanged"* ]] || e2e_fail "$n: reload $i of the same file: $out"
    done
done
sleep 1
after_d=$(transitions director) after_2=$(transitions dir2)
HA_EXTRA="reloads=20 transitions_director=$before_d->$after_d transitions_dir2=$before_2->$after_2" ha_round_finish "1(same-file-x10)" 40
capture_stop garp1
g=$(garps garp1 "$VIP") n6=$(nas garp1)
assert_eq "$before_d" "$after_d" "director's transitions (VI_1/VI_6) across 10 reloads of the same file"
assert_eq "$before_2" "$after_2" "dir2's transitions (VI_1/VI_6) across 10 reloads of the same file"
assert_eq 0 "$g" "gratuitous ARPs for $VIP on the client's link during the reloads"
assert_eq 0 "$n6" "unsolicited NAs for $VIP6 on the client's link during the reloads"
assert_eq 0 "$HA_FAILED" "step 1: loop requests that failed"
ha_assert_nothing_lost "step 1"

# A file whose VRRP block cannot run (an interface that does not exist) is refused whole.
cp "$(conf dir2)" "$E2E_TMP/dir2-good.conf"
sed -i 's/^\( *interface\) eth0$/\1 eth9/' "$(conf dir2)"
rc=0
out=$(ha_lvsadm dir2 daemon reload 2>&1) || rc=$?
((rc != 0)) || e2e_fail "dir2: the reload of a file with interface eth9 exited 0: $out"
assert_match "$out" "failed.*interface eth9 does not exist" "dir2 refuses the file with interface eth9"
cp "$E2E_TMP/dir2-good.conf" "$(conf dir2)"
assert_match "$(ha_reload dir2)" "VRRP: unchanged" "dir2's running VRRP configuration was kept"

# ------------------------------------------------------------ 2. dir2's priority raised
sed -i 's/^\( *priority\) 100$/\1 200/' "$(conf dir2)"
ha_round_start 2 600k
sleep 1
t0=$(ha_now)
out=$(ha_reload dir2)
assert_match "$out" "VRRP: 2 instances kept \(2 changed\), 0 added, 0 removed" "dir2's reload answer"
t1=$(ha_wait_notified dir2 VI_1 MASTER "$t0" 15)
take=$(ms_between "$t0" "$t1")
ha_wait_notified director VI_1 BACKUP "$t0" 10 >/dev/null
arp_ms=$(wait_for 5 "the client's ARP entry for $VIP at dir2" neigh_is "$VIP" dir2)
HA_EXTRA="takeover_ms=$take client_arp_after_ms=$arp_ms" ha_round_finish "2(backup-raised)" 40
ha_assert_within "$take" "$(ha_down_bound_ms)" "raised by a reload: dir2 MASTER (notify)"
ha_wait_settled dir2 10
ha_assert_nothing_lost "step 2"

# ------------------------------------------------------------ 3. a second address on VI_1
for n in dir2 director; do
    sed -i "s|^\( *\)$VIP/32 dev eth0$|&\n\1$VIP_ADDED/32 dev eth0|" "$(conf "$n")"
done
before_d=$(transitions director) before_2=$(transitions dir2)
wait_delayed_announcements dir2
capture_start client garp3 "$ANNOUNCE_FILTER"
ha_round_start 2 1m
sleep 1
for n in dir2 director; do
    out=$(ha_reload "$n")
    assert_match "$out" "VRRP: 2 instances kept \(1 changed\), 0 added, 0 removed" "$n's reload answer (address added)"
done
wait_for 5 "$VIP_ADDED on dir2's eth0" has_addr dir2 "$VIP_ADDED" >/dev/null
arp_ms=$(wait_for 5 "the client's ARP entry for $VIP_ADDED at dir2" neigh_is "$VIP_ADDED" dir2)
has_addr director "$VIP_ADDED" && e2e_fail "director (BACKUP) has $VIP_ADDED on its eth0"
after_d=$(transitions director) after_2=$(transitions dir2)
HA_EXTRA="added_arp_ms=$arp_ms" ha_round_finish "3(address-added)" 40
capture_stop garp3
assert_eq "$before_d" "$after_d" "director's transitions across the address reload"
assert_eq "$before_2" "$after_2" "dir2's transitions across the address reload"
assert_eq 0 "$(garps garp3 "$VIP")" "gratuitous ARPs for the unchanged $VIP"
g=$(grep -E "Request who-has ${VIP_ADDED//./\\.}( \([0-9a-f:]+\))? tell ${VIP_ADDED//./\\.}," "$LAB_STATE/cap-garp3.txt" || true)
[[ -n $g ]] || e2e_fail "no gratuitous ARP for $VIP_ADDED on the client's link"
[[ $(grep -vc "^[^ ]* ${HA_MAC[dir2]} " <<<"$g") == 0 ]] || e2e_fail "a gratuitous ARP for $VIP_ADDED not from dir2: $g"
e2e_log "ok: $VIP_ADDED answered and announced by dir2 only ($(wc -l <<<"$g") gratuitous ARPs), $VIP not re-announced"
ha_assert_nothing_lost "step 3"

# ------------------------------------------------------------ 3b. lvs_sync_daemon's id changed
# keepalived restarts the sync daemons when lvs_sync_daemon changes (ipvs_syncd_changed): both
# directors' daemons run with the new id, and a connection made through the MASTER (dir2) then
# reaches director's table under it.
for n in dir2 director; do
    sed -i 's/^\( *lvs_sync_daemon eth0 VI_1\)$/\1 id 77/' "$(conf "$n")"
    grep -q 'lvs_sync_daemon eth0 VI_1 id 77$' "$(conf "$n")" || e2e_fail "test setup: no lvs_sync_daemon line in $n's file"
done
for n in dir2 director; do
    assert_match "$(ha_reload "$n")" "lvs_sync_daemon: sync daemons \(re\)started on eth0, syncid 77" "$n's reload answer (sync id changed)"
    d=$(ha_lvsadm "$n" -L --daemon)
    assert_match "$d" "master sync daemon \(mcast=eth0, syncid=77" "$n: the master sync daemon runs with syncid 77"
    assert_match "$d" "backup sync daemon \(mcast=eth0, syncid=77" "$n: the backup sync daemon runs with syncid 77"
done
assert_match "$(ha_reload dir2)" "lvsd: reloaded" "dir2: the same lvs_sync_daemon again"
[[ $(ha_reload dir2) == *lvs_sync_daemon* ]] && e2e_fail "dir2: an unchanged lvs_sync_daemon restarted the daemons"
established_on_director() { [[ $(ha_lvsadm director -Lnc | grep -c "ESTABLISHED.*$VIP:80") -ge 1 ]]; }
ha_round_start 1 1m
wait_for 15 "director lists the download made through dir2 (synced under syncid 77)" established_on_director >/dev/null
ha_round_finish "3b(sync-id-changed)" 40
ha_assert_nothing_lost "step 3b"

# ------------------------------------------------------------ 4. VI_1 removed from the MASTER
awk '/^vrrp_instance VI_1 \{/ { skip = 1 } !skip { print } skip && /^\}/ { skip = 0 }' "$(conf dir2)" >"$(conf dir2).new"
mv "$(conf dir2).new" "$(conf dir2)"
ha_round_start 2 800k
sleep 1
t0=$(ha_now)
out=$(ha_reload dir2)
assert_match "$out" "VRRP: 1 instance kept \(0 changed\), 0 added, 1 removed" "dir2's reload answer (VI_1 removed)"
t1=$(ha_wait_notified director VI_1 MASTER "$t0" 10)
take=$(ms_between "$t0" "$t1")
ha_wait_notified dir2 VI_1 FAULT "$t0" 5 >/dev/null
HA_EXTRA="takeover_ms=$take" ha_round_finish "4(instance-removed)" 40
ha_assert_within "$take" "$(ha_graceful_bound_ms)" "VI_1 removed from the MASTER: director MASTER (notify)"
wait_for 5 "director's status says MASTER" ha_is_state director VI_1 MASTER >/dev/null
[[ $(ha_state dir2 VI_1) == none ]] || e2e_fail "dir2 still lists VI_1: $(ha_state dir2 VI_1)"
wait_for 5 "$VIP_ADDED gone from dir2's eth0" bash -c "! ip netns exec $LAB_PREFIX-dir2 ip -4 addr show dev eth0 | grep -q ' $VIP_ADDED/'" >/dev/null
ha_assert_nothing_lost "step 4"
e2e_log "PASS"
