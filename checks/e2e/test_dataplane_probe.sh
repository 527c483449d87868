#!/usr/bin/env bash
# lvsd without --dataplane picks its data plane by probing: on the lab's veths
# the XDP program attaches natively, so it runs afxdp, says so in its log and in
# `lvsadm daemon status` ("chosen by probing"), and the seed's curls work.
# When afxdp cannot be set up (here: --xsk-mode zero-copy, which veth lacks)
# it falls back to afpacket, naming the reason, and still serves; an explicit
# --dataplane afxdp with zero-copy fails clearly instead. Independent of the
# data plane under test: it runs once (with the afpacket suite or on its own).
# e2e-planes: afpacket
source "$(dirname "$0")/lib.sh"

[[ " ${LVS_LAB_LVSD_ARGS:-} " =~ [[:space:]]--dataplane[=[:space:]](afxdp|xdp|tc)[[:space:]] ]] &&
    e2e_skip "probing is tested once, with the afpacket suite"
require_lvs_bins

# two answers through the VIP, from different real servers
two_curls() {
    local a b
    a=$(lab_exec client curl -sS --max-time 5 "http://$VIP/") || e2e_fail "curl 1 failed ($1)"
    b=$(lab_exec client curl -sS --max-time 5 "http://$VIP/") || e2e_fail "curl 2 failed ($1)"
    [[ $a != "$b" ]] || e2e_fail "$1: both answers from one real server: $a"
    e2e_log "ok: $1: answers '$a' '$b'"
}

# 1. default: afxdp chosen by probing
LVS_LAB_LVSD_ARGS="" lab_start --director lvsd
status=$(lab_lvsadm daemon status) || e2e_fail "lvsadm daemon status failed"
echo "$status"
assert_match "$status" '^data plane: afxdp' "the probed default is afxdp on veth"
assert_match "$status" 'chosen by probing: auto: afxdp' "status says it was probed"
assert_match "$status" 'copy mode' "veth has no zero-copy: copy mode"
assert_match "$status" 'BPF object: lvs_xdp.o built into lvsd' "the program swift build put into lvsd is used"
assert_match "$status" 'poll spin: 200 µs' "the default poll spin is shown"
assert_log 'data plane chosen by probing' "the choice is logged"
two_curls "probed afxdp"
assert_lvsd_alive
lab down >/dev/null 2>&1 || e2e_fail "lvs-lab down failed"
LAB_PREFIX=""

# 2. afxdp impossible (zero-copy required on veth): afpacket, with the reason
# (and the workers sleeping in poll(2) at once: --poll-spin-us 0)
LVS_LAB_LVSD_ARGS="--xsk-mode zero-copy --poll-spin-us 0" lab_start --director lvsd
status=$(lab_lvsadm daemon status) || e2e_fail "lvsadm daemon status failed"
echo "$status"
assert_match "$status" '^data plane: afpacket' "fallback to afpacket"
assert_match "$status" 'chosen by probing: auto: afpacket \(afxdp not available: .*AF_XDP socket' "the reason is given"
assert_match "$status" 'poll spin: off' "--poll-spin-us 0 is shown"
two_curls "fallback afpacket"
assert_lvsd_alive

# 3. explicit afxdp with zero-copy on veth: a clear error, non-zero exit
logf=$LAB_STATE/lvsd-zc.log
rc=0
lab_exec director timeout 15 "$(lvs_bin)/lvsd" --interface eth0 --socket "$LAB_STATE/zc.sock" \
    --dataplane afxdp --xsk-mode zero-copy >"$logf" 2>&1 </dev/null || rc=$?
((rc != 0 && rc != 124)) || e2e_fail "lvsd --dataplane afxdp --xsk-mode zero-copy: exit $rc"
last=$(grep -v '^[[:space:]]*$' "$logf" | tail -n 1)
assert_match "$last" "cannot start: .*AF_XDP socket on 'eth0'" "the error names the socket and interface"

# 4. --xdp-object: a file that is missing, or not an object, is named in the error
for bad in "$LAB_STATE/missing.o" "$LAB_STATE/lvsd-zc.log"; do
    rc=0
    lab_exec director timeout 15 "$(lvs_bin)/lvsd" --interface eth0 --socket "$LAB_STATE/obj.sock" \
        --dataplane tc --xdp-object "$bad" >"$LAB_STATE/lvsd-obj.log" 2>&1 </dev/null || rc=$?
    ((rc != 0 && rc != 124)) || e2e_fail "lvsd --xdp-object $bad: exit $rc"
    last=$(grep -v '^[[:space:]]*$' "$LAB_STATE/lvsd-obj.log" | tail -n 1)
    assert_match "$last" "--xdp-object $bad: .*(cannot be read|not an ELF object)" "the error names --xdp-object and the file"
done
e2e_log "PASS"
