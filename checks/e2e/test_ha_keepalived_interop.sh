#!/usr/bin/env bash
# e2e-planes: afpacket
# lvsd's VRRP against the real thing (issue 15): keepalived 2.2.7 in VRRP-only mode
# (`keepalived --vrrp`, no IPVS) as the peer, each in its own namespace (a, b) on one bridge,
# with a client namespace. Both read keepalived.conf files written here; the notify script
# (`notify`) appends "TIME INSTANCE NAME STATE PRIORITY" to notify-NODE.log for both, and
# keepalived's MASTER shows the VIP on its eth0 (`ip addr`), lvsd's its status line.
#   1. v2 + PASS: lvsd MASTER 150 / keepalived BACKUP 100; lvsd stops -> keepalived MASTER;
#      lvsd back -> it preempts. The client's ARP for the VIP follows the MASTER.
#   2. the reverse: keepalived MASTER 150 / lvsd BACKUP 100, the same both ways.
#   3. nopreempt: the lower one is MASTER alone; the higher one (BACKUP nopreempt) joins and
#      stays BACKUP; with lvsd lower, then with keepalived lower.
#   4. a wrong PASS password: both MASTER, the adverts counted as rejections on lvsd.
#   5. VRRPv3 over IPv4: lvsd MASTER / keepalived BACKUP; lvsd stops -> keepalived MASTER.
#   6. VRRPv3 over IPv6 (an IPv6 VIP): keepalived MASTER / lvsd BACKUP; keepalived stops ->
#      lvsd MASTER.
# E2E_HA_INTEROP_SELFTEST=1 runs keepalived in lvsd's place (keepalived against keepalived):
# the harness's own proof, without lvsd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"

[[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces)"
command -v keepalived >/dev/null || e2e_skip "keepalived not installed (scripts/deps.sh)"
SELFTEST=${E2E_HA_INTEROP_SELFTEST:-0}
((SELFTEST)) || require_lvs_bins
LVSD_KIND=lvsd
((SELFTEST)) && LVSD_KIND=keepalived

P="e2e$$-$((RANDOM % 10000))"
T=$(e2e_tmpdir)
VRID=61
PASS=lvslab
declare -A IA_IP=([a]=192.168.1.21 [b]=192.168.1.22 [client]=192.168.1.12)
declare -A IA_IP6=([a]=2001:db8:1::21 [b]=2001:db8:1::22 [client]=2001:db8:1::12)
declare -A IA_MAC=([a]=00:50:00:00:04:00 [b]=00:50:00:00:05:00 [client]=00:50:00:00:03:00)
declare -A KIND=()

# ------------------------------------------------------------------ topology

# Stops what this test started in its namespaces, then deletes them (from the EXIT trap,
# which passes the prefix; functions only).
ia_down() {
    local p=$1 n pid
    for n in a b client sw; do
        [[ -e /run/netns/$p-$n ]] || continue
        for pid in $(ip netns pids "$p-$n" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    done
    sleep 1
    for n in a b client sw; do
        [[ -e /run/netns/$p-$n ]] || continue
        for pid in $(ip netns pids "$p-$n" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$p-$n" 2>/dev/null || true
    done
}
# Logs of a failed run (nothing once the test has passed): each peer's log tail and notify file.
ia_dump() {
    local t=$1 f
    [[ ! -e $t/passed ]] || return 0
    for f in "$t"/*.log; do
        [[ -s $f ]] || continue
        echo "----- ${f##*/} (last 30 lines)"
        tail -n 30 "$f"
    done
}
e2e_trap
e2e_on_exit ia_down "$P"

ip netns add "$P-sw"
ip netns exec "$P-sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$P-sw" link add br0 type bridge stp_state 0 mcast_snooping 0
ip -n "$P-sw" link set br0 up
for n in a b client; do
    ip netns add "$P-$n"
    ip -n "$P-$n" link set lo up
    ip netns exec "$P-$n" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0
    # (switch ports "port-NODE": a bare "a" or "b" would read as an ip-link keyword)
    ip -n "$P-sw" link add name "port-$n" type veth peer name eth0 netns "$P-$n"
    ip -n "$P-sw" link set "port-$n" master br0
    ip -n "$P-sw" link set "port-$n" up
    ip -n "$P-$n" link set eth0 address "${IA_MAC[$n]}"
    ip -n "$P-$n" addr add "${IA_IP[$n]}/24" dev eth0
    ip -n "$P-$n" -6 addr add "${IA_IP6[$n]}/64" dev eth0 nodad
    ip -n "$P-$n" link set eth0 up
done
cat >"$T/notify.sh" <<EOF
#!/bin/sh
node=\$(ip netns identify 2>/dev/null)
echo "\$(date +%s.%N) \$*" >>"$T/notify-\${node#$P-}.log"
EOF
chmod 755 "$T/notify.sh"

# ------------------------------------------------------------------- peers

# ia_conf NODE STATE PRIORITY [v3] [v6] [nopreempt] [pass=PW]: NODE's keepalived.conf.
ia_conf() {
    local n=$1 state=$2 prio=$3 version=2 vip="$VIP/32" pw=$PASS nopreempt="" opt unicast=0 peer
    shift 3
    for opt in "$@"; do
        case $opt in
        v3) version=3 ;;
        v6) version=3 vip="$VIP6/128" pw="" ;;
        nopreempt) nopreempt=nopreempt ;;
        pass=*) pw=${opt#pass=} ;;
        unicast) unicast=1 ;;
        esac
    done
    ((version == 3)) && pw=""
    {
        echo "vrrp_instance VI_1 {"
        echo "    state $state"
        echo "    priority $prio"
        echo "    interface eth0"
        echo "    virtual_router_id $VRID"
        echo "    advert_int 1"
        echo "    version $version"
        [[ -n $nopreempt ]] && echo "    nopreempt"
        [[ -n $pw ]] && printf '    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n' "$pw"
        printf '    virtual_ipaddress {\n        %s dev eth0\n    }\n' "$vip"
        if ((unicast)); then
            peer=b
            [[ $n == b ]] && peer=a
            printf '    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }\n' "${IA_IP[$n]}" "${IA_IP[$peer]}"
        fi
        echo "    notify \"$T/notify.sh\""
        echo "}"
    } >"$T/$n.conf"
    echo "$T/$n.conf"
}

