#!/usr/bin/env bash
# e2e-planes: afpacket
# The Prometheus endpoint: lvsd --metrics 127.0.0.1:9100 with a keepalived.conf (TCP_CHECK):
# per-service and per-destination counters move under traffic between two scrapes, the health
# state of each real server and the table occupancy are exported, and a stopped real server's
# lvs_real_server_up drops to 0.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
cat >"$tmp/keepalived.conf" <<'CONF'
virtual_server 192.168.1.100 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method DR
    protocol TCP
    real_server 192.168.1.31 80 {
        TCP_CHECK { connect_timeout 1 retry 1 delay_before_retry 1 }
    }
    real_server 192.168.1.32 80 {
        TCP_CHECK { connect_timeout 1 retry 1 delay_before_retry 1 }
    }
}
CONF
LVS_LAB_LVSD_CONFIG=$tmp/keepalived.conf LVS_LAB_LVSD_ARGS="--metrics 127.0.0.1:9100" lab_start --director lvsd

scrape() { lab_exec director curl -sS --max-time 5 http://127.0.0.1:9100/metrics; }
value() { awk -v k="$1" 'index($0, k) == 1 { print $NF; exit }' <<<"$2"; }

# Health checks have run once the real servers are reported up.
deadline=$((SECONDS + 20))
until [[ $(value 'lvs_real_server_up{service="TCP 192.168.1.100:80",destination="192.168.1.31:80"}' "$(scrape)") == 1.0 ]]; do
    ((SECONDS < deadline)) || { scrape; e2e_fail "lvs_real_server_up for 192.168.1.31:80 never became 1"; }
    sleep 0.5
done

before=$(scrape)
for _ in $(seq 10); do
    r=$(curl_rs http://192.168.1.100/ 5)
    [[ $r == 0[12] ]] || e2e_fail "request failed: $r"
done
sleep 2.5 # one estimator period
after=$(scrape)
echo "$after" | grep -v '^#' | sed -n 1,40p

svc='lvs_service_connections_total{service="TCP 192.168.1.100:80"}'
b=$(value "$svc" "$before"); a=$(value "$svc" "$after")
[[ -n $a ]] || e2e_fail "no $svc in the scrape"
assert_ge 10 "$((a - ${b:-0}))" "service connections counted between scrapes"
for rip in 192.168.1.31 192.168.1.32; do
    k="lvs_destination_in_packets_total{service=\"TCP 192.168.1.100:80\",destination=\"$rip:80\"}"
    v=$(value "$k" "$after")
    assert_ge 5 "${v:-0}" "in packets of $rip"
done
pps=$(value 'lvs_service_in_packets_per_second{service="TCP 192.168.1.100:80"}' "$after")
[[ -n $pps && $pps != 0.0 ]] || e2e_fail "packet rate did not move: ${pps:-missing}"
entries=$(value 'lvs_connection_table_entries' "$after")
[[ -n $entries && $entries != 0.0 ]] || e2e_fail "connection table occupancy missing or zero: ${entries:-missing}"

# A real server that stops answering is reported down.
kill "$(cat "$LAB_STATE/rs1/nginx.pid")"
deadline=$((SECONDS + 20))
until [[ $(value 'lvs_real_server_up{service="TCP 192.168.1.100:80",destination="192.168.1.31:80"}' "$(scrape)") == 0.0 ]]; do
    ((SECONDS < deadline)) || { scrape | grep real_server; e2e_fail "lvs_real_server_up for 192.168.1.31:80 did not drop to 0"; }
    sleep 0.5
done
e2e_log "PASS"
