#!/usr/bin/env bash
# e2e-planes: afpacket afxdp xdp tc
# The tunnel method (-i, ip_vs_tunnel_xmit): IPIP, GUE and GRE (with checksum)
# to both real servers, IPv6-in-IPv6 for [VIP6]. The real servers decapsulate
# in user space (tun_decap.py into a TUN device: this machine's kernel has no
# ipip, fou or ip_gre); replies return directly, as in DR. Checks: rr
# alternation, -Ln / --tun-info / --stats, the outer header in a capture on
# rs1's link, a 10 MB download and a 10 MB upload intact (the upload through
# path MTU discovery: "fragmentation needed" lowers the client's segment size),
# and a 1,500-byte UDP datagram with DF
# answered by ICMP "fragmentation needed" carrying 1480 (IPIP), 1468 (GUE),
# 1472 (GRE with checksum) from the VIP, ICMPv6 "packet too big" 1460 for IPv6-in-IPv6. Offloads stay on (the lab's TSO): lvsd
# cuts the client's GSO frames into segments before encapsulating them.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
RS=(192.168.1.31 192.168.1.32)
RS6=(2001:db8:1::31 2001:db8:1::32)
GUE_PORT=6080
BIG_BYTES=$((10 * 1024 * 1024))


# Real servers: a TUN device fed by the user-space decapsulator (bounded: 200 s).
for n in rs1 rs2; do
    lab_exec "$n" ip tuntap add dev tun0 mode tun || e2e_fail "$n: cannot create tun0"
    setsid ip netns exec "$LAB_PREFIX-$n" timeout 200 /usr/bin/python3 "$E2E_DIR/tun_decap.py" --tun tun0 \
        --gue-port "$GUE_PORT" --stats "$LAB_STATE/$n/decap.txt" --seconds 190 \
        >"$LAB_STATE/$n/decap.log" 2>&1 </dev/null &
    echo $! >"$LAB_STATE/$n/decap.pid"
    e2e_on_exit kill "$(cat "$LAB_STATE/$n/decap.pid")"
done
for n in rs1 rs2; do
    deadline=$((SECONDS + 10))
    until [[ -f $LAB_STATE/$n/decap.txt ]]; do
        ((SECONDS < deadline)) || e2e_fail "$n: the decapsulator did not start: $(cat "$LAB_STATE/$n/decap.log")"
        sleep 0.2
    done
    lab_exec "$n" ip link set tun0 up
    lab_exec "$n" sysctl -qw net.ipv4.conf.tun0.rp_filter=0
done

decap_count() { awk -v k="$2" '$1==k {print $2}' "$LAB_STATE/$1/decap.txt" 2>/dev/null || true; }

curls() {
    local what=$1 url=$2 seen="" a i
    for i in 1 2 3 4 5 6; do
        a=$(curl_rs "$url")
        [[ $a == 0[12] ]] || e2e_fail "$what: curl $i: $a"
        seen+=" $a"
    done
    for ((i = 1; i < 6; i++)); do
        [[ ${seen:i*3:3} != "${seen:(i-1)*3:3}" ]] || e2e_fail "$what: rr does not alternate:$seen"
    done
    e2e_log "$what: rr$seen"
}

# too_big MTU WHAT: a 1,500-byte UDP datagram with DF (IP_PMTUDISC_PROBE: DF set, the cached
# path MTU ignored) to VIP:9999 gets ICMP fragmentation needed with MTU, from the VIP.
too_big() {
    local mtu=$1 what=$2 icmp
    capture_start client "icmp-$what" icmp
    lab_exec client /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 3)  # IP_MTU_DISCOVER = IP_PMTUDISC_PROBE
