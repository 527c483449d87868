#!/usr/bin/env bash
# e2e-planes: afpacket
# keepalived.conf with HTTP_GET checks (old keywords lb_algo/lb_kind), a
# client curl loop running the whole time: nginx stopped on rs1 -> rs1 leaves
# `lvsadm -Ln` within delay_loop + retry*delay_before_retry + connect_timeout
# + slack, and every request made after that is answered by rs2; nginx
# started again -> rs1 comes back and requests reach both servers. lvsd logs
# "real server down" and "real server up".
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
conf=$tmp/keepalived.conf
cat >"$conf" <<'CONF'
! swift-lvs e2e: HTTP_GET on both real servers
global_defs {
    router_id e2e_http_get
}

virtual_server 192.168.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP

    real_server 192.168.1.31 80 {
        weight 1
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
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
CONF
# delay_loop + retry*delay_before_retry + connect_timeout, plus slack for a
# check that started just before nginx went away and for the 2-core CI box.
DOWN_BOUND=$((1 + 1 * 1 + 1 + 4))
# Recovery: HTTP_GET needs 1 + (number of urls) = 2 successes, delay_loop apart.
UP_BOUND=$((2 * 1 + 1 + 5))

ka_lab_start "$conf"
lab_lvsadm -Ln
both_listed() { [[ $(dest_weight 192.168.1.31) == 1 && $(dest_weight 192.168.1.32) == 1 ]]; }
wait_for 10 "rs1 and rs2 listed with weight 1" both_listed >/dev/null

log=$tmp/curls.log
curl_loop_start "$log"
sleep 2
t0=$(now_ms)
before=$(curl_results "$log" 0 "$t0")
e2e_log "before the failure: $before"
[[ $before == *01* && $before == *02* && $before != *ERR* ]] ||
    e2e_fail "before any failure the requests should reach both servers without errors: $before"

nginx_stop rs1
t_stop=$NGINX_KILL_MS
took=$(wait_for "$DOWN_BOUND" "rs1 removed from lvsadm -Ln (bound ${DOWN_BOUND}s)" dest_absent 192.168.1.31)
t_removed=$(now_ms)
from_kill=$((t_removed - t_stop))
((from_kill <= DOWN_BOUND * 1000)) || e2e_fail "rs1 removed ${from_kill} ms after SIGTERM to nginx, more than ${DOWN_BOUND}s"
e2e_log "ok: rs1 removed ${from_kill} ms after SIGTERM to nginx, ${took} ms after it had exited (bound ${DOWN_BOUND}s)"
lab_lvsadm -Ln
assert_eq 1 "$(dest_weight 192.168.1.32)" "rs2 still listed with weight 1"
sleep 3
t1=$(now_ms)
after_down=$(curl_results "$log" "$t_removed" "$t1")
e2e_log "between stop and removal: $(curl_results "$log" "$t_stop" "$t_removed")"
e2e_log "after the removal: $after_down"
read -r -a a <<<"$after_down"
assert_ge 5 "${#a[@]}" "requests made after the removal"
for r in "${a[@]}"; do
    [[ $r == 02 ]] || e2e_fail "a request made after rs1's removal got '$r', want 02 (all: $after_down)"
done
e2e_log "ok: all ${#a[@]} requests after the removal answered by rs2"
dest_absent 192.168.1.31 || e2e_fail "rs1 came back while its nginx is still stopped"

nginx_start rs1
took=$(wait_for "$UP_BOUND" "rs1 back in lvsadm -Ln with weight 1 (bound ${UP_BOUND}s)" dest_has_weight 192.168.1.31 1)
t_back=$(now_ms)
e2e_log "ok: rs1 back ${took} ms after nginx started"
sleep 3
curl_loop_stop
after_up=$(curl_results "$log" "$t_back")
e2e_log "after rs1 came back: $after_up"
read -r -a a <<<"$after_up"
assert_ge 5 "${#a[@]}" "requests made after rs1 came back"
[[ $after_up != *ERR* ]] || e2e_fail "requests failed after rs1 came back: $after_up"
[[ $after_up == *01* && $after_up == *02* ]] || e2e_fail "requests after rs1 came back do not reach both servers: $after_up"
e2e_log "ok: requests reach both servers again"
e2e_log "all results: $(curl_results "$log" 0 | tr ' ' '\n' | sort | uniq -c | tr '\n' ' ')"

assert_log 'real server down.*192\.168\.1\.31|192\.168\.1\.31.*real server down' "\"real server down\" for rs1 in the lvsd log"
assert_log 'real server up.*192\.168\.1\.31|192\.168\.1\.31.*real server up' "\"real server up\" for rs1 in the lvsd log"
if grep -E 'real server (down|up)' "$LAB_STATE/lvsd.log" | grep -q '192\.168\.1\.32'; then
    grep -E 'real server (down|up)' "$LAB_STATE/lvsd.log" >&2
    e2e_fail "rs2 changed state although its nginx ran the whole time"
fi
assert_lvsd_alive
e2e_log "PASS"
