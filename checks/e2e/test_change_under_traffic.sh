#!/usr/bin/env bash
# Changes while a download runs: add an unreachable third destination, delete
# the destination not carrying the download, set weight 0 on the one carrying
# it, re-add the deleted one, weight 0 on the third. The download completes
# intact; new connections go only to the re-added server.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
tmp=$(e2e_tmpdir)
want=$(cat "$LAB_STATE/big.sha256")

# 4 MB at 250 KB/s: about 16 s (the changes below take several seconds on a busy machine). A small client receive buffer keeps the data
# on the wire (through lvsd) for that long, not parked in the client's socket.
lab_exec client sysctl -qw net.ipv4.tcp_rmem="4096 32768 65536"
# start_download: the rate-limited download in the background ($dl); then the
# real server that carries it ($carrier), from its ESTABLISHED entry in -Lnc
# (connections that were ESTABLISHED before it are not the download), and the
# listing $list. nginx paces it (/slow/big?rate=250k: about 16 s); curl's own
# --limit-rate now and then let the whole file through in a second.
start_download() {
    local earlier deadline
    earlier=$(lab_lvsadm -Lnc | awk '$1=="TCP" && $3=="ESTABLISHED" {print $4}' | tr '\n' ' ')
    setsid ip netns exec "$LAB_PREFIX-client" timeout 75 curl -sS --max-time 60 \
        -o "$tmp/big" -w '%{http_code} %{size_download}' "http://$VIP/slow/big?rate=250k" >"$tmp/dl.out" 2>"$tmp/dl.err" </dev/null &
    dl=$!
    e2e_on_exit kill "$dl"
    carrier=""
    deadline=$((SECONDS + 10))
    while [[ -z $carrier ]]; do
        ((SECONDS < deadline)) || { lab_lvsadm -Lnc || true; cat "$tmp/dl.out" "$tmp/dl.err" >&2; e2e_fail "no ESTABLISHED connection within 10s"; }
        carrier=$(lab_lvsadm -Lnc | awk -v old=" $earlier" '$1=="TCP" && $3=="ESTABLISHED" && $5=="192.168.1.100:80" && index(old, " " $4 " ") == 0 {sub(/:80$/, "", $6); print $6; exit}')
        [[ -n $carrier ]] && break
        if ! kill -0 "$dl" 2>/dev/null; then
            lab_lvsadm -Lnc || true
            e2e_fail "the download ended before lvsd's table showed it: $(cat "$tmp/dl.out" "$tmp/dl.err")"
        fi
        sleep 0.1
    done
    list=$(lab_lvsadm -Ln) || e2e_fail "lvsadm -Ln failed"
    echo "$list"
    kill -0 "$dl" 2>/dev/null || e2e_fail "the download ended right after lvsd's table showed it: $(cat "$tmp/dl.out" "$tmp/dl.err")"
}
start_download
if [[ $carrier == 192.168.1.31 ]]; then other=192.168.1.32; else other=192.168.1.31; fi
e2e_log "download carried by $carrier; other: $other"
active=$(awk -v d="$carrier:80" '$1=="->" && $2==d {print $5}' <<<"$list")
assert_eq 1 "$active" "ActiveConn of $carrier while the download is ESTABLISHED"

lab_lvsadm -a -t "$VIP:80" -r 192.168.1.33:80 -g || e2e_fail "adding 192.168.1.33 failed"
lab_lvsadm -d -t "$VIP:80" -r "$other:80" || e2e_fail "deleting $other failed"
lab_lvsadm -e -t "$VIP:80" -r "$carrier:80" -g -w 0 || e2e_fail "weight 0 on $carrier failed"
lab_lvsadm -a -t "$VIP:80" -r "$other:80" -g || e2e_fail "re-adding $other failed"
lab_lvsadm -e -t "$VIP:80" -r 192.168.1.33:80 -g -w 0 || e2e_fail "weight 0 on 192.168.1.33 failed"
list=$(lab_lvsadm -Ln) || e2e_fail "lvsadm -Ln failed"
echo "$list"
kill -0 "$dl" 2>/dev/null || { cat "$tmp/dl.out" "$tmp/dl.err" >&2; e2e_fail "the download ended before the changes were done (make it slower)"; }
lab_lvsadm -Lnc | grep -qE "^TCP .* ESTABLISHED .* 192\.168\.1\.100:80 +$carrier:80" ||
    e2e_fail "the download's connection is no longer ESTABLISHED in -Lnc after the changes"
e2e_log "ok: changes applied while the download runs"

deadline=$((SECONDS + 50))
while kill -0 "$dl" 2>/dev/null; do
    ((SECONDS < deadline)) || e2e_fail "download still running after 50s"
    sleep 0.2
done
rc=0
wait "$dl" || rc=$?
cat "$tmp/dl.err" >&2
assert_eq 0 "$rc" "download exit status"
assert_eq "200 4194304" "$(cat "$tmp/dl.out")" "download status and size"
assert_eq "$want" "$(sha256sum "$tmp/big" | cut -d' ' -f1)" "download sha256"

want_rs=0${other: -1}
for i in $(seq 1 6); do
    a=$(curl_rs "http://$VIP/" 5)
    assert_eq "$want_rs" "$a" "new connection $i goes to the only eligible server $other"
done
grep -n '192\.168\.1\.33' "$LAB_STATE/lvsd.log" | tail -n 5 >&2 || e2e_log "note: lvsd logged nothing about 192.168.1.33"
assert_lvsd_alive
e2e_log "PASS"
