# shellcheck shell=bash
# lvs-lab --ecmp N (issue 17): N directors (N = 2 or 3) behind a router that spreads the VIP's
# flows over them by ECMP, each director announcing the VIP by BGP through a routing daemon that
# learns lvsd's route from kernel table ECMP_TABLE. Sourced by scripts/lvs-lab.
#
#   PREFIX-client   eth0 198.51.100.2/24 + ECMP_CLIENT_ADDRS more (198.51.100.10 ...), 2001:db8:100::2/64
#                   default route via the router
#   PREFIX-router   eth1 198.51.100.1/24 2001:db8:100::1/64 (to the client)
#                   eth0 192.168.1.1/24 2001:db8:1::1/64 on the bridge; the VIP only through BGP
#                   FRR: zebra, bgpd (AS 65000, maximum-paths), bfdd (100 ms x 3);
#                   fib_multipath_hash_policy=1 (IPv4 and IPv6)
#   PREFIX-director 192.168.1.21  lvsd + BIRD 2   (AS 65100)
#   PREFIX-dir2     192.168.1.22  lvsd + FRR      (AS 65100)
#   PREFIX-dir3     192.168.1.23  lvsd + BIRD 2   (N = 3 only)
#   PREFIX-rs1/rs2  as in the seed lab (VIP on lo, ARP suppressed), default route via the router,
#                   so replies go straight to the client through the router, not the directors.
# VIP6: announced by the BIRD directors only (IPv6 over the IPv4 BGP sessions); FRR 8.4 has no
# `ipv6 import-table`, so dir2 announces the IPv4 VIP only.
#
# Each director's lvsd reads STATE/keepalived-NODE.conf: the VIP (and VIP6) with scheduler
# ECMP_SCHED (LVS_LAB_ECMP_SCHED, default mh with mh-port and mh-sorted), TCP_CHECK health checks
# every second, and the real servers listed in a different order on dir2 (rs2 first), as an
# operator's directors may have them; sloppy_tcp=1 so that a director picks up flows in mid-stream.
# The routing daemons' files live in STATE/frr-NODE or STATE/bird-NODE (config, pid files,
# sockets): `vtysh --vty_socket STATE/frr-NODE`, `birdc -s STATE/bird-NODE/bird.ctl`.

ECMP_TABLE=${LVS_LAB_ECMP_TABLE:-100}
ECMP_ROUTER_AS=65000
ECMP_DIRECTOR_AS=65100
ECMP_CLIENT_ADDRS=64
ECMP_CLIENT_NET=198.51.100
ECMP_CLIENT_NET6=2001:db8:100
# BFD: 100 ms intervals, 3 missed packets: a dead peer is noticed in 300 ms.
ECMP_BFD_MS=100
ECMP_BFD_MULT=3
# The namespaces only an ECMP lab has (lvs-lab's all_ns lists them for `down`).
ECMP_NODES=(dir3 router)
IP4[dir3]=192.168.1.23
IP6[dir3]=2001:db8:1::23
MAC[dir3]=00:50:00:00:07:00
IP4[router]=192.168.1.1
IP6[router]=2001:db8:1::1
MAC[router]=00:50:00:00:06:00
# The routing daemon of each director.
declare -A ECMP_DAEMON=([director]=bird [dir2]=frr [dir3]=bird)

is_ecmp() { ((${ECMP:-0})) || [[ -f $STATE/ecmp ]]; }
ecmp_count() { if ((${ECMP:-0})); then echo "$ECMP"; else cat "$STATE/ecmp"; fi; }
ecmp_directors() { local d=(director dir2 dir3); printf '%s\n' "${d[@]:0:$(ecmp_count)}"; }
# The nodes on the bridge of an ECMP lab (the client is behind the router).
ecmp_nodes() { ecmp_directors; printf '%s\n' rs1 rs2 router; }

# ----------------------------------------------------------------- topology

