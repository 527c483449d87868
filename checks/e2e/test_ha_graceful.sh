#!/usr/bin/env bash
# e2e-planes: afpacket
# Graceful switchover and failback of the HA pair (issue 15). SIGTERM on the MASTER's lvsd:
# its priority-0 advert makes the backup MASTER within about one advert interval (the skew
# time), nothing lost. Then, with downloads made through the new master still running, the
# old master's lvsd starts again and preempts (priority 150 > 100): it takes the VIP back.
# Downloads started before each switch (round A before the SIGTERM, round B on dir2 before
# the failback) finish intact and the client sees no RST. Prints MEASURE lines.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"

ha_lab_start

# Round A: through director, across both switches (~12 s per download).
ha_round_start 10 350k
sleep 2
t0=$(ha_now)
ha_term director
t1=$(ha_wait_notified dir2 VI_1 MASTER "$t0" 10)
switch_ms=$(ms_between "$t0" "$t1")
e2e_log "SIGTERM: dir2 MASTER after $switch_ms ms (director's notify: $(ha_last_notified director VI_1))"

# Round B: made through dir2, before the failback.
sleep 1
ha_round_start 10 350k
sleep 2
t2=$(ha_now)
ha_start_lvsd director
t3=$(ha_wait_notified director VI_1 MASTER "$t2" 20)
back_ms=$(ms_between "$t2" "$t3")
t4=$(ha_wait_notified dir2 VI_1 BACKUP "$t2" 10)
e2e_log "failback: director MASTER $back_ms ms after its start, dir2 BACKUP after $(ms_between "$t2" "$t4") ms"
ha_wait_settled director 10

HA_EXTRA="switch_ms=$switch_ms failback_ms=$back_ms" ha_round_finish "A(sigterm+failback)" 60 1
intact_a=$HA_INTACT n_a=$HA_ROUND_N rst_a=$HA_RSTS
HA_EXTRA="failback_ms=$back_ms" ha_round_finish "B(made-on-backup,failback)" 60 2
ha_assert_within "$switch_ms" "$(ha_graceful_bound_ms)" "SIGTERM: dir2 MASTER (notify)"
assert_eq "$n_a" "$intact_a" "round A (before the SIGTERM): downloads intact (sha256)"
assert_eq 0 "$rst_a" "round A: TCP RSTs seen by the client"
ha_assert_nothing_lost "round B (made on dir2, before the failback)"
e2e_log "PASS"