ia_sock() { echo "$T/$1-lvsd.sock"; }
ia_lvsadm() { local n=$1; shift; ip netns exec "$P-$n" env LVSD_SOCKET="$(ia_sock "$n")" timeout 10 "$(lvs_bin)/lvsadm" "$@"; }

# peer_start NODE KIND CONF: lvsd or keepalived (VRRP only) in NODE's namespace.
peer_start() {
    local n=$1 kind=$2 conf=$3
    KIND[$n]=$kind
    if [[ $kind == keepalived ]]; then
        setsid ip netns exec "$P-$n" keepalived --vrrp --dont-fork --log-console --log-detail \
            --use-file "$conf" --pid "$T/$n-ka.pid" --vrrp_pid "$T/$n-kavrrp.pid" \
            >>"$T/$n-keepalived.log" 2>&1 </dev/null &
        echo $! >"$T/$n.pid"
    else
        rm -f "$(ia_sock "$n")"
        # shellcheck disable=SC2086 # the data plane options, split on purpose
        setsid ip netns exec "$P-$n" "$(lvs_bin)/lvsd" --interface eth0 --socket "$(ia_sock "$n")" \
            --log-level debug --config "$conf" ${LVS_LAB_LVSD_ARGS:-} >>"$T/$n-lvsd.log" 2>&1 </dev/null &
        echo $! >"$T/$n.pid"
        local deadline=$((SECONDS + 30))
        until [[ -S $(ia_sock "$n") ]]; do
            kill -0 "$(<"$T/$n.pid")" 2>/dev/null || { tail -n 30 "$T/$n-lvsd.log" >&2; e2e_fail "$n: lvsd exited at start"; }
            ((SECONDS < deadline)) || e2e_fail "$n: lvsd's socket did not appear within 30s"
            sleep 0.1
        done
        # Fail fast and clearly while lvsd has no VRRP.
        deadline=$((SECONDS + 5))
        until ia_lvsadm "$n" daemon status 2>/dev/null | grep '^ *vrrp instance VI_1 ' >/dev/null; do
            if ((SECONDS >= deadline)); then
                ia_lvsadm "$n" daemon status >&2 || true
                e2e_fail "$n: no 'vrrp instance VI_1' line in lvsadm daemon status after 5s (lvsd does not run VRRP)"
            fi
            sleep 0.2
        done
    fi
    e2e_log "$n: $kind started ($(grep -E 'state|priority|version|nopreempt|auth_pass' "$conf" | tr -s ' \n' ' '))"
}

