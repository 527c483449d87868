#!/usr/bin/env bash
# e2e-planes: afpacket
# The lab with the kernel's nftables DSR as director (the benchmark
# baseline): requests through the VIP reach both real servers directly,
# a 4 MB download and an 8 MB upload survive with offloads on, and
# `lvs-lab verify` agrees.
source "$(dirname "$0")/lib.sh"

lab_start --director nft

# Offloads are on where the data crosses (checksum and segmentation left to
# "hardware" on veth, so the director sees CHECKSUM_PARTIAL and GSO frames).
for node in client director rs1 rs2; do
    k=$(lab_exec "$node" ethtool -k eth0)
    assert_match "$k" $'tx-checksumming: on' "$node: tx checksum offload on"
    assert_match "$k" $'tcp-segmentation-offload: on' "$node: TSO on"
done

body=$(with_timeout 20 lab_exec client curl -sS --max-time 10 "http://$VIP/") || e2e_fail "curl http://$VIP/ failed"
assert_match "$body" '^<h1>Real Server 0[12]</h1>$' "curl through the VIP"

# Per-flow hashing: new connections (new source ports) reach both servers.
seen=""
for i in $(seq 1 16); do
    body=$(lab_exec client curl -sS --max-time 10 "http://$VIP/") || e2e_fail "request $i failed"
    [[ $body =~ Real\ Server\ (0[12]) ]] && seen+=" ${BASH_REMATCH[1]}"
done
assert_match "$seen" '01' "rs1 answered some of 16 flows ($seen )"
assert_match "$seen" '02' "rs2 answered some of 16 flows"

body=$(lab_exec client curl -sS -g --max-time 10 "http://[$VIP6]/") || e2e_fail "curl http://[$VIP6]/ failed"
assert_match "$body" 'Real Server 0[12]' "curl through the IPv6 VIP"

want=$(cat "$LAB_STATE/big.sha256")
e2e_tmpdir >/dev/null
tmp=$E2E_TMP
for url in "http://$VIP/big" "http://[$VIP6]/big"; do
    for i in 1 2 3; do
        out=$(lab_exec client curl -sS -g --max-time 30 -o "$tmp/big" -w '%{http_code} %{size_download}' "$url") ||
            e2e_fail "download $url ($i) failed"
        assert_eq "200 4194304" "$out" "download $url ($i): status and size"
        assert_eq "$want" "$(sha256sum "$tmp/big" | cut -d' ' -f1)" "download $url ($i): sha256"
    done
done

head -c $((8 * 1024 * 1024)) /dev/urandom >"$tmp/up"
for url in "http://$VIP/upload" "http://[$VIP6]/upload"; do
    for i in 1 2 3; do
        out=$(lab_exec client curl -sS -g --max-time 30 -X POST -H 'Content-Type: application/octet-stream' \
            --data-binary @"$tmp/up" -w '\n%{http_code} %{size_upload}' "$url") || e2e_fail "upload $url ($i) failed"
        assert_eq "200 8388608" "$(tail -n1 <<<"$out")" "upload $url ($i): status and bytes sent"
        assert_match "$(head -n1 <<<"$out")" 'received 8388608 bytes' "upload $url ($i): server read the whole body"
    done
done

out=$(with_timeout 120 lab verify 2>&1) || { echo "$out"; e2e_fail "lvs-lab verify failed"; }
echo "$out" | tail -n 3
e2e_log "PASS"
