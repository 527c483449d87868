/* SPDX-License-Identifier: GPL-2.0 */
/* Lookups: VIPs and services (`vips`), the fwmark trie (`mark_prefixes`), settings, connections
 * (`conns`). */
#ifndef LVS_BPF_LOOKUP_H
#define LVS_BPF_LOOKUP_H

#include "maps.h"

/* A TCP/UDP/SCTP frame to a VIP address (class FC_TRANSPORT): its VIP key (family, address),
 * protocol, destination port, IP and L4 headers. */
struct service_frame {
	struct clvs_vip_key k;
	__u8 proto;
	__u16 dport; /* network order */
	__u8 *ip;
	void *l4;
};

static __always_inline int is_vip_address(struct clvs_vip_key *k)
{
	k->proto = 0;
	k->port = 0;
	return bpf_map_lookup_elem(&vips, k) != NULL;
}

/* A VIP address this director owns (not CLVS_VIP_NOT_OWNED): lvsd answers ARP/ND for it. */
static __always_inline int is_owned_vip_address(struct clvs_vip_key *k)
{
	k->proto = 0;
	k->port = 0;
	__u8 *v = bpf_map_lookup_elem(&vips, k);
	return v && !(*v & CLVS_VIP_NOT_OWNED);
}

/* Service lookup: exact port first, then the whole-protocol entry. */
static __always_inline int is_service(struct clvs_vip_key *k, __u8 proto, __u16 port)
{
	k->proto = proto;
	k->port = port;
	if (bpf_map_lookup_elem(&vips, k))
		return 1;
	k->port = 0;
	return bpf_map_lookup_elem(&vips, k) != NULL;
}

/* The fwmark trie's entry for the address in `k` (the longest prefix holding it), or NULL. */
static __always_inline struct clvs_mark_value *mark_entry(const struct clvs_vip_key *k)
{
	struct clvs_mark_key mk = {};
	mk.prefixlen = CLVS_MARK_FAMILY_BITS + (k->family == 4 ? 32 : 128);
	mk.family = k->family;
	__builtin_memcpy(mk.addr, k->addr, 16);
	return bpf_map_lookup_elem(&mark_prefixes, &mk);
}

/* A VIP address, or an address some active fwmark rule covers (fragments). */
static __always_inline int is_lvsd_address(struct clvs_vip_key *k)
{
	return is_vip_address(k) || mark_entry(k) != NULL;
}

/* Whether an active fwmark rule matches protocol `proto` and destination port `port` (network
 * order) at the address in `k`. */
static __always_inline int is_marked(const struct clvs_vip_key *k, __u8 proto, __u16 port)
{
	struct clvs_mark_value *v = mark_entry(k);
	if (!v)
		return 0;
	__u16 p = bpf_ntohs(port);
	for (__u32 i = 0; i < CLVS_MARK_MAX_RANGES; i++) {
		if (i >= v->count)
			break;
		struct clvs_mark_range *r = &v->ranges[i];
		if ((r->proto == CLVS_MARK_ANY_PROTO || r->proto == proto) && p >= r->lo && p <= r->hi)
			return 1;
	}
	return 0;
}

/* Whether the first `n` bytes at `a` (packet) and `b` are the same. */
static __always_inline int same_bytes(const __u8 *a, const __u8 *b, int n)
{
	__u8 diff = 0;
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (i < n)
			diff |= a[i] ^ b[i];
	return diff == 0;
}

/*
 * An ICMP/ICMPv6 error (header at `icmp`) to the address in `k` about a packet an fwmark service's
 * real server sent: the quoted packet comes from that address and from a port an active rule
 * covers. (Errors about the director's own packets to other addresses in a rule's prefix stay
 * the kernel's.)
 */
