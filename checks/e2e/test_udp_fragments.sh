#!/usr/bin/env bash
# UDP datagrams larger than the MTU through the VIP: the client's kernel fragments them, the
# director's packet sockets receive them reassembled (fanout defrag), lvsd forwards them in
# fragments again (as the kernel's IPVS does after ip_vs_in), and each real server reassembles
# and answers. Every datagram must be answered.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
lab_lvsadm -A -u "$VIP:53" -s rr || e2e_fail "lvsadm -A -u $VIP:53 failed"
for rip in 192.168.1.31 192.168.1.32; do
    lab_lvsadm -a -u "$VIP:53" -r "$rip" -g || e2e_fail "lvsadm -a -u $VIP:53 -r $rip failed"
done

tmp=$(e2e_tmpdir)
cat >"$tmp/big-udp.py" <<'PY'
import socket, sys
addr, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    s.sendto(bytes([65 + i % 26]) * size, (addr, 53))
    try:
        print(s.recv(4096).decode().strip(), flush=True)
    except socket.timeout:
        print("-", flush=True)
    s.close()
PY
capture_start rs1 rs1 "udp"
out=$(with_timeout 60 lab_exec client /usr/bin/python3 "$tmp/big-udp.py" "$VIP" 8 3000) || e2e_fail "big UDP probe failed"
capture_stop rs1
echo "$out"
answered=$(grep -vc '^-$' <<<"$out" || true)
assert_eq 8 "$answered" "3000-byte datagrams answered"
grep -q "Real Server 01" <<<"$out" || e2e_fail "no answer from rs1"
grep -q "Real Server 02" <<<"$out" || e2e_fail "no answer from rs2"
# The real server received fragments from the director's MAC: full-size first fragments and
# later fragments (tcpdump without -v prints those as "ip-proto-17", no ports).
grep -E "00:50:00:00:04:00 > 00:50:00:00:01:00" "$LAB_STATE/cap-rs1.txt" | grep -q "192.168.1.12 > 192.168.1.100: ip-proto-17" ||
    e2e_fail "rs1 received no fragments from the director"
grep -E "00:50:00:00:04:00 > 00:50:00:00:01:00, ethertype IPv4 \(0x0800\), length ([0-9]+)" -o "$LAB_STATE/cap-rs1.txt" |
    awk '{ if ($NF + 0 > 1514) bad = 1 } END { exit bad }' || e2e_fail "a frame larger than the MTU reached rs1"
e2e_log "PASS"
