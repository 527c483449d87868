# shellcheck shell=bash
# lvs-lab up --method tun (sourced by scripts/lvs-lab): after the seed's lab is up, the real
# servers move behind a router, onto a subnet the director does not share, and the seed's
# service reaches them with the tunnel method (ipvsadm -i).
#
#   NAME-router  eth0 192.168.1.254/24 2001:db8:1::254/64 (on br0)
#                eth1 10.9.0.1/24 2001:db8:9::1/64 (on br1, a second bridge in NAME-sw)
#   NAME-rs1     eth0 10.9.0.31/24 2001:db8:9::31/64, default routes via the router
#   NAME-rs2     eth0 10.9.0.32/24 2001:db8:9::32/64
#   NAME-director  routes to 10.9.0.0/24 and 2001:db8:9::/64 via the router
#
# The real servers keep the VIPs on lo with ARP suppressed (lvsadm realserver) and decapsulate
# with the kernel's ipip / fou (GUE) / ip_gre when it has them, otherwise in user space
# (checks/e2e/tun_decap.py into a TUN device, rp_filter off). They answer the client directly,
# through the router. LVS_LAB_TUN_TYPE=ipip|gue|gre (default ipip; GUE to port 6080).
# `lvs-lab verify` checks DR labs only.

TUN_NET4=10.9.0
TUN_NET6=2001:db8:9:
TUN_ROUTER4=192.168.1.254
TUN_ROUTER6=2001:db8:1::254
TUN_GUE_PORT=6080

# The real server's address on the tunnel subnet (same host part as on the seed's segment).
tun_rs4() { echo "$TUN_NET4.${IP4[$1]##*.}"; }
tun_rs6() { echo "$TUN_NET6:${IP6[$1]##*:}"; }

tun_router_up() {
    local sw rt
    sw=$(ns sw)
    rt=$(ns router)
    ip netns add "$rt"
    ip -n "$rt" link set lo up
    ip netns exec "$rt" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$sw" link add br1 type bridge stp_state 0 mcast_snooping 0
    ip -n "$sw" link set br1 up
    ip -n "$sw" link add router type veth peer name eth0 netns "$rt"
    ip -n "$sw" link add router1 type veth peer name eth1 netns "$rt"
    ip -n "$sw" link set router master br0
    ip -n "$sw" link set router1 master br1
    ip -n "$sw" link set router up
    ip -n "$sw" link set router1 up
    ip -n "$rt" addr add "$TUN_ROUTER4/24" dev eth0
    ip -n "$rt" -6 addr add "$TUN_ROUTER6/64" dev eth0 nodad
    ip -n "$rt" addr add "$TUN_NET4.1/24" dev eth1
    ip -n "$rt" -6 addr add "$TUN_NET6:1/64" dev eth1 nodad
    ip -n "$rt" link set eth0 up
    ip -n "$rt" link set eth1 up
}

# tun_decap_start NODE: the kernel's decapsulation when it has the modules, else tun_decap.py.
tun_decap_start() {
    local n=$1 l
    if nsx "$n" ip link add tunlprobe type ipip local any remote any 2>/dev/null; then
        nsx "$n" ip link del tunlprobe
        log "$n: decapsulation by the kernel (tunl0, fou port $TUN_GUE_PORT, gre0)"
        nsx "$n" ip link set tunl0 up
        nsx "$n" ip -6 link set ip6tnl0 up 2>/dev/null || true
        nsx "$n" ip fou add port "$TUN_GUE_PORT" gue 2>/dev/null || log "$n: no fou: GUE will not be decapsulated"
        if nsx "$n" ip link add greprobe type gre local any remote any 2>/dev/null; then
            nsx "$n" ip link del greprobe
            nsx "$n" ip link set gre0 up
        fi
        for l in all default tunl0 gre0; do
            nsx "$n" sysctl -qw "net.ipv4.conf.$l.rp_filter=0" 2>/dev/null || true
        done
        return 0
    fi
    log "$n: no ipip module: decapsulation in user space (tun_decap.py into tun0)"
    nsx "$n" ip tuntap add dev tun0 mode tun
    rm -f "$STATE/$n/decap.txt"
    start_bg "$n" "$STATE/$n/decap.pid" "$STATE/$n/decap.log" \
        /usr/bin/python3 "$ROOT/checks/e2e/tun_decap.py" --tun tun0 --gue-port "$TUN_GUE_PORT" \
        --stats "$STATE/$n/decap.txt" --seconds 86400
    wait_until "$T_SERVICE" "$n: tun_decap.py ready" test -f "$STATE/$n/decap.txt" ||
        die "$n: tun_decap.py did not start: $(cat "$STATE/$n/decap.log")"
    nsx "$n" ip link set tun0 up
    nsx "$n" sysctl -qw net.ipv4.conf.tun0.rp_filter=0
}

tun_lab_up() {
    local n type=${LVS_LAB_TUN_TYPE:-ipip} lvsadm opts args
    [[ $type == ipip || $type == gue || $type == gre ]] || die "LVS_LAB_TUN_TYPE must be ipip, gue or gre, got '$type'"
    lvsadm=$(resolve_bin)/lvsadm
    echo tun >"$STATE/method"
    log "--method tun: the real servers behind $(ns router), on $TUN_NET4.0/24 and ${TUN_NET6}:/64 ($type)"
    tun_router_up
    for n in rs1 rs2; do
        ip -n "$(ns sw)" link set "$n" nomaster
        ip -n "$(ns sw)" link set "$n" master br1
        nsx "$n" ip addr del "${IP4[$n]}/24" dev eth0
        nsx "$n" ip -6 addr del "${IP6[$n]}/64" dev eth0
        nsx "$n" ip addr add "$(tun_rs4 "$n")/24" dev eth0
        nsx "$n" ip -6 addr add "$(tun_rs6 "$n")/64" dev eth0 nodad
        nsx "$n" ip route add default via "$TUN_NET4.1"
        nsx "$n" ip -6 route add default via "$TUN_NET6:1"
        tun_decap_start "$n"
    done
    nsx director ip route add "$TUN_NET4.0/24" via "$TUN_ROUTER4"
    nsx director ip -6 route add "$TUN_NET6:/64" via "$TUN_ROUTER6"
    opts="-i --tun-type $type"
    [[ $type == gue ]] && opts+=" --tun-port $TUN_GUE_PORT"
    for n in rs1 rs2; do
        for args in "-d -t $VIP:80 -r ${IP4[$n]}:80" "-a -t $VIP:80 -r $(tun_rs4 "$n"):80 $opts"; do
            # shellcheck disable=SC2086
            nsx director env LVSD_SOCKET="$SOCK" timeout "$T_SERVICE" "$lvsadm" $args || die "lvsadm $args failed"
        done
    done
    nsx director env LVSD_SOCKET="$SOCK" timeout "$T_SERVICE" "$lvsadm" -Ln --tun-info || true
    wait_until "$T_SERVICE" "client -> $VIP through the tunnel" \
        nsx client curl -sS --max-time 2 -o /dev/null "http://$VIP/" ||
        die "the client gets no answer from $VIP through the tunnel"
}
