#!/usr/bin/env bash
# e2e-planes: afpacket
# `lvs-lab up --method tun` (GUE): the real servers behind a router on 10.9.0.0/24, a subnet the
# director does not share, reached by tunnel; rr alternates, a 4 MB download is intact, --stats
# counts both, the route's gateway is logged; `lvs-lab down` removes the router's namespace too.
# (The tunnel types and planes in detail: test_tun.sh.)
source "$(dirname "$0")/lib.sh"

require_lvs_bins
export LVS_LAB_TUN_TYPE=gue
lab_start --director lvsd --method tun

listing=$(lab_lvsadm -Ln --tun-info) || e2e_fail "lvsadm -Ln --tun-info failed"
echo "$listing"
assert_match "$listing" "-> 10\.9\.0\.31:80 +Tunnel +gue:6080:-c " "rs1 listed as a GUE tunnel real server"
seen=""
for i in 1 2 3 4 5 6; do
    a=$(curl_rs "http://$VIP/")
    [[ $a == 0[12] ]] || e2e_fail "curl $i: $a"
    seen+=" $a"
done
for ((i = 1; i < 6; i++)); do
    [[ ${seen:i*3:3} != "${seen:(i-1)*3:3}" ]] || e2e_fail "rr does not alternate:$seen"
done
e2e_log "rr$seen"
e2e_tmpdir >/dev/null
out=$(lab_exec client curl -sS --max-time 30 -o "$E2E_TMP/big" -w '%{http_code} %{size_download}' "http://$VIP/big") ||
    e2e_fail "download failed"
assert_eq "200 $((4 * 1024 * 1024))" "$out" "download status and size"
assert_eq "$(cat "$LAB_STATE/big.sha256")" "$(sha256sum "$E2E_TMP/big" | cut -d' ' -f1)" "download sha256"
stats=$(lab_lvsadm -Ln --stats) || e2e_fail "lvsadm -Ln --stats failed"
echo "$stats"
for rip in 10.9.0.31 10.9.0.32; do
    assert_ge 3 "$(awk -v d="$rip:80" '$1=="->" && $2==d {print $3}' <<<"$stats")" "conns on $rip:80"
done
assert_match "$(cat "$LAB_STATE/lvsd.log")" "gateway=192\.168\.1\.254 .*real_server=10\.9\.0\.31 " "lvsd took the router as next hop"
assert_lvsd_alive
timeout 120 "$LVS_LAB" down --prefix "$LAB_PREFIX" >&2 || e2e_fail "lvs-lab down failed"
left=$(ip netns list | awk '{print $1}' | grep -E "^$LAB_PREFIX-" || true)
[[ -z $left ]] || e2e_fail "namespaces left after down: $left"
LAB_PREFIX=""
e2e_log "PASS"
