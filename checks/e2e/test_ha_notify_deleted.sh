#!/usr/bin/env bash
# e2e-planes: afpacket
# The notify scripts of a reload that deletes instances, lvsd against keepalived 2.2.7 itself.
# The same two files run through `keepalived --vrrp` (SIGHUP) and then through lvsd (lvsadm daemon
# reload), each with scripts that log their name and arguments:
#   a.conf: VI_1 (notify_fault + notify), VI_2 (notify_fault + notify + notify_deleted SCRIPT),
#           VI_3 (notify + bare notify_deleted), all MASTER at once (priority 255), and VI_4
#           (BACKUP, notify_fault + notify, advert_int 10: BACKUP for the whole test);
#   b.conf: none of them, a new VI_0 (BACKUP).
# keepalived 2.2.7 runs `notify ... FAULT` (and not notify_fault) for VI_1 and VI_4, the
# notify_deleted script and `notify ... DELETED` for VI_2, `notify ... DELETED` for VI_3, and
# `notify ... BACKUP` for VI_0. lvsd must run the same scripts with the same arguments.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vrrp_segment_lib.sh"
vs_setup 81
command -v keepalived >/dev/null || e2e_fail "keepalived is not installed (scripts/deps.sh installs it)"

for s in fault any deleted; do
    printf '#!/bin/sh\necho "%s $*" >>"%s/notify.log"\n' "$s" "$T" >"$T/$s.sh"
    chmod 755 "$T/$s.sh"
done
instance() { # NAME VRID PRIORITY ADVERT_INT VIP LINES...
    local name=$1 vrid=$2 prio=$3 adv=$4 vip=$5 line
    shift 5
    echo "vrrp_instance $name {"
    echo " interface eth0"
    echo " virtual_router_id $vrid"
    echo " priority $prio"
    ((prio == 255)) && echo " state MASTER"
    echo " advert_int $adv"
    echo " virtual_ipaddress { $vip/32 }"
    for line in "$@"; do echo " $line"; done
    echo "}"
}
globals=$'global_defs {\n script_user root\n enable_script_security\n}'
{
    echo "$globals"
    instance VI_1 81 255 1 192.168.1.101 "notify_fault $T/fault.sh" "notify $T/any.sh"
    instance VI_2 82 255 1 192.168.1.102 "notify_fault $T/fault.sh" "notify $T/any.sh" "notify_deleted $T/deleted.sh"
    instance VI_3 83 255 1 192.168.1.103 "notify $T/any.sh" "notify_deleted"
    instance VI_4 84 100 10 192.168.1.104 "notify_fault $T/fault.sh" "notify $T/any.sh"
} >"$T/first.conf"
{
    echo "$globals"
    instance VI_0 80 100 10 192.168.1.110 "notify $T/any.sh"
} >"$T/second.conf"

# wait_lines N WHAT: until notify.log has N lines (10 s).
wait_lines() {
    local deadline=$((SECONDS + 10))
    until [[ $(wc -l 2>/dev/null <"$T/notify.log" || echo 0) -ge $1 ]]; do
        ((SECONDS < deadline)) || e2e_fail "$2: notify.log has $(wc -l 2>/dev/null <"$T/notify.log" || echo 0) lines, want $1: $(tr '\n' ';' <"$T/notify.log" 2>/dev/null)"
        sleep 0.1
    done
    sleep 0.5 # and no more
}

# 1. keepalived 2.2.7
cp "$T/first.conf" "$T/k.conf"
setsid ip netns exec "$P-a" keepalived --vrrp -n -l -D -f "$T/k.conf" -p "$T/k.pid" -r "$T/k-vrrp.pid" \
    >"$T/keepalived.log" 2>&1 </dev/null &
kpid=$!
e2e_on_exit kill_quiet "$kpid"
wait_lines 4 "keepalived's start (VI_1-3 MASTER, VI_4 BACKUP)"
: >"$T/notify.log"
cp "$T/second.conf" "$T/k.conf"
kill -HUP "$kpid"
wait_lines 6 "keepalived's reload"
sort "$T/notify.log" >"$T/keepalived.notify"
kill -TERM "$kpid"
wait_for 15 "keepalived exits" bash -c "! kill -0 $kpid 2>/dev/null" >/dev/null
e2e_log "keepalived 2.2.7's notifies at the reload:"
sed 's/^/    /' "$T/keepalived.notify" >&2

# 2. lvsd, the same files
: >"$T/notify.log"
cp "$T/first.conf" "$T/a.conf"
vs_start_lvsd
wait_lines 4 "lvsd's start (VI_1-3 MASTER, VI_4 BACKUP)"
: >"$T/notify.log"
cp "$T/second.conf" "$T/a.conf"
out=$(ip netns exec "$P-a" env LVSD_SOCKET="$SOCK" timeout 20 "$(lvs_bin)/lvsadm" daemon reload 2>&1) || e2e_fail "reload failed: $out"
assert_match "$out" "VRRP: 0 instances kept \(0 changed\), 1 added, 4 removed" "lvsd's reload answer"
wait_lines 6 "lvsd's reload"
sort "$T/notify.log" >"$T/lvsd.notify"
e2e_log "lvsd's notifies at the reload:"
sed 's/^/    /' "$T/lvsd.notify" >&2

assert_eq "$(cat "$T/keepalived.notify")" "$(cat "$T/lvsd.notify")" "the notify scripts run at the reload (lvsd against keepalived 2.2.7)"
grep -q '^fault' "$T/lvsd.notify" && e2e_fail "notify_fault ran for a deleted instance"
touch "$T/passed"
e2e_log PASS
