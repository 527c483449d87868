/* SPDX-License-Identifier: GPL-2.0 */
/* Parsing: Ethernet and its VLAN tags (802.1Q, 802.1ad, QinQ), and how much of a frame to pull. */
#ifndef LVS_BPF_PARSE_H
#define LVS_BPF_PARSE_H

#include "common.h"

/* A VLAN tag after the MAC addresses: the TCI, then the next EtherType. */
struct vlan_tag {
	__be16 tci;
	__be16 next_type;
};

/*
 * The L3 header after Ethernet and its VLAN tags, as lvsd's parser (FrameParser.parse) reads
 * them: at most two, the outer one 802.1Q (0x8100) or 802.1ad (0x88A8), an inner one 802.1Q
 * (QinQ: 0x88A8 then 0x8100, or 0x8100 then 0x8100). Any other stack of tags leaves `*type` a tag
 * type, which no class knows: such frames go to the kernel. NULL when the tags are cut short.
 */
static __always_inline void *after_ethernet(struct ethhdr *eth, void *end, __u16 *type)
{
	void *l3 = eth + 1;
	*type = eth->h_proto;
	if (*type == bpf_htons(ETH_P_8021Q) || *type == bpf_htons(ETH_P_8021AD)) {
		struct vlan_tag *tag = l3;
		if ((void *)(tag + 1) > end)
			return NULL;
		*type = tag->next_type;
		l3 = tag + 1;
		if (*type == bpf_htons(ETH_P_8021Q)) {
			tag = l3;
			if ((void *)(tag + 1) > end)
				return NULL;
			*type = tag->next_type;
			l3 = tag + 1;
		}
	}
	return l3;
}

/* Bytes of headers the classifier may read when they are not plain TCP/UDP: Ethernet + IPv6 +
 * TCP or a neighbour solicitation (78), rounded up. */
#define LINEAR_HEADERS_MAX 96

/*
 * How much of the frame must be in an skb's linear part for the classifier to read every header
 * it reads: for IPv4 and IPv6 TCP and UDP (nearly all traffic) exactly their headers, else
 * LINEAR_HEADERS_MAX. A frame from a local TCP stack has all its headers there, but its payload
 * in pages; pulling beyond the headers would copy the skb's head (it is a clone) for every
 * segment. (tc only: XDP sees the whole frame.)
 */
static __always_inline __u32 linear_headers_len(void *data, void *end)
{
	struct ethhdr *eth = data;
	__u8 *ip = (__u8 *)(eth + 1);
	if ((void *)(ip + IPV6_HLEN) > end)
		return LINEAR_HEADERS_MAX;
	__u32 l2 = sizeof(struct ethhdr);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		__u32 ihl = (ip[0] & 0x0F) * 4;
		if (ip[IPV4_PROTO_OFF] == IPPROTO_TCP)
			return l2 + ihl + TCP_MIN_HLEN;
		if (ip[IPV4_PROTO_OFF] == IPPROTO_UDP)
			return l2 + ihl + UDP_HLEN;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		if (ip[IPV6_NEXT_OFF] == IPPROTO_TCP)
			return l2 + IPV6_HLEN + TCP_MIN_HLEN;
		if (ip[IPV6_NEXT_OFF] == IPPROTO_UDP)
			return l2 + IPV6_HLEN + UDP_HLEN;
	}
	return LINEAR_HEADERS_MAX;
}

#endif
