#!/usr/bin/env bash
# The BPF programs' fwmark trie is bounded (16 protocol/port ranges per prefix, 4,096 prefixes).
# Rules beyond that are refused at start on afxdp, xdp and tc (exit 1, the prefix named), and
# `--dataplane auto` then picks afpacket, which has no such limit. Runs once: it starts lvsd with
# each data plane itself, in a namespace of its own (a veth pair, no lab).
# e2e-planes: afpacket
source "$(dirname "$0")/lib.sh"

require_lvs_bins
[[ $(id -u) == 0 ]] || e2e_skip "needs root (network namespaces, BPF)"
NS="e2e$$-fwlim"
e2e_trap
e2e_on_exit ip netns del "$NS"
ip netns add "$NS" || e2e_fail "cannot create namespace $NS"
ip -n "$NS" link add v0 type veth peer name v1 || e2e_fail "cannot create a veth pair in $NS"
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up
tmp=$(e2e_tmpdir)

# 17 single ports 10 apart: nothing merges, one range more than an entry holds.
rules=()
for i in $(seq 0 16); do rules+=(--fwmark "10.0.0.0/24,tcp,$((1000 + i * 10))=1"); done

for plane in afxdp xdp tc; do
    rc=0
    out=$(ip netns exec "$NS" timeout 30 "$(lvs_bin)/lvsd" --interface v0 --socket "$tmp/lvsd.sock" \
        --dataplane "$plane" "${rules[@]}" 2>&1) || rc=$?
    echo "$out" | tail -n 3
    assert_eq 1 "$rc" "$plane: exit status with 17 ranges on one prefix"
    assert_match "$out" "17 protocol/port ranges apply to 10\.0\.0\.0/24, the BPF programs hold at most 16" "$plane: the error names the prefix and the limit"
    links=$(ip -n "$NS" -d link show v0)
    [[ $links != *prog/xdp* ]] || e2e_fail "$plane: an XDP program stayed attached: $links"
    filters=$(ip netns exec "$NS" tc filter show dev v0 ingress 2>&1 || true)
    [[ -z $filters ]] || e2e_fail "$plane: a tc filter stayed: $filters"
done

# auto: the probe falls back to afpacket and lvsd runs.
log=$tmp/auto.log
setsid ip netns exec "$NS" "$(lvs_bin)/lvsd" --interface v0 --socket "$tmp/lvsd.sock" "${rules[@]}" >"$log" 2>&1 </dev/null &
pid=$!
e2e_on_exit kill_quiet "$pid"
wait_for 30 "lvsd (auto) ready" grep -q "lvsd ready" "$log" >/dev/null || { cat "$log"; e2e_fail "lvsd --dataplane auto did not start"; }
grep -E "data plane chosen by probing" "$log" || true
grep -Eq "dataplane=afpacket .*the BPF programs hold at most 16" "$log" ||
    { cat "$log"; e2e_fail "auto did not fall back to afpacket naming the fwmark limit"; }
e2e_log "ok: auto falls back to afpacket"
kill "$pid"
# lvsd writes its state file beside the socket as it stops: wait, so that nothing is left behind.
wait_for 15 "lvsd (auto) exits after SIGTERM" bash -c "! kill -0 $pid 2>/dev/null" >/dev/null
e2e_log "PASS"
