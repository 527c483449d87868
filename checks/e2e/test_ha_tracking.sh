#!/usr/bin/env bash
# e2e-planes: afpacket
# Tracking (issue 15): lvsd, MASTER of VI_1, tracks a vrrp_script (no weight: a failure is FAULT)
# and an interface (eth1). The script fails => FAULT: lvsd stops answering ARP for the VIP; it
# succeeds again => MASTER (no peer) and answers again. eth1 set down => FAULT; up => MASTER.
# Then a second instance tracks the script with a weight: its effective priority drops by the
# weight in `lvsadm daemon status` while the script fails, and it stays MASTER.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vrrp_segment_lib.sh"
vs_setup 72

# eth1: the tracked interface (a veth pair inside a's namespace).
ip -n "$P-a" link add eth1 type veth peer name eth1p
ip -n "$P-a" link set eth1p up
ip -n "$P-a" link set eth1 up
touch "$T/healthy"

cat >"$T/a.conf" <<CONF
vrrp_script chk_file {
    script "/bin/test -e $T/healthy"
    interval 1
    fall 1
    rise 1
}
vrrp_instance VI_1 {
    state MASTER
    priority 100
    interface eth0
    virtual_router_id $VRID
    advert_int 1
    virtual_ipaddress {
        $VIP/32 dev eth0
    }
    track_script {
        chk_file
    }
    track_interface {
        eth1
    }
}
vrrp_instance VI_2 {
    state MASTER
    priority 120
    interface eth0
    virtual_router_id $((VRID + 1))
    advert_int 1
    virtual_ipaddress {
        192.168.1.101/32 dev eth0
    }
    track_script {
        chk_file weight -30
    }
}
CONF
hv_effective() { vs_status 2>/dev/null | awk -v i="$1" '$1 == "vrrp" && $2 == "instance" && $3 == i { for (k = 4; k < NF; k++) if ($k == "effective") print $(k + 1) }'; }
vs_start_lvsd
vs_wait VI_1 MASTER 10 "start"
vs_wait VI_2 MASTER 10 "start"
e2e_log "ok: lvsd MASTER of VI_1 and VI_2"

vs_arp_answered || e2e_fail "MASTER: no ARP answer for $VIP"
[[ $(hv_effective VI_2) == 120 ]] || e2e_fail "VI_2's effective priority is '$(hv_effective VI_2)', want 120"

rm -f "$T/healthy"
vs_wait VI_1 FAULT 5 "the tracked script fails"
vs_arp_answered && e2e_fail "FAULT: lvsd still answers ARP for $VIP"
e2e_log "ok: the tracked script fails: VI_1 FAULT, no ARP answer"
deadline=$((SECONDS + 5))
until [[ $(hv_effective VI_2) == 90 ]]; do
    ((SECONDS < deadline)) || e2e_fail "VI_2's effective priority is '$(hv_effective VI_2)', want 90 (120 - 30)"
    sleep 0.2
done
[[ $(vs_state VI_2) == MASTER ]] || e2e_fail "VI_2 left MASTER ($(vs_state VI_2)) with a weighted script failing"
e2e_log "ok: VI_2 (weight -30) stays MASTER at effective priority 90"

touch "$T/healthy"
vs_wait VI_1 MASTER 10 "the tracked script succeeds again"
vs_arp_answered || e2e_fail "MASTER again: no ARP answer for $VIP"
[[ $(hv_effective VI_2) == 120 ]] || e2e_fail "VI_2's effective priority is '$(hv_effective VI_2)', want 120 again"
e2e_log "ok: the script succeeds again: VI_1 MASTER, answering ARP; VI_2 back at 120"

ip -n "$P-a" link set eth1 down
vs_wait VI_1 FAULT 5 "the tracked interface goes down"
vs_arp_answered && e2e_fail "FAULT (eth1 down): lvsd still answers ARP for $VIP"
e2e_log "ok: eth1 down: VI_1 FAULT, no ARP answer"
ip -n "$P-a" link set eth1 up
vs_wait VI_1 MASTER 10 "the tracked interface comes back"
vs_arp_answered || e2e_fail "eth1 up again: no ARP answer for $VIP"
e2e_log "ok: eth1 up: VI_1 MASTER, answering ARP"
touch "$T/passed"
e2e_log PASS
