#!/usr/bin/env bash
# Firewall-mark services: lvsd classifies frames itself (`--fwmark 192.168.1.100/32,tcp,80-81=1`
# replaces `iptables -t mangle ... -j MARK --set-mark 1`); `lvsadm -A -f 1` balances them, the
# persistence template is keyed by the mark (protocol IP in -Lnc), and `lvsadm -Ln` lists FWM 1.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
# A rules file without services for the seed's VIP:80 (the lab would add TCP 192.168.1.100:80).
printf '%s\n' "# fwmark test: services come from lvsadm below" >"$tmp/empty.rules"
LVS_LAB_LVSD_CONFIG=$tmp/empty.rules LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --fwmark 192.168.1.100/32,tcp,80-81=1" \
    lab_start --director lvsd

lab_lvsadm -A -f 1 -s rr -p 60 || e2e_fail "lvsadm -A -f 1 failed"
for rip in 192.168.1.31 192.168.1.32; do
    lab_lvsadm -a -f 1 -r "$rip" -g || e2e_fail "lvsadm -a -f 1 -r $rip failed"
done
list=$(lab_lvsadm -Ln)
echo "$list"
grep -q "^FWM  1 rr persistent 60" <<<"$list" || e2e_fail "FWM 1 not listed as expected"

# Persistent by mark: every request from the client goes to one real server.
answers=()
for _ in 1 2 3 4; do answers+=("$(curl_rs http://192.168.1.100/ 5)"); done
e2e_log "answers: ${answers[*]}"
for a in "${answers[@]}"; do
    [[ $a == 0[12] ]] || e2e_fail "request failed: $a"
    [[ $a == "${answers[0]}" ]] || e2e_fail "persistence by mark broken: ${answers[*]}"
done
conns=$(lab_lvsadm -Lnc)
echo "$conns"
grep -Eq "^IP +[0-9]+:[0-9]+ +NONE|^IP +[0-9]+:[0-9]+ +ASSURED" <<<"$conns" || e2e_fail "no fwmark template (protocol IP) in -Lnc"
grep -Eq "^IP .* 0\.0\.0\.1:0 " <<<"$conns" || e2e_fail "the template's virtual address is not the mark"

# The rule is listed by lvsd.
status=$(lab_lvsadm daemon status)
echo "$status"
grep -q "fwmark rule: 192.168.1.100/32,tcp,80-81=1" <<<"$status" || e2e_fail "lvsadm daemon status does not list the rule"
e2e_log "PASS"