s.sendto(b"x" * 1472, (sys.argv[1], 9999))' "$VIP" || e2e_fail "$what: cannot send the 1,500-byte datagram"
    local deadline=$((SECONDS + 5))
    until grep -q "need to frag" "$LAB_STATE/cap-icmp-$what.txt" || ((SECONDS >= deadline)); do sleep 0.2; done
    capture_stop "icmp-$what"
    icmp=$(grep "need to frag" "$LAB_STATE/cap-icmp-$what.txt" || true)
    echo "$icmp"
    assert_match "$icmp" "$VIP > 192\.168\.1\.12: ICMP $VIP unreachable - need to frag \(mtu $mtu\)" \
        "$what: ICMP fragmentation needed with MTU $mtu from the VIP"
}

# through NAME FILTER OUTER KIND MTU TUN-OPTION...: both services' real servers switched to this
# tunnel; rr through it, the outer header (OUTER, an ERE) in a capture of FILTER on rs1's link,
# rs1's decapsulator counting KIND, and the ICMP "fragmentation needed" with MTU.
through() {
    local name=$1 filter=$2 outer_re=$3 kind=$4 mtu=$5 rip outer
    shift 5
    for rip in "${RS[@]}"; do
        lab_lvsadm -e -t "$VIP:80" -r "$rip:80" -i "$@" || e2e_fail "$name: lvsadm -e -t -r $rip:80 -i $* failed"
        lab_lvsadm -e -u "$VIP:9999" -r "$rip:9999" -i "$@" || e2e_fail "$name: lvsadm -e -u -r $rip:9999 -i $* failed"
    done
    capture_start rs1 "$name" "$filter"
    curls "$name" "http://$VIP/"
    capture_stop "$name"
    outer=$(grep -E "$outer_re" "$LAB_STATE/cap-$name.txt" | head -n 2 || true)
    echo "$outer"
    [[ -n $outer ]] || e2e_fail "$name: no outer header /$outer_re/ on rs1's link"
    assert_ge 3 "$(decap_count rs1 "$kind")" "$name: rs1 decapsulated ($kind)"
    too_big "$mtu" "$name"
}

# The lab's VIP:80 has both real servers as DR: -e makes them tunnel ones.
lab_lvsadm -A -u "$VIP:9999" -s rr || e2e_fail "lvsadm -A -u $VIP:9999 failed"
for rip in "${RS[@]}"; do
    lab_lvsadm -e -t "$VIP:80" -r "$rip:80" -i || e2e_fail "lvsadm -e -r $rip:80 -i failed"
    lab_lvsadm -a -u "$VIP:9999" -r "$rip:9999" -i || e2e_fail "lvsadm -a -u -r $rip:9999 -i failed"
done
listing=$(lab_lvsadm -Ln --tun-info) || e2e_fail "lvsadm -Ln --tun-info failed"
echo "$listing"
assert_match "$listing" "-> 192\.168\.1\.31:80 +Tunnel +ipip " "--tun-info lists ipip"

# IPIP: the outer header on rs1's link, rr, the ICMP, a download and an upload.
through ipip 'ip proto 4' "192\\.168\\.1\\.21 > 192\\.168\\.1\\.31: 192\\.168\\.1\\.12\\.[0-9]+ > $VIP\\.80: " ipip 1480 --tun-type ipip
assert_match "$(grep -m1 -E '192\.168\.1\.21 > 192\.168\.1\.31: ' "$LAB_STATE/cap-ipip.txt")" "00:50:00:00:04:00 > 00:50:00:00:01:00" \
    "IPIP: director's MAC to rs1's"
# A 10 MB file on both real servers (the lab's /big has 4 MB).
e2e_tmpdir >/dev/null
head -c "$BIG_BYTES" /dev/urandom >"$E2E_TMP/big10-src"
for n in rs1 rs2; do cp "$E2E_TMP/big10-src" "$LAB_STATE/$n/www/big10"; done
want=$(sha256sum "$E2E_TMP/big10-src" | cut -d' ' -f1)
out=$(lab_exec client curl -sS --max-time 30 -o "$E2E_TMP/big" -w '%{http_code} %{size_download}' "http://$VIP/big10") ||
    e2e_fail "IPIP: download failed"