# peer_stop NODE: SIGTERM (a priority-0 advert from a MASTER), bounded wait.
peer_stop() {
    local n=$1 pid
    pid=$(tr -dc 0-9 <"$T/$n.pid" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; e2e_fail "$n: ${KIND[$n]} still runs 15s after SIGTERM"; }
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
    rm -f "$T/$n.pid"
}
peers_reset() {
    peer_stop a
    peer_stop b
    rm -f "$T"/notify-*.log
    ip netns exec "$P-client" ip neigh flush dev eth0 2>/dev/null || true
}

ia_last_state() { awk -v i=VI_1 '$3 == i { s = $4 } END { print s }' "$T/notify-$1.log" 2>/dev/null; }
# (the output is read whole before grep -q: with pipefail, grep's early exit could fail ip with SIGPIPE)
ia_has_vip() { local a; a=$(ip -n "$P-$1" addr show dev eth0) && grep -Eq " ($VIP/32|$VIP6/128) " <<<"$a"; }
# ia_in_state NODE STATE: the notify script's last call says STATE, and the peer agrees:
# keepalived holds the VIP on eth0 exactly in MASTER; lvsd's status line shows STATE.
ia_in_state() {
    local n=$1 st=$2
    [[ $(ia_last_state "$n") == "$st" ]] || return 1
    if [[ ${KIND[$n]} == keepalived ]]; then
        if [[ $st == MASTER ]]; then ia_has_vip "$n"; else ! ia_has_vip "$n"; fi
    else
        local line
        line=$(ia_lvsadm "$n" daemon status 2>/dev/null | awk '$1 == "vrrp" && $2 == "instance" && $3 == "VI_1"')
        [[ " $line " == *" state $st "* ]]
    fi
}
ia_expect() {
    local n=$1 st=$2 secs=${3:-10} t
    t=$(wait_for_ia "$secs" "$n (${KIND[$n]}) $st" ia_in_state "$n" "$st")
    e2e_log "ok: $n (${KIND[$n]}) $st (within $t ms)"
}
# ia_hold NODE STATE SECS: NODE stays in STATE for SECS seconds.
ia_hold() {
    local n=$1 st=$2 secs=$3 end
    end=$(($(now_ms) + secs * 1000))
    while (($(now_ms) < end)); do
        ia_in_state "$n" "$st" || { ia_states >&2; e2e_fail "$n (${KIND[$n]}) left $st (now: $(ia_last_state "$n"))"; }
        sleep 0.2
    done
    e2e_log "ok: $n (${KIND[$n]}) stayed $st for ${secs}s"
}
wait_for_ia() {
    local secs=$1 what=$2 start
    shift 2
    start=$(now_ms)
    until "$@" >/dev/null 2>&1; do
        (($(now_ms) - start < secs * 1000)) || { ia_states >&2; e2e_fail "timed out after ${secs}s waiting for: $what"; }
        sleep 0.1
    done
    echo $(($(now_ms) - start))
}
ia_states() {
    local n
    for n in a b; do
        echo "--- $n (${KIND[$n]:-none}): notify $(tail -n 3 "$T/notify-$n.log" 2>/dev/null | tr '\n' ';') VIP on eth0: $(ia_has_vip "$n" && echo yes || echo no)"
        [[ ${KIND[$n]:-} == lvsd && -S $(ia_sock "$n") ]] && ia_lvsadm "$n" daemon status 2>&1 | grep -i vrrp
        tail -n 5 "$T/$n-${KIND[$n]:-lvsd}.log" 2>/dev/null
    done
    return 0
}
# The client's ARP entry for the VIP after a fresh resolution: the MASTER's MAC.
client_arp_is() {
    local n=$1 mac
    ip netns exec "$P-client" ip neigh flush dev eth0 2>/dev/null || true
    ip netns exec "$P-client" ping -c1 -W1 "$VIP" >/dev/null 2>&1 || true
    mac=$(ip netns exec "$P-client" ip -4 neigh show "$VIP" dev eth0 | awk '{ for (k = 1; k < NF; k++) if ($k == "lladdr") print $(k + 1) }')
    [[ $mac == "${IA_MAC[$n]}" ]] || e2e_fail "client's ARP entry for $VIP: '$mac', want $n's ${IA_MAC[$n]}"
    e2e_log "ok: client's ARP entry for $VIP is $n's MAC ($mac)"
}
e2e_on_exit ia_dump "$T"

# ------------------------------------------------------------------- cases

e2e_log "== 1. v2 + PASS: $LVSD_KIND MASTER 150 (a) / keepalived BACKUP 100 (b)"
peer_start a "$LVSD_KIND" "$(ia_conf a MASTER 150)"
peer_start b keepalived "$(ia_conf b BACKUP 100)"
ia_expect a MASTER 10
ia_expect b BACKUP 10
client_arp_is a
peer_stop a
ia_expect b MASTER 5
client_arp_is b
peer_start a "$LVSD_KIND" "$T/a.conf"
ia_expect a MASTER 10
ia_expect b BACKUP 10
client_arp_is a
peers_reset

