#!/usr/bin/env bash
# e2e-planes: afpacket
# Hostile and broken VRRP adverts on the segment (issue 15): lvsd, MASTER of VI_1, receives from
# another host adverts with priority 255 that must each be ignored and counted by reason (TTL 64,
# a wrong checksum, a wrong password, version 4, truncated, an address count that lies, another
# VRID): after each, lvsd is still MASTER and still answers ARP for the VIP, and the reason's
# counter in `lvsadm daemon status` has grown. Last, the same sender's valid priority-255 advert
# makes lvsd step down to BACKUP: the sender works, so the rejections were lvsd's doing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vrrp_segment_lib.sh"
command -v python3 >/dev/null || e2e_skip "python3 not installed (scripts/deps.sh)"
vs_setup 71
HERE=$(cd "$(dirname "$0")" && pwd)

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
# hv_count REASON: the reason's count on the "vrrp adverts ignored:" line (0 when absent)
hv_count() {
    vs_status 2>/dev/null | awk -v r="$1" '/^vrrp adverts ignored:/ {
        sub(/^vrrp adverts ignored: */, ""); n = split($0, parts, /, /)
        for (i = 1; i <= n; i++) { split(parts[i], kv, " "); if (kv[1] == r) { print kv[2]; exit } } }
        END { }' | grep . || echo 0
}

vs_start_lvsd
deadline=$((SECONDS + 10))
until [[ $(vs_state) == MASTER ]]; do
    ((SECONDS < deadline)) || e2e_fail "lvsd is not MASTER 10s after start (state '$(vs_state)')"
    sleep 0.2
done
e2e_log "ok: lvsd MASTER of VI_1"

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
    [[ $(vs_state) == MASTER ]] || e2e_fail "$name: lvsd left MASTER ($(vs_state))"
    vs_arp_answered || e2e_fail "$name: lvsd no longer answers ARP for $VIP"
    e2e_log "ok: $name: ignored, counted as $reason ($before -> $(hv_count "$reason")), still MASTER and answering ARP"
done

# The control: the same sender's valid advert with priority 255 wins the election.
ip netns exec "$P-x" python3 "$HERE/vrrp_hostile.py" ok "${IP[x]}" "$VRID" 3
deadline=$((SECONDS + 5))
until [[ $(vs_state) == BACKUP ]]; do
    ((SECONDS < deadline)) || e2e_fail "a valid priority-255 advert did not make lvsd BACKUP (state '$(vs_state)')"
    sleep 0.2
done
e2e_log "ok: a valid priority-255 advert from the same sender makes lvsd BACKUP (the sender works)"
vs_arp_answered && e2e_fail "lvsd, BACKUP, still answers ARP for $VIP"
e2e_log "ok: as BACKUP, lvsd no longer answers ARP for $VIP"
touch "$T/passed"
e2e_log PASS
