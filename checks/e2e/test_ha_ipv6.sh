#!/usr/bin/env bash
# e2e-planes: afpacket
# IPv6 failover of the HA pair (issue 15): VI_6 (VIP6 2001:db8:1::100, VRRPv3, vrid 52).
# Rate-limited downloads (sha256) and a keep-alive loop through [VIP6] while the MASTER's
# lvsd is killed with SIGKILL: the backup is MASTER for VI_6 within 3 x advert_int + skew
# (+ E2E_HA_SLACK_MS), every download intact, no RST at the client; a MEASURE line, and the
# client's neighbour entry for VIP6 (the unsolicited NA) pointing at dir2.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"

ha_lab_start

ha_round_start 10 400k "[$VIP6]"
sleep 3
t0=$(ha_now)
ha_kill9 director
t1=$(ha_wait_notified dir2 VI_6 MASTER "$t0" 15)
take=$(ms_between "$t0" "$t1")
e2e_log "kill -9: dir2 MASTER for VI_6 after $take ms"
HA_EXTRA="takeover_ms=$take" ha_round_finish kill9-v6 60
ha_assert_within "$take" "$(ha_down_bound_ms)" "kill -9: dir2 MASTER for VI_6 (notify)"
ha_assert_nothing_lost kill9-v6
neigh6() { lab_exec client ip -6 neigh show "$VIP6" dev eth0 | awk '{ for (k = 1; k < NF; k++) if ($k == "lladdr") print $(k + 1) }'; }
neigh6_is_dir2() { [[ $(neigh6) == "${HA_MAC[dir2]}" ]]; }
wait_for 5 "the client's neighbour entry for $VIP6 points at dir2" neigh6_is_dir2 >/dev/null
e2e_log "ok: client's neighbour entry for $VIP6: $(neigh6) (dir2)"
e2e_log "PASS"
