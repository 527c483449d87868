#!/usr/bin/env bash
# e2e-planes: afpacket
# keepalived.conf MISC_CHECK: rs1 is checked by a script in the test's temp
# dir that fails (exit 1) while a flag file exists, rs2 by one that always
# succeeds. Creating the flag removes rs1 from `lvsadm -Ln` (and new requests
# go to rs2), removing it restores rs1 with its weight. nginx keeps running:
# only the script's exit status decides.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
flag=$tmp/rs1.down
cat >"$tmp/check_rs1.sh" <<SH
#!/bin/sh
# exit 1 (down) while $flag exists
echo "\$(date +%s.%N) \$*" >>"$tmp/check_rs1.runs"
[ -e "$flag" ] && exit 1
exit 0
SH
printf '#!/bin/sh\nexit 0\n' >"$tmp/check_ok.sh"
chmod 755 "$tmp/check_rs1.sh" "$tmp/check_ok.sh"
conf=$tmp/keepalived.conf
cat >"$conf" <<CONF
global_defs {
    router_id e2e_misc_check
}
virtual_server 192.168.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP

    real_server 192.168.1.31 80 {
        weight 1
        MISC_CHECK {
            misc_path "$tmp/check_rs1.sh rs1 arg2"
            misc_timeout 2
        }
    }
    real_server 192.168.1.32 80 {
        weight 1
        MISC_CHECK {
            misc_path $tmp/check_ok.sh
        }
    }
}
CONF
# MISC_CHECK: retry 0, so one failed run (delay_loop after the previous) is decisive.
DOWN_BOUND=$((1 + 2 + 4))
UP_BOUND=$((1 + 2 + 4))

ka_lab_start "$conf"
lab_lvsadm -Ln
both_listed() { [[ $(dest_weight 192.168.1.31) == 1 && $(dest_weight 192.168.1.32) == 1 ]]; }
wait_for 10 "rs1 and rs2 listed with weight 1" both_listed >/dev/null
wait_for 10 "the rs1 check script runs" test -s "$tmp/check_rs1.runs" >/dev/null
runs=$(grep -c . "$tmp/check_rs1.runs")
e2e_log "check script ran $runs times so far; last: $(tail -n1 "$tmp/check_rs1.runs")"
grep -q ' rs1 arg2$' "$tmp/check_rs1.runs" || e2e_fail "the check script did not get its arguments 'rs1 arg2': $(tail -n1 "$tmp/check_rs1.runs")"

log=$tmp/curls.log
curl_loop_start "$log"
sleep 2

for round in 1 2; do
    touch "$flag"
    took=$(wait_for "$DOWN_BOUND" "round $round: rs1 removed after the flag file appeared (bound ${DOWN_BOUND}s)" dest_absent 192.168.1.31)
    t_removed=$(now_ms)
    e2e_log "ok: round $round: rs1 removed ${took} ms after the flag file appeared"
    assert_eq 1 "$(dest_weight 192.168.1.32)" "round $round: rs2 still listed"
    sleep 2.5
    dest_absent 192.168.1.31 || e2e_fail "round $round: rs1 came back while the flag file exists"
    during=$(curl_results "$log" "$t_removed" "$(now_ms)")
    e2e_log "round $round, rs1 removed: $during"
    read -r -a a <<<"$during"
    assert_ge 5 "${#a[@]}" "round $round: requests made while rs1 is removed"
    for r in "${a[@]}"; do
        [[ $r == 02 ]] || e2e_fail "round $round: a request made while rs1 is removed got '$r', want 02 (all: $during)"
    done

    rm -f "$flag"
    took=$(wait_for "$UP_BOUND" "round $round: rs1 back after the flag file was removed (bound ${UP_BOUND}s)" dest_has_weight 192.168.1.31 1)
    t_back=$(now_ms)
    e2e_log "ok: round $round: rs1 back ${took} ms after the flag file was removed"
    sleep 2.5
    after=$(curl_results "$log" "$t_back" "$(now_ms)")
    e2e_log "round $round, rs1 back: $after"
    [[ $after != *ERR* && $after == *01* && $after == *02* ]] ||
        e2e_fail "round $round: after rs1 came back requests should reach both without errors: $after"
done
curl_loop_stop
errs=$(grep -c ERR "$log" || true)
assert_eq 0 "$errs" "failed requests over the whole test (nginx never stopped)"

assert_log 'real server down.*192\.168\.1\.31|192\.168\.1\.31.*real server down' "\"real server down\" for rs1"
assert_log 'real server up.*192\.168\.1\.31|192\.168\.1\.31.*real server up' "\"real server up\" for rs1"
assert_lvsd_alive
e2e_log "PASS"
