#!/usr/bin/env bash
# e2e-planes: afpacket
# keepalived.conf HTTP_GET with inhibit_on_failure, a client curl loop the
# whole time: nginx stopped on rs1 -> rs1 stays in `lvsadm -Ln` with weight 0
# (not deleted) and every request made after that is answered by rs2; nginx
# started again -> rs1's weight goes back to 2 and requests reach both.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
conf=$tmp/keepalived.conf
cat >"$conf" <<'CONF'
global_defs {
    router_id e2e_inhibit
}
virtual_server 192.168.1.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    inhibit_on_failure

    real_server 192.168.1.31 80 {
        weight 2
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 192.168.1.32 80 {
        weight 1
        HTTP_GET {
            url {
                path /
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
CONF
DOWN_BOUND=$((1 + 1 * 1 + 1 + 4))
UP_BOUND=$((2 * 1 + 1 + 5))

ka_lab_start "$conf"
lab_lvsadm -Ln
both_listed() { [[ $(dest_weight 192.168.1.31) == 2 && $(dest_weight 192.168.1.32) == 1 ]]; }
wait_for 10 "rs1 (weight 2) and rs2 (weight 1) listed" both_listed >/dev/null

log=$tmp/curls.log
curl_loop_start "$log"
sleep 2
before=$(curl_results "$log" 0)
e2e_log "before the failure: $before"
[[ $before == *01* && $before == *02* && $before != *ERR* ]] ||
    e2e_fail "before any failure the requests should reach both servers without errors: $before"

nginx_stop rs1
# Poll every 0.2 s: rs1 must never disappear on the way to weight 0.
deadline=$((NGINX_KILL_MS + DOWN_BOUND * 1000))
while true; do
    w=$(dest_weight 192.168.1.31)
    [[ -n $w ]] || { lab_lvsadm -Ln >&2 || true; e2e_fail "rs1 was deleted from lvsadm -Ln although inhibit_on_failure is set"; }
    [[ $w != 0 ]] || break
    (($(now_ms) < deadline)) || { lab_lvsadm -Ln >&2 || true; e2e_fail "rs1 not at weight 0 within ${DOWN_BOUND}s (weight '$w')"; }
    sleep 0.2
done
t_zero=$(now_ms)
e2e_log "ok: rs1 listed with weight 0, $((t_zero - NGINX_KILL_MS)) ms after SIGTERM to nginx (bound ${DOWN_BOUND}s)"
lab_lvsadm -Ln
assert_eq 1 "$(dest_weight 192.168.1.32)" "rs2 keeps weight 1"

# While down: stays listed with weight 0 over several check rounds.
for i in 1 2 3 4 5 6; do
    sleep 0.5
    assert_eq 0 "$(dest_weight 192.168.1.31)" "rs1 still listed with weight 0 while down (${i}/6)"
done
t1=$(now_ms)
after_down=$(curl_results "$log" "$t_zero" "$t1")
e2e_log "after weight 0: $after_down"
read -r -a a <<<"$after_down"
assert_ge 5 "${#a[@]}" "requests made after rs1 got weight 0"
for r in "${a[@]}"; do
    [[ $r == 02 ]] || e2e_fail "a request made after rs1 got weight 0 was answered '$r', want 02 (all: $after_down)"
done
e2e_log "ok: all ${#a[@]} requests after weight 0 answered by rs2"

nginx_start rs1
took=$(wait_for "$UP_BOUND" "rs1 weight restored to 2 (bound ${UP_BOUND}s)" dest_has_weight 192.168.1.31 2)
t_back=$(now_ms)
e2e_log "ok: rs1 weight 2 again ${took} ms after nginx started"
lab_lvsadm -Ln
sleep 3
curl_loop_stop
after_up=$(curl_results "$log" "$t_back")
e2e_log "after rs1 came back: $after_up"
read -r -a a <<<"$after_up"
assert_ge 5 "${#a[@]}" "requests made after rs1 came back"
[[ $after_up != *ERR* ]] || e2e_fail "requests failed after rs1 came back: $after_up"
[[ $after_up == *01* && $after_up == *02* ]] || e2e_fail "requests after rs1 came back do not reach both servers: $after_up"
n1=$(grep -o 01 <<<"$after_up" | wc -l)
n2=$(grep -o 02 <<<"$after_up" | wc -l)
e2e_log "after the return: rs1 $n1, rs2 $n2 (weights 2:1)"
((n1 > n2)) || e2e_fail "with weights 2:1 under wrr rs1 should get more requests than rs2: rs1 $n1, rs2 $n2"

assert_log 'real server down.*192\.168\.1\.31|192\.168\.1\.31.*real server down' "\"real server down\" for rs1"
assert_log 'real server up.*192\.168\.1\.31|192\.168\.1\.31.*real server up' "\"real server up\" for rs1"
assert_lvsd_alive
e2e_log "PASS"
