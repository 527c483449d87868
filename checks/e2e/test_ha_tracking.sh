#!/usr/bin/env bash
# e2e-planes: afpacket
# Tracking (issue 15): lvsd, MASTER of VI_1, tracks a vrrp_script (no weight: a failure is FAULT)
# and an interface (eth1). The script fails => FAULT: lvsd stops answering ARP for the VIP; it
# succeeds again => MASTER (no peer) and answers again. eth1 set down => FAULT; up => MASTER.
# Then a second instance tracks the script with a weight: its effective priority drops by the
# weight in `lvsadm daemon status` while the script fails, and it stays MASTER.
source "$(dirname "$0")/lib.sh"

[[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces)"
require_lvs_bins

P="e2e$$-$((RANDOM % 10000))"
T=$(e2e_tmpdir)
VRID=72
VIP=192.168.1.100
HERE=$(cd "$(dirname "$0")" && pwd)

hv_down() {
    local p=$1 n pid
    for n in a x sw; do
        [[ -e /run/netns/$p-$n ]] || continue
        for pid in $(ip netns pids "$p-$n" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$p-$n" 2>/dev/null || true
    done
}
hv_dump() {
    local p=$1 t=$2
    [[ -d $t && ! -e $t/passed ]] || return 0
    echo "----- lvsd log (last 40 lines)"
    tail -n 40 "$t/a-lvsd.log" 2>/dev/null || true
    echo "----- lvsadm daemon status"
    ip netns exec "$p-a" env LVSD_SOCKET="$t/a-lvsd.sock" timeout 10 "$(lvs_bin)/lvsadm" daemon status || true
}
e2e_trap
e2e_on_exit hv_dump "$P" "$T"
e2e_on_exit hv_down "$P"

ip netns add "$P-sw"
ip -n "$P-sw" link add br0 type bridge stp_state 0 mcast_snooping 0
ip -n "$P-sw" link set br0 up
declare -A IP=([a]=192.168.1.21 [x]=192.168.1.66)
for n in a x; do
    ip netns add "$P-$n"
    ip -n "$P-$n" link set lo up
    ip -n "$P-sw" link add name "port-$n" type veth peer name eth0 netns "$P-$n"
    ip -n "$P-sw" link set "port-$n" master br0
    ip -n "$P-sw" link set "port-$n" up
    ip -n "$P-$n" addr add "${IP[$n]}/24" dev eth0
    ip -n "$P-$n" link set eth0 up
done
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
SOCK=$T/a-lvsd.sock
hv_status() { ip netns exec "$P-a" env LVSD_SOCKET="$SOCK" timeout 10 "$(lvs_bin)/lvsadm" daemon status; }
hv_state() { hv_status 2>/dev/null | awk -v i="${1:-VI_1}" '$1 == "vrrp" && $2 == "instance" && $3 == i { print $5 }'; }
hv_effective() { hv_status 2>/dev/null | awk -v i="$1" '$1 == "vrrp" && $2 == "instance" && $3 == i { for (k = 4; k < NF; k++) if ($k == "effective") print $(k + 1) }'; }
# hv_wait INSTANCE STATE SECONDS WHAT
hv_wait() {
    local deadline=$((SECONDS + $3))
    until [[ $(hv_state "$1") == "$2" ]]; do
        ((SECONDS < deadline)) || e2e_fail "$4: $1 is '$(hv_state "$1")', want $2 after $3s"
        sleep 0.2
    done
}
setsid ip netns exec "$P-a" "$(lvs_bin)/lvsd" --interface eth0 --socket "$SOCK" --log-level debug \
    --config "$T/a.conf" ${LVS_LAB_LVSD_ARGS:-} >"$T/a-lvsd.log" 2>&1 </dev/null &
deadline=$((SECONDS + 30))
until [[ -S $SOCK ]]; do
    ((SECONDS < deadline)) || e2e_fail "lvsd's socket did not appear within 30s"
    sleep 0.1
done
hv_wait VI_1 MASTER 10 "start"
hv_wait VI_2 MASTER 10 "start"
e2e_log "ok: lvsd MASTER of VI_1 and VI_2"

arp_answered() {
    ip netns exec "$P-x" ip neigh flush dev eth0 >/dev/null 2>&1 || true
    ip netns exec "$P-x" ping -c 1 -W 1 "$VIP" >/dev/null 2>&1 || true
    ip netns exec "$P-x" ip neigh show "$VIP" dev eth0 | grep -q lladdr
}
arp_answered || e2e_fail "MASTER: no ARP answer for $VIP"
[[ $(hv_effective VI_2) == 120 ]] || e2e_fail "VI_2's effective priority is '$(hv_effective VI_2)', want 120"

rm -f "$T/healthy"
hv_wait VI_1 FAULT 5 "the tracked script fails"
arp_answered && e2e_fail "FAULT: lvsd still answers ARP for $VIP"
e2e_log "ok: the tracked script fails: VI_1 FAULT, no ARP answer"
deadline=$((SECONDS + 5))
until [[ $(hv_effective VI_2) == 90 ]]; do
    ((SECONDS < deadline)) || e2e_fail "VI_2's effective priority is '$(hv_effective VI_2)', want 90 (120 - 30)"
    sleep 0.2
done
[[ $(hv_state VI_2) == MASTER ]] || e2e_fail "VI_2 left MASTER ($(hv_state VI_2)) with a weighted script failing"
e2e_log "ok: VI_2 (weight -30) stays MASTER at effective priority 90"

touch "$T/healthy"
hv_wait VI_1 MASTER 10 "the tracked script succeeds again"
arp_answered || e2e_fail "MASTER again: no ARP answer for $VIP"
[[ $(hv_effective VI_2) == 120 ]] || e2e_fail "VI_2's effective priority is '$(hv_effective VI_2)', want 120 again"
e2e_log "ok: the script succeeds again: VI_1 MASTER, answering ARP; VI_2 back at 120"

ip -n "$P-a" link set eth1 down
hv_wait VI_1 FAULT 5 "the tracked interface goes down"
arp_answered && e2e_fail "FAULT (eth1 down): lvsd still answers ARP for $VIP"
e2e_log "ok: eth1 down: VI_1 FAULT, no ARP answer"
ip -n "$P-a" link set eth1 up
hv_wait VI_1 MASTER 10 "the tracked interface comes back"
arp_answered || e2e_fail "eth1 up again: no ARP answer for $VIP"
e2e_log "ok: eth1 up: VI_1 MASTER, answering ARP"
touch "$T/passed"
e2e_log PASS
