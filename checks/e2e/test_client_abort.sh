#!/usr/bin/env bash
# Clients that go away before their answer is written (issue 13 item 3: SIGPIPE): 1,000 control
# clients send a -Lnc request and close at once, then 1,000 metrics clients send GET /metrics and
# reset (SO_LINGER 0). lvsd is alive afterwards (same pid), answers a -Lnc at once (the departed
# clients' requests left no backlog), and a curl loop through the VIP that ran all along got
# every answer. On a daemon that does not ignore SIGPIPE the first abort kills it.
# A control-plane test: one data plane is enough.
# e2e-planes: afpacket
source "$(dirname "$0")/lib.sh"

require_lvs_bins
PY=/usr/bin/python3
LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --metrics 127.0.0.1:9100" lab_start --director lvsd
tmp=$(e2e_tmpdir)
pid=$(lvsd_pid)

curl_loop_start "$tmp/curls"
# Some connections in the table, so a -Lnc answer is more than a line.
for _ in $(seq 20); do curl_rs "http://$VIP/" 5 >/dev/null; done
lines=$(lab_lvsadm -Lnc | wc -l)
assert_ge 10 "$lines" "lines of -Lnc before the aborts"

out=$(with_timeout 180 "$PY" "$E2E_DIR/server_clients.py" abort-control "$LAB_STATE/lvsd.sock" 1000 2>&1) ||
    { echo "$out" | tail -5; e2e_fail "control clients could not all connect (lvsd died?)"; }
assert_eq "aborted 1000" "$out" "control clients that closed before their answer"
kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd (pid $pid) died after the control clients' aborts"

out=$(with_timeout 180 lab_exec director "$PY" "$E2E_DIR/server_clients.py" abort-metrics 127.0.0.1 9100 1000 2>&1) ||
    { echo "$out" | tail -5; e2e_fail "metrics clients could not all connect (lvsd died?)"; }
assert_eq "aborted 1000" "$out" "metrics clients that reset before their answer"

sleep 1
curl_loop_stop
kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd (pid $pid) died after the metrics clients' resets"
assert_lvsd_alive
# The aborted requests left no backlog behind: a listing is answered at once.
out=$(lab_exec director env LVSD_SOCKET="$LAB_STATE/lvsd.sock" timeout 10 "$(lvs_bin)/lvsadm" -Lnc 2>&1) ||
    { echo "$out" | tail -3; e2e_fail "lvsadm -Lnc did not answer within 10 s after the aborts (work left queued by departed clients?)"; }
assert_match "$out" 'TCP' "lvsadm -Lnc answers right after the aborts"
body=$(lab_exec director curl -sS --max-time 5 http://127.0.0.1:9100/metrics) || e2e_fail "metrics endpoint does not answer after the aborts"
assert_match "$body" 'lvs_connection_table_entries' "metrics endpoint answers after the aborts"
total=$(wc -l <"$tmp/curls")
bad=$(grep -v ' 0[12]$' "$tmp/curls" || true)
[[ -z $bad ]] || { echo "$bad" | head; e2e_fail "$(wc -l <<<"$bad") of $total curls through the VIP failed during the aborts"; }
assert_ge 10 "$total" "curls through the VIP during the aborts, all answered"
e2e_log "PASS"
