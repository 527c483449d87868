/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The classifier both entry points share (XDP and tc): what a frame is to lvsd, and the fast path
 * for connections in `conns`. The entry points only turn its verdict into their actions.
 */
#ifndef LVS_BPF_CLASSIFY_H
#define LVS_BPF_CLASSIFY_H

#include "parse.h"
#include "lookup.h"
#include "csum.h"
#include "rewrite.h"
#include "stats.h"
#include "nat.h"

/* What a frame is to lvsd, before the fast path. */
enum frame_class {
	FC_KERNEL,    /* not lvsd's: the kernel handles it */
	FC_ADDRESS,   /* a fragment or ICMP error to a VIP address: lvsd */
	FC_NEIGHBOUR, /* ARP request / neighbour solicitation for a VIP it owns: lvsd */
	FC_TRANSPORT, /* TCP/UDP/SCTP to a VIP address: the fast path, else lvsd if
	               * it is a service (checked after the connection lookup, so a
	               * forwarded frame costs one hash lookup) */
};

/* ARP: Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4), operation at 6, target protocol
 * address at 24. */
#define ARP_LEN 28
#define ARP_OP_OFF 6
#define ARP_TPA_OFF 24
#define ICMPV6_NS_LEN 24
#define ICMPV6_NS_TARGET_OFF 8
#define ICMPV6_NEIGHBOUR_SOLICITATION 135
#define IPPROTO_FRAGMENT_HEADER 44
#define IPPROTO_ICMPV6_NEXT 58

/*
 * Classifies the frame whose L3 header (after Ethernet and its VLAN tags) starts at `l3`
 * with EtherType `type`. Only FC_TRANSPORT fills `out` completely.
 */
static __always_inline int frame_class(void *l3, __u16 type, void *end, struct service_frame *out)
{
	struct clvs_vip_key *k = &out->k;

	if (type == bpf_htons(ETH_P_ARP)) {
		__u8 *a = l3;
		if ((void *)(a + ARP_LEN) > end)
			return FC_KERNEL;
		if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != ETH_ALEN || a[5] != 4)
			return FC_KERNEL;
		if (a[ARP_OP_OFF] != 0 || a[ARP_OP_OFF + 1] != 1) /* only requests; replies go to the kernel */
			return FC_KERNEL;
		k->family = 4;
		__builtin_memcpy(k->addr, a + ARP_TPA_OFF, 4);
		return !no_arp() && is_owned_vip_address(k) ? FC_NEIGHBOUR : FC_KERNEL;
	}

	__u8 proto;
	void *l4;
	if (type == bpf_htons(ETH_P_IP)) {
		__u8 *ip = l3;
		if ((void *)(ip + IPV4_MIN_HLEN) > end)
			return FC_KERNEL;
		__u32 ihl = (ip[0] & 0x0F) * 4;
		if (ihl < IPV4_MIN_HLEN)
			return FC_KERNEL;
		k->family = 4;
		__builtin_memcpy(k->addr, ip + IPV4_DADDR_OFF, 4);
		proto = ip[IPV4_PROTO_OFF];
		/* Fragments: only the first carries ports; lvsd tracks the rest. */
		if ((ip[IPV4_FRAG_OFF] & 0x3F) != 0 || ip[IPV4_FRAG_OFF + 1] != 0)
			return is_lvsd_address(k) ? FC_ADDRESS : FC_KERNEL;
		l4 = ip + ihl;
		if (proto == IPPROTO_ICMP) {
			__u8 *icmp = l4;
			if ((void *)(icmp + 1) > end)
				return FC_KERNEL;
			/* Errors (unreachable, source quench, time exceeded, parameter problem) about
			 * packets a real server sent from the VIP. */
			if (icmp[0] == 3 || icmp[0] == 4 || icmp[0] == 11 || icmp[0] == 12)
				return is_vip_address(k) || is_marked_error(k, icmp, end) ? FC_ADDRESS : FC_KERNEL;
			return FC_KERNEL;
		}
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		__u8 *ip6 = l3;
		if ((void *)(ip6 + IPV6_HLEN) > end)
			return FC_KERNEL;
		k->family = 6;
		__builtin_memcpy(k->addr, ip6 + IPV6_DADDR_OFF, 16);
		proto = ip6[IPV6_NEXT_OFF];
		l4 = ip6 + IPV6_HLEN;
		if (proto == IPPROTO_FRAGMENT_HEADER)
			return is_lvsd_address(k) ? FC_ADDRESS : FC_KERNEL;
		if (proto == IPPROTO_ICMPV6_NEXT) {
			__u8 *icmp = l4;
			if ((void *)(icmp + ICMPV6_NS_LEN) > end)
				return FC_KERNEL;
			if (icmp[0] == ICMPV6_NEIGHBOUR_SOLICITATION) { /* the target decides */
				__builtin_memcpy(k->addr, icmp + ICMPV6_NS_TARGET_OFF, 16);
				return !no_arp() && is_owned_vip_address(k) ? FC_NEIGHBOUR : FC_KERNEL;
			}
			/* Errors: destination unreachable, packet too big, time exceeded, parameter problem. */
			if (icmp[0] >= 1 && icmp[0] <= 4)
				return is_vip_address(k) || is_marked_error(k, icmp, end) ? FC_ADDRESS : FC_KERNEL;
			return FC_KERNEL;
		}
	} else {
		return FC_KERNEL;
	}

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP)
		return FC_KERNEL;
	/* TCP, UDP and SCTP all start with source port, destination port. */
	__u16 *ports = l4;
	if ((void *)(ports + 2) > end)
		return FC_KERNEL;
	out->proto = proto;
	out->dport = ports[1];
	out->ip = l3;
	out->l4 = l4;
	return FC_TRANSPORT;
}

