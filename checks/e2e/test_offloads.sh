#!/usr/bin/env bash
# With the veths' default offloads on (TSO, checksum offload: lvsd sees GSO
# and CHECKSUM_PARTIAL frames), through lvsd: a 4 MB download (sha256) and an
# 8 MB upload (the server confirms the byte count), IPv4, three times each;
# lvsd's stats must show the bytes went through it.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd

for node in client director rs1 rs2; do
    k=$(lab_exec "$node" ethtool -k eth0)
    assert_match "$k" $'\ntx-checksumming: on' "$node: tx-checksumming on"
    # --dataplane xdp: lvs-lab attaches an XDP program to the director's switch port (XDP_TX
    # delivery), and a veth whose peer has an XDP program loses TSO (the kernel forces it off).
    if [[ $node == director && " ${LVS_LAB_LVSD_ARGS:-} " == *" --dataplane xdp "* ]]; then continue; fi
    assert_match "$k" $'\ntcp-segmentation-offload: on' "$node: TSO on"
done

tmp=$(e2e_tmpdir)
want=$(cat "$LAB_STATE/big.sha256")
head -c $((8 * 1024 * 1024)) /dev/urandom >"$tmp/up"
for i in 1 2 3; do
    out=$(with_timeout 40 lab_exec client curl -sS --max-time 30 -o "$tmp/big" -w '%{http_code} %{size_download}' "http://$VIP/big") ||
        e2e_fail "download $i failed"
    assert_eq "200 4194304" "$out" "download $i: status and size"
    assert_eq "$want" "$(sha256sum "$tmp/big" | cut -d' ' -f1)" "download $i: sha256"

    out=$(with_timeout 40 lab_exec client curl -sS --max-time 30 -X POST -H 'Content-Type: application/octet-stream' \
        --data-binary @"$tmp/up" -w '\n%{http_code} %{size_upload}' "http://$VIP/upload") || e2e_fail "upload $i failed"
    assert_eq "200 8388608" "$(tail -n1 <<<"$out")" "upload $i: status and bytes sent"
    assert_match "$(head -n1 <<<"$out")" '^Real Server 0[12] received 8388608 bytes$' "upload $i: server read the whole body"
done

# Everything went through lvsd: 6 connections, at least 3 x 8 MB in.
stats=$(lab_lvsadm -Ln --stats) || e2e_fail "lvsadm -Ln --stats failed"
echo "$stats"
read -r conns inbytes < <(awk -v s="$VIP:80" '$1=="TCP" && $2==s {print $3, $6}' <<<"$stats")
assert_eq 6 "$conns" "connections through lvsd"
# Counters may print as 25M etc. with large values; -Ln --stats --exact is not assumed.
[[ $inbytes =~ ^[0-9]+$ ]] && assert_ge $((3 * 8 * 1024 * 1024)) "$inbytes" "bytes into lvsd" ||
    assert_match "$inbytes" '^[0-9]+[KMG]$' "bytes into lvsd (scaled)"
assert_lvsd_alive
e2e_log "PASS"
