# shellcheck shell=bash
# lvs-lab --method nat: the seed's lab rebuilt for LVS-NAT (sourced by scripts/lvs-lab).
#
#   client    eth0 192.168.1.12/24  2001:db8:1::12/64   (on br0, the public segment)
#   director  eth0 192.168.1.21/24  2001:db8:1::21/64   (br0; VIP on lo, VIP6 on eth0)
#             eth1 10.0.0.1/24      fd00:10::1/64       00:50:00:00:04:01 (br1, the private one)
#   rs1       eth0 10.0.0.31/24     fd00:10::31/64      default routes via the director
#   rs2       eth0 10.0.0.32/24     fd00:10::32/64
# The real servers hold no VIP: lvsd rewrites the VIP to them and their replies back
# (ipvsadm -m). lvsd listens on both of the director's interfaces. The director's kernel
# does not forward (ip_forward=0): the replies of NAT connections are lvsd's (afpacket and
# tc hand the kernel a copy of every frame; forwarding it untranslated would reach the client).

NAT_DIRECTOR_MAC1=00:50:00:00:04:01
NAT_GW4=10.0.0.1
NAT_GW6=fd00:10::1

# The real servers' private addresses (before build_topology assigns them).
nat_addresses() {
    IP4[rs1]=10.0.0.31
    IP4[rs2]=10.0.0.32
    IP6[rs1]=fd00:10::31
    IP6[rs2]=fd00:10::32
}

# Moves the real servers to the private bridge br1, gives the director its second interface
# there, and routes the real servers through it.
nat_rewire() {
    local sw n nsn
    sw=$(ns sw)
    ip -n "$sw" link add br1 type bridge stp_state 0 mcast_snooping 0
    ip -n "$sw" link set br1 type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0 2>/dev/null || true
    ip -n "$sw" link set br1 up
    for n in rs1 rs2; do
        ip -n "$sw" link set "$n" nomaster
        ip -n "$sw" link set "$n" master br1
        nsn=$(ns "$n")
        ip -n "$nsn" route add default via "$NAT_GW4"
        ip -n "$nsn" -6 route add default via "$NAT_GW6"
    done
    nsn=$(ns director)
    ip -n "$sw" link add director1 type veth peer name eth1 netns "$nsn"
    ip -n "$sw" link set director1 master br1
    ip -n "$sw" link set director1 up
    ip -n "$nsn" link set eth1 address "$NAT_DIRECTOR_MAC1"
    ip -n "$nsn" addr add "$NAT_GW4/24" dev eth1
    ip -n "$nsn" -6 addr add "$NAT_GW6/64" dev eth1 nodad
    ip -n "$nsn" link set eth1 up
    nsx director ethtool -K eth1 tx on sg on tso on gso on >/dev/null 2>&1 || true
}

# The real server's services: nginx (port 80, every address) and the UDP echo on its own
# addresses (no VIP here).
nat_rs_services() {
    local n=$1 d=$STATE/$1
    nsx "$n" timeout "$T_SERVICE" /usr/sbin/nginx -c "$d/nginx.conf" -p "$d" ||
        { cat "$d/error.log" >&2 2>/dev/null || true; die "$n: nginx did not start"; }
    start_bg "$n" "$d/udp-echo.pid" "$d/udp-echo.log" \
        /usr/bin/python3 "$STATE/udp-echo.py" "${RSNAME[$n]}" "${IP4[$n]}" "${IP6[$n]}"
}

nat_director() {
    nsx director sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    nsx director ip addr add "$VIP/32" dev lo
    nsx director ip -6 addr add "$VIP6/128" dev eth0 nodad
}

# lvsd on eth0 and eth1, and the NAT service (IPv4 and IPv6, TCP 80 and UDP 53).
nat_lvsd() {
    local bin pid lvsadm args extra=()
    bin=$(resolve_bin)
    lvsadm=$bin/lvsadm
    # shellcheck disable=SC2206 # split on purpose
    [[ -n ${LVS_LAB_LVSD_ARGS:-} ]] && extra+=($LVS_LAB_LVSD_ARGS)
    # NAT runs on afpacket and tc (lvsd refuses -m on afxdp and xdp): afpacket unless told.
    [[ " ${extra[*]} " =~ [[:space:]]--dataplane[=[:space:]] ]] || extra+=(--dataplane afpacket)
    rm -f "$SOCK"
    log "director: starting lvsd --interface eth0 --interface eth1 ${extra[*]}"
    start_bg director "$STATE/lvsd.pid" "$STATE/lvsd.log" \
        "$bin/lvsd" --interface eth0 --interface eth1 --socket "$SOCK" --log-level debug "${extra[@]}"
    pid=$(<"$STATE/lvsd.pid")
    wait_until "$T_SOCKET" "lvsd socket" test -S "$SOCK" ||
        { tail -n 40 "$STATE/lvsd.log" >&2 || true; die "director: lvsd did not start"; }
    pid_alive "$pid" || { tail -n 40 "$STATE/lvsd.log" >&2 || true; die "director: lvsd exited"; }
    for args in "-A -t $VIP:80 -s rr" "-a -t $VIP:80 -r ${IP4[rs1]}:80 -m" "-a -t $VIP:80 -r ${IP4[rs2]}:80 -m" \
        "-A -u $VIP:53 -s rr" "-a -u $VIP:53 -r ${IP4[rs1]}:53 -m" "-a -u $VIP:53 -r ${IP4[rs2]}:53 -m" \
        "-A -t [$VIP6]:80 -s rr" "-a -t [$VIP6]:80 -r [${IP6[rs1]}]:80 -m" "-a -t [$VIP6]:80 -r [${IP6[rs2]}]:80 -m"; do
        # shellcheck disable=SC2086 # the words, split on purpose
        nsx director env LVSD_SOCKET="$SOCK" timeout "$T_SERVICE" "$lvsadm" $args ||
            { tail -n 40 "$STATE/lvsd.log" >&2 || true; die "lvsadm $args failed"; }
    done
    nsx director env LVSD_SOCKET="$SOCK" timeout "$T_SERVICE" "$lvsadm" -Ln || true
}

nat_up() {
    local n bin
    ensure_packages lvsd
    bin=$(resolve_bin)
    [[ -x $bin/lvsd && -x $bin/lvsadm ]] || die "lvsd/lvsadm not found in $bin (set LVS_BIN or run: swift build -c release)"
    mkdir -p "$STATE"
    echo lvsd >"$STATE/director"
    echo nat >"$STATE/method"
    trap 'up_failed' EXIT
    log "building topology (director: lvsd, method: nat, real servers on 10.0.0.0/24 behind eth1)"
    nat_addresses
    build_topology
    nat_rewire
    write_helpers
    for n in rs1 rs2; do
        mkdir -p "$STATE/$n"
        write_nginx_conf "$n"
        nat_rs_services "$n"
    done
    for n in rs1 rs2; do rs_ready "$n"; done
    wait_until "$T_SERVICE" "client -> director ping" nsx client ping -c1 -W1 "${IP4[director]}" ||
        die "client cannot reach the director"
    nat_director
    for n in rs1 rs2; do
        wait_until "$T_SERVICE" "director -> $n ping" nsx director ping -c1 -W1 "${IP4[$n]}" ||
            die "director cannot reach $n (${IP4[$n]})"
    done
    nat_lvsd
    trap - EXIT
    log "lab '$PREFIX' is up (director: lvsd, method: nat, state: $STATE)"
}
