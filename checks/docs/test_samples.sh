#!/usr/bin/env bash
# Every sample in docs/samples/ loads, and the keepalived.conf in README.md: each keepalived.conf sample (*.conf) with
# `lvsd --check-config` (exit 0, read as keepalived.conf), each ipvsadm rules sample (*.rules, the
# input of `lvsadm -R`) the same way (lvsd reads ipvsadm-save files with lvsadm's restore grammar:
# exit 0, read as ipvsadm rules). A sample of another kind fails the test, and so does a copy of a
# sample with an error in it (the check can fail). No daemon is started; nothing touches the network.
# LVS_BIN: the directory with lvsd (default: swift build's debug bin path). Exit 0 pass, 1 fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${LVS_BIN:-$(cd "$root" && timeout 300 swift build --show-bin-path)}
lvsd=$bin/lvsd
[[ -x $lvsd ]] || { echo "FAIL: no lvsd at $lvsd (swift build first, or set LVS_BIN)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }

# check FILE KIND: lvsd --check-config exits 0 and read FILE as KIND
check() {
    local f=$1 kind=$2 rc=0 out
    out=$(timeout 30 "$lvsd" --check-config "$f" 2>&1) || rc=$?
    if ((rc == 0)) && [[ $out == *"$kind"*"configuration is valid"* ]]; then
        ok "$(basename "$f"): $kind, valid"
    else
        bad "$(basename "$f"): exit $rc, want 0 and '$kind': $out"
    fi
}

shopt -s nullglob
samples=("$root"/docs/samples/*)
((${#samples[@]})) || bad "no samples in docs/samples"
nconf=0 nrules=0
for f in "${samples[@]}"; do
    case $f in
    *.conf) check "$f" "keepalived.conf"; nconf=$((nconf + 1)) ;;
    *.rules) check "$f" "ipvsadm rules"; nrules=$((nrules + 1)) ;;
    *) bad "$(basename "$f"): neither a keepalived.conf sample (*.conf) nor an ipvsadm rules sample (*.rules)" ;;
    esac
done
((nconf > 0 && nrules > 0)) || bad "want at least one sample of each kind (*.conf: $nconf, *.rules: $nrules)"

# The keepalived.conf shown in README.md loads too.
awk '/^virtual_server /, /^}$/' "$root/README.md" >"$tmp/readme.conf"
if [[ -s $tmp/readme.conf ]]; then check "$tmp/readme.conf" "keepalived.conf"; else bad "README.md shows no virtual_server block"; fi

# The HA pair samples (keepalived-ha-*.conf, with VRRP) load in keepalived 2.2.7 too: `keepalived -t`
# exits 0. keepalived checks that the interfaces exist, so it runs in a network namespace of this
# test's own that holds them (veth pairs, removed on exit). Needs root and keepalived (scripts/deps.sh).
ns=lvsdoc-ka-$$
ha=("$root"/docs/samples/keepalived-ha-*.conf)
((${#ha[@]})) || bad "no HA pair sample (docs/samples/keepalived-ha-*.conf)"
if ((${#ha[@]})) && command -v keepalived >/dev/null && ((EUID == 0)); then
    trap 'ip netns del "$ns" 2>/dev/null; rm -rf "$tmp"' EXIT
    ip netns add "$ns"
    for f in "${ha[@]}"; do
        for ifname in $(awk '$1 == "interface" || $1 == "lvs_sync_daemon" { print $2 }' "$f" | sort -u); do
            ip netns exec "$ns" ip link show "$ifname" >/dev/null 2>&1 ||
                ip -n "$ns" link add "$ifname" type veth peer name "p$RANDOM"
            ip -n "$ns" link set "$ifname" up
        done
        rc=0; out=$(timeout 30 ip netns exec "$ns" keepalived -l -D -t -f "$f" 2>&1) || rc=$?
        if ((rc == 0)); then ok "$(basename "$f"): keepalived -t accepts it"; else bad "$(basename "$f"): keepalived -t exit $rc: $out"; fi
    done
    ip netns del "$ns"
elif ((${#ha[@]})); then
    echo "SKIP: keepalived -t on the HA samples (needs root and keepalived)"
fi

# The check can fail: a scheduler lvsd does not know, in a copy of each kind.
sed 's/lb_algo rr/lb_algo no-such-scheduler/' "$root/docs/samples/keepalived-dr-http-get.conf" >"$tmp/broken.conf"
rc=0; timeout 30 "$lvsd" --check-config "$tmp/broken.conf" >/dev/null 2>&1 || rc=$?
if ((rc != 0)); then ok "a keepalived.conf with an unknown scheduler fails (exit $rc)"; else bad "a broken keepalived.conf passed"; fi
# The HA sample's VRRP is read, not skipped; keepalived's VRRP errors fail the check (an unknown
# authentication type: exit 5, as keepalived -t).
for f in "${ha[@]}"; do
    out=$(timeout 30 "$lvsd" --check-config "$f" 2>&1) || true
    if [[ $out == *"1 VRRP instances"* ]]; then ok "$(basename "$f"): its vrrp_instance is read"; else bad "$(basename "$f"): no VRRP instance read: $out"; fi
    sed 's/auth_type PASS/auth_type pass/' "$f" >"$tmp/broken-ha.conf"
    rc=0; out=$(timeout 30 "$lvsd" --check-config "$tmp/broken-ha.conf" 2>&1) || rc=$?
    if ((rc == 5)) && [[ $out == *"unknown authentication type 'pass'"* ]]; then ok "$(basename "$f") with auth_type pass fails (exit 5)"; else bad "$(basename "$f") with auth_type pass: exit $rc: $out"; fi
done
sed '0,/-s rr/s//-s no-such-scheduler/' "$root/docs/samples/ipvsadm.rules" >"$tmp/broken.rules"
rc=0; timeout 30 "$lvsd" --check-config "$tmp/broken.rules" >/dev/null 2>&1 || rc=$?
if ((rc != 0)); then ok "an ipvsadm rules file with an unknown scheduler fails (exit $rc)"; else bad "a broken rules file passed"; fi

echo "$pass passed, $fail failed"
((fail == 0))
