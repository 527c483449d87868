#!/bin/bash
# Interoperability with keepalived 2.2.7, both ways, between two namespaces this script creates:
# 1. captures keepalived's own adverts (a VRRPv2 PASS IPv4 instance and a VRRPv3 IPv6 one, then
#    their priority-0 forms at stop) and prints them as hex: KeepalivedCapture in
#    Tests/LVSVRRPTests/VRRPAdvertTests.swift;
# 2. sends VRRPRouter's own adverts for the same instances at a higher priority (OurAdverts in
#    that file) and checks that keepalived accepts them and steps down to BACKUP.
# Root only; removes what it creates, also on failure. Exit status 1 when step 2 fails.
set -euo pipefail
work=$(mktemp -d /tmp/vrcore.XXXXXX)
kpid=""; tpid=""
cleanup() {
    [ -n "$kpid" ] && kill "$kpid" 2>/dev/null && sleep 1
    [ -n "$tpid" ] && kill "$tpid" 2>/dev/null
    ip netns del vrcore-a 2>/dev/null || true
    ip netns del vrcore-b 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add vrcore-a
ip netns add vrcore-b
for ns in vrcore-a vrcore-b; do
    ip netns exec $ns sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
done
ip link add veth-a netns vrcore-a address 02:00:00:00:00:0a type veth peer name veth-b netns vrcore-b address 02:00:00:00:00:0b
ip -n vrcore-a addr add 10.99.0.1/24 dev veth-a
ip -n vrcore-b addr add 10.99.0.2/24 dev veth-b
ip -n vrcore-a link set veth-a up
ip -n vrcore-b link set veth-b up
ip -n vrcore-a link set lo up
cat > "$work/keepalived.conf" <<'CONF'
global_defs {
    router_id vrcore
}
vrrp_instance V2PASS {
    state MASTER
    interface veth-a
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass vrcore1
    }
    virtual_ipaddress {
        10.99.0.100/32
        10.99.0.101/32
    }
}
vrrp_instance V3IPV6 {
    state MASTER
    version 3
    interface veth-a
    virtual_router_id 52
    priority 200
    advert_int 0.5
    virtual_ipaddress {
        fd00:99::100/128
        fd00:99::101/128
    }
}
CONF
ip netns exec vrcore-b tcpdump -i veth-b -s 0 -U -w "$work/cap.pcap" 'ip proto 112 or ip6 proto 112' >/dev/null 2>&1 &
tpid=$!
sleep 1
ip netns exec vrcore-a keepalived --vrrp -n -l -D -f "$work/keepalived.conf" \
    -p "$work/k.pid" -r "$work/v.pid" > "$work/keepalived.log" 2>&1 &
kpid=$!
sleep "${CAPTURE_SECONDS:-5}"
kill "$kpid"; wait "$kpid" 2>/dev/null || true; kpid=""
sleep 1
kill "$tpid"; wait "$tpid" 2>/dev/null || true; tpid=""
ip -n vrcore-a -6 addr show dev veth-a | grep fe80 || true
cat "$work/keepalived.log" | grep -i "entering\|priority 0\|sent 0" || true
tcpdump -r "$work/cap.pcap" -nn -v -x 2>/dev/null

# Step 2: keepalived is MASTER of both instances; our higher-priority adverts must win.
ours_v2="2133c802010182f20a6300640a6300657672636f72653100"
ours_v3="3134fa020032da28fd000099000000000000000000000100fd000099000000000000000000000101"
ip netns exec vrcore-a keepalived --vrrp -n -l -D -f "$work/keepalived.conf" \
    -p "$work/k.pid" -r "$work/v.pid" > "$work/keepalived2.log" 2>&1 &
kpid=$!
sleep 5
ip netns exec vrcore-b python3 - "$ours_v2" "$ours_v3" <<'PY'
import socket, sys, time
v2, v3 = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
index = socket.if_nametoindex("veth-b")
s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.99.0.2"))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
s6.bind(("fe80::ff:fe00:b", 0, 0, index))
for _ in range(8):
    s4.sendto(v2, ("224.0.0.18", 0))
    s6.sendto(v3, ("ff02::12", 0, 0, index))
    time.sleep(0.5)
PY
kill "$kpid"; wait "$kpid" 2>/dev/null || true; kpid=""
echo "--- keepalived receiving VRRPRouter's adverts:"
grep -i "higher priority\|entering\|checksum\|invalid\|mismatch" "$work/keepalived2.log" || true
status=0
for name in V2PASS V3IPV6; do
    if grep -q "($name) Master received advert from .* with higher priority" "$work/keepalived2.log" &&
       grep -q "($name) Entering BACKUP STATE$" "$work/keepalived2.log"; then
        echo "ok: keepalived accepted our $name advert and became BACKUP"
    else
        echo "FAIL: keepalived did not step down for our $name advert"; status=1
    fi
done
exit $status
