/* SPDX-License-Identifier: GPL-2.0 */
/*
 * NAT (masquerading) in the tc fast path, both directions (docs/nat.md). tc only: the XDP program
 * never sees a NAT entry (lvsd writes none there), and its classifier call sites pass
 * LVS_HOOK_XDP, so this code compiles away for it.
 *
 *   - client -> real server: a `conns` entry with CLVS_CONN_NAT is forwarded as for DR (MACs,
 *     TTL), and its destination address and port become the real server's (raddr:rport);
 *   - real server -> client: a TCP/UDP frame (not SYN/FIN/RST) whose tuple is in `nat_replies`
 *     and whose connection is still in `conns` gets its source set back to VIP:vport, its TTL
 *     decremented and the client's next hop's MACs, and leaves by the interface the connection's
 *     first packet came in on; the connection's last-seen time is refreshed and the reply counted
 *     as Out traffic of its destination slot.
 * The classifier only describes the address/port rewrite (struct nat_rewrite); the tc entry
 * point applies it with the kernel's checksum helpers (nat_apply), which know the skb's
 * ip_summed (for CHECKSUM_PARTIAL the L4 field holds the pseudo-header sum only, and
 * CHECKSUM_COMPLETE's skb->csum must follow) and invalidate the packet pointers.
 */
#ifndef LVS_BPF_NAT_H
#define LVS_BPF_NAT_H

#include "lookup.h"
#include "rewrite.h"

#define L4_SPORT_OFF 0
#define L4_DPORT_OFF 2
#define IPV4_ADDR_LEN 4
#define IPV6_ADDR_LEN 16
/* TCP flags lvsd must see (state changes): FIN, SYN, RST. */
#define TCP_STATE_FLAGS 0x07

/* An address and port rewrite for the tc entry point (offsets from the frame's start). */
struct nat_rewrite {
	__u32 l3_off;   /* the IP header */
	__u32 l4_off;   /* the TCP/UDP header */
	__u8 v4;
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 addr_off;  /* the rewritten address in the IP header (source or destination) */
	__u8 port_off;  /* the rewritten port in the L4 header (L4_SPORT_OFF or L4_DPORT_OFF) */
	__be16 old_port, new_port;
	__u32 old_addr[4], new_addr[4]; /* network order; IPv4 in the first word */
};

/* Client -> real server: the rewrite of a forwarded frame of NAT connection `v`. */
static __always_inline void nat_to_server(struct nat_rewrite *n, void *data, const struct service_frame *f,
					  const struct clvs_conn_value *v)
{
	int v4 = f->k.family == 4;
	n->l3_off = (__u32)((__u8 *)f->ip - (__u8 *)data);
	n->l4_off = (__u32)((__u8 *)f->l4 - (__u8 *)data);
	n->v4 = v4;
	n->proto = f->proto;
	n->addr_off = v4 ? IPV4_DADDR_OFF : IPV6_DADDR_OFF;
	n->port_off = L4_DPORT_OFF;
	n->old_port = f->dport;
	n->new_port = v->rport;
	__builtin_memcpy(n->old_addr, f->k.addr, IPV6_ADDR_LEN);
	__builtin_memcpy(n->new_addr, v->raddr, IPV6_ADDR_LEN);
}

/*
 * Real server -> client: 0 when the TCP/UDP frame (`f`: its destination, the client, in f->k)
 * is the reply of a NAT connection in `conns` and was rewritten here (MACs, TTL; the address
 * and port rewrite described in `n`, its egress interface in `*ifindex`); -1 when it is not
 * (the kernel's, or lvsd's: its packet sockets see it).
 */
static __always_inline int nat_reply(struct ethhdr *eth, struct service_frame *f, void *data, void *end,
				     struct nat_rewrite *n, __u32 *ifindex)
{
	struct clvs_nat_reply_key rk = {};
	__u8 *ip = f->ip;
	__u16 *ports = f->l4;
	__u32 iplen;
	int v4 = f->k.family == 4;

