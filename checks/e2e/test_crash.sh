#!/usr/bin/env bash
# e2e-planes: afpacket afxdp xdp tc
# kill -9 survival (issue 16): lvsd writes its restart state every --checkpoint-interval (2 s
# here) while it runs. 20 rate-limited downloads run through the VIP long enough to be in a
# checkpoint; right after the next checkpoint 10 more start (in no checkpoint); 1 s later lvsd
# is killed with SIGKILL and started again at once with the same command line (within the 3 s
# --orphan-timeout, so its leftovers still hold the VIP). The new lvsd restores the checkpoint:
# every checkpointed download completes intact (sha256). The late ones are in no checkpoint: with
# sloppy_tcp=0 (the default) their mid-stream segments are not scheduled and they stall; with
# E2E_CRASH_SLOPPY=1 lvsd runs with sloppy_tcp=1 and picks them up mid-stream, to whichever real
# server the scheduler gives (the one that had the connection: it goes on; the other: it answers
# with a RST). Prints how many of each group survived.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"
HA_NODES=(director)

SLOPPY=${E2E_CRASH_SLOPPY:-0}
EARLY=20 LATE=10 RATE=300k # 4 MB at 300 kB/s: about 14 s
INTERVAL=2

require_lvs_bins
lab_start_with_seed_rules --restart-guard --checkpoint-interval $INTERVAL --orphan-timeout 3 --set-sysctl sloppy_tcp=$SLOPPY
SOCK=$LAB_STATE/lvsd.sock
mapfile -d '' CMDLINE <"/proc/$(lvsd_pid)/cmdline"
e2e_log "lvsd command line: ${CMDLINE[*]}"
checkpoints() { grep -c 'restart state checkpoint written' "$LAB_STATE/lvsd.log" || true; }
checkpoints_above() { (($(checkpoints) > $1)); }

ha_round_start "$EARLY" "$RATE"
early_round=$HA_ROUND
# A checkpoint that started at least a second after the downloads did, then the late ones at once
# (the next checkpoint comes 2 s later, after the kill).
sleep 1
n=$(checkpoints)
wait_for 15 "a checkpoint after the downloads started" checkpoints_above "$n" >/dev/null
ha_round_start "$LATE" "$RATE"
late_round=$HA_ROUND
sleep 1
listed=$(lab_lvsadm -Lnc | grep -c ESTABLISHED || true)
pid=$(lvsd_pid)
e2e_log "$listed ESTABLISHED connections listed; kill -9 $pid (last checkpoint: $(grep 'restart state checkpoint written' "$LAB_STATE/lvsd.log" | tail -n 1 | grep -o 'entries=[0-9]*'))"
KILLED=$(ha_now)
lvsd_kill9
[[ -s $SOCK.state ]] || e2e_fail "no checkpoint at $SOCK.state after the kill"
lvsd_respawn "${CMDLINE[@]}"
e2e_log "new lvsd $(lvsd_pid) answers $(ms_between "$KILLED" "$(ha_now)") ms after the kill"
grep 'restart state restored' "$LAB_STATE/lvsd.log" | tail -n 1 | cut -c1-240 >&2 || e2e_fail "the new lvsd restored no state"

ha_round_finish "checkpointed downloads" 40 "$early_round"
early_intact=$HA_INTACT
ha_round_finish "late downloads (no checkpoint)" 12 "$late_round"
late_intact=$HA_INTACT
echo "MEASURE $E2E_NAME sloppy_tcp=$SLOPPY checkpointed_survived=$early_intact/$EARLY late_survived=$late_intact/$LATE checkpoint_interval_s=$INTERVAL"
assert_eq "$EARLY" "$early_intact" "checkpointed downloads intact after kill -9 and a new lvsd (sha256)"
assert_lvsd_alive
e2e_log "PASS"
