#!/usr/bin/env bash
# While a curl loop runs (every request must succeed), ~5000 hostile frames
# from the client namespace at the director (checks/e2e/hostile.py, scapy):
# lvsd must still run and answer on its control socket, and no curl failed.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
PY=/usr/bin/python3
require_scapy
lab_start --director lvsd
tmp=$(e2e_tmpdir)
pid=$(lvsd_pid)

curl_loop() {
    local i=0 a
    while [[ ! -e $tmp/stop ]]; do
        i=$((i + 1))
        a=$(curl_rs "http://$VIP/" 5)
        echo "$i $a" >>"$tmp/curls"
    done
}
curl_loop &
loop=$!
e2e_on_exit kill "$loop"

out=$(with_timeout 300 lab_exec client env E2E_SEED=$$ "$PY" "$E2E_DIR/hostile.py" eth0 00:50:00:00:04:00 "$VIP" "$VIP6" 192.168.1.12 2>&1) ||
    { echo "$out"; e2e_fail "hostile.py failed"; }
echo "$out"
sent=$(grep -Eo '^sent [0-9]+' <<<"$out" | cut -d' ' -f2)
assert_ge 4000 "$sent" "hostile frames sent"
touch "$tmp/stop"
deadline=$((SECONDS + 20))
while kill -0 "$loop" 2>/dev/null; do
    ((SECONDS < deadline)) || e2e_fail "curl loop did not stop within 20s"
    sleep 0.2
done

kill -0 "$pid" 2>/dev/null || e2e_fail "lvsd (pid $pid) died under hostile traffic"
assert_lvsd_alive
total=$(wc -l <"$tmp/curls")
bad=$(grep -v ' 0[12]$' "$tmp/curls" || true)
[[ -z $bad ]] || { echo "$bad" | head; e2e_fail "$(wc -l <<<"$bad") of $total curls failed during the hostile traffic"; }
assert_ge 10 "$total" "curls during the hostile traffic, all answered"
a=$(curl_rs "http://$VIP/")
assert_match "$a" '^0[12]$' "curl after the hostile traffic"
e2e_log "PASS"
