#!/usr/bin/env bash
# --dataplane xdp and tc only: IPVS timeouts still decide for connections the
# BPF program forwards. With the UDP timeout set to 4 s, a UDP flow that sends
# a datagram every 0.5 s for 10 s (all but its first packets forwarded by the
# program, never seen by lvsd) stays in lvsadm -Lnc the whole time; once it
# stops, the entry expires within the timeout (plus a tick) and leaves the
# program's map; a datagram from the same port afterwards is a new connection
# in lvsd, and is answered.
# e2e-planes: xdp tc
source "$(dirname "$0")/lib.sh"

require_fastpath_plane
require_lvs_bins
lvs_bin >/dev/null
lab_start --director lvsd

lab_lvsadm -A -u "$VIP:53" -s rr || e2e_fail "lvsadm -A -u $VIP:53 failed"
lab_lvsadm -a -u "$VIP:53" -r 192.168.1.31 -g || e2e_fail "lvsadm -a -u $VIP:53 failed"
lab_lvsadm --set 0 0 4 || e2e_fail "lvsadm --set 0 0 4 failed"
assert_match "$(lab_lvsadm -L --timeout)" ": [0-9]+ [0-9]+ 4$" "UDP timeout is 4 s"

PORT=40053
# in_table: the client port's entry in lvsadm -Lnc (0 or 1)
in_table() { lab_lvsadm -Lnc | grep -Ec "^UDP .* 192\.168\.1\.12:$PORT +$VIP:53 " || true; }
# "xdp fast path: N connection(s), ..." (tc: "tc fast path: ...")
map_entries() { lab_lvsadm daemon status | awk -v p="$PLANE" '$1==p && $2=="fast" {print $4}'; }
new_conns() { lab_lvsadm daemon status | awk '$1=="forwarded" {for (i = 1; i < NF; i++) if ($i == "new-connections") print $(i + 1)}'; }

# sender COUNT INTERVAL: COUNT datagrams from port $PORT, INTERVAL s apart; prints the answers received.
sender() {
    lab_exec client timeout 60 /usr/bin/python3 - "$VIP" "$PORT" "$1" "$2" <<'PY'
import socket, sys, time
vip, port, count, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.settimeout(2)
answers = 0
for i in range(count):
    s.sendto(b"ping %d" % i, (vip, 53))
    try:
        s.recvfrom(2048)
        answers += 1
    except socket.timeout:
        pass
    time.sleep(gap)
print(answers)
PY
}

n0=$(new_conns)
tmp=$(e2e_tmpdir)
sender 20 0.5 >"$tmp/answers" 2>&1 &
sp=$!
e2e_on_exit kill "$sp"
# After 7 s the flow has been forwarded by the program alone for more than the timeout.
sleep 7
seen=$(in_table)
entries=$(map_entries)
e2e_log "at 7 s: entry in lvsadm -Lnc: $seen, map entries: $entries"
wait "$sp" || e2e_fail "sender failed: $(cat "$tmp/answers")"
assert_eq 20 "$(cat "$tmp/answers")" "answers to 20 datagrams"
assert_eq 1 "$seen" "the flow is still in lvsd's table after more than its timeout in the fast path"
assert_eq 1 "$entries" "the flow is in the $PLANE program's map"
assert_eq $((n0 + 1)) "$(new_conns)" "one new connection for the whole flow"

# Stopped: gone within the timeout plus a tick (and a safety second).
deadline=$((SECONDS + 8))
while (($(in_table) != 0)); do
    ((SECONDS < deadline)) || e2e_fail "the UDP entry is still in lvsadm -Lnc 8 s after its last datagram (timeout 4 s): $(lab_lvsadm -Lnc)"
    sleep 0.5
done
e2e_log "the entry expired after the flow stopped"
assert_eq 0 "$(map_entries)" "the expired flow left the $PLANE program's map"

# The same port again: a new connection in lvsd, answered.
assert_eq 1 "$(sender 1 0)" "an answer after the expiry"
assert_eq $((n0 + 2)) "$(new_conns)" "the datagram after the expiry is a new connection"
assert_lvsd_alive
e2e_log "PASS"
