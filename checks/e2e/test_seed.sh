#!/usr/bin/env bash
# The seed, end to end, with lvsd as the director: `lvs-lab up` applies the
# seed's three ipvsadm commands through lvsadm, `lvs-lab verify` passes, its
# 4 requests alternate strictly between the real servers (rr starts with the
# newest destination, .32, so 02 01 02 01 is expected; only strict
# alternation is checked) and `lvsadm -Ln --stats` shows 2 connections per
# destination.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd

out=$(with_timeout 180 lab verify 2>&1) || { echo "$out"; e2e_fail "lvs-lab verify failed"; }
echo "$out"

read -r -a answers <<<"$(grep -m1 '^answers:' <<<"$out" | cut -d: -f2)"
assert_eq 4 "${#answers[@]}" "number of answers"
for i in 1 2 3; do
    [[ ${answers[i]} =~ ^0[12]$ && ${answers[i - 1]} =~ ^0[12]$ ]] || e2e_fail "bad answers: ${answers[*]}"
    [[ ${answers[i]} != "${answers[i - 1]}" ]] || e2e_fail "rr does not alternate: ${answers[*]}"
done
e2e_log "ok: rr alternates: ${answers[*]}"

stats=$(lab_lvsadm -Ln --stats) || e2e_fail "lvsadm -Ln --stats failed"
echo "$stats"
for rip in 192.168.1.31 192.168.1.32; do
    conns=$(awk -v d="$rip:80" '$1=="->" && $2==d {print $3}' <<<"$stats")
    assert_eq 2 "$conns" "conns on $rip:80"
done
e2e_log "PASS"