static __always_inline int is_marked_error(struct clvs_vip_key *k, __u8 *icmp, void *end)
{
	__u8 *inner = icmp + ICMP_HLEN; /* the quoted IP header */
	__u8 proto;
	__u16 *ports;

	if (k->family == 4) {
		if ((void *)(inner + IPV4_MIN_HLEN) > end)
			return 0;
		__u32 ihl = (inner[0] & 0x0F) * 4;
		if (ihl < IPV4_MIN_HLEN || !same_bytes(inner + IPV4_SADDR_OFF, k->addr, 4))
			return 0;
		proto = inner[IPV4_PROTO_OFF];
		ports = (__u16 *)(inner + ihl);
	} else {
		if ((void *)(inner + IPV6_HLEN) > end)
			return 0;
		if (!same_bytes(inner + IPV6_SADDR_OFF, k->addr, 16))
			return 0;
		proto = inner[IPV6_NEXT_OFF];
		ports = (__u16 *)(inner + IPV6_HLEN);
	}
	if ((void *)(ports + 2) > end)
		return 0;
	return is_marked(k, proto, ports[0]);
}

/* The settings' flags (CLVS_SETTING_*), 0 when unset. */
static __always_inline __u32 setting_flags(void)
{
	__u32 zero = 0;
	struct clvs_xdp_settings *s = bpf_map_lookup_elem(&settings, &zero);
	return s ? s->flags : 0;
}

/* --no-arp: ARP and neighbour discovery for VIPs are the kernel's. */
static __always_inline int no_arp(void)
{
	return setting_flags() & CLVS_SETTING_NO_ARP;
}

/*
 * Whether the VIP address in `k` (family and address; its proto and port are left alone) is one
 * this director does not own. Costs one array lookup while it owns every address, then also
 * the address entry's lookup.
 */
static __always_inline int vip_not_owned(const struct clvs_vip_key *k)
{
	if (!(setting_flags() & CLVS_SETTING_SOME_NOT_OWNED))
		return 0;
	struct clvs_vip_key a = {};
	a.family = k->family;
	__builtin_memcpy(a.addr, k->addr, 16);
	__u8 *v = bpf_map_lookup_elem(&vips, &a);
	return v && (*v & CLVS_VIP_NOT_OWNED);
}

/*
 * The entry of a service frame the fast path may forward, with the IP packet's and the L4
 * segment's lengths; NULL when lvsd must see the frame (not in `conns`, TCP SYN/FIN/RST, not
 * TCP/UDP, TTL would expire, odd lengths).
 */
static __always_inline struct clvs_conn_value *lookup_conn(struct service_frame *f, void *end, __u32 *iplen,
							    __u32 *l4len)
{
	struct clvs_conn_key ck = {};
	__u8 *ip = f->ip;
	__u16 *ports = f->l4;

	if (f->proto == IPPROTO_TCP) {
		__u8 *tcp = f->l4;
		if ((void *)(tcp + TCP_MIN_HLEN) > end)
			return NULL;
		if (tcp[TCP_FLAGS_OFF] & 0x07) /* FIN, SYN, RST: state changes are lvsd's */
			return NULL;
	} else if (f->proto != IPPROTO_UDP) {
		return NULL;
	}
	if ((void *)(ports + 2) > end)
		return NULL;
	ck.family = f->k.family;
	ck.proto = f->proto;
	ck.cport = ports[0];
	ck.vport = ports[1];
	__builtin_memcpy(ck.vaddr, f->k.addr, 16);
	if (f->k.family == 4) {
		if ((void *)(ip + IPV4_MIN_HLEN) > end)
			return NULL;
		__builtin_memcpy(ck.caddr, ip + IPV4_SADDR_OFF, 4);
		*iplen = (__u32)ip[IPV4_TOTLEN_OFF] << 8 | ip[IPV4_TOTLEN_OFF + 1];
		if (*iplen < (__u32)((__u8 *)f->l4 - ip) || ip[IPV4_TTL_OFF] <= 1)
			return NULL;
		*l4len = *iplen - (__u32)((__u8 *)f->l4 - ip);
	} else {
		if ((void *)(ip + IPV6_HLEN) > end)
			return NULL;
		__builtin_memcpy(ck.caddr, ip + IPV6_SADDR_OFF, 16);
		*l4len = (__u32)ip[IPV6_PLEN_OFF] << 8 | ip[IPV6_PLEN_OFF + 1];
		*iplen = *l4len + IPV6_HLEN;
		if (ip[IPV6_HOPS_OFF] <= 1)
			return NULL;
	}
	return bpf_map_lookup_elem(&conns, &ck);
}

#endif
