#!/usr/bin/env bash
# e2e-planes: afpacket
# Split brain of the HA pair, healed (issue 15). The adverts between the directors are cut
# (nftables on the lab's switch drops IP protocol 112 to and from dir2's port, so the cut
# does not depend on how lvsd reads adverts): dir2 stops hearing director and becomes
# MASTER too; its gratuitous ARP moves the client to dir2. Connections are made during the
# split (downloads and a keep-alive loop). Then the cut is healed: one MASTER remains
# (director, priority 150), dir2 goes back to BACKUP, and the client's ARP entry for the
# VIP points at director's MAC within 1 s (+ E2E_HA_SLACK_MS). What happened to the
# connections made during the split is printed (MEASURE line), not asserted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ha_lib.sh"

ha_lab_start
SW="$LAB_PREFIX-sw"
CUT_TABLE=ha_split_cut

neigh4() { lab_exec client ip -4 neigh show "$VIP" dev eth0 | awk '{ for (k = 1; k < NF; k++) if ($k == "lladdr") print $(k + 1) }'; }
neigh_is() { [[ $(neigh4) == "${HA_MAC[$1]}" ]]; }

# The client knows the VIP (director's MAC) before the split.
curl_rs "http://$VIP/" >/dev/null
e2e_log "client's ARP entry for $VIP before the split: $(neigh4)"

t0=$(ha_now)
ip netns exec "$SW" nft -f - <<NFT || e2e_fail "cannot install the advert cut on the switch"
table bridge $CUT_TABLE {
    chain forward {
        type filter hook forward priority 0; policy accept;
        iifname "dir2" ip protocol 112 drop
        oifname "dir2" ip protocol 112 drop
        iifname "dir2" ip6 nexthdr 112 drop
        oifname "dir2" ip6 nexthdr 112 drop
    }
}
NFT
t1=$(ha_wait_notified dir2 VI_1 MASTER "$t0" 15)
e2e_log "split: dir2 MASTER $(ms_between "$t0" "$t1") ms after the cut"
wait_for 5 "director still MASTER during the split" ha_is_state director VI_1 MASTER >/dev/null
wait_for 5 "dir2 MASTER during the split" ha_is_state dir2 VI_1 MASTER >/dev/null
e2e_log "ok: both directors MASTER for VI_1"
split_arp=$(neigh4)
e2e_log "client's ARP entry for $VIP during the split: $split_arp ($([[ $split_arp == "${HA_MAC[dir2]}" ]] && echo dir2 || echo director))"

# Connections made during the split (~5 s downloads), alive across the heal.
ha_round_start 6 800k
sleep 2
t2=$(ha_now)
t2_ms=$(now_ms)
ip netns exec "$SW" nft delete table bridge "$CUT_TABLE" || e2e_fail "cannot remove the advert cut"
t3=$(ha_wait_notified dir2 VI_1 BACKUP "$t2" 10)
backup_ms=$(ms_between "$t2" "$t3")
# The client's ARP entry: polled every 20 ms for up to 5 s.
arp_ms=""
while (($(now_ms) - t2_ms < 5000)); do
    if neigh_is director; then arp_ms=$(($(now_ms) - t2_ms)); break; fi
    sleep 0.02
done
e2e_log "heal: dir2 BACKUP after $backup_ms ms; client's ARP entry at director after ${arp_ms:-(not within 5 s)} ms"
wait_for 5 "director MASTER after the heal" ha_is_state director VI_1 MASTER >/dev/null
wait_for 5 "dir2 BACKUP after the heal" ha_is_state dir2 VI_1 BACKUP >/dev/null
HA_EXTRA="split_arp=$split_arp heal_to_backup_ms=$backup_ms heal_to_client_arp_ms=${arp_ms:-none}" ha_round_finish split 40
[[ -n $arp_ms ]] || e2e_fail "the client's ARP entry for $VIP does not point at director 5 s after the heal: $(neigh4)"
ha_assert_within "$arp_ms" $((1000 + HA_SLACK_MS)) "heal: client's ARP entry at director"
e2e_log "connections made during the split: $HA_INTACT of $HA_ROUND_N downloads intact, $HA_FAILED of $HA_REQS loop requests failed, $HA_RSTS RSTs"
e2e_log "PASS"