# The router's two sides: eth0 on the bridge (192.168.1.1/24: the VIP is in that subnet, but no
# one answers ARP for it there: the directors run lvsd --no-arp and the real servers have it on
# lo with arp_ignore, so the router reaches it through a BGP route or not at all), and the
# client's link, a veth pair created inside the two namespaces.
ecmp_router_links() {
    local n
    ip netns add "$(ns client)"
    ip -n "$(ns client)" link set lo up
    nsx client sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv4.tcp_tw_reuse=1
    ip -n "$(ns router)" link add eth1 type veth peer name eth0 netns "$(ns client)"
    nsx router ip addr add "$ECMP_CLIENT_NET.1/24" dev eth1
    nsx router ip -6 addr add "$ECMP_CLIENT_NET6::1/64" dev eth1 nodad
    ip -n "$(ns router)" link set eth1 up
    nsx client ip addr add "$ECMP_CLIENT_NET.2/24" dev eth0
    nsx client ip -6 addr add "$ECMP_CLIENT_NET6::2/64" dev eth0 nodad
    local i
    for ((i = 0; i < ECMP_CLIENT_ADDRS; i++)); do
        nsx client ip addr add "$ECMP_CLIENT_NET.$((10 + i))/24" dev eth0
        nsx client ip -6 addr add "$ECMP_CLIENT_NET6::$(printf '%x' $((16 + i)))/64" dev eth0 nodad
    done
    ip -n "$(ns client)" link set eth0 up
    nsx client ip route add default via "$ECMP_CLIENT_NET.1"
    nsx client ip -6 route add default via "$ECMP_CLIENT_NET6::1"
    nsx router sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
    # The real servers answer the client through the router.
    for n in rs1 rs2; do
        nsx "$n" ip route add default via "${IP4[router]}" dev eth0 onlink
        nsx "$n" ip -6 route add default via "${IP6[router]}" dev eth0 onlink
    done
}

# ---------------------------------------------------------------- FRR, BIRD

ecmp_frr_dir() { echo "$STATE/frr-$1"; }
ecmp_bird_dir() { echo "$STATE/bird-$1"; }

# ecmp_vtysh NODE ARGS...: vtysh against NODE's FRR.
ecmp_vtysh() {
    local n=$1
    shift
    nsx "$n" timeout "$T_SERVICE" vtysh --vty_socket "$(ecmp_frr_dir "$n")" "$@"
}
ecmp_birdc() {
    local n=$1
    shift
    nsx "$n" timeout "$T_SERVICE" birdc -s "$(ecmp_bird_dir "$n")/bird.ctl" "$@"
}

# ecmp_write_bfdd HOSTNAME DIR: bfdd's configuration, the same BFD profile on every node.
ecmp_write_bfdd() {
    cat >"$2/bfdd.conf" <<EOF
hostname $1
log file $2/bfdd.log
bfd
 profile ecmp
  detect-multiplier $ECMP_BFD_MULT
  receive-interval $ECMP_BFD_MS
  transmit-interval $ECMP_BFD_MS
 !
!
EOF
}
# The router's FRR configuration: one file per daemon.
ecmp_write_router_frr() {
    local d n
    d=$(ecmp_frr_dir router)
    mkdir -p "$d"
    cat >"$d/zebra.conf" <<EOF
hostname router
log file $d/zebra.log
EOF
    ecmp_write_bfdd router "$d"
    {
        echo "hostname router"
        echo "log file $d/bgpd.log"
        echo "router bgp $ECMP_ROUTER_AS"
        echo " bgp router-id ${IP4[router]}"
        echo " no bgp ebgp-requires-policy"
        echo " no bgp network import-check"
        echo " bgp bestpath as-path multipath-relax"
        echo " timers bgp 3 9"
        for n in $(ecmp_directors); do
            echo " neighbor ${IP4[$n]} remote-as $ECMP_DIRECTOR_AS"
            # The directors connect, the router listens: no connection collisions at start.
            echo " neighbor ${IP4[$n]} passive"
            echo " neighbor ${IP4[$n]} advertisement-interval 0"
            echo " neighbor ${IP4[$n]} bfd profile ecmp"
        done
        echo " address-family ipv4 unicast"
        echo "  maximum-paths 8"
        echo " exit-address-family"
        # VIP6 over the same (IPv4) sessions, from the BIRD directors: FRR 8.4 has no
        # `ipv6 import-table`, so its directors announce IPv4 VIPs only.
        echo " address-family ipv6 unicast"
        for n in $(ecmp_directors); do
            [[ ${ECMP_DAEMON[$n]} == bird ]] && echo "  neighbor ${IP4[$n]} activate"
        done
        echo "  maximum-paths 8"
        echo " exit-address-family"
        echo "!"
    } >"$d/bgpd.conf"
}

