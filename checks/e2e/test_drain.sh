#!/usr/bin/env bash
# e2e-planes: afpacket
# lvsadm drain under load (issue 16). Case 1: 30 keep-alive clients (drain_clients.py, each
# connection held 2-6 s) and 30 rate-limited downloads (4 MB at 400 KB/s) through the VIP; rs1 is
# drained with --then-delete: its weight is 0 while it is still listed, drain exits 0 after the
# last of its connections ended (every rs1 download and keep-alive connection ended before drain
# returned, and some rs1 downloads were still running when it started), rs1 is gone, no request
# failed, every download is intact (status, size, sha256). Case 2: rs1 added back, slow downloads,
# drain --timeout 3 --then-delete on a terminal (script(1)): a progress line per second, exit 3,
# rs1 deleted while one of its downloads still runs. Case 3: SIGINT to a waiting drain: exit 130,
# rs1 still listed at weight 0, not deleted.
# A control-plane command: one data plane is enough.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --director lvsd
tmp=$(e2e_tmpdir)
want=$(cat "$LAB_STATE/big.sha256")
RS1=192.168.1.31
DOWNLOADS=30
KA_CLIENTS=30

# A small client receive buffer keeps the downloads' data on the wire, paced by nginx.
lab_exec client sysctl -qw net.ipv4.tcp_rmem="4096 32768 65536"

# drain ARGS...: lvsadm drain in the director (stdout not a terminal), bounded; sets DRAIN_RC,
# DRAIN_START_MS, DRAIN_END_MS; output in $tmp/drain.out.
drain() {
    DRAIN_START_MS=$(now_ms)
    DRAIN_RC=0
    lab_exec director env LVSD_SOCKET="$LAB_STATE/lvsd.sock" timeout 120 "$(lvs_bin)/lvsadm" drain "$@" \
        >"$tmp/drain.out" 2>"$tmp/drain.err" </dev/null || DRAIN_RC=$?
    DRAIN_END_MS=$(now_ms)
    cat "$tmp/drain.out" "$tmp/drain.err" >&2
}

# drain_tty ARGS...: the same on a terminal (script(1) gives it a pty); \r removed from the output.
drain_tty() {
    local cmd
    cmd=$(printf '%q ' ip netns exec "$LAB_PREFIX-director" env LVSD_SOCKET="$LAB_STATE/lvsd.sock" \
        timeout 120 "$(lvs_bin)/lvsadm" drain "$@")
    DRAIN_START_MS=$(now_ms)
    DRAIN_RC=0
    script -qec "$cmd" /dev/null </dev/null >"$tmp/drain.raw" 2>&1 || DRAIN_RC=$?
    DRAIN_END_MS=$(now_ms)
    tr -d '\r' <"$tmp/drain.raw" >"$tmp/drain.out"
    cat "$tmp/drain.out" >&2
}

# download N RATE: one download in the background; $tmp/dl.N holds "START_MS END_MS RC CODE SIZE
# LOCAL_PORT" when it ends.
DL_PIDS=()
download() {
    local n=$1 rate=$2
    setsid ip netns exec "$LAB_PREFIX-client" bash -c '
        s=$(date +%s%3N); rc=0
        w=$(timeout 100 curl -sS --max-time 90 -o "$1.body" -w "%{http_code} %{size_download} %{local_port}" "$2" 2>"$1.err") || rc=$?
        echo "$s $(date +%s%3N) $rc $w" >"$1"' _ "$tmp/dl.$n" "http://$VIP/slow/big?rate=$rate" </dev/null &
    DL_PIDS+=($!)
    e2e_on_exit kill_quiet "$!"
}

# established_to RS: the client ports of the ESTABLISHED entries to RS:80 in -Lnc.
established_to() {
    lab_lvsadm -Lnc | awk -v d="$1:80" '$1 == "TCP" && $3 == "ESTABLISHED" && $6 == d { n = split($4, a, ":"); print a[n] }'
}
established_count() { lab_lvsadm -Lnc | awk '$1 == "TCP" && $3 == "ESTABLISHED"' | wc -l; }
enough_established() { (($(established_count) >= $1)); }

# weight sampler: "MS WEIGHT ACTIVE" of rs1 every ~0.3 s ("MS absent" once deleted).
sample_rs1() {
    while [[ ! -e $tmp/sampler.stop ]]; do
        line=$(lab_lvsadm -Ln | awk -v d="$RS1:80" '$1 == "->" && $2 == d { print $4, $5 }')
        echo "$(now_ms) ${line:-absent}" >>"$tmp/sampler"
        sleep 0.3
    done
}