assert_eq "200 $BIG_BYTES" "$out" "IPIP: download status and size"
assert_eq "$want" "$(sha256sum "$E2E_TMP/big" | cut -d' ' -f1)" "IPIP: download sha256"
# A 10 MB upload: full-sized segments with DF get "fragmentation needed", the client's
# TCP lowers its segment size (path MTU discovery through the tunnel), every byte arrives.
head -c $((10 * 1024 * 1024)) /dev/urandom >"$E2E_TMP/up"
out=$(lab_exec client curl -sS --max-time 60 -H 'Expect:' --data-binary @"$E2E_TMP/up" -w '\n%{http_code} %{size_upload}' \
    "http://$VIP/upload") || e2e_fail "IPIP: upload failed"
assert_eq "200 10485760" "$(tail -n1 <<<"$out")" "IPIP: upload status and bytes sent"
assert_match "$(head -n1 <<<"$out")" 'received 10485760 bytes' "IPIP: the server read the whole body"
stats=$(lab_lvsadm -Ln --stats) || e2e_fail "lvsadm -Ln --stats failed"
echo "$stats"
for rip in "${RS[@]}"; do
    assert_ge 3 "$(awk -v d="$rip:80" '$1=="->" && $2==d {print $3}' <<<"$stats")" "IPIP: conns on $rip:80"
done

# GUE with checksum, then GRE with checksum.
through gue "udp port $GUE_PORT" "192\\.168\\.1\\.21\\.[0-9]+ > 192\\.168\\.1\\.31\\.$GUE_PORT: UDP" gue 1468 \
    --tun-type gue --tun-port "$GUE_PORT" --tun-csum
assert_match "$(lab_lvsadm -Ln --tun-info)" "-> 192\\.168\\.1\\.31:80 +Tunnel +gue:$GUE_PORT:\\+c " "--tun-info lists gue"
through gre 'ip proto 47' "192\\.168\\.1\\.21 > 192\\.168\\.1\\.31: GREv0, off 0x0, proto IPv4" gre-csum 1472 --tun-type gre --tun-csum
assert_eq "" "$(decap_count rs1 gre-badcsum)" "GRE: no bad checksum"

# IPv6 in IPv6.
lab_lvsadm -A -t "[$VIP6]:80" -s rr || e2e_fail "lvsadm -A -t [$VIP6]:80 failed"
for rip in "${RS6[@]}"; do
    lab_lvsadm -a -t "[$VIP6]:80" -r "[$rip]:80" -i || e2e_fail "lvsadm -a -r [$rip]:80 -i failed"
done
curls "IPv6-in-IPv6" "http://[$VIP6]/"
# A 1,500-byte UDP datagram to [VIP6]:9999: ICMPv6 packet too big with 1460 (1500 - 40).
lab_lvsadm -A -u "[$VIP6]:9999" -s rr || e2e_fail "lvsadm -A -u [$VIP6]:9999 failed"
lab_lvsadm -a -u "[$VIP6]:9999" -r "[${RS6[0]}]:9999" -i || e2e_fail "lvsadm -a -u -r [${RS6[0]}]:9999 -i failed"
capture_start client ptb icmp6
lab_exec client /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, 23, 3)  # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_PROBE
s.sendto(b"x" * 1452, (sys.argv[1], 9999))' "$VIP6" || e2e_fail "cannot send the 1,500-byte IPv6 datagram"
deadline=$((SECONDS + 5))
until grep -q "packet too big" "$LAB_STATE/cap-ptb.txt" || ((SECONDS >= deadline)); do sleep 0.2; done
capture_stop ptb
ptb=$(grep "packet too big" "$LAB_STATE/cap-ptb.txt" || true)
echo "$ptb"
assert_match "$ptb" "$VIP6 > 2001:db8:1::12: ICMP6, packet too big, mtu 1460" "IPv6: packet too big with MTU 1460 from the VIP"
assert_ge 3 "$(decap_count rs1 ip6ip6)" "IPv6-in-IPv6: rs1 decapsulated"

