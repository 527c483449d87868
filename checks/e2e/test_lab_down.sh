#!/usr/bin/env bash
# e2e-planes: afpacket
# `lvs-lab down` is idempotent and cleans up after a crash: with the state
# directory gone and services killed hard, it still removes every process
# and namespace of the lab; on a lab that does not exist it succeeds.
source "$(dirname "$0")/lib.sh"

lab_start --director nft

pids=()
for node in rs1 rs2; do
    for p in $(ip netns pids "$LAB_PREFIX-$node"); do pids+=("$p"); done
done
assert_ge 4 "${#pids[@]}" "services running in the real servers"

# A crash: the echo server dies hard and the state directory is lost.
kill -KILL "$(cat "$LAB_STATE/rs1/udp-echo.pid")"
rm -rf "$LAB_STATE"

with_timeout 60 lab down || e2e_fail "down after a crash failed"
for p in "${pids[@]}"; do
    [[ ! -d /proc/$p ]] || e2e_fail "process $p survived down: $(tr '\0' ' ' </proc/"$p"/cmdline)"
done
left=$(ip netns list | awk '{print $1}' | grep -c "^$LAB_PREFIX-" || true)
assert_eq 0 "$left" "namespaces left after down"

with_timeout 60 lab down || e2e_fail "second down failed"
with_timeout 60 "$LVS_LAB" down --prefix "e2e-none-$$" || e2e_fail "down of a lab that never existed failed"
out=$(with_timeout 30 lab status)
assert_match "$out" 'no namespaces' "status after down"
e2e_log "PASS"
