#!/usr/bin/env bash
# Firewall-mark services: lvsd classifies frames itself (`--fwmark 203.0.113.0/24,tcp,80-81=1`
# replaces `iptables -t mangle ... -d 203.0.113.0/24 --dport 80:81 -j MARK --set-mark 1`);
# `lvsadm -A -f 1` balances them, the persistence template is keyed by the mark (protocol IP in
# -Lnc), and `lvsadm -Ln` lists FWM 1. The rule is a prefix shorter than /32 with a port range, so
# on afxdp and xdp it reaches lvsd only through the BPF programs' fwmark trie (issue 13 item 2:
# before it, the XDP program redirected exact VIP entries only and no SYN reached a real server).
# An IPv6 /64 with a single port (`--fwmark 2001:db8:77::/64,tcp,80=2`, FWM 2 IPv6) too.
# Every data plane:
# e2e-planes: afpacket afxdp xdp tc
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
PREFIX_NET=203.0.113.0/24
PREFIX6_NET=2001:db8:77::/64
# A rules file without services for the seed's VIP:80 (the lab would add TCP 192.168.1.100:80).
printf '%s\n' "# fwmark test: services come from lvsadm below" >"$tmp/empty.rules"
LVS_LAB_LVSD_CONFIG=$tmp/empty.rules LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --fwmark $PREFIX_NET,tcp,80-81=1 --fwmark $PREFIX6_NET,tcp,80=2" \
    lab_start --director lvsd

# The prefix is routed to the director; the real servers take every address in it (DR: the
# destination stays), with a second web server on port 81 (the rule's range) serving the same page.
lab_exec client ip route add "$PREFIX_NET" via 192.168.1.21 || e2e_fail "cannot route $PREFIX_NET via the director"
lab_exec client ip -6 route add "$PREFIX6_NET" via 2001:db8:1::21 || e2e_fail "cannot route $PREFIX6_NET via the director"
for rs in rs1 rs2; do
    lab_exec "$rs" ip route add local "$PREFIX_NET" dev lo || e2e_fail "$rs: cannot make $PREFIX_NET local"
    lab_exec "$rs" ip -6 route add local "$PREFIX6_NET" dev lo || e2e_fail "$rs: cannot make $PREFIX6_NET local"
    setsid ip netns exec "$LAB_PREFIX-$rs" timeout 600 /usr/bin/python3 -m http.server 81 --bind 0.0.0.0 \
        --directory "$LAB_STATE/$rs/www" >"$LAB_STATE/$rs/http81.log" 2>&1 </dev/null &
    e2e_on_exit kill_quiet "$!"
    wait_for 15 "$rs answering on port 81" lab_exec "$rs" curl -sf --max-time 2 http://127.0.0.1:81/ >/dev/null
done

lab_lvsadm -A -f 1 -s rr -p 60 || e2e_fail "lvsadm -A -f 1 failed"
for rip in 192.168.1.31 192.168.1.32; do
    lab_lvsadm -a -f 1 -r "$rip" -g || e2e_fail "lvsadm -a -f 1 -r $rip failed"
done
list=$(lab_lvsadm -Ln)
echo "$list"
grep -q "^FWM  1 rr persistent 60" <<<"$list" || e2e_fail "FWM 1 not listed as expected"
lab_lvsadm -A -f 2 -6 -s rr || e2e_fail "lvsadm -A -f 2 -6 failed"
for rip in 2001:db8:1::31 2001:db8:1::32; do
    lab_lvsadm -a -f 2 -6 -r "$rip" -g || e2e_fail "lvsadm -a -f 2 -6 -r $rip failed"
done

# Addresses across the prefix, both ends of the port range. Persistent by mark: every request
# from the client goes to one real server.
answers=()
for url in http://203.0.113.7/ http://203.0.113.200/ http://203.0.113.7:81/ http://203.0.113.1:81/ http://203.0.113.254/; do
    a=$(curl_rs "$url" 5)
    e2e_log "$url -> $a"
    answers+=("$a")
done
for a in "${answers[@]}"; do
    [[ $a == 0[12] ]] || e2e_fail "request failed: $a (answers: ${answers[*]})"
    [[ $a == "${answers[0]}" ]] || e2e_fail "persistence by mark broken: ${answers[*]}"
done
conns=$(lab_lvsadm -Lnc)
echo "$conns"
grep -Eq "^IP +[0-9]+:[0-9]+ +NONE|^IP +[0-9]+:[0-9]+ +ASSURED" <<<"$conns" || e2e_fail "no fwmark template (protocol IP) in -Lnc"
grep -Eq "^IP .* 0\.0\.0\.1:0 " <<<"$conns" || e2e_fail "the template's virtual address is not the mark"
grep -Eq "^TCP .* 203\.0\.113\.200:80 " <<<"$conns" || e2e_fail "no connection to 203.0.113.200:80 in -Lnc"
grep -Eq "^TCP .* 203\.0\.113\.1:81 " <<<"$conns" || e2e_fail "no connection to 203.0.113.1:81 in -Lnc"

# IPv6: rr over both real servers, at addresses across the /64.
seen=""
for url in "http://[2001:db8:77::5]/" "http://[2001:db8:77::abcd]/" "http://[2001:db8:77::1:2]/" "http://[2001:db8:77::ffff]/"; do
    a=$(curl_rs "$url" 5)
    e2e_log "$url -> $a"
    [[ $a == 0[12] ]] || e2e_fail "IPv6 fwmark request $url failed: $a"
    seen+=" $a"
done
assert_match "$seen" '01' "FWM 2 IPv6: rs1 answered ($seen )"
assert_match "$seen" '02' "FWM 2 IPv6: rs2 answered"

# afpacket: the kernel guard drops the rule's frames too (else the director's kernel answers the
# SYN it also receives, with ip_forward=1 and no route: ICMP unreachable, a failed connect).
if [[ " ${LVS_LAB_LVSD_ARGS:-} " =~ [[:space:]]--dataplane[=[:space:]]afpacket[[:space:]] ]]; then
    ruleset=$(lab_exec director nft list ruleset)
    grep -Eq "ip daddr 203\.0\.113\.0/24 .*dport 80-81 counter packets [1-9][0-9]* .*drop" <<<"$ruleset" ||
        { echo "$ruleset"; e2e_fail "afpacket: no nftables guard rule (with packets) for $PREFIX_NET,tcp,80-81"; }
    grep -Eq "ip6 daddr 2001:db8:77::/64 .*dport 80 counter packets [1-9][0-9]* .*drop" <<<"$ruleset" ||
        { echo "$ruleset"; e2e_fail "afpacket: no nftables guard rule (with packets) for $PREFIX6_NET,tcp,80"; }
    e2e_log "ok: afpacket: the nftables guard drops $PREFIX_NET tcp 80-81 for the kernel"
fi

# The rule is listed by lvsd.
status=$(lab_lvsadm daemon status)
echo "$status"
grep -q "fwmark rule: $PREFIX_NET,tcp,80-81=1" <<<"$status" || e2e_fail "lvsadm daemon status does not list the rule"
e2e_log "PASS"
