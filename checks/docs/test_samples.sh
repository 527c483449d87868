#!/usr/bin/env bash
# Every sample in docs/samples/ loads, and the keepalived.conf in README.md: each keepalived.conf sample (*.conf) with
# `lvsd --check-config` (exit 0, read as keepalived.conf), each ipvsadm rules sample (*.rules, the
# input of `lvsadm -R`) the same way (lvsd reads ipvsadm-save files with lvsadm's restore grammar:
# exit 0, read as ipvsadm rules). A sample of another kind fails the test, and so does a copy of a
# sample with an error in it (the check can fail). The ECMP routing samples load in their daemons' own
# checkers: bird-*.conf with `bird -p`, frr-*.conf with `vtysh --dryrun`; a keepalived.conf sample's
# `# lvsd-options:` line is passed to lvsd with it (the options parse). No daemon is started; nothing
# touches the network.
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

# check FILE KIND: lvsd --check-config exits 0 and read FILE as KIND (with the options of FILE's
# "# lvsd-options:" line, if it has one)
check() {
    local f=$1 kind=$2 rc=0 out opts=()
    read -r -a opts < <(sed -n 's/^# lvsd-options: //p' "$f" | head -n 1) || true
    out=$(timeout 30 "$lvsd" "${opts[@]}" --check-config "$f" 2>&1) || rc=$?
    if ((rc == 0)) && [[ $out == *"$kind"*"configuration is valid"* ]]; then
        ok "$(basename "$f"): $kind, valid"
    else
        bad "$(basename "$f"): exit $rc, want 0 and '$kind': $out"
    fi
}

# routing_check FILE DAEMON: BIRD's or FRR's own configuration check of FILE (exit status).
routing_check() {
    case $2 in
    bird) timeout 30 bird -p -c "$1" ;;
    frr) timeout 30 vtysh --dryrun -f "$1" ;;
    esac
}
# check_routing FILE DAEMON: FILE passes DAEMON's check; skipped when DAEMON is not installed.
check_routing() {
    local f=$1 d=$2 rc=0 out cmd=bird
    [[ $d == frr ]] && cmd=vtysh
    if ! command -v "$cmd" >/dev/null; then
        echo "SKIP: $(basename "$f"): no $cmd (scripts/deps.sh installs it)"
        return 0
    fi
    out=$(routing_check "$f" "$d" 2>&1) || rc=$?
    if ((rc == 0)); then ok "$(basename "$f"): $d accepts it"; else bad "$(basename "$f"): $d's check exit $rc: $out"; fi
    # the check can fail: the same file with an unknown word
    sed '0,/^router\|^protocol bgp/s//no-such-statement\n&/' "$f" >"$tmp/broken-$d.conf"
    rc=0; routing_check "$tmp/broken-$d.conf" "$d" >/dev/null 2>&1 || rc=$?
    if ((rc != 0)); then ok "$(basename "$f") with an unknown statement fails in $d (exit $rc)"; else bad "$(basename "$f") with an unknown statement passed $d's check"; fi
}

shopt -s nullglob
samples=("$root"/docs/samples/*)
((${#samples[@]})) || bad "no samples in docs/samples"
nconf=0 nrules=0
nrouting=0
for f in "${samples[@]}"; do
    case $f in
    */bird-*.conf) check_routing "$f" bird; nrouting=$((nrouting + 1)) ;;
    */frr-*.conf) check_routing "$f" frr; nrouting=$((nrouting + 1)) ;;
    *.conf) check "$f" "keepalived.conf"; nconf=$((nconf + 1)) ;;
    *.rules) check "$f" "ipvsadm rules"; nrules=$((nrules + 1)) ;;
    *) bad "$(basename "$f"): neither a keepalived.conf sample (*.conf) nor an ipvsadm rules sample (*.rules)" ;;
    esac
done
((nconf > 0 && nrules > 0)) || bad "want at least one sample of each kind (*.conf: $nconf, *.rules: $nrules)"
((nrouting >= 2)) || bad "want the ECMP routing samples (bird-*.conf, frr-*.conf): $nrouting"

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
    trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"' EXIT
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
# A sample's "# lvsd-options:" line is used: an option lvsd does not know fails the check.
sed 's/^# lvsd-options: /&--no-such-option /' "$root/docs/samples/keepalived-ecmp-director.conf" >"$tmp/broken-options.conf"
out=$(check "$tmp/broken-options.conf" "keepalived.conf")
if [[ $out == FAIL:*"--no-such-option"* ]]; then ok "a sample whose lvsd-options line has an unknown option fails"; else bad "an unknown option in an lvsd-options line passed: $out"; fi
sed '0,/-s rr/s//-s no-such-scheduler/' "$root/docs/samples/ipvsadm.rules" >"$tmp/broken.rules"
rc=0; timeout 30 "$lvsd" --check-config "$tmp/broken.rules" >/dev/null 2>&1 || rc=$?
if ((rc != 0)); then ok "an ipvsadm rules file with an unknown scheduler fails (exit $rc)"; else bad "a broken rules file passed"; fi

echo "$pass passed, $fail failed"
((fail == 0))