# A director's FRR: zebra imports kernel table ECMP_TABLE, bgpd redistributes it (the VIPs only).
ecmp_write_director_frr() {
    local n=$1 d
    d=$(ecmp_frr_dir "$n")
    mkdir -p "$d"
    cat >"$d/zebra.conf" <<EOF
hostname $n
log file $d/zebra.log
ip import-table $ECMP_TABLE
EOF
    ecmp_write_bfdd "$n" "$d"
    cat >"$d/bgpd.conf" <<EOF
hostname $n
log file $d/bgpd.log
ip prefix-list lvs-vips seq 10 permit $VIP/32
route-map lvs-vips permit 10
 match ip address prefix-list lvs-vips
 set origin igp
!
router bgp $ECMP_DIRECTOR_AS
 bgp router-id ${IP4[$n]}
 no bgp ebgp-requires-policy
 timers bgp 3 9
 neighbor ${IP4[router]} remote-as $ECMP_ROUTER_AS
 neighbor ${IP4[router]} timers connect 1
 neighbor ${IP4[router]} advertisement-interval 0
 neighbor ${IP4[router]} bfd profile ecmp
 address-family ipv4 unicast
  redistribute table $ECMP_TABLE route-map lvs-vips
 exit-address-family
!
EOF
}

# ecmp_start_frr NODE: zebra, bfdd, bgpd in NODE's namespace, every path under STATE/frr-NODE.
ecmp_start_frr() {
    local n=$1 d daemon
    d=$(ecmp_frr_dir "$n")
    # FRR drops to its own user (frr, group frrvty for the vty sockets): it owns its directory.
    chown -R frr:frr "$d"
    chmod 755 "$d"
    for daemon in zebra bfdd bgpd; do
        local extra=()
        [[ $daemon == bfdd ]] && extra=(--bfdctl "$d/bfdd.sock")
        [[ $daemon == bgpd ]] && extra=(-l "${IP4[$n]}")
        start_bg "$n" "$d/$daemon.pid" "$d/$daemon.out" \
            "/usr/lib/frr/$daemon" -f "$d/$daemon.conf" -i "$d/$daemon.pidfile" \
            -z "$d/zserv.api" --vty_socket "$d" -P 0 "${extra[@]}"
        if [[ $daemon == zebra ]]; then
            wait_until "$T_SERVICE" "$n zebra" test -S "$d/zserv.api" ||
                { cat "$d/zebra.out" >&2; die "$n: zebra did not start"; }
        fi
    done
    wait_until "$T_SERVICE" "$n bgpd vty" test -S "$d/bgpd.vty" ||
        { cat "$d/bgpd.out" >&2; die "$n: bgpd did not start"; }
}

# A director's BIRD 2: the kernel protocol learns table ECMP_TABLE, BGP exports the VIPs only.
ecmp_write_director_bird() {
    local n=$1 d
    d=$(ecmp_bird_dir "$n")
    mkdir -p "$d"
    cat >"$d/bird.conf" <<EOF
# lvs-lab $PREFIX $n: BIRD 2 announcing what lvsd puts into kernel table $ECMP_TABLE.
log "$d/bird.log" all;
router id ${IP4[$n]};
protocol device { scan time 10; }
protocol kernel lvs_table {
    kernel table $ECMP_TABLE;
    learn;
    scan time 2;
    ipv4 { import all; export none; };
}
protocol kernel lvs_table6 {
    kernel table $ECMP_TABLE;
    learn;
    scan time 2;
    ipv6 { import all; export none; };
}
protocol bfd {
    interface "eth0" {
        min rx interval $ECMP_BFD_MS ms;
        min tx interval $ECMP_BFD_MS ms;
        multiplier $ECMP_BFD_MULT;
    };
}
protocol bgp to_router {
    local ${IP4[$n]} as $ECMP_DIRECTOR_AS;
    neighbor ${IP4[router]} as $ECMP_ROUTER_AS;
    bfd on;
    hold time 9;
    keepalive time 3;
    # BIRD's defaults wait 5 s before the first connection and 60 s after an error: a lab
    # (and a director that restarts) wants the session back in seconds.
    connect delay time 1;
    connect retry time 1;
    error wait time 1, 10;
    ipv4 {
        import none;
        export where net ~ [ $VIP/32 ];
        next hop self;
    };
    # IPv6 routes over the IPv4 session: the next hop is this director's IPv6 address.
    ipv6 {
        import none;
        export where net ~ [ $VIP6/128 ];
        next hop address ${IP6[$n]};
    };
}
EOF
}

