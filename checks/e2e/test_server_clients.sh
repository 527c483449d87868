#!/usr/bin/env bash
# The control socket and the metrics endpoint serve clients concurrently, within limits (issue 13
# item 11). While silent clients (connected, sending nothing) and non-reading clients (-Ln and
# -Lnc requests / pipelined GETs until their socket is full, never reading) hold on to both servers,
# `lvsadm -Ln` and a metrics scrape each answer within 5 s (a one-client-at-a-time server waits
# for the bad clients to go). Accepted sockets are close-on-exec. The bad clients are then closed
# by lvsd's read and write timeouts, and `lvsadm daemon status` counts them; a 17th concurrent
# control client is refused with a clear message, and an oversized request is refused, counted.
# A control-plane test: one data plane is enough.
# e2e-planes: afpacket
source "$(dirname "$0")/lib.sh"

require_lvs_bins
PY=/usr/bin/python3
CLIENTS=$E2E_DIR/server_clients.py
LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --metrics 127.0.0.1:9100" lab_start --director lvsd
tmp=$(e2e_tmpdir)
pid=$(lvsd_pid)
sock=$LAB_STATE/lvsd.sock
for _ in $(seq 20); do curl_rs "http://$VIP/" 5 >/dev/null; done

# hold NAME ARGS...: server_clients.py hold-* in the background until $tmp/NAME.stop exists
# (at most 120 s); waits until it reports that its clients are set up.
hold() {
    local name=$1
    shift
    HOLD_STOP=$tmp/$name.stop setsid timeout 150 "$@" >"$tmp/$name.out" 2>&1 </dev/null &
    e2e_on_exit touch "$tmp/$name.stop"
    local deadline=$((SECONDS + 60))
    until grep -q '^holding' "$tmp/$name.out"; do
        ((SECONDS < deadline)) || { cat "$tmp/$name.out"; e2e_fail "$name: the clients were not set up within 60 s"; }
        sleep 0.2
    done
    e2e_log "$name: $(head -1 "$tmp/$name.out")"
}
hold control "$PY" "$CLIENTS" hold-control "$sock" 4 4 120
hold metrics ip netns exec "$LAB_PREFIX-director" "$PY" "$CLIENTS" hold-metrics 127.0.0.1 9100 10 2 120

# Other clients are served at once while the bad ones hold on.
for i in 1 2 3; do
    out=$(lab_exec director env LVSD_SOCKET="$sock" timeout 5 "$(lvs_bin)/lvsadm" -Ln 2>&1) ||
        { echo "$out"; e2e_fail "lvsadm -Ln did not answer within 5 s while bad clients held the control socket (try $i)"; }
    assert_match "$out" 'TCP  192\.168\.1\.100:80' "lvsadm -Ln answers while 4 silent and 4 non-reading clients hold on (try $i)"
    out=$(lab_exec director curl -sS --max-time 5 http://127.0.0.1:9100/metrics 2>&1) ||
        { echo "$out"; e2e_fail "the metrics endpoint did not answer within 5 s while bad clients held it (try $i)"; }
    assert_match "$out" 'lvs_connection_table_entries' "metrics scrape answers while 10 silent and 2 non-reading clients hold on (try $i)"
done
out=$(lab_exec director env LVSD_SOCKET="$sock" timeout 10 "$(lvs_bin)/lvsadm" -Lnc 2>&1) || { echo "$out"; e2e_fail "lvsadm -Lnc failed"; }
assert_match "$out" 'TCP' "lvsadm -Lnc answers too"

# Every accepted client socket is close-on-exec (fdinfo flags include O_CLOEXEC, 02000000).
fds=$(lab_exec director ss -Hxp | awk -v s="$sock" '$5 == s' | grep -o "pid=$pid,fd=[0-9]*" | cut -d= -f3 || true)
fds+=" $(lab_exec director ss -Htnp state established '( sport = :9100 )' | grep -o "pid=$pid,fd=[0-9]*" | cut -d= -f3 || true)"
n=0
for fd in $fds; do
    flags=$(awk '/^flags:/ { print $2 }' "/proc/$pid/fdinfo/$fd" 2>/dev/null) || continue
    [[ -n $flags ]] || continue
    ((8#$flags & 8#2000000)) || e2e_fail "accepted socket fd $fd of lvsd is not close-on-exec (flags $flags)"
    n=$((n + 1))
done
assert_ge 4 "$n" "accepted client sockets checked, all close-on-exec"

# lvsd's timeouts close the bad clients (read 10 s / 5 s, write 10 s) and count them.
status_field() { # status_field SERVER WHAT: the number before WHAT on SERVER's status line
    lab_lvsadm daemon status | awk -v s="$1" -v w="$2" 'index($0, s ":") == 1 {
        sub(/^[^:]*: /, ""); n = split($0, f, ", "); for (i = 1; i <= n; i++) if (index(f[i], w)) { split(f[i], a, " "); print a[1] } }'
}
counted() { local v; v=$(status_field "$1" "$2"); [[ -n $v ]] && ((v >= $3)); }
wait_for 60 "4 control read timeouts counted" counted "control socket" "read timeout" 4 >/dev/null
wait_for 60 "2 control write timeouts counted (the -Ln fillers; -Lnc answers come slower)" counted "control socket" "write timeout" 2 >/dev/null
wait_for 60 "10 metrics read timeouts counted" counted "metrics endpoint" "read timeout" 10 >/dev/null
lab_lvsadm daemon status | grep -E '^(control socket|metrics endpoint):'
e2e_log "ok: the bad clients were closed by lvsd's timeouts and counted"
touch "$tmp/control.stop" "$tmp/metrics.stop"

# The client limit: 16 held connections, the 17th is told so (and counted once they go).
# First the bad clients above must be gone (the status query itself is the one client left).
only_me() { [[ $(status_field "control socket" "client(s) now") == 1 ]]; }
wait_for 30 "the earlier control clients gone" only_me >/dev/null
hold cap "$PY" "$CLIENTS" hold-control "$sock" 16 0 120
out=$(lab_exec director env LVSD_SOCKET="$sock" timeout 5 "$(lvs_bin)/lvsadm" -Ln 2>&1) && e2e_fail "a 17th control client was served: $out"
assert_match "$out" 'too many control clients \(16 at once\)' "a 17th control client is refused with a clear message"
touch "$tmp/cap.stop"
wait_for 20 "control socket served again after the 16 clients left" lab_lvsadm -Ln >/dev/null
wait_for 10 "the refusal counted" counted "control socket" "refused" 1 >/dev/null

# Oversized requests: refused with a message / 413, counted (the metrics fillers above may
# already have been refused for their pipelined requests: count from here).
metrics_over=$(status_field "metrics endpoint" "over 65536")
out=$(with_timeout 30 "$PY" "$CLIENTS" oversized-control "$sock" $((2 << 20)))
assert_match "$out" 'longer than 1048576 bytes' "a control request over 1 MiB is refused"
out=$(with_timeout 30 lab_exec director "$PY" "$CLIENTS" oversized-metrics 127.0.0.1 9100 $((100 << 10)))
assert_match "$out" '^HTTP/1.0 413' "a metrics request over 64 KiB is refused"
wait_for 10 "control oversized request counted" counted "control socket" "over 1048576" 1 >/dev/null
wait_for 10 "metrics oversized request counted" counted "metrics endpoint" "over 65536" $((metrics_over + 1)) >/dev/null
assert_lvsd_alive
[[ $(lvsd_pid) == "$pid" ]] || e2e_fail "lvsd restarted"
e2e_log "PASS"
