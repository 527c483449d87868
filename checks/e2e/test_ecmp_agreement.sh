#!/usr/bin/env bash
# e2e-planes: afpacket
# ECMP agreement (issue 17, test 2): the router's route is pinned to one director at a time and
# the client replays the same 1,000 (source address, source port) tuples through each. With mh
# (mh-port and mh-sorted; dir2 lists rs2 first, the others rs1) every
# director picks the same real server for every tuple. Control: the same replay with rr on every
# director, where the pick depends on each director's history and the agreement is partial.
# Control-plane test: scheduling does not depend on lvsd's data plane: afpacket only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
source "$(dirname "$0")/ecmp_lib.sh"

TUPLES=1000
FIRST_PORT=20000

require_lvs_bins
ecmp_lab_start 3
tmp=$(e2e_tmpdir)
for ((i = 0; i < TUPLES; i++)); do
    echo "${ECMP_SOURCES[i % ${#ECMP_SOURCES[@]}]} $((FIRST_PORT + i))"
done >"$tmp/tuples"
e2e_on_exit ecmp_unpin

# replay SCHED: the tuples through each director in turn; prints how many tuples got the same
# real server from every director, and the requests that failed.
replay() {
    local sched=$1 n
    for n in "${HA_NODES[@]}"; do
        ecmp_pin "$n"
        ecmp_client tuples "$VIP" "$tmp/tuples" >"$tmp/$sched-$n" || e2e_fail "client replay through $n failed"
    done
    ecmp_unpin
    # columns: SRC SPORT RS per director, side by side
    paste "${HA_NODES[@]/#/$tmp/$sched-}" | awk '{
        same = 1; for (k = 6; k <= NF; k += 3) if ($k != $3) same = 0
        for (k = 3; k <= NF; k += 3) if ($k !~ /^0[12]$/) bad++
        agree += same } END { printf "%d %d\n", agree, bad }'
}

read -r mh_agree mh_failed < <(replay mh)
e2e_log "mh: $mh_agree of $TUPLES tuples got the same real server from all ${#HA_NODES[@]} directors ($mh_failed requests failed)"
for n in "${HA_NODES[@]}"; do
    ha_lvsadm "$n" -E -t "$VIP:80" -s rr >/dev/null || e2e_fail "$n: lvsadm -E -s rr failed"
done
read -r rr_agree rr_failed < <(replay rr)
e2e_log "rr: $rr_agree of $TUPLES tuples got the same real server from all ${#HA_NODES[@]} directors ($rr_failed requests failed)"
echo "MEASURE $E2E_NAME: tuples=$TUPLES directors=${#HA_NODES[@]} mh_agree=$mh_agree mh_failed=$mh_failed rr_agree=$rr_agree rr_failed=$rr_failed"
assert_eq 0 "$mh_failed" "mh: requests that failed"
assert_eq 0 "$rr_failed" "rr: requests that failed"
assert_eq "$TUPLES" "$mh_agree" "mh: tuples with the same real server on every director"
((rr_agree < TUPLES * 9 / 10)) || e2e_fail "rr (the control) agrees on $rr_agree of $TUPLES tuples: the replay does not tell schedulers apart"
e2e_log "ok: rr, the control, agrees on $rr_agree of $TUPLES tuples only"