e2e_log "== 2. v2 + PASS, the reverse: keepalived MASTER 150 (a) / $LVSD_KIND BACKUP 100 (b)"
peer_start a keepalived "$(ia_conf a MASTER 150)"
peer_start b "$LVSD_KIND" "$(ia_conf b BACKUP 100)"
ia_expect a MASTER 10
ia_expect b BACKUP 10
client_arp_is a
peer_stop a
ia_expect b MASTER 5
client_arp_is b
peer_start a keepalived "$T/a.conf"
ia_expect a MASTER 10
ia_expect b BACKUP 10
peers_reset

e2e_log "== 3. nopreempt: the lower one MASTER alone, the higher one (BACKUP nopreempt) joins"
peer_start a "$LVSD_KIND" "$(ia_conf a BACKUP 100 nopreempt)"
ia_expect a MASTER 10
peer_start b keepalived "$(ia_conf b BACKUP 150 nopreempt)"
ia_expect b BACKUP 10
ia_hold b BACKUP 5
ia_hold a MASTER 1
peers_reset
peer_start a keepalived "$(ia_conf a BACKUP 100 nopreempt)"
ia_expect a MASTER 10
peer_start b "$LVSD_KIND" "$(ia_conf b BACKUP 150 nopreempt)"
ia_expect b BACKUP 10
ia_hold b BACKUP 5
ia_hold a MASTER 1
peers_reset

e2e_log "== 4. a wrong PASS password: no election, both MASTER"
peer_start a "$LVSD_KIND" "$(ia_conf a MASTER 150)"
peer_start b keepalived "$(ia_conf b BACKUP 100 pass=wrongpw)"
ia_expect a MASTER 10
ia_expect b MASTER 10
ia_hold a MASTER 2
if [[ $LVSD_KIND == lvsd ]]; then
    status=$(ia_lvsadm a daemon status 2>&1 || true)
    # The counter of VRRPRejection.authPassword ("auth-password N", "auth-password: N", or
    # "auth-password=N" on a vrrp line).
    rejected=$(grep -Ei 'vrrp' <<<"$status" | grep -Eio 'auth-password[^0-9]{0,3}[0-9]+' | grep -Eo '[0-9]+$' | sort -n | tail -n 1 || true)
    grep -Ei 'vrrp.*(reject|auth)' <<<"$status" >&2 || true
    assert_ge 1 "${rejected:-0}" "lvsd counts keepalived's adverts with the wrong password (auth-password on a vrrp line of daemon status)"
else
    grep -i 'passw\|auth' "$T/a-keepalived.log" | tail -n 2 >&2 || true
fi
peers_reset

e2e_log "== 5. VRRPv3 over IPv4: $LVSD_KIND MASTER 150 (a) / keepalived BACKUP 100 (b)"
peer_start a "$LVSD_KIND" "$(ia_conf a MASTER 150 v3)"
peer_start b keepalived "$(ia_conf b BACKUP 100 v3)"
ia_expect a MASTER 10
ia_expect b BACKUP 10
peer_stop a
ia_expect b MASTER 5
peers_reset

e2e_log "== 6. VRRPv3 over IPv6 ($VIP6): keepalived MASTER 150 (a) / $LVSD_KIND BACKUP 100 (b)"
peer_start a keepalived "$(ia_conf a MASTER 150 v6)"
peer_start b "$LVSD_KIND" "$(ia_conf b BACKUP 100 v6)"
ia_expect a MASTER 10
ia_expect b BACKUP 10
peer_stop a
ia_expect b MASTER 5
peer_start a keepalived "$T/a.conf"
ia_expect a MASTER 10
ia_expect b BACKUP 10
peers_reset

e2e_log "== 7. unicast (unicast_src_ip / unicast_peer), v2 + PASS: $LVSD_KIND MASTER 150 (a) / keepalived BACKUP 100 (b)"
peer_start a "$LVSD_KIND" "$(ia_conf a MASTER 150 unicast)"
peer_start b keepalived "$(ia_conf b BACKUP 100 unicast)"
ia_expect a MASTER 10
ia_expect b BACKUP 10
peer_stop a
ia_expect b MASTER 5
peer_start a "$LVSD_KIND" "$T/a.conf"
ia_expect a MASTER 10
ia_expect b BACKUP 10
peers_reset
touch "$T/passed"
e2e_log "PASS"