# ---------------------------------------------------------------- case 1: drained, then deleted
touch "$tmp/ka.run"
e2e_on_exit rm -f "$tmp/ka.run"
setsid ip netns exec "$LAB_PREFIX-client" timeout 200 /usr/bin/python3 "$E2E_DIR/drain_clients.py" \
    "http://$VIP/" "$KA_CLIENTS" 4 "$tmp/ka.run" >"$tmp/ka.out" 2>"$tmp/ka.err" </dev/null &
ka=$!
e2e_on_exit kill_quiet "$ka"
for n in $(seq 1 "$DOWNLOADS"); do download "$n" 400k; done
wait_for 30 "$DOWNLOADS downloads and the keep-alive clients ESTABLISHED" enough_established $((DOWNLOADS + KA_CLIENTS / 2)) >/dev/null
lab_lvsadm -Lnc >"$tmp/lnc.before"
mapfile -t rs1_ports < <(established_to "$RS1")
e2e_log "rs1 carries ${#rs1_ports[@]} connections at the start; $(established_count) ESTABLISHED in all"

: >"$tmp/sampler"
sample_rs1 </dev/null &
sampler=$!
e2e_on_exit touch "$tmp/sampler.stop"
drain -t "$VIP:80" -r "$RS1" --then-delete
touch "$tmp/sampler.stop"
wait "$sampler" 2>/dev/null || true

assert_eq 0 "$DRAIN_RC" "drain exit status (drained)"
assert_eq 2 "$(wc -l <"$tmp/drain.out")" "drain's lines when stdout is not a terminal (start, end)"
assert_match "$(head -1 "$tmp/drain.out")" "^drain $RS1:80 of TCP $VIP:80: weight 0 \\(was 1\\), waiting for [1-9][0-9]* connections" "drain's first line"
assert_match "$(tail -1 "$tmp/drain.out")" "drained after .* \\(0 active, .*\\); deleted$" "drain's last line"
dest_absent "$RS1" || e2e_fail "$RS1 is still listed after the drain"
e2e_log "ok: $RS1 deleted"
# The weight was 0 while rs1 was still listed and still had connections.
awk '$2 == "0" && $3 > 0' "$tmp/sampler" | grep -q . ||
    { cat "$tmp/sampler" >&2; e2e_fail "no sample shows $RS1 at weight 0 with active connections"; }
e2e_log "ok: $RS1 listed at weight 0 with connections during the drain ($(awk '$2 == "0"' "$tmp/sampler" | wc -l) samples)"

# The rest of the load goes on for a moment through rs2 alone, then everything ends.
sleep 2
rm -f "$tmp/ka.run"
deadline=$((SECONDS + 100))
for p in "${DL_PIDS[@]}" "$ka"; do
    while kill -0 "$p" 2>/dev/null; do
        ((SECONDS < deadline)) || e2e_fail "downloads or keep-alive clients still running after 100 s"
        sleep 0.2
    done
done

# No request failed; every download intact.
fails=$(grep -c '^fail' "$tmp/ka.out" || true)
conns=$(grep -c '^conn' "$tmp/ka.out" || true)
reqs=$(awk '$1 == "conn" { s += $6 } END { print s + 0 }' "$tmp/ka.out")
grep '^fail' "$tmp/ka.out" | head -n 5 >&2 || true
cat "$tmp/ka.err" >&2
assert_eq 0 "$fails" "keep-alive requests failed ($reqs requests over $conns connections)"
assert_ge 100 "$reqs" "keep-alive requests made"
rs1_dl_running_at_start=0 rs1_dl=0 rs1_last_end=0
for n in $(seq 1 "$DOWNLOADS"); do
    [[ -s $tmp/dl.$n ]] || e2e_fail "download $n left no result"
    read -r s e rc code size port <"$tmp/dl.$n"
    [[ $rc == 0 && $code == 200 && $size == 4194304 ]] ||
        e2e_fail "download $n: curl $rc, HTTP $code, $size bytes: $(cat "$tmp/dl.$n.err")"
    [[ $(sha256sum "$tmp/dl.$n.body" | cut -d' ' -f1) == "$want" ]] || e2e_fail "download $n: wrong sha256"
    if [[ " ${rs1_ports[*]} " == *" $port "* ]]; then
        rs1_dl=$((rs1_dl + 1))
        ((e > rs1_last_end)) && rs1_last_end=$e
        ((e > DRAIN_START_MS)) && rs1_dl_running_at_start=$((rs1_dl_running_at_start + 1))
    fi
