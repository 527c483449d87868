#!/usr/bin/env bash
# e2e-planes: afpacket
# keepalived 2.2.7 still gives the verdicts lvsd's VRRP grammar is tested against: each case of
# keepalived-vrrp-verdicts.txt (a small keepalived.conf, keepalived's exit status and texts it
# prints) goes through `keepalived -t` in a network namespace of this test's own that holds the
# interfaces the cases name (eth0, ifb0, ifb1: veth pairs); then `lvsd --check-config` on the
# same file exits the same and prints each text. KeepalivedVRRPTests reads the same file.
# Skips without root or keepalived. No traffic: keepalived -t and lvsd only read the files.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
[[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces)"
command -v keepalived >/dev/null || e2e_skip "keepalived not installed (apt keepalived)"
e2e_trap
tmp=$(e2e_tmpdir)
lvsd=$(lvs_bin)/lvsd
ns=lvsvrdt-$$
ip netns add "$ns"
e2e_on_exit ip netns del "$ns"
for ifname in eth0 ifb0 ifb1; do
    ip -n "$ns" link add "$ifname" type veth peer name "p-$ifname"
    ip -n "$ns" link set "$ifname" up
done

# Split the table: case N -> $tmp/N.conf, $tmp/N.exit, $tmp/N.texts.
awk -v dir="$tmp" '
    /^=== / { n++; print $2 > (dir "/" n ".exit"); printf "" > (dir "/" n ".texts"); printf "" > (dir "/" n ".conf"); next }
    n == 0 { next }
    /^>>> / { print substr($0, 5) >> (dir "/" n ".texts"); next }
    { print >> (dir "/" n ".conf") }
' "$E2E_DIR/keepalived-vrrp-verdicts.txt"
cases=$(find "$tmp" -name '*.exit' | wc -l)
((cases > 50)) || e2e_fail "the verdict table holds $cases cases, want more than 50"

failed=0
for ((n = 1; n <= cases; n++)); do
    f=$tmp/$n.conf
    want=$(cat "$tmp/$n.exit")
    rc=0; kout=$(timeout 20 ip netns exec "$ns" keepalived -l -D -t -f "$f" 2>&1) || rc=$?
    lrc=0; lout=$(timeout 20 "$lvsd" --check-config "$f" 2>&1) || lrc=$?
    problems=()
    [[ $rc == "$want" ]] || problems+=("keepalived exit $rc, table says $want")
    [[ $lrc == "$want" ]] || problems+=("lvsd exit $lrc, table says $want")
    while IFS= read -r text; do
        [[ -n $text ]] || continue
        grep -qiF -- "$text" <<<"$kout" || problems+=("keepalived no longer prints: $text")
        grep -qiF -- "$text" <<<"$lout" || problems+=("lvsd does not print: $text")
    done <"$tmp/$n.texts"
    if ((${#problems[@]})); then
        failed=$((failed + 1))
        e2e_log "case $n: $(printf '%s; ' "${problems[@]}")"
        sed 's/^/    conf: /' "$f" >&2
        sed 's/^/    keepalived: /' <<<"$kout" >&2
        sed 's/^/    lvsd: /' <<<"$lout" >&2
    fi
done
assert_eq 0 "$failed" "cases where keepalived 2.2.7 or lvsd differ from the table (of $cases)"
e2e_log "PASS"
