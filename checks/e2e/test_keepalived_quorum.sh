#!/usr/bin/env bash
# e2e-planes: afpacket
# keepalived.conf quorum + sorry_server: a virtual server with rs1 as its only
# real server (HTTP_GET), `quorum 1`, `hysteresis 0` and
# `sorry_server 192.168.1.32 80` (rs2's address, only as the sorry server).
# keepalived.md §2.5: the quorum is lost when the live weight drops to 0, the
# sorry server is then added; when it is regained the sorry server is removed
# and the live real servers are added back.
#   rs1 up:   only rs1 listed, curls answer "Real Server 01"
#   rs1 down: rs1 gone, 192.168.1.32 listed, curls answer "Real Server 02"
#   rs1 up:   192.168.1.32 removed, rs1 back, curls answer "Real Server 01"
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
conf=$tmp/keepalived.conf
cat >"$conf" <<'CONF'
global_defs {
    router_id e2e_quorum
}
virtual_server 192.168.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    quorum 1
    hysteresis 0
    sorry_server 192.168.1.32 80

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
}
CONF
DOWN_BOUND=$((1 + 1 * 1 + 1 + 4))
UP_BOUND=$((2 * 1 + 1 + 5))

ka_lab_start "$conf"
lab_lvsadm -Ln
only_rs1() { [[ $(dest_weight 192.168.1.31) == 1 ]] && dest_absent 192.168.1.32; }
only_sorry() { dest_absent 192.168.1.31 && dest_listed 192.168.1.32; }
wait_for 10 "only rs1 listed (no sorry server while the quorum holds)" only_rs1 >/dev/null
e2e_log "ok: quorum up: rs1 listed, sorry server not listed"

log=$tmp/curls.log
curl_loop_start "$log"
sleep 2
before=$(curl_results "$log" 0)
e2e_log "quorum up: $before"
[[ $before =~ ^(01\ )+$ ]] || e2e_fail "with the quorum up every request should be answered by rs1: $before"

nginx_stop rs1
t_stop=$NGINX_KILL_MS
took=$(wait_for "$DOWN_BOUND" "rs1 gone and sorry server 192.168.1.32 listed (bound ${DOWN_BOUND}s)" only_sorry)
t_sorry=$(now_ms)
from_kill=$((t_sorry - t_stop))
((from_kill <= DOWN_BOUND * 1000)) || e2e_fail "sorry server in place ${from_kill} ms after SIGTERM to nginx, more than ${DOWN_BOUND}s"
e2e_log "ok: sorry server in place ${from_kill} ms after SIGTERM to rs1's nginx (bound ${DOWN_BOUND}s)"
lab_lvsadm -Ln
w=$(dest_weight 192.168.1.32)
assert_ge 1 "$w" "sorry server weight (must take connections)"
sleep 3
only_sorry || { lab_lvsadm -Ln >&2; e2e_fail "the sorry server did not stay alone while rs1 is down"; }
t1=$(now_ms)
during=$(curl_results "$log" "$t_sorry" "$t1")
e2e_log "quorum down: $during"
read -r -a a <<<"$during"
assert_ge 5 "${#a[@]}" "requests made while the sorry server is in use"
for r in "${a[@]}"; do
    [[ $r == 02 ]] || e2e_fail "a request made while the quorum is down got '$r', want 02 from the sorry server (all: $during)"
done
e2e_log "ok: all ${#a[@]} requests answered by the sorry server (Real Server 02)"

nginx_start rs1
took=$(wait_for "$UP_BOUND" "sorry server removed and rs1 back (bound ${UP_BOUND}s)" only_rs1)
t_back=$(now_ms)
e2e_log "ok: quorum regained ${took} ms after nginx started on rs1"
lab_lvsadm -Ln
sleep 3
only_rs1 || { lab_lvsadm -Ln >&2; e2e_fail "the sorry server came back while rs1 is up"; }
curl_loop_stop
after=$(curl_results "$log" "$t_back")
e2e_log "quorum up again: $after"
read -r -a a <<<"$after"
assert_ge 5 "${#a[@]}" "requests made after the quorum was regained"
[[ $after =~ ^(01\ )+$ ]] || e2e_fail "after the quorum was regained every request should be answered by rs1: $after"

assert_log 'quorum lost' "\"quorum lost\" in the lvsd log"
assert_log 'quorum regained' "\"quorum regained\" in the lvsd log"
assert_log 'real server down.*192\.168\.1\.31|192\.168\.1\.31.*real server down' "\"real server down\" for rs1"
assert_lvsd_alive
e2e_log "PASS"
