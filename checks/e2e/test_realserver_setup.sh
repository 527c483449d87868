#!/usr/bin/env bash
# e2e-planes: afpacket
# lvsadm realserver in a fresh namespace (veth to a second one): status
# fails before; up puts the VIP on lo and sets arp_ignore=1/arp_announce=2;
# up again is idempotent; status exits 0; down restores the previous values
# and removes the address.
#   Part 1 runs with a private, empty /run/lvsd (a mount namespace).
#   Part 2 uses the real /run/lvsd with the same VIP in two namespaces, as
#   the lab's rs1 and rs2 do: each namespace must get its own values back.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
[[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces)"
e2e_trap
P="e2e$$-$((RANDOM % 10000))"
LVSADM=$(lvs_bin)/lvsadm
# A VIP no other test or lab uses.
VIPR=10.$((RANDOM % 200 + 20)).$((RANDOM % 250)).$((RANDOM % 250 + 1))
NSS=("$P-rsa" "$P-rsb" "$P-rsc")
cleanup_rs() {
    local n
    for n in "$@"; do
        ip netns exec "$n" "$LVSADM" realserver down --vip "$VIPR" --dev eth0 >/dev/null 2>&1 || true
        ip netns del "$n" 2>/dev/null || true
    done
    rm -f "/run/lvsd/realserver-$VIPR.state"
}
e2e_on_exit cleanup_rs "${NSS[@]}"
export LVSADM VIPR

for n in "${NSS[@]}"; do ip netns add "$n"; done
ip -n "$P-rsa" link add eth0 type veth peer name eth0 netns "$P-rsb"
ip -n "$P-rsc" link add eth0 type veth peer name peer0
for n in "${NSS[@]}"; do
    ip -n "$n" link set lo up
    ip -n "$n" link set eth0 up
done
ip -n "$P-rsa" addr add 10.255.0.1/24 dev eth0
ip -n "$P-rsb" addr add 10.255.0.2/24 dev eth0

sysv() { ip netns exec "$1" cat "/proc/sys/net/ipv4/conf/$2/$3"; }
# A namespace's six values, "all.arp_ignore=... lo... eth0...".
values() {
    local ifc k out=""
    for ifc in all lo eth0; do for k in arp_ignore arp_announce; do out+="$ifc.$k=$(sysv "$1" $ifc $k) "; done; done
    echo "${out% }"
}
# preset NS A B: non-default previous values, so a restore is visible.
preset() {
    ip netns exec "$1" sysctl -qw net.ipv4.conf.eth0.arp_announce="$2" net.ipv4.conf.all.arp_ignore="$3"
}
vip_count() { ip -n "$1" -4 -o addr show dev lo | grep -c " $VIPR/32 " || true; }
rs() { local n=$1; shift; ip netns exec "$n" "$@" "$LVSADM" realserver; }

# check_cycle NS [PREFIX-CMD...]: the whole up/up/status/down cycle in NS.
check_cycle() {
    local n=$1 before after out rc
    shift
    before=$(values "$n")
    rc=0; out=$(ip netns exec "$n" "$@" "$LVSADM" realserver status --vip "$VIPR" --dev eth0 2>&1) || rc=$?
    echo "$out"
    ((rc != 0)) || e2e_fail "$n: status exited 0 before up"
    e2e_log "ok: $n: status before up exits $rc"
    out=$(ip netns exec "$n" "$@" "$LVSADM" realserver up --vip "$VIPR" --dev eth0 2>&1) || { echo "$out"; e2e_fail "$n: up failed"; }
    echo "$out"
    assert_eq 1 "$(vip_count "$n")" "$n: $VIPR/32 on lo after up"
    assert_eq "all.arp_ignore=1 all.arp_announce=2 lo.arp_ignore=1 lo.arp_announce=2 eth0.arp_ignore=1 eth0.arp_announce=2" \
        "$(values "$n")" "$n: sysctls after up"
    out=$(ip netns exec "$n" "$@" "$LVSADM" realserver up --vip "$VIPR" --dev eth0 2>&1) || { echo "$out"; e2e_fail "$n: second up failed"; }
    assert_eq 1 "$(vip_count "$n")" "$n: still one $VIPR/32 on lo after a second up"
    assert_eq "all.arp_ignore=1 all.arp_announce=2 lo.arp_ignore=1 lo.arp_announce=2 eth0.arp_ignore=1 eth0.arp_announce=2" \
        "$(values "$n")" "$n: sysctls after a second up"
    out=$(ip netns exec "$n" "$@" "$LVSADM" realserver status --vip "$VIPR" --dev eth0 2>&1) || { echo "$out"; e2e_fail "$n: status after up exited non-zero"; }
    e2e_log "ok: $n: status after up exits 0"
}
check_down() {
    local n=$1 before=$2 out
    shift 2
    out=$(ip netns exec "$n" "$@" "$LVSADM" realserver down --vip "$VIPR" --dev eth0 2>&1) || { echo "$out"; e2e_fail "$n: down failed"; }
    echo "$out"
    assert_eq 0 "$(vip_count "$n")" "$n: $VIPR gone from lo after down"
    assert_eq "$before" "$(values "$n")" "$n: sysctls restored by down"
}

# ---- part 1: private /run/lvsd (tmpfs in a mount namespace of our own)
preset "$P-rsa" 1 0
before=$(values "$P-rsa")
e2e_log "$P-rsa before: $before"
part1() {
    mount -t tmpfs e2e-lvsd /run/lvsd
    check_cycle "$P-rsa"
    check_down "$P-rsa" "$before"
}
export -f part1 check_cycle check_down values sysv vip_count assert_eq assert_match e2e_fail e2e_log
export P before E2E_NAME
mkdir -p /run/lvsd
with_timeout 60 unshare --mount --propagation private bash -euo pipefail -c part1 || e2e_fail "part 1 (private /run/lvsd) failed"

# ---- part 2: real /run/lvsd, the same VIP in two namespaces
preset "$P-rsb" 0 0
preset "$P-rsc" 1 2
before_b=$(values "$P-rsb")
before_c=$(values "$P-rsc")
e2e_log "$P-rsb before: $before_b; $P-rsc before: $before_c"
check_cycle "$P-rsb"
check_cycle "$P-rsc"
check_down "$P-rsc" "$before_c"
check_down "$P-rsb" "$before_b"
e2e_log "PASS"