done
e2e_log "ok: $DOWNLOADS downloads intact (200, 4194304 bytes, sha256)"
assert_ge 1 "$rs1_dl" "downloads carried by $RS1"
assert_ge 1 "$rs1_dl_running_at_start" "$RS1 downloads still running when drain started"
# Every rs1 connection ended before drain returned (it deleted rs1 only after the last one).
ka_last_end=$(awk '$1 == "conn" && $5 == "01" && $3 < '"$DRAIN_END_MS"' { if ($4 > m) m = $4 } END { printf "%.0f\n", m }' "$tmp/ka.out")
late=$(awk '$1 == "conn" && $5 == "01" && $3 < '"$DRAIN_END_MS"' && $4 > '"$DRAIN_END_MS"'' "$tmp/ka.out" | wc -l)
ka_rs1=$(awk '$1 == "conn" && $5 == "01" && $3 < '"$DRAIN_START_MS"'' "$tmp/ka.out" | wc -l)
assert_ge 1 "$ka_rs1" "keep-alive connections to $RS1 opened before the drain"
assert_eq 0 "$late" "keep-alive connections to $RS1 (opened before drain returned) that ended after it"
((rs1_last_end <= DRAIN_END_MS)) || e2e_fail "an $RS1 download ended at $rs1_last_end, after drain returned at $DRAIN_END_MS"
after_new=$(awk '$1 == "conn" && $5 == "01" && $3 > '"$DRAIN_END_MS"'' "$tmp/ka.out" | wc -l)
assert_eq 0 "$after_new" "keep-alive connections to $RS1 opened after the drain"
e2e_log "ok: drain ran $((DRAIN_END_MS - DRAIN_START_MS)) ms; last $RS1 download ended $((DRAIN_END_MS - rs1_last_end)) ms before it returned, last keep-alive connection to $RS1 $((DRAIN_END_MS - ka_last_end)) ms before"
echo "MEASURE drain-case1 drain_ms=$((DRAIN_END_MS - DRAIN_START_MS)) rs1_downloads=$rs1_dl ka_requests=$reqs ka_failed=$fails"

# ---------------------------------------------------------------- case 2: deleted at the timeout
lab_lvsadm -a -t "$VIP:80" -r "$RS1:80" -g || e2e_fail "adding $RS1 back failed"
DL_PIDS=()
for n in 101 102 103 104; do download "$n" 100k; done
rs1_has() { [[ -n $(established_to "$RS1") ]]; }
wait_for 30 "a slow download on $RS1" rs1_has >/dev/null
drain_tty -t "$VIP:80" -r "$RS1" --timeout 3 --then-delete
assert_eq 3 "$DRAIN_RC" "drain exit status (timeout)"
# On a terminal: the first line, a progress line per second (0, 1, 2 s), the timeout line.
progress=$(grep -c " left after [0-9.]*s (" "$tmp/drain.out" || true)
assert_ge 3 "$progress" "progress lines on a terminal"
assert_match "$(tail -1 "$tmp/drain.out")" "timeout after 3\\.[0-9]s with [1-9][0-9]* active.*; deleting it all the same$" "drain's last line"
dest_absent "$RS1" || e2e_fail "$RS1 is still listed after the timeout"
running=0
for n in 101 102 103 104; do [[ -s $tmp/dl.$n ]] || running=$((running + 1)); done
assert_ge 1 "$running" "slow downloads still running when $RS1 was deleted at the timeout"
kill_quiet "${DL_PIDS[@]}"

# ---------------------------------------------------------------- case 3: Ctrl-C
# SIGINT to a waiting drain: exit 130, rs1 still listed at weight 0, and drain says so.
lab_lvsadm -a -t "$VIP:80" -r "$RS1:80" -g || e2e_fail "adding $RS1 back failed"
DL_PIDS=()
for n in 201 202; do download "$n" 100k; done
wait_for 30 "a slow download on $RS1" rs1_has >/dev/null
ip netns exec "$LAB_PREFIX-director" env LVSD_SOCKET="$LAB_STATE/lvsd.sock" "$(lvs_bin)/lvsadm" drain \
    -t "$VIP:80" -r "$RS1" --then-delete >"$tmp/drain.out" 2>"$tmp/drain.err" </dev/null &
drainer=$!
e2e_on_exit kill_quiet "$drainer"
wait_for 10 "$RS1 at weight 0" dest_has_weight "$RS1" 0 >/dev/null
kill -INT "$drainer"
deadline=$((SECONDS + 10))
while kill -0 "$drainer" 2>/dev/null; do
    ((SECONDS < deadline)) || e2e_fail "drain still running 10 s after SIGINT"
    sleep 0.1
done
rc=0
wait "$drainer" || rc=$?
cat "$tmp/drain.out" "$tmp/drain.err" >&2
assert_eq 130 "$rc" "drain exit status after SIGINT"
assert_match "$(tail -1 "$tmp/drain.out")" "interrupted after .* the weight stays 0, the real server is not deleted$" "drain's last line after SIGINT"
assert_eq 0 "$(dest_weight "$RS1")" "$RS1 still listed, weight 0, after SIGINT"
assert_lvsd_alive
e2e_log "PASS"