ecmp_start_bird() {
    local n=$1 d
    d=$(ecmp_bird_dir "$n")
    nsx "$n" bird -p -c "$d/bird.conf" || die "$n: bird -p rejects $d/bird.conf"
    start_bg "$n" "$d/bird.pid" "$d/bird.out" bird -f -c "$d/bird.conf" -s "$d/bird.ctl" -P "$d/bird.pidfile"
    wait_until "$T_SERVICE" "$n bird" test -S "$d/bird.ctl" ||
        { cat "$d/bird.out" >&2; die "$n: bird did not start"; }
}

# ------------------------------------------------------------------ lvsd

ecmp_sched() { echo "${LVS_LAB_ECMP_SCHED:-mh}"; }

# The keepalived.conf of director NODE: dir2 lists the real servers in the other order.
ecmp_write_lvsd_conf() {
    local n=$1 f order=(rs1 rs2) sched flags="" r v
    f=$(lvsd_conf "$n")
    [[ $n == dir2 ]] && order=(rs2 rs1)
    sched=$(ecmp_sched)
    # mh-sorted: the table depends on the set of real servers only, not on their order.
    if [[ $sched == mh ]]; then
        flags="    mh-port"
        flags+=$'\n    mh-sorted'
    fi
    {
        echo "# lvs-lab $PREFIX $n: one director of the ECMP set (real servers in the order ${order[*]})."
        for v in "$VIP" "$VIP6"; do
            echo "virtual_server $v 80 {"
            echo "    delay_loop 1"
            echo "    lb_algo $sched"
            [[ -n $flags ]] && echo "$flags"
            echo "    lb_kind DR"
            echo "    protocol TCP"
            for r in "${order[@]}"; do
                local a=${IP4[$r]}
                [[ $v == "$VIP6" ]] && a=${IP6[$r]}
                echo "    real_server $a 80 {"
                echo "        weight 1"
                echo "        TCP_CHECK {"
                echo "            connect_timeout 1"
                echo "            retry 1"
                echo "            delay_before_retry 1"
                echo "        }"
                echo "    }"
            done
            echo "}"
        done
    } >"$f"
}

# lvsd announces the ready VIPs into table ECMP_TABLE itself (--announce-table); on SIGTERM it
# withdraws them, forwards ECMP_HOLD more seconds (--announce-hold), then exits.
ECMP_HOLD=${LVS_LAB_ECMP_HOLD:-2}

# The lvsd options of every ECMP director (LVS_LAB_LVSD_ARGS adds to them).
ecmp_lvsd_args() {
    echo "--no-arp --set-sysctl sloppy_tcp=1 --announce-table $ECMP_TABLE --announce-hold $ECMP_HOLD"
}

ecmp_start_director() {
    local n=$1
    ecmp_write_lvsd_conf "$n"
    LVS_LAB_LVSD_CONFIG=$(lvsd_conf "$n") LVS_LAB_LVSD_ARGS="$(ecmp_lvsd_args) ${LVS_LAB_LVSD_ARGS:-}" \
        director_lvsd "$n"
}

# ecmp_start_routing NODE: the routing daemon of director NODE.
ecmp_start_routing() {
    local n=$1
    if [[ ${ECMP_DAEMON[$n]} == frr ]]; then
        ecmp_write_director_frr "$n"
        ecmp_start_frr "$n"
    else
        ecmp_write_director_bird "$n"
        ecmp_start_bird "$n"
    fi
}

# ------------------------------------------------------------------ queries

