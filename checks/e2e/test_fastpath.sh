#!/usr/bin/env bash
# --dataplane xdp and tc only: packets of an established connection are
# forwarded by the XDP program (xdp) or the tc ingress program (tc), not by
# lvsd. During a rate-limited 4 MB download (IPv4, TCP)
# the fast path's map holds the connection and its packet counter grows while
# lvsd's own "forwarded" counter barely moves (handshake, FIN); the download is
# intact; afterwards lvsadm -Ln --stats counts the fast path's packets too,
# and the map entry is gone (the FIN went through lvsd). Then a UDP flow sent
# from trafgen's ring (headers outside the skb's linear part) is forwarded too.
# e2e-planes: xdp tc
source "$(dirname "$0")/lib.sh"

require_fastpath_plane
require_lvs_bins
lvs_bin >/dev/null # resolves and exports LVS_BIN once: the samples below must be quick
lab_start --director lvsd

forwarded() { lab_lvsadm daemon status | awk '$1=="forwarded" {print $2}'; }
# "xdp fast path: N connection(s), P packet(s), B byte(s) forwarded in XDP" (tc: "tc fast path: ...")
fastpath() { lab_lvsadm daemon status | awk -v p="$PLANE" '$1==p && $2=="fast" {print $4, $6}'; }
vip_inpkts() { lab_lvsadm -Ln --stats --exact | awk -v s="$VIP:80" '$1=="TCP" && $2==s {print $4}'; }

status=$(lab_lvsadm daemon status) || e2e_fail "lvsadm daemon status failed"
echo "$status"
assert_match "$status" "data plane: $PLANE" "lvsd runs the $PLANE data plane"
assert_match "$status" "$PLANE fast path: " "status has the fast path line"
assert_match "$status" "BPF object: lvs_xdp.o built into lvsd" "the program swift build put into lvsd is loaded"

tmp=$(e2e_tmpdir)
want=$(cat "$LAB_STATE/big.sha256")
f0=$(forwarded)
p0=$(vip_inpkts)
# ~20 s at 200 kB/s (paced by nginx): long enough to look at the map while the connection is established. A small
# client receive buffer (this lab namespace only) makes the rate limit hold on the wire too.
lab_exec client sysctl -qw net.ipv4.tcp_rmem="4096 32768 65536"
lab_exec client curl -sS --max-time 60 -o "$tmp/big" -w '%{http_code} %{size_download}' \
    "http://$VIP/slow/big?rate=200k" >"$tmp/out" 2>&1 &
dl=$!
# Sample the map and lvsd's counter while the connection is in the map.
samples=()
while kill -0 "$dl" 2>/dev/null; do
    read -r c x < <(fastpath)
    f=$(forwarded)
    ((c == 1)) && samples+=("$x $f")
    sleep 0.3
done
wait "$dl" || e2e_fail "download failed: $(cat "$tmp/out")"
assert_eq "200 4194304" "$(cat "$tmp/out")" "download: status and size"
assert_eq "$want" "$(sha256sum "$tmp/big" | cut -d' ' -f1)" "download: sha256"
e2e_log "while in the map ($PLANE packets, lvsd forwarded): $(printf "%s; " "${samples[@]}")lvsd forwarded before: $f0"
assert_ge 2 "${#samples[@]}" "the established connection is in the fast path's map (samples)"
# The first sample may land between lvsd filling the map and the next client
# packet (counter still 0): the counter must grow from there to at least 5.
read -r x1 f1 <<<"${samples[0]}"
read -r x2 _ <<<"${samples[-1]}"
# lvsd's counter over all samples but the last: that one may have read the counter just after
# the FIN went through lvsd and the map count just before the worker deleted the entry.
read -r _ f2 <<<"${samples[-2]}"
assert_ge 5 "$x2" "the $PLANE program forwarded packets of it"
assert_ge $((x1 + 1)) "$x2" "the $PLANE program's counter grows"
assert_eq "$f1" "$f2" "lvsd's own forwarded counter does not move meanwhile"
# handshake, request and the packets up to the 4th (offloadAfterPackets) plus those already in that batch
((f2 - f0 <= 8)) || e2e_fail "lvsd forwarded $((f2 - f0)) packets of one connection before the map took it (expected at most 8)"

# Statistics: the map's packets reach lvsadm within a second (the worker's sync).
sleep 1.5
p3=$(vip_inpkts)
f3=$(forwarded)
e2e_log "VIP InPkts $p0 -> $p3, lvsd forwarded $f0 -> $f3"
assert_ge $((p0 + x2 + (f3 - f0))) "$p3" "lvsadm --stats counts the packets the $PLANE program forwarded"
read -r c4 _ < <(fastpath)
assert_eq 0 "$c4" "the map entry is gone after the FIN"

# A UDP flow sent from trafgen's transmit ring, as the benchmark sends: such an skb holds only the
# Ethernet header in its linear part (the rest stays in the ring's pages), so the tc program must
# pull the IP and UDP headers in before it can read them. Two bursts of 6 datagrams of one flow:
# the first goes through lvsd, which hands the flow to the fast path; the second is the program's.
# Every datagram is answered by a real server.
require_trafgen
lab_lvsadm -A -u "$VIP:53" -s rr || e2e_fail "lvsadm -A -u $VIP:53 failed"
for rip in 192.168.1.31 192.168.1.32; do
    lab_lvsadm -a -u "$VIP:53" -r "$rip" -g || e2e_fail "lvsadm -a -u $VIP:53 -r $rip failed"
done
dmac=$(lab_exec director cat /sys/class/net/eth0/address) || e2e_fail "cannot read the director's MAC"
cmac=$(lab_exec client cat /sys/class/net/eth0/address) || e2e_fail "cannot read the client's MAC"
cat >"$tmp/udp.cfg" <<EOF
{ eth(da=$dmac, sa=$cmac, type=0x0800), ipv4(saddr=192.168.1.12, daddr=$VIP, ttl=64), udp(sp=40053, dp=53), "ring frame" }
EOF
read -r _ u0 < <(fastpath)
capture_start client rawudp "udp port 53"
for burst in 1 2; do
    with_timeout 30 lab_exec client trafgen --dev eth0 --conf "$tmp/udp.cfg" -n 6 --cpus 1 --no-sock-mem \
        --notouch-irq --no-cpu-stats >"$tmp/trafgen-$burst.log" 2>&1 || { cat "$tmp/trafgen-$burst.log"; e2e_fail "trafgen burst $burst failed"; }
    sleep 0.5
done
capture_stop rawudp
read -r _ u1 < <(fastpath)
answers=$(grep -c "$VIP\.53 > 192\.168\.1\.12\.40053: " "$LAB_STATE/cap-rawudp.txt" || true)
e2e_log "UDP flow from trafgen's ring: $answers answers, $PLANE program packets $u0 -> $u1"
assert_eq 12 "$answers" "answers to the 12 datagrams sent from trafgen's ring"
assert_ge $((u0 + 6)) "$u1" "the $PLANE program forwarded the second burst"
assert_lvsd_alive
e2e_log "PASS"