	if (f->proto == IPPROTO_TCP) {
		__u8 *tcp = f->l4;
		if ((void *)(tcp + TCP_MIN_HLEN) > end)
			return -1;
		if (tcp[TCP_FLAGS_OFF] & TCP_STATE_FLAGS) /* state changes are lvsd's */
			return -1;
	} else if (f->proto != IPPROTO_UDP) {
		return -1;
	}
	if ((void *)(ports + 2) > end)
		return -1;
	if (!(setting_flags() & CLVS_SETTING_NAT_REPLIES)) /* no NAT connection was ever here */
		return -1;
	rk.family = f->k.family;
	rk.proto = f->proto;
	rk.rport = ports[0];
	rk.cport = ports[1];
	__builtin_memcpy(rk.caddr, f->k.addr, IPV6_ADDR_LEN);
	if (v4) {
		if ((void *)(ip + IPV4_MIN_HLEN) > end)
			return -1;
		__builtin_memcpy(rk.raddr, ip + IPV4_SADDR_OFF, IPV4_ADDR_LEN);
		iplen = (__u32)ip[IPV4_TOTLEN_OFF] << 8 | ip[IPV4_TOTLEN_OFF + 1];
		if (ip[IPV4_TTL_OFF] <= 1)
			return -1;
	} else {
		if ((void *)(ip + IPV6_HLEN) > end)
			return -1;
		__builtin_memcpy(rk.raddr, ip + IPV6_SADDR_OFF, IPV6_ADDR_LEN);
		iplen = ((__u32)ip[IPV6_PLEN_OFF] << 8 | ip[IPV6_PLEN_OFF + 1]) + IPV6_HLEN;
		if (ip[IPV6_HOPS_OFF] <= 1)
			return -1;
	}
	struct clvs_nat_reply_value *r = bpf_map_lookup_elem(&nat_replies, &rk);
	if (!r)
		return -1;
	/* Only while the connection is in the fast path (its entry goes at FIN/RST and expiry). */
	struct clvs_conn_value *c = bpf_map_lookup_elem(&conns, &r->conn);
	if (!c || !(c->flags & CLVS_CONN_NAT))
		return -1;
	struct clvs_vip_key vk = {};
	vk.family = r->conn.family;
	__builtin_memcpy(vk.addr, r->conn.vaddr, IPV6_ADDR_LEN);
	if (vip_not_owned(&vk)) /* VRRP BACKUP: lvsd drops it */
		return -1;
	if (decrement_ttl(ip, end, v4))
		return -1;
	__builtin_memcpy(eth->h_dest, r->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->smac, ETH_ALEN);
	c->last_seen = bpf_ktime_get_ns();
	count_reply(r->dest, iplen);
	count(CLVS_STAT_NAT_REPLY);
	n->l3_off = (__u32)(ip - (__u8 *)data);
	n->l4_off = (__u32)((__u8 *)f->l4 - (__u8 *)data);
	n->v4 = v4;
	n->proto = f->proto;
	n->addr_off = v4 ? IPV4_SADDR_OFF : IPV6_SADDR_OFF;
	n->port_off = L4_SPORT_OFF;
	n->old_port = rk.rport;
	n->new_port = r->conn.vport;
	__builtin_memcpy(n->old_addr, rk.raddr, IPV6_ADDR_LEN);
	__builtin_memcpy(n->new_addr, r->conn.vaddr, IPV6_ADDR_LEN);
	*ifindex = r->ifindex;
	return 0;
}

/* bpf_l4_csum_replace with BPF_F_IPV6 (Linux 6.16: keeps CHECKSUM_COMPLETE's skb->csum right for
 * IPv6 pseudo-header changes); an older kernel refuses the flag before touching anything, and
 * then the call is made without it. */
static __always_inline long l4_csum_replace(struct __sk_buff *skb, __u32 off, __u64 from, __u64 to, __u64 flags,
					   int v4)
{
	if (v4)
		return bpf_l4_csum_replace(skb, off, from, to, flags);
	long rc = bpf_l4_csum_replace(skb, off, from, to, flags | BPF_F_IPV6);
	if (rc == -22 /* EINVAL: no BPF_F_IPV6 */)
		rc = bpf_l4_csum_replace(skb, off, from, to, flags);
	return rc;
}

/*
 * Applies `n` to the skb with the kernel's helpers: the IPv4 header checksum
 * (bpf_l3_csum_replace), the TCP/UDP checksum for the address (a pseudo-header field:
 * BPF_F_PSEUDO_HDR; IPv6: the bpf_csum_diff of the 16 bytes) and for the port; a UDP checksum of
 * 0 stays 0 and a computed 0 becomes 0xFFFF (BPF_F_MARK_MANGLED_0). Then the new address and port
 * are stored. 0, or -1 when a helper failed (the frame is then dropped: its MACs and TTL are
 * already rewritten).
 */
static __always_inline int nat_apply(struct __sk_buff *skb, const struct nat_rewrite *n)
{
	__u32 check = n->l4_off + (n->proto == IPPROTO_TCP ? TCP_CHECK_OFF : UDP_CHECK_OFF);
	__u64 mangled = n->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (n->v4) {
		if (bpf_l3_csum_replace(skb, n->l3_off + IPV4_CHECK_OFF, n->old_addr[0], n->new_addr[0], IPV4_ADDR_LEN))
			return -1;
		if (l4_csum_replace(skb, check, n->old_addr[0], n->new_addr[0],
				    BPF_F_PSEUDO_HDR | mangled | IPV4_ADDR_LEN, 1))
			return -1;
		if (bpf_skb_store_bytes(skb, n->l3_off + n->addr_off, n->new_addr, IPV4_ADDR_LEN, 0))
			return -1;
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)n->old_addr, IPV6_ADDR_LEN, (__be32 *)n->new_addr, IPV6_ADDR_LEN, 0);
		if (diff < 0)
			return -1;
		/* size 0: `to` is a precomputed difference */
		if (l4_csum_replace(skb, check, 0, (__u64)diff, BPF_F_PSEUDO_HDR | mangled, 0))
			return -1;
		if (bpf_skb_store_bytes(skb, n->l3_off + n->addr_off, n->new_addr, IPV6_ADDR_LEN, 0))
			return -1;
	}
	if (l4_csum_replace(skb, check, n->old_port, n->new_port, mangled | sizeof(__be16), n->v4))
		return -1;
	if (bpf_skb_store_bytes(skb, n->l4_off + n->port_off, &n->new_port, sizeof(__be16), 0))
		return -1;
	return 0;
}

#endif
