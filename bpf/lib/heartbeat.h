/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A dead lvsd's programs let go of the VIPs (lvsd --orphan-timeout). lvsd writes its heartbeat, a
 * CLOCK_MONOTONIC time in ns (bpf_ktime_get_ns's clock), into `heartbeat` every timeout/4, with
 * the timeout beside it. When the heartbeat is older than the timeout, lvsd is gone (killed, hung
 * or stopped with the programs left attached): both entry points then leave every frame to the
 * kernel untouched (no redirect to a dead AF_XDP socket, no fast-path forward to old MACs, no
 * PACKET_OTHERHOST), so that the kernel or the VRRP peer takes over. A timeout of 0 (the
 * element as the map starts, or --orphan-timeout 0) never expires. The next lvsd writes a fresh
 * heartbeat and the programs claim the VIPs again.
 */
#ifndef LVS_BPF_HEARTBEAT_H
#define LVS_BPF_HEARTBEAT_H

#include "maps.h"
#include "stats.h"

/* The heartbeat's only element. */
#define LVS_HEARTBEAT_KEY 0

/*
 * Whether lvsd's heartbeat is older than its timeout (counted in `stats` as CLVS_STAT_ORPHANED).
 * One inlined array lookup per frame, and a coarse clock read when a timeout is set.
 */
static __always_inline int lvsd_orphaned(void)
{
	__u32 key = LVS_HEARTBEAT_KEY;
	struct clvs_heartbeat *h = bpf_map_lookup_elem(&heartbeat, &key);
	if (!h)
		return 0;
	__u64 timeout = h->timeout_ns;
	if (timeout == 0)
		return 0;
	/* The coarse clock (CLOCK_MONOTONIC_COARSE: the last tick's time, behind lvsd's
	 * CLOCK_MONOTONIC by at most a tick) costs no clock-source read: a fine one was measured at
	 * about 35 ns per frame here, this one at a few. Signed: a beat can be ahead of it (a tick,
	 * or written on another CPU after this program read the clock). */
	__s64 age = (__s64)(bpf_ktime_get_coarse_ns() - h->beat_ns);
	if (age <= (__s64)timeout)
		return 0;
	count(CLVS_STAT_ORPHANED);
	return 1;
}

#endif
