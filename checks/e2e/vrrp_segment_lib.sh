# shellcheck shell=bash
# A two-host segment for the VRRP tests that run lvsd by hand (no lvs-lab): namespaces
# "$P-a" (lvsd, 192.168.1.21) and "$P-x" (the other host, 192.168.1.66) on a bridge in "$P-sw".
# Source after lib.sh, with P (unique prefix) and T (the test's temporary directory) set:
#
#   source "$(dirname "$0")/vrrp_segment_lib.sh"
#   vs_setup VRID                  # root, lvsd's binaries, P, T, VRID, VIP, then vs_segment_up
#   vs_segment_up                  # removed, and lvsd's log and status printed on failure, at exit
#   vs_status                      # lvsadm daemon status of the lvsd in $P-a (socket $SOCK)
#   vs_state [INSTANCE]            # that instance's VRRP state (default VI_1)
#   vs_wait INSTANCE STATE SECONDS WHAT
declare -A IP=([a]=192.168.1.21 [x]=192.168.1.66)

# vs_setup VRID: the start of a test on this segment: root and lvsd's binaries required, a unique
# prefix P, the test's directory T (removed at exit), VRID and VIP (192.168.1.100), the segment.
vs_setup() {
    [[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces)"
    require_lvs_bins
    P="e2e$$-$((RANDOM % 10000))"
    T=$(e2e_tmpdir)
    VRID=$1
    VIP=192.168.1.100
    vs_segment_up
}

vs_down() {
    local p=$1 n pid
    for n in a x sw; do
        [[ -e /run/netns/$p-$n ]] || continue
        for pid in $(ip netns pids "$p-$n" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$p-$n" 2>/dev/null || true
    done
}

vs_dump() {
    local p=$1 t=$2
    [[ -d $t && ! -e $t/passed ]] || return 0
    echo "----- lvsd log (last 40 lines)"
    tail -n 40 "$t/a-lvsd.log" 2>/dev/null || true
    echo "----- lvsadm daemon status"
    ip netns exec "$p-a" env LVSD_SOCKET="$t/a-lvsd.sock" timeout 10 "$(lvs_bin)/lvsadm" daemon status || true
}

vs_segment_up() {
    e2e_trap
    e2e_on_exit vs_dump "$P" "$T"
    e2e_on_exit vs_down "$P"
    ip netns add "$P-sw"
    ip -n "$P-sw" link add br0 type bridge stp_state 0 mcast_snooping 0
    ip -n "$P-sw" link set br0 up
    local n
    for n in a x; do
        ip netns add "$P-$n"
        ip -n "$P-$n" link set lo up
        ip -n "$P-sw" link add name "port-$n" type veth peer name eth0 netns "$P-$n"
        ip -n "$P-sw" link set "port-$n" master br0
        ip -n "$P-sw" link set "port-$n" up
        ip -n "$P-$n" addr add "${IP[$n]}/24" dev eth0
        ip -n "$P-$n" link set eth0 up
    done
}

vs_status() { ip netns exec "$P-a" env LVSD_SOCKET="$SOCK" timeout 10 "$(lvs_bin)/lvsadm" daemon status; }
vs_state() { vs_status 2>/dev/null | awk -v i="${1:-VI_1}" '$1 == "vrrp" && $2 == "instance" && $3 == i { print $5 }'; }

# vs_wait INSTANCE STATE SECONDS WHAT: until the instance is in STATE, or fail after SECONDS.
vs_wait() {
    local deadline=$((SECONDS + $3))
    until [[ $(vs_state "$1") == "$2" ]]; do
        ((SECONDS < deadline)) || e2e_fail "$4: $1 is '$(vs_state "$1")', want $2 after $3s"
        sleep 0.2
    done
}

# vs_start_lvsd: lvsd in "$P-a" with $T/a.conf, socket $SOCK ($T/a-lvsd.sock), log $T/a-lvsd.log;
# returns when its control socket exists (fails after 30 s).
vs_start_lvsd() {
    SOCK=$T/a-lvsd.sock
    # shellcheck disable=SC2086
    setsid ip netns exec "$P-a" "$(lvs_bin)/lvsd" --interface eth0 --socket "$SOCK" --log-level debug \
        --config "$T/a.conf" ${LVS_LAB_LVSD_ARGS:-} >"$T/a-lvsd.log" 2>&1 </dev/null &
    local deadline=$((SECONDS + 30))
    until [[ -S $SOCK ]]; do
        ((SECONDS < deadline)) || e2e_fail "lvsd's socket did not appear within 30s"
        sleep 0.1
    done
}

# vs_arp_answered: true when the other host gets an ARP answer for $VIP.
vs_arp_answered() {
    ip netns exec "$P-x" ip neigh flush dev eth0 >/dev/null 2>&1 || true
    ip netns exec "$P-x" ping -c 1 -W 1 "$VIP" >/dev/null 2>&1 || true
    ip netns exec "$P-x" ip neigh show "$VIP" dev eth0 | grep -q lladdr
}
