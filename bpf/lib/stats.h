/* SPDX-License-Identifier: GPL-2.0 */
/* The programs' frame counters (`stats`, enum clvs_xdp_stat) and the destinations' (`dest_stats`). */
#ifndef LVS_BPF_STATS_H
#define LVS_BPF_STATS_H

#include "maps.h"

/* One more frame of reason `what` on this CPU. */
static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &what);
	if (v)
		*v += 1;
}

/* One more packet of `iplen` IP bytes forwarded to destination slot `dest`. */
static __always_inline void count_forwarded(__u32 dest, __u32 iplen)
{
	struct clvs_dest_counters *c = bpf_map_lookup_elem(&dest_stats, &dest);
	if (c) { /* this CPU's own counters: no atomics needed */
		c->packets += 1;
		c->bytes += iplen;
	}
}

/* One more NAT reply of `iplen` IP bytes forwarded from destination slot `dest` (OutPkts/OutBytes). */
static __always_inline void count_reply(__u32 dest, __u32 iplen)
{
	struct clvs_dest_counters *c = bpf_map_lookup_elem(&dest_stats, &dest);
	if (c) {
		c->out_packets += 1;
		c->out_bytes += iplen;
	}
}

#endif
