#!/usr/bin/env bash
# e2e-planes: afpacket
# A reload that brings the first vrrp_instance to an lvsd started without any (a single director
# made one of an HA pair by config management) starts VRRP, as keepalived starts a new instance:
#   1. lvsd runs with a virtual_server only: it answers ARP for the VIP, no VRRP line in its status;
#   2. the same file plus a vrrp_instance (BACKUP, priority 100) for the VIP, reloaded: the answer
#      says VRRP started; the VIP is not answered for while BACKUP; with no peer the instance is
#      MASTER after its down interval and answers ARP again; its adverts reach the other host;
#   3. the same file again: "VRRP: unchanged", no transition;
#   4. SIGTERM: lvsd sends its priority-0 advert and exits 0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vrrp_segment_lib.sh"
vs_setup 73

cat >"$T/a.conf" <<CONF
virtual_server $VIP 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.1.66 80 {
        weight 1
    }
}
CONF
vs_start_lvsd
vrrp_lines() { vs_status 2>/dev/null | grep -c '^vrrp instance' || true; }
wait_for 10 "lvsd answers ARP for $VIP (no VRRP)" vs_arp_answered >/dev/null
assert_eq 0 "$(vrrp_lines)" "vrrp instance lines in the status before the reload"

cat >>"$T/a.conf" <<CONF
vrrp_instance VI_1 {
    state BACKUP
    priority 100
    interface eth0
    virtual_router_id $VRID
    advert_int 1
    virtual_ipaddress {
        $VIP/32 dev eth0
    }
}
CONF
capture_file=$T/adverts.txt
(setsid ip netns exec "$P-x" timeout 60 tcpdump -i eth0 -nn -l -v "ip proto 112" >"$capture_file" 2>"$T/tcpdump.err" </dev/null &
    echo $! >"$T/tcpdump.pid")
e2e_on_exit kill_quiet "$(<"$T/tcpdump.pid")"
wait_for 10 "tcpdump on the other host" grep -q 'listening on' "$T/tcpdump.err" >/dev/null
t0=$(now_ms)
out=$(ip netns exec "$P-a" env LVSD_SOCKET="$SOCK" timeout 20 "$(lvs_bin)/lvsadm" daemon reload 2>&1) || e2e_fail "reload failed: $out"
assert_match "$out" "VRRP: started, 1 instance added" "the reload's answer"
state=$(vs_state VI_1)
[[ $state == BACKUP ]] || e2e_fail "VI_1 is '$state' right after the reload, want BACKUP"
vs_arp_answered && e2e_fail "BACKUP: lvsd still answers ARP for $VIP"
e2e_log "ok: VRRP started by the reload: VI_1 BACKUP, $VIP not answered for"
vs_wait VI_1 MASTER 10 "no peer: the down interval runs out"
t1=$(now_ms)
wait_for 5 "lvsd answers ARP for $VIP as MASTER" vs_arp_answered >/dev/null
wait_for 5 "an advert of vrid $VRID on the other host" grep -q "vrid $VRID" "$capture_file" >/dev/null
e2e_log "ok: VI_1 MASTER $((t1 - t0)) ms after the reload (its down interval, 3 x advert_int + skew, is 3609 ms), answering ARP, adverting"
transitions=$(vs_status | awk '$1 == "vrrp" && $3 == "VI_1" { for (k = 4; k < NF; k++) if ($k == "transitions") print $(k + 1) }')

out=$(ip netns exec "$P-a" env LVSD_SOCKET="$SOCK" timeout 20 "$(lvs_bin)/lvsadm" daemon reload 2>&1) || e2e_fail "second reload failed: $out"
assert_match "$out" "VRRP: unchanged" "the same file reloaded"
assert_eq "$transitions" "$(vs_status | awk '$1 == "vrrp" && $3 == "VI_1" { for (k = 4; k < NF; k++) if ($k == "transitions") print $(k + 1) }')" "VI_1's transitions across the unchanged reload"

pid=$(ip netns pids "$P-a" | head -n 1)
kill -TERM "$pid"
wait_for 15 "lvsd exits after SIGTERM" bash -c "! kill -0 $pid 2>/dev/null" >/dev/null
wait_for 5 "the priority-0 advert on the other host" grep -q "vrid $VRID, prio 0" "$capture_file" >/dev/null
e2e_log "ok: SIGTERM: priority-0 advert sent, lvsd exited"
e2e_log "MEASURE ha_reload_start master_after_reload_ms=$((t1 - t0))"
touch "$T/passed"
e2e_log PASS
