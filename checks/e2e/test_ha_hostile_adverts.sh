#!/usr/bin/env bash
# e2e-planes: afpacket
# Hostile and broken VRRP adverts on the segment (issue 15): lvsd, MASTER of VI_1, receives from
# another host adverts with priority 255 that must each be ignored and counted by reason (TTL 64,
# a wrong checksum, a wrong password, version 4, truncated, an address count that lies, another
# VRID): after each, lvsd is still MASTER and still answers ARP for the VIP, and the reason's
# counter in `lvsadm daemon status` has grown. Last, the same sender's valid priority-255 advert
# makes lvsd step down to BACKUP: the sender works, so the rejections were lvsd's doing.
source "$(dirname "$0")/lib.sh"

[[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces)"
require_lvs_bins
command -v python3 >/dev/null || e2e_skip "python3 not installed (scripts/deps.sh)"

P="e2e$$-$((RANDOM % 10000))"
T=$(e2e_tmpdir)
VRID=71
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
ip -n "$P-x" route add 224.0.0.0/4 dev eth0 # the sender's adverts to 224.0.0.18

cat >"$T/a.conf" <<CONF
vrrp_instance VI_1 {
    state MASTER
    priority 100
    interface eth0
    virtual_router_id $VRID
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass lvslab
    }
    virtual_ipaddress {
        $VIP/32 dev eth0
    }
}
CONF
SOCK=$T/a-lvsd.sock
hv_status() { ip netns exec "$P-a" env LVSD_SOCKET="$SOCK" timeout 10 "$(lvs_bin)/lvsadm" daemon status; }
hv_state() { hv_status 2>/dev/null | awk '$1 == "vrrp" && $2 == "instance" && $3 == "VI_1" { print $5 }'; }
# hv_count REASON: the reason's count on the "vrrp adverts ignored:" line (0 when absent)
hv_count() {
    hv_status 2>/dev/null | awk -v r="$1" '/^vrrp adverts ignored:/ {
        sub(/^vrrp adverts ignored: */, ""); n = split($0, parts, /, /)
        for (i = 1; i <= n; i++) { split(parts[i], kv, " "); if (kv[1] == r) { print kv[2]; exit } } }
        END { }' | grep . || echo 0
}

setsid ip netns exec "$P-a" "$(lvs_bin)/lvsd" --interface eth0 --socket "$SOCK" --log-level debug \
    --config "$T/a.conf" ${LVS_LAB_LVSD_ARGS:-} >"$T/a-lvsd.log" 2>&1 </dev/null &
deadline=$((SECONDS + 30))
until [[ -S $SOCK ]]; do
    ((SECONDS < deadline)) || e2e_fail "lvsd's socket did not appear within 30s"
    sleep 0.1
done
deadline=$((SECONDS + 10))
until [[ $(hv_state) == MASTER ]]; do
    ((SECONDS < deadline)) || e2e_fail "lvsd is not MASTER 10s after start (state '$(hv_state)')"
    sleep 0.2
done
e2e_log "ok: lvsd MASTER of VI_1"

arp_answered() {
    ip netns exec "$P-x" ip neigh flush dev eth0 >/dev/null 2>&1 || true
    ip netns exec "$P-x" ping -c 1 -W 1 "$VIP" >/dev/null 2>&1 || true
    ip netns exec "$P-x" ip neigh show "$VIP" dev eth0 | grep -q lladdr
}

for case in ttl:ttl checksum:checksum password:auth-password version:version truncated:truncated count:address-count vrid:vrid; do
    name=${case%%:*} reason=${case#*:}
    before=$(hv_count "$reason")
    ip netns exec "$P-x" python3 "$HERE/vrrp_hostile.py" "$name" "${IP[x]}" "$VRID" 5
    deadline=$((SECONDS + 5))
    until (($(hv_count "$reason") >= before + 5)); do
        ((SECONDS < deadline)) || e2e_fail "$name: the '$reason' counter went from $before to $(hv_count "$reason"), want +5"
        sleep 0.2
    done
    sleep 1.5 # long enough for a wrongly accepted priority-255 advert to have made lvsd step down
    [[ $(hv_state) == MASTER ]] || e2e_fail "$name: lvsd left MASTER ($(hv_state))"
    arp_answered || e2e_fail "$name: lvsd no longer answers ARP for $VIP"
    e2e_log "ok: $name: ignored, counted as $reason ($before -> $(hv_count "$reason")), still MASTER and answering ARP"
done

# The control: the same sender's valid advert with priority 255 wins the election.
ip netns exec "$P-x" python3 "$HERE/vrrp_hostile.py" ok "${IP[x]}" "$VRID" 3
deadline=$((SECONDS + 5))
until [[ $(hv_state) == BACKUP ]]; do
    ((SECONDS < deadline)) || e2e_fail "a valid priority-255 advert did not make lvsd BACKUP (state '$(hv_state)')"
    sleep 0.2
done
e2e_log "ok: a valid priority-255 advert from the same sender makes lvsd BACKUP (the sender works)"
arp_answered && e2e_fail "lvsd, BACKUP, still answers ARP for $VIP"
e2e_log "ok: as BACKUP, lvsd no longer answers ARP for $VIP"
touch "$T/passed"
e2e_log PASS
