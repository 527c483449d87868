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

# The check can fail: a scheduler lvsd does not know, in a copy of each kind.
sed 's/lb_algo rr/lb_algo no-such-scheduler/' "$root/docs/samples/keepalived-dr-http-get.conf" >"$tmp/broken.conf"
rc=0; timeout 30 "$lvsd" --check-config "$tmp/broken.conf" >/dev/null 2>&1 || rc=$?
if ((rc != 0)); then ok "a keepalived.conf with an unknown scheduler fails (exit $rc)"; else bad "a broken keepalived.conf passed"; fi
sed '0,/-s rr/s//-s no-such-scheduler/' "$root/docs/samples/ipvsadm.rules" >"$tmp/broken.rules"
rc=0; timeout 30 "$lvsd" --check-config "$tmp/broken.rules" >/dev/null 2>&1 || rc=$?
if ((rc != 0)); then ok "an ipvsadm rules file with an unknown scheduler fails (exit $rc)"; else bad "a broken rules file passed"; fi

echo "$pass passed, $fail failed"
((fail == 0))
