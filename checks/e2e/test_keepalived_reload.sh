#!/usr/bin/env bash
# e2e-planes: afpacket tc
# keepalived.conf reload: a slow download (/slow/big, paced by nginx) and
# some finished requests are under way; rs2's weight is edited in the file
# and lvsd gets SIGHUP: the weight changes, `lvsadm -Ln --stats --exact`
# counters (Conns, InPkts, InBytes, per service and destination) do not go
# back, the download completes intact (sha256), the lvsd pid is the same.
# Then the file gets a syntax error (an unknown keyword, and rs2's weight
# changed again): `lvsadm daemon reload` exits non-zero saying it failed, and
# the running rules stay exactly as they were. A fixed file reloads again.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
conf=$tmp/keepalived.conf

# write_conf RS2_WEIGHT [EXTRA_RS1_LINE]
write_conf() {
    cat >"$conf.new" <<CONF
global_defs {
    router_id e2e_reload
}
virtual_server 192.168.1.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP

    real_server 192.168.1.31 80 {
        weight 1
        ${2:-}
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 192.168.1.32 80 {
        weight $1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
CONF
    mv "$conf.new" "$conf"
}

# stats: "ADDR CONNS INPKTS INBYTES" for the service and each destination.
stats() {
    lab_lvsadm -Ln --stats --exact | awk '$1 == "TCP" || $1 == "->" { if ($3 ~ /^[0-9]+$/) print $2, $3, $4, $6 }'
}
# rules: the -Ln lines that describe the configuration (not the counters).
rules() { lab_lvsadm -Ln | awk '$1 == "TCP" { print $1, $2, $3, $4 } $1 == "->" && $2 ~ /^[0-9]/ { print $2, $3, $4 }'; }

write_conf 1
ka_lab_start "$conf"
both_listed() { [[ $(dest_weight 192.168.1.31) == 1 && $(dest_weight 192.168.1.32) == 1 ]]; }
wait_for 10 "rs1 and rs2 listed with weight 1" both_listed >/dev/null
pid=$(lvsd_pid)
want=$(cat "$LAB_STATE/big.sha256")

for i in 1 2 3 4 5 6; do
    a=$(curl_rs "http://$VIP/" 5)
    [[ $a =~ ^0[12]$ ]] || e2e_fail "request $i before the reload failed: $a"
done

# 4 MB at 150 KB/s (nginx paces it): about 27 s, through the reloads. A small client receive
# buffer keeps the data on the wire (through lvsd) rather than in the socket.
lab_exec client sysctl -qw net.ipv4.tcp_rmem="4096 32768 65536"
setsid ip netns exec "$LAB_PREFIX-client" timeout 90 curl -sS --max-time 80 \
    -o "$tmp/big" -w '%{http_code} %{size_download}' "http://$VIP/slow/big?rate=150k" >"$tmp/dl.out" 2>"$tmp/dl.err" </dev/null &
dl=$!
e2e_on_exit kill_quiet "$dl"
established() { lab_lvsadm -Lnc | grep -qE '^TCP .* ESTABLISHED .* 192\.168\.1\.100:80 '; }
wait_for 10 "the download's connection ESTABLISHED in -Lnc" established >/dev/null
sleep 1

before=$(stats)
e2e_log "counters before the reload:"$'\n'"$before"
write_conf 3
kill -HUP "$pid" || e2e_fail "cannot send SIGHUP to lvsd (pid $pid)"
took=$(wait_for 10 "rs2 weight 3 after SIGHUP" dest_has_weight 192.168.1.32 3)
e2e_log "ok: rs2 weight 3, ${took} ms after SIGHUP"
assert_eq 1 "$(dest_weight 192.168.1.31)" "rs1 weight unchanged by the reload"
assert_eq "$pid" "$(lvsd_pid)" "lvsd pid file after SIGHUP"
kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd (pid $pid) is gone after SIGHUP"
after=$(stats)
e2e_log "counters after the reload:"$'\n'"$after"
while read -r addr conns inpkts inbytes; do
    # Non-zero before, so a reset to zero cannot pass as "did not go back".
    assert_ge 1 "$conns" "Conns of $addr before the reload"
    assert_ge 1 "$inpkts" "InPkts of $addr before the reload"
    read -r _ c2 p2 b2 <<<"$(awk -v a="$addr" '$1 == a' <<<"$after")"
    [[ -n ${c2:-} ]] || e2e_fail "$addr missing from the stats after the reload"
    assert_ge "$conns" "$c2" "Conns of $addr did not go back"
    assert_ge "$inpkts" "$p2" "InPkts of $addr did not go back"
    assert_ge "$inbytes" "$b2" "InBytes of $addr did not go back"
done <<<"$before"
svc_conns=$(awk '$1 == "192.168.1.100:80" { print $2 }' <<<"$after")
assert_ge 7 "$svc_conns" "service Conns after the reload (6 requests + the download)"
assert_log 'configuration reloaded' "lvsd logged the reload"

kill -0 "$dl" 2>/dev/null || { cat "$tmp/dl.out" "$tmp/dl.err" >&2; e2e_fail "the download ended before the reload was checked (make it slower)"; }
established || e2e_fail "the download's connection is no longer ESTABLISHED after the reload"

# A broken file: nothing of it may be applied.
rules_before=$(rules)
write_conf 5 "wieght 9"
rc=0
msg=$(lab_lvsadm daemon reload 2>&1) || rc=$?
e2e_log "lvsadm daemon reload with a broken file: exit $rc: $msg"
((rc != 0)) || e2e_fail "lvsadm daemon reload of a file with a syntax error exited 0: $msg"
assert_match "$msg" 'fail' "lvsadm daemon reload says the reload failed"
assert_match "$msg" 'wieght' "the failure names the bad keyword"
sleep 2
assert_eq "$rules_before" "$(rules)" "rules unchanged after the failed reload"
assert_eq 3 "$(dest_weight 192.168.1.32)" "rs2 keeps weight 3 after the failed reload"
assert_eq "$pid" "$(lvsd_pid)" "lvsd pid after the failed reload"
assert_lvsd_alive

deadline=$((SECONDS + 60))
while kill -0 "$dl" 2>/dev/null; do
    ((SECONDS < deadline)) || e2e_fail "download still running after 60s"
    sleep 0.2
done
rc=0
wait "$dl" || rc=$?
cat "$tmp/dl.err" >&2
assert_eq 0 "$rc" "download exit status"
assert_eq "200 4194304" "$(cat "$tmp/dl.out")" "download status and size"
assert_eq "$want" "$(sha256sum "$tmp/big" | cut -d' ' -f1)" "download sha256 (intact across the reloads)"

# The fixed file reloads through lvsadm too.
write_conf 2
rc=0
msg=$(lab_lvsadm daemon reload 2>&1) || rc=$?
assert_eq 0 "$rc" "lvsadm daemon reload of a valid file: exit status ($msg)"
wait_for 10 "rs2 weight 2 after lvsadm daemon reload" dest_has_weight 192.168.1.32 2 >/dev/null
final=$(stats)
e2e_log "counters at the end:"$'\n'"$final"
while read -r addr conns inpkts inbytes; do
    read -r _ c2 p2 b2 <<<"$(awk -v a="$addr" '$1 == a' <<<"$final")"
    assert_ge "$conns" "${c2:-}" "Conns of $addr at the end"
    assert_ge "$inpkts" "${p2:-}" "InPkts of $addr at the end"
done <<<"$after"
assert_eq "$pid" "$(lvsd_pid)" "lvsd pid at the end"
assert_lvsd_alive
e2e_log "PASS"
