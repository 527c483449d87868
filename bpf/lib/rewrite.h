/* SPDX-License-Identifier: GPL-2.0 */
/* The direct-routing rewrite of a forwarded frame (lvsd's FrameRewriter, in BPF). */
#ifndef LVS_BPF_REWRITE_H
#define LVS_BPF_REWRITE_H

#include "stats.h"

/*
 * Forwards as lvsd would: TTL / hop limit minus one (the IPv4 checksum rises by
 * 0x0100, RFC 1624), the real server's and the director's MACs, and the
 * destination's counters and the entry's last-seen time. 0, or -1 when the
 * headers are short.
 */
/* TTL / hop limit minus one (the IPv4 header checksum rises by 0x0100, RFC 1624: the header's
 * checksum is always complete, so this needs no helper). 0, or -1 when the header is short. */
static __always_inline int decrement_ttl(__u8 *ip, void *end, int v4)
{
	if (v4) {
		if ((void *)(ip + IPV4_MIN_HLEN) > end)
			return -1;
		__u16 *check = (__u16 *)(ip + IPV4_CHECK_OFF);
		__u32 c = (__u32)*check + bpf_htons(0x0100);
		*check = (__u16)(c + (c >= 0xFFFF));
		ip[IPV4_TTL_OFF]--;
	} else {
		if ((void *)(ip + IPV6_HLEN) > end)
			return -1;
		ip[IPV6_HOPS_OFF]--;
	}
	return 0;
}

static __always_inline int rewrite(struct ethhdr *eth, __u8 *ip, void *end, int v4, struct clvs_conn_value *v,
				   __u32 iplen)
{
	if (decrement_ttl(ip, end, v4))
		return -1;
	__builtin_memcpy(eth->h_dest, v->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, v->smac, ETH_ALEN);
	count_forwarded(v->dest, iplen);
	v->last_seen = bpf_ktime_get_ns();
	count(CLVS_STAT_FAST);
	return 0;
}

#endif
