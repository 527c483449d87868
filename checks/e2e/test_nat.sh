#!/usr/bin/env bash
# e2e-planes: afpacket afxdp xdp tc
# LVS-NAT (-m) through lvsd, `lvs-lab up --method nat`: the real servers sit on 10.0.0.0/24
# behind the director's eth1, default route via it, no VIP. On afpacket and tc: curls
# alternate over IPv4 and IPv6, UDP answers, a 10 MB download and upload arrive intact,
# `--stats` counts OutPkts/OutBytes, the client-side capture shows only VIP:80 and the
# server-side one only the real servers' addresses, an ICMP error from the server side
# reaches the client translated (quoting VIP:80), and a reply of no connection is left to
# the kernel (lvsd counts it passed, the client never sees it). On afxdp and xdp (whose XDP
# program passes replies to the kernel) lvsd must refuse `-a ... -m`, naming the plane.
# On tc the downloads' connections (IPv4, IPv6) are in the tc fast path in both directions: replies are
# forwarded by the tc program (OutBytes grow by the 10 MB, the program's NAT reply counter
# grows) while lvsd's own forwarded counter barely moves (no reply handled twice).
source "$(dirname "$0")/lib.sh"

require_lvs_bins
plane=afpacket
if [[ " ${LVS_LAB_LVSD_ARGS:-} " =~ [[:space:]]--dataplane[=[:space:]]([a-z]+)[[:space:]] ]]; then plane=${BASH_REMATCH[1]}; fi

if [[ $plane == afxdp || $plane == xdp ]]; then
    lab_start --director lvsd
    if out=$(lab_lvsadm -a -t "$VIP:80" -r 192.168.1.33:80 -m 2>&1); then
        e2e_fail "lvsadm -a ... -m was accepted on $plane: $out"
    fi
    echo "$out"
    assert_match "$out" "masquerading \(-m, NAT\) is not supported on the $plane data plane" "refusal names method and plane"
    dests=$(lab_lvsadm -Ln) || e2e_fail "lvsadm -Ln failed"
    [[ $dests != *192.168.1.33* ]] || e2e_fail "the refused destination is listed: $dests"
    e2e_log "PASS ($plane refuses NAT)"
    exit 0
fi

# tc: what lvsd forwarded itself, the VIP's OutBytes and InBytes, the fast path's bytes (both
# directions) -- after the fast path's counters reached the statistics (worker 0 reads them
# every second).
nat_fast_sample() {
    sleep 1.5
    local fwd vip fast
    fwd=$(lab_lvsadm daemon status | awk '$1=="forwarded" {print $2}')
    vip=$(lab_lvsadm -Ln --stats --exact | awk -v s="$1" '$1=="TCP" && $2==s {print $7, $6}')
    fast=$(lab_lvsadm daemon status | awk '$1=="tc" && $2=="fast" {print $8}')
    echo "$fwd $vip $fast"
}
nat_fast_check() { # SAMPLE SERVICE WHAT
    local f0 o0 i0 b0 f1 o1 i1 b1
    read -r f0 o0 i0 b0 <<<"$1"
    read -r f1 o1 i1 b1 <<<"$(nat_fast_sample "$2")"
    e2e_log "tc fast path, 10 MB $3 download: lvsd forwarded $f0 -> $f1 frames; VIP OutBytes $o0 -> $o1, InBytes $i0 -> $i1; fast path bytes $b0 -> $b1"
    lab_lvsadm daemon status >&2
    assert_ge $((o0 + 10 * 1024 * 1024)) "$o1" "OutBytes count the 10 MB of replies"
    # (the replies sent before the connection entered the map went through lvsd)
    assert_ge $((b0 + 9 * 1024 * 1024)) "$b1" "the tc program forwarded the replies (its bytes grow by 9 of the 10 MB at least)"
    assert_ge $((i0 + 1)) "$i1" "InBytes count the client's ACKs"
    # handshake, request, the replies sent before the connection entered the map, the FIN
    ((f1 - f0 <= 60)) || e2e_fail "lvsd forwarded $((f1 - f0)) frames of a download the tc program should forward (at most 60 expected)"
    e2e_log "ok: $3: both directions in the tc fast path, lvsd forwarded $((f1 - f0)) frames itself"
}