# A real server on a subnet the director does not share: rs3 (10.9.0.31) behind a router
# (192.168.1.254 on the lab's segment, 10.9.0.1 on rs3's). lvsd takes the route's gateway as the
# next hop and resolves its MAC; rs3 answers the client directly through the router.
RT=$LAB_PREFIX-router
RS3=$LAB_PREFIX-rs3
ip netns add "$RT" && e2e_on_exit ip netns del "$RT"
ip netns add "$RS3" && e2e_on_exit ip netns del "$RS3"
ip -n "$LAB_PREFIX-sw" link add router type veth peer name eth0 netns "$RT"
ip -n "$LAB_PREFIX-sw" link set router master br0
ip -n "$LAB_PREFIX-sw" link set router up
ip -n "$RT" link add eth1 type veth peer name eth0 netns "$RS3"
ip netns exec "$RT" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip -n "$RT" addr add 192.168.1.254/24 dev eth0
ip -n "$RT" addr add 10.9.0.1/24 dev eth1
for l in lo eth0 eth1; do ip -n "$RT" link set "$l" up; done
ip netns exec "$RS3" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip -n "$RS3" addr add 10.9.0.31/24 dev eth0
ip -n "$RS3" addr add "$VIP/32" dev lo
ip -n "$RS3" link set lo up
ip -n "$RS3" link set eth0 up
ip -n "$RS3" route add default via 10.9.0.1
ip -n "$RS3" tuntap add dev tun0 mode tun
mkdir -p "$LAB_STATE/rs3/www"
echo '<h1>Real Server 03</h1>' >"$LAB_STATE/rs3/www/index.html"
setsid ip netns exec "$RS3" timeout 120 /usr/bin/python3 "$E2E_DIR/tun_decap.py" --tun tun0 \
    --stats "$LAB_STATE/rs3/decap.txt" --seconds 110 >"$LAB_STATE/rs3/decap.log" 2>&1 </dev/null &
e2e_on_exit kill $!
setsid ip netns exec "$RS3" timeout 120 /usr/bin/python3 -m http.server 8080 --directory "$LAB_STATE/rs3/www" \
    >"$LAB_STATE/rs3/http.log" 2>&1 </dev/null &
e2e_on_exit kill $!
deadline=$((SECONDS + 10))
until [[ -f $LAB_STATE/rs3/decap.txt ]]; do
    ((SECONDS < deadline)) || e2e_fail "rs3: the decapsulator did not start: $(cat "$LAB_STATE/rs3/decap.log")"
    sleep 0.2
done
ip -n "$RS3" link set tun0 up
lab_exec director ip route add 10.9.0.0/24 via 192.168.1.254 || e2e_fail "director: cannot add the route to 10.9.0.0/24"
lab_lvsadm -A -t "$VIP:8080" -s rr || e2e_fail "lvsadm -A -t $VIP:8080 failed"
lab_lvsadm -a -t "$VIP:8080" -r 10.9.0.31:8080 -i || e2e_fail "lvsadm -a -r 10.9.0.31:8080 -i failed"
capture_start rs3 routed 'ip proto 4'
for i in 1 2 3; do
    body=$(lab_exec client curl -sS --max-time 10 "http://$VIP:8080/" 2>&1) || e2e_fail "routed: curl $i: $body"
    assert_match "$body" 'Real Server 03' "routed: curl $i answered by rs3"
done
capture_stop routed
# rs3's link is behind the router: the frame there comes from the router's MAC.
outer=$(grep -E "192\.168\.1\.21 > 10\.9\.0\.31: 192\.168\.1\.12\.[0-9]+ > $VIP\.8080: " "$LAB_STATE/cap-routed.txt" | head -n 1 || true)
echo "$outer"
[[ -n $outer ]] || e2e_fail "routed: no IP-in-IP from the director to 10.9.0.31 on rs3's link"
assert_match "$(cat "$LAB_STATE/lvsd.log")" "gateway=192\.168\.1\.254 .*real_server=10\.9\.0\.31 source=192\.168\.1\.21" \
    "lvsd logged the route to 10.9.0.31 through 192.168.1.254"

cat "$LAB_STATE"/rs*/decap.txt
assert_lvsd_alive
e2e_log "PASS"