# ecmp_nexthops: the router's kernel next hops for the VIP (FAMILY 4 or 6), one address a line.
ecmp_nexthops() {
    local fam=${1:-4} vip=$VIP
    [[ $fam == 6 ]] && vip=$VIP6
    nsx router ip "-$fam" route show "$vip" 2>/dev/null |
        awk '{ for (i = 1; i < NF; i++) if ($i == "via") { v = $(i + 1); if (v == "inet" || v == "inet6") v = $(i + 2); print v } }'
}
ecmp_nexthop_count() { ecmp_nexthops "${1:-4}" | grep -c . || true; }
ecmp_has_nexthops() { [[ $(ecmp_nexthop_count "${2:-4}") == "$1" ]]; }

# ------------------------------------------------------------------ commands

ecmp_up() {
    local n count
    count=$(ecmp_count)
    [[ $count == 2 || $count == 3 ]] || die "--ecmp needs 2 or 3, got '$count'"
    if [[ -d $STATE ]] || ns_exists "$(ns sw)"; then
        die "lab '$PREFIX' already exists; run: lvs-lab down --prefix $PREFIX"
    fi
    ensure_packages lvsd
    local cmd
    for cmd in vtysh bird birdc; do
        command -v "$cmd" >/dev/null || die "$cmd not found (run scripts/deps.sh: frr, bird2)"
    done
    local bin
    bin=$(resolve_bin)
    [[ -x $bin/lvsd && -x $bin/lvsadm ]] ||
        die "lvsd/lvsadm not found in $bin (set LVS_BIN or run: swift build -c release)"
    mkdir -p "$STATE"
    echo lvsd >"$STATE/director"
    echo "$count" >"$STATE/ecmp"
    trap 'up_failed' EXIT
    log "building the ECMP topology: router, client, $count directors ($(for n in $(ecmp_directors); do printf '%s:%s ' "$n" "${ECMP_DAEMON[$n]}"; done))"
    build_topology
    ecmp_router_links
    write_helpers
    for n in rs1 rs2; do
        mkdir -p "$STATE/$n"
        rs_prepare "$n"
        write_nginx_conf "$n"
        rs_services "$n"
    done
    for n in rs1 rs2; do rs_ready "$n"; done
    for n in $(ecmp_directors); do
        director_ha_common "$n"
        wait_until "$T_SERVICE" "router -> $n ping" nsx router ping -c1 -W1 "${IP4[$n]}" ||
            die "the router cannot reach $n (${IP4[$n]})"
    done
    ecmp_write_router_frr
    ecmp_start_frr router
    for n in $(ecmp_directors); do
        ecmp_start_director "$n"
        ecmp_start_routing "$n"
    done
    wait_until 60 "the router's route to $VIP with $count next hops" ecmp_has_nexthops "$count" ||
        { ecmp_vtysh router -c 'show bgp summary' -c 'show bfd peers brief' >&2 || true; die "the router has not $count next hops for $VIP: $(ecmp_nexthops | tr '\n' ' ')"; }
    trap - EXIT
    log "lab '$PREFIX' is up: $VIP via $(ecmp_nexthops | tr '\n' ' ')(state: $STATE)"
}

# `lvs-lab nexthops`: the router's next hops for the VIPs, lines "4 ADDRESS" and "6 ADDRESS".
ecmp_cmd_nexthops() {
    check_lab_exists_ecmp
    local a
    for a in $(ecmp_nexthops 4); do echo "4 $a"; done
    for a in $(ecmp_nexthops 6); do echo "6 $a"; done
}
check_lab_exists_ecmp() {
    [[ -f $STATE/ecmp ]] && ns_exists "$(ns router)" ||
        die "no ECMP lab '$PREFIX' (run: lvs-lab up --ecmp 3 --prefix $PREFIX)"
}

# `lvs-lab start-lvsd --node NODE` in an ECMP lab: NODE's lvsd again, with the lab's options.
ecmp_cmd_start_lvsd() {
    [[ -n $NODE ]] || die "start-lvsd needs --node director, dir2 or dir3"
    ecmp_directors | grep -qx "$NODE" || die "$NODE is not a director of this lab"
    ! pid_alive "$(tr -dc 0-9 <"$(lvsd_dir "$NODE")/lvsd.pid" 2>/dev/null)" ||
        die "$NODE: lvsd already runs"
    LVS_BIN=$(resolve_bin)
    export LVS_BIN
    ecmp_start_director "$NODE"
}