/* Which program runs the classifier. A constant at each call site, so the compiler keeps only
 * its branch. */
enum lvs_hook {
	LVS_HOOK_XDP, /* sees raw frames: completes CHECKSUM_PARTIAL checksums itself */
	LVS_HOOK_TC,  /* sees skbs, which keep their checksum state */
};

/*
 * The fast path for a service frame: 0 when it was rewritten for the connection's real server
 * (its egress interface in `*ifindex`), 1 when it was and is a NAT connection's (tc: the address
 * rewrite left in `*nat`), -1 when lvsd must see it.
 */
static __always_inline int fast_path(struct ethhdr *eth, struct service_frame *f, void *end, enum lvs_hook hook,
				     __u32 *ifindex, struct nat_rewrite *nat)
{
	__u32 iplen = 0, l4len = 0;
	struct clvs_conn_value *v = lookup_conn(f, end, &iplen, &l4len);
	if (!v)
		return -1;
	/* A VIP given up (VRRP BACKUP): its entries stay for a takeover; lvsd drops the frame. */
	if (vip_not_owned(&f->k))
		return -1;
	int masq = v->flags & CLVS_CONN_NAT;
	if (hook == LVS_HOOK_XDP && masq) /* NAT is tc's only (lvsd writes no such entry for XDP) */
		return -1;
	if (hook == LVS_HOOK_XDP && complete_frame_checksum(f, end, l4len))
		return -1;
	if (rewrite(eth, f->ip, end, f->k.family == 4, v, iplen))
		return -1;
	*ifindex = v->ifindex;
	if (hook == LVS_HOOK_TC && masq) {
		nat_to_server(nat, eth, f, v);
		return 1;
	}
	return 0;
}

/* The classifier's verdict. */
enum lvs_verdict {
	LVS_KERNEL,  /* not lvsd's: the kernel's stack (XDP_PASS, TC_ACT_OK) */
	LVS_TO_LVSD, /* lvsd's: to its AF_XDP socket (XDP) or its packet sockets (tc) */
	LVS_FORWARD, /* rewritten by the fast path: out of interface `*ifindex` */
	LVS_FORWARD_NAT, /* tc: as LVS_FORWARD once the entry point has applied `*nat` (lib/nat.h) */
};

/*
 * The one classifier of both programs, on the Ethernet frame at data..end: the fast path for
 * connections in `conns` (tc: and NAT replies, `nat_replies`), else whether lvsd must see the
 * frame (counted in `stats` by reason). Frames for the kernel are not counted here (the XDP
 * program counts them). `nat`: tc only (NULL for XDP).
 */
static __always_inline enum lvs_verdict lvs_classify(void *data, void *end, enum lvs_hook hook, __u32 *ifindex,
						     struct nat_rewrite *nat)
{
	struct ethhdr *eth = data;
	struct service_frame f = {};
	__u16 type;

	if ((void *)(eth + 1) > end)
		return LVS_KERNEL;
	void *l3 = after_ethernet(eth, end, &type);
	if (!l3)
		return LVS_KERNEL;
	switch (frame_class(l3, type, end, &f)) {
	case FC_NEIGHBOUR:
		count(CLVS_STAT_NEIGHBOUR);
		return LVS_TO_LVSD;
	case FC_ADDRESS:
		count(CLVS_STAT_ADDRESS);
		return LVS_TO_LVSD;
	case FC_TRANSPORT:
		switch (fast_path(eth, &f, end, hook, ifindex, nat)) {
		case 0:
			return LVS_FORWARD;
		case 1:
			return LVS_FORWARD_NAT;
		}
		if (hook == LVS_HOOK_TC && nat_reply(eth, &f, data, end, nat, ifindex) == 0)
			return LVS_FORWARD_NAT;
		if (is_service(&f.k, f.proto, f.dport) || is_marked(&f.k, f.proto, f.dport)) {
			count(CLVS_STAT_SERVICE);
			return LVS_TO_LVSD;
		}
		return LVS_KERNEL;
	default:
		return LVS_KERNEL;
	}
}

#endif
