#!/usr/bin/env bash
# e2e-planes: afpacket
# ECMP simultaneous change (issue 17, test 7): downloads run over two directors (dir3's lvsd is
# stopped first); then, at the same moment, dir3's lvsd starts (it announces the VIP once its
# checks pass: the router adds a third next hop and moves flows) and rs2 is removed on every
# director. Only the flows on rs2 may break: every download that was on rs1 completes intact,
# whichever director the router moved it to (the mh table depends on the set of real servers
# only, mh-sorted). The note counts the downloads that were on rs2 and how many of them broke.
# Control-plane test: afpacket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
source "$(dirname "$0")/ecmp_lib.sh"

DOWNLOADS=40
RATE=800k
NEW=dir3
RS2=192.168.1.32

require_lvs_bins
ecmp_lab_start 3
tmp=$(e2e_tmpdir)
ha_term "$NEW"
ecmp_wait_withdrawn "$NEW" 20 >/dev/null
e2e_log "$NEW stopped and withdrawn; router: $VIP via $(ecmp_nexthops | tr '\n' ' ')"

# Downloads (4 MB at 800 kB/s, ~5 s; 15 s at most: those on rs2 stall) whose client port is
# known (curl -w), to tell which real server each was on.
for ((i = 1; i <= DOWNLOADS; i++)); do
    (
        rc=0
        lab_exec client timeout 30 curl -sS --max-time 15 -o "$tmp/dl-$i" -w '%{local_port}\n' \
            "http://$VIP/slow/big?rate=$RATE" >"$tmp/dl-$i.port" 2>"$tmp/dl-$i.err" || rc=$?
        echo "$rc" >"$tmp/dl-$i.rc"
    ) </dev/null &
    e2e_on_exit kill_quiet "$!"
done
sleep 2
# Which real server each client port went to, from the two live directors' connection tables.
for n in director dir2; do ha_lvsadm "$n" -Lnc; done |
    awk -v c="$ECMP_CLIENT" '$1 == "TCP" && $3 == "ESTABLISHED" { split($4, s, ":"); if (s[1] == c) { split($6, d, ":"); print s[2], d[1] } }' |
    sort -u >"$tmp/port-rs"
on_rs2=$(awk -v r="$RS2" '$2 == r' "$tmp/port-rs" | wc -l)
e2e_log "$(wc -l <"$tmp/port-rs") established flows seen, $on_rs2 on rs2"

t0=$(now_ms)
ha_start_lvsd "$NEW"
for n in director dir2 "$NEW"; do
    ha_lvsadm "$n" -d -t "$VIP:80" -r "$RS2:80" || e2e_fail "$n: lvsadm -d rs2 failed"
done
e2e_log "$NEW started and rs2 removed on every director ($(($(now_ms) - t0)) ms)"
ecmp_wait_announced "$NEW" 30 >/dev/null
t1=$(now_ms)
e2e_log "$NEW announced $((t1 - t0)) ms after the change; router: $VIP via $(ecmp_nexthops | tr '\n' ' ')"

deadline=$((SECONDS + 40))
for ((i = 1; i <= DOWNLOADS; i++)); do
    until [[ -f $tmp/dl-$i.rc ]]; do
        ((SECONDS < deadline)) || e2e_fail "download $i still runs after 40 s"
        sleep 0.2
    done
done
want=$(<"$LAB_STATE/big.sha256")
rs1_n=0 rs1_ok=0 rs2_n=0 rs2_ok=0 unknown=0
for ((i = 1; i <= DOWNLOADS; i++)); do
    port=$(tr -dc 0-9 <"$tmp/dl-$i.port")
    rs=$(awk -v p="$port" '$1 == p { print $2 }' "$tmp/port-rs")
    ok=0
    [[ $(sha256sum "$tmp/dl-$i" 2>/dev/null | cut -d' ' -f1) == "$want" ]] && ok=1
    case $rs in
    "$RS2") rs2_n=$((rs2_n + 1)); rs2_ok=$((rs2_ok + ok)) ;;
    "") unknown=$((unknown + 1)); e2e_log "download $i (port ${port:-?}): not in the connection tables" ;;
    *) rs1_n=$((rs1_n + 1)); rs1_ok=$((rs1_ok + ok))
        ((ok)) || e2e_log "download $i (port $port, rs1): exit $(<"$tmp/dl-$i.rc"), $(stat -c %s "$tmp/dl-$i" 2>/dev/null || echo 0) bytes: $(head -c 160 "$tmp/dl-$i.err")" ;;
    esac
done
echo "MEASURE $E2E_NAME: downloads=$DOWNLOADS on_rs1=$rs1_n rs1_intact=$rs1_ok on_rs2=$rs2_n rs2_broken=$((rs2_n - rs2_ok)) unmapped=$unknown announce_ms=$((t1 - t0))"
assert_eq 0 "$unknown" "downloads not found in the directors' connection tables"
assert_eq "$rs1_n" "$rs1_ok" "downloads on rs1 intact"
assert_ge 1 "$rs1_n" "downloads on rs1"