lab_start --method nat

# curl alternation, IPv4 and IPv6
answers=()
for _ in 1 2 3 4; do answers+=("$(curl_rs "http://$VIP/")"); done
e2e_log "IPv4 answers: ${answers[*]}"
for i in 1 2 3; do
    [[ ${answers[i]} =~ ^0[12]$ && ${answers[i]} != "${answers[i - 1]}" ]] || e2e_fail "rr over NAT does not alternate: ${answers[*]}"
done
answers6=()
for _ in 1 2; do answers6+=("$(curl_rs "http://[$VIP6]/")"); done
[[ ${answers6[0]} =~ ^0[12]$ && ${answers6[1]} =~ ^0[12]$ && ${answers6[0]} != "${answers6[1]}" ]] ||
    e2e_fail "IPv6 over NAT: ${answers6[*]}"
udp=$(lab_exec client timeout 20 python3 "$LAB_STATE/udp-probe.py" "$VIP" 2)
e2e_log "UDP answers: ${udp//$'\n'/ }"
[[ $(grep -c '^Real Server 0[12]$' <<<"$udp") == 2 ]] || e2e_fail "UDP over NAT: $udp"

# captures on both sides while a download and an upload of 10 MB run
head -c $((10 * 1024 * 1024)) /dev/urandom >"$E2E_TMP/ten"
for n in rs1 rs2; do cp "$E2E_TMP/ten" "$LAB_STATE/$n/www/ten"; done
capture_start client client "tcp port 80 and tcp[tcpflags] & tcp-syn != 0"
capture_start rs1 rs1 "tcp port 80 and tcp[tcpflags] & tcp-syn != 0"
[[ $plane == tc ]] && tc_before=$(nat_fast_sample "$VIP:80")
lab_exec client curl -sS --max-time 30 -o "$E2E_TMP/down" "http://$VIP/ten" || e2e_fail "10 MB download failed"
cmp -s "$E2E_TMP/ten" "$E2E_TMP/down" || e2e_fail "10 MB download differs"
[[ $plane == tc ]] && nat_fast_check "$tc_before" "$VIP:80" IPv4
up=$(lab_exec client curl -sS --max-time 30 --data-binary @"$E2E_TMP/ten" "http://$VIP/upload") || e2e_fail "10 MB upload failed"
assert_match "$up" "received $((10 * 1024 * 1024)) bytes" "10 MB upload"
_=$(curl_rs "http://$VIP/")
capture_stop client
capture_stop rs1
e2e_log "client side:"; head -n 4 "$LAB_STATE/cap-client.txt" >&2
e2e_log "rs1 side:"; head -n 4 "$LAB_STATE/cap-rs1.txt" >&2
grep -q "> 192.168.1.100.80: Flags \[S\]" "$LAB_STATE/cap-client.txt" || e2e_fail "client capture: no SYN to VIP:80"
grep -q "192.168.1.100.80 > 192.168.1.12\.[0-9]*: Flags \[S\.\]" "$LAB_STATE/cap-client.txt" ||
    e2e_fail "client capture: no SYN-ACK from VIP:80 (the reply's source rewritten back)"
grep -q "10\.0\.0\.3[12]" "$LAB_STATE/cap-client.txt" && e2e_fail "client capture shows a real server's address"
grep -q "192.168.1.12\.[0-9]* > 10.0.0.31.80: Flags \[S\]" "$LAB_STATE/cap-rs1.txt" ||
    e2e_fail "rs1 capture: no SYN to 10.0.0.31:80 (destination rewritten)"
grep -q "192.168.1.100" "$LAB_STATE/cap-rs1.txt" && e2e_fail "rs1 capture shows the VIP"
e2e_log "ok: captures show VIP:80 on the client side and 10.0.0.31:80 on the server side"
if [[ $plane == tc ]]; then
    # IPv6 in the fast path: the 16-byte address's checksum update (bpf_csum_diff, BPF_F_IPV6)
    # on the CHECKSUM_PARTIAL segments of the lab's veths
    tc_before=$(nat_fast_sample "[$VIP6]:80")
    lab_exec client curl -sS --max-time 30 -o "$E2E_TMP/down6" "http://[$VIP6]/ten" || e2e_fail "10 MB IPv6 download failed"
    cmp -s "$E2E_TMP/ten" "$E2E_TMP/down6" || e2e_fail "10 MB IPv6 download differs"
    nat_fast_check "$tc_before" "[$VIP6]:80" IPv6
fi

# an ICMP error from the real servers' side about a live connection, and a reply of no connection
lab_exec client python3 - "$VIP" >"$E2E_TMP/hold.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=5)
print(s.getsockname()[1], flush=True)
time.sleep(8)
PY
hold=$!
e2e_on_exit kill "$hold"
wait_for 10 "held connection" test -s "$E2E_TMP/hold.out" >/dev/null
cport=$(head -n1 "$E2E_TMP/hold.out")
server=$(lab_lvsadm -Lnc | awk -v p=":$cport" '$4 ~ p"$" {split($6, a, ":"); print a[1]}')
[[ -n $server ]] || e2e_fail "no connection entry for client port $cport"
node=rs1; [[ $server == 10.0.0.32 ]] && node=rs2
capture_start client icmp "icmp or (tcp and port 9)"
before=$(lab_lvsadm daemon status | awk '/^forwarded/ {print $4}')
lab_exec "$node" python3 - "$server" 192.168.1.12 "$cport" <<'PY'
import socket, struct, sys
server, client, cport = sys.argv[1], sys.argv[2], int(sys.argv[3])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
def ip(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload
# the packet the director sent to the server (client -> server:80), quoted by "port unreachable"
quote = ip(client, server, 6, struct.pack("!HHIIBBHHH", cport, 80, 1, 0, 0x50, 0x10, 1024, 0, 0))[:28]
icmp = struct.pack("!BBHI", 3, 3, 0, 0) + quote
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
raw.sendto(icmp, (client, 0))
# a reply of no connection: a SYN-ACK from the server's port 80 to a client port nobody uses
tcp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
seg = struct.pack("!HHIIBBHHH", 80, 9, 7, 7, 0x50, 0x12, 1024, 0, 0)
pseudo = socket.inet_aton(server) + socket.inet_aton(client) + struct.pack("!BBH", 0, 6, len(seg))
seg = seg[:16] + struct.pack("!H", csum(pseudo + seg)) + seg[18:]
tcp.sendto(seg, (client, 0))
PY
sleep 1
capture_stop icmp
cat "$LAB_STATE/cap-icmp.txt" >&2
grep -q "192.168.1.100 > 192.168.1.12: ICMP 192.168.1.100 tcp port 80 unreachable" "$LAB_STATE/cap-icmp.txt" ||
    e2e_fail "the ICMP error did not reach the client translated (from and about VIP:80)"
grep -q "\.80 > 192.168.1.12.9:" "$LAB_STATE/cap-icmp.txt" && e2e_fail "a reply of no connection was forwarded to the client"
passed=$(lab_lvsadm daemon status | awk '/^forwarded/ {print $4}')
((passed > before)) || e2e_fail "lvsd did not pass the unknown reply to the kernel (passed $before -> $passed)"
e2e_log "ok: ICMP error translated; the reply of no connection went to the kernel (passed $before -> $passed)"

stats=$(lab_lvsadm -Ln --stats) || e2e_fail "lvsadm -Ln --stats failed"
echo "$stats"
for rip in 10.0.0.31 10.0.0.32; do
    read -r conns outpkts outbytes < <(awk -v d="$rip:80" '$1=="->" && $2==d {print $3, $5, $7}' <<<"$stats")
    assert_ge 2 "$conns" "conns on $rip:80"
    assert_ge 4 "$outpkts" "OutPkts on $rip:80"
    assert_ge 200 "$outbytes" "OutBytes on $rip:80"
done
rate=$(lab_lvsadm -Ln --rate) || e2e_fail "lvsadm -Ln --rate failed"
echo "$rate"
e2e_log "PASS ($plane)"
