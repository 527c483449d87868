#!/usr/bin/env bash
# e2e-planes: xdp tc
# Stale fast-path entries after a kill -9 (docs/restart.md, "Stale entries"): lvsd runs without
# checkpoints, so a new lvsd knows none of the connections the killed one had offloaded; it adopts
# the program's conns map and keeps them forwarding (kept_unknown). Here 8 keep-alive connections
# (fixed client ports) are offloaded; while no lvsd runs the client resets them (the RST is dropped:
# the real servers keep their side, the conns entries stay). Then:
# - port reuse: rs1 is set to weight 0, and curl --local-port reuses the 4-tuples of the
#   connections rs1 had: the new lvsd schedules the SYN to rs2 and must drop the stale entry, or
#   the ACK and the request go to rs1 through the old entry and the request fails;
# - expiry: with `lvsadm --set 5 5 5` the other stale entries go within the timeout plus a check,
#   and `lvsadm daemon status` counts them (expired, replaced, 0 remaining).
source "$(dirname "$0")/lib.sh"

require_fastpath_plane
require_lvs_bins
COUNT=8 FIRST=41000 REUSE=3
lab_start_with_seed_rules --restart-guard --checkpoint-interval 0 --orphan-timeout 3
SOCK=$LAB_STATE/lvsd.sock
mapfile -d '' CMDLINE <"/proc/$(lvsd_pid)/cmdline"
tmp=$(e2e_tmpdir)
go=$tmp/go

# "tc fast path: N connection(s), ..." and "tc fast path: S stale entries ..., E expired, R replaced"
map_entries() { lab_lvsadm daemon status | awk -v p="$PLANE" '$1==p && $2=="fast" && $5=="connection(s),"{print $4}'; }
stale_line() { lab_lvsadm daemon status | grep "^$PLANE fast path: .* stale entries" || true; }
stale_drained() { [[ $(stale_line) =~ :\ 0\ stale ]]; }

# COUNT keep-alive connections from ports FIRST.., 4 requests each (offloaded from the 4th client
# packet); prints "PORT SERVER" each, "ready", then waits for $go and resets them all (SO_LINGER 0).
lab_exec client timeout 90 /usr/bin/python3 - "$VIP" "$FIRST" "$COUNT" "$go" >"$tmp/clients" 2>&1 <<'PY' &
import os, re, socket, struct, sys, time
vip, first, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def get(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += s.recv(4096)
    return re.search(rb"Real Server (0[12])", body).group(1).decode()

socks = []
for i in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", first + i))
    s.settimeout(5)
    s.connect((vip, 80))
    server = [get(s) for _ in range(4)][-1]
    print(first + i, server, flush=True)
    socks.append(s)
print("ready", flush=True)
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.01)
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("reset", flush=True)
PY
cp=$!
e2e_on_exit kill "$cp"
e2e_on_exit cat "$tmp/clients"
clients_say() { grep -qx "$1" "$tmp/clients"; }
wait_for 30 "the clients' connections" clients_say ready >/dev/null
e2e_log "fast path before the kill: $(map_entries) entries"

KILLED=$(now_ms)
lvsd_kill9
touch "$go" # the client's RSTs meet no lvsd: dropped, the real servers never see them
wait_for 5 "the clients' resets" clients_say reset >/dev/null || e2e_fail "the clients did not reset"
lvsd_respawn "${CMDLINE[@]}"
e2e_log "new lvsd $(lvsd_pid) answers $(($(now_ms) - KILLED)) ms after the kill"
kept=$(grep -o 'kept_unknown=[0-9]*' "$LAB_STATE/lvsd.log" | tail -n 1 | cut -d= -f2)
e2e_log "adopted: $(grep -o 'adopted the conns map.*' "$LAB_STATE/lvsd.log" | tail -n 1), kept_unknown=$kept; $(stale_line)"
assert_ge "$COUNT" "${kept:-0}" "the new lvsd kept the killed one's entries (kept_unknown)"

# Port reuse: rs1's 4-tuples, rs1 quiesced, so the SYN goes to rs2.
mapfile -t rs1_ports < <(awk '$2=="01"{print $1}' "$tmp/clients" | head -n "$REUSE")
((${#rs1_ports[@]} > 0)) || e2e_fail "no connection went to rs1: $(tr '\n' ' ' <"$tmp/clients")"
lab_lvsadm -e -t "$VIP:80" -r 192.168.1.31:80 -g -w 0 || e2e_fail "cannot quiesce rs1"
ok=0
for port in "${rs1_ports[@]}"; do
    out=$(lab_exec client curl -sS --local-port "$port" --max-time 5 "http://$VIP/" 2>&1) || true
    e2e_log "curl --local-port $port (rs1's stale 4-tuple): ${out//$'\n'/ }"
    [[ $out =~ Real\ Server\ 02 ]] && ok=$((ok + 1))
done
e2e_log "after the reuse: $(stale_line)"
assert_eq "${#rs1_ports[@]}" "$ok" "new connections on stale 4-tuples complete (scheduled to rs2)"

# Expiry: the rest go once idle for the (small) TCP timeout.
lab_lvsadm --set 5 5 5 || e2e_fail "lvsadm --set 5 5 5 failed"
SET=$(now_ms)
wait_for 20 "the stale entries to expire" stale_drained >/dev/null || e2e_fail "stale entries remain: $(stale_line)"
line=$(stale_line)
e2e_log "$(($(now_ms) - SET)) ms after --set 5 5 5: $line; fast path: $(map_entries) entries"
grep 'stale fast-path entries' "$LAB_STATE/lvsd.log" | tail -n 2 | cut -c1-240 >&2 || true
assert_match "$line" " ${#rs1_ports[@]} replaced$" "the reused 4-tuples counted as replaced"
assert_match "$line" " $((kept - ${#rs1_ports[@]})) expired" "the others counted as expired"
assert_eq 0 "$(map_entries)" "no entry left in the fast path's conns"
echo "MEASURE $E2E_NAME kept_unknown=$kept reused_ok=$ok/${#rs1_ports[@]} drained_ms_after_set=$(($(now_ms) - SET))"
assert_lvsd_alive
e2e_log "PASS"
