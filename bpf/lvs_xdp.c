// SPDX-License-Identifier: GPL-2.0
/*
 * lvs_xdp: the XDP half of lvsd's AF_XDP data plane.
 *
 * Frames lvsd must handle are redirected to the AF_XDP socket bound to the
 * receiving queue (map `xsks`); everything else goes on to the kernel
 * (XDP_PASS), so the director's own traffic, ARP/ND for its own addresses and
 * the health checks' connections are untouched.
 *
 * Redirected to lvsd:
 *   - TCP/UDP/SCTP to (VIP, proto, port) or (VIP, proto, 0 = every port);
 *   - IPv4 fragments / IPv6 fragment headers and ICMP/ICMPv6 errors whose
 *     destination is a VIP address (any service);
 *   - ARP requests whose target address is a VIP, IPv6 neighbour
 *     solicitations whose target is a VIP (lvsd answers them).
 * All other ARP and neighbour discovery (replies to lvsd's requests among
 * them) pass to the kernel; lvsd learns real-server MACs from a packet tap
 * that sees exactly those frames.
 *
 * lvsd fills `vips` while the program runs: key {family, proto, port, addr}
 * for each service, plus {family, 0, 0, addr} for each VIP address.
 * If the socket of a queue is missing, bpf_redirect_map falls back to
 * XDP_PASS (its flags argument).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_QUEUES 256

struct vip_key {
	__u8 family;   /* 4 or 6 */
	__u8 proto;    /* IPPROTO_TCP/UDP/SCTP, 0 = address entry */
	__u16 port;    /* network order, 0 = every port */
	__u8 addr[16]; /* IPv4 in the first 4 bytes, rest zero */
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vip_key);
	__type(value, __u8);
} vips SEC(".maps");

/* Frames redirected per reason, per CPU (for debugging with bpftool). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

enum { ST_SERVICE, ST_ADDRESS, ST_NEIGHBOUR, ST_PASSED };

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &what);
	if (v)
		*v += 1;
}

static __always_inline int to_lvsd(struct xdp_md *ctx, __u32 what)
{
	count(what);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

static __always_inline int is_vip_address(struct vip_key *k)
{
	k->proto = 0;
	k->port = 0;
	return bpf_map_lookup_elem(&vips, k) != NULL;
}

/* Service lookup: exact port first, then the whole-protocol entry. */
static __always_inline int is_service(struct vip_key *k, __u8 proto, __u16 port)
{
	k->proto = proto;
	k->port = port;
	if (bpf_map_lookup_elem(&vips, k))
		return 1;
	k->port = 0;
	return bpf_map_lookup_elem(&vips, k) != NULL;
}

SEC("xdp")
int lvs_xdp_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vip_key k = {};
	void *l3;
	__u16 type;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	type = eth->h_proto;
	l3 = eth + 1;
	/* One 802.1Q / 802.1ad tag (lvsd's parser handles the same). */
	if (type == bpf_htons(ETH_P_8021Q) || type == bpf_htons(ETH_P_8021AD)) {
		__u16 *tag = l3;
		if ((void *)(tag + 2) > end)
			return XDP_PASS;
		type = tag[1];
		l3 = tag + 2;
	}

	if (type == bpf_htons(ETH_P_ARP)) {
		/* Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4. */
		__u8 *a = l3;
		if ((void *)(a + 28) > end)
			return XDP_PASS;
		if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4)
			return XDP_PASS;
		if (a[6] != 0 || a[7] != 1) /* only requests; replies go to the kernel */
			return XDP_PASS;
		k.family = 4;
		__builtin_memcpy(k.addr, a + 24, 4); /* target protocol address */
		return is_vip_address(&k) ? to_lvsd(ctx, ST_NEIGHBOUR) : XDP_PASS;
	}

	__u8 proto;
	void *l4;
	if (type == bpf_htons(ETH_P_IP)) {
		__u8 *ip = l3;
		if ((void *)(ip + 20) > end)
			return XDP_PASS;
		__u32 ihl = (ip[0] & 0x0F) * 4;
		if (ihl < 20)
			return XDP_PASS;
		k.family = 4;
		__builtin_memcpy(k.addr, ip + 16, 4);
		proto = ip[9];
		/* Fragments: only the first carries ports; lvsd tracks the rest. */
		if ((ip[6] & 0x3F) != 0 || ip[7] != 0)
			return is_vip_address(&k) ? to_lvsd(ctx, ST_ADDRESS) : XDP_PASS;
		l4 = ip + ihl;
		if (proto == IPPROTO_ICMP) {
			__u8 *icmp = l4;
			if ((void *)(icmp + 1) > end)
				return XDP_PASS;
			/* Errors about packets a real server sent from the VIP. */
			if (icmp[0] == 3 || icmp[0] == 4 || icmp[0] == 11 || icmp[0] == 12)
				return is_vip_address(&k) ? to_lvsd(ctx, ST_ADDRESS) : XDP_PASS;
			return XDP_PASS;
		}
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		__u8 *ip6 = l3;
		if ((void *)(ip6 + 40) > end)
			return XDP_PASS;
		k.family = 6;
		__builtin_memcpy(k.addr, ip6 + 24, 16);
		proto = ip6[6];
		l4 = ip6 + 40;
		if (proto == 44) /* fragment header */
			return is_vip_address(&k) ? to_lvsd(ctx, ST_ADDRESS) : XDP_PASS;
		if (proto == 58) {
			__u8 *icmp = l4;
			if ((void *)(icmp + 24) > end)
				return XDP_PASS;
			if (icmp[0] == 135) { /* neighbour solicitation: the target decides */
				__builtin_memcpy(k.addr, icmp + 8, 16);
				return is_vip_address(&k) ? to_lvsd(ctx, ST_NEIGHBOUR) : XDP_PASS;
			}
			if (icmp[0] >= 1 && icmp[0] <= 4)
				return is_vip_address(&k) ? to_lvsd(ctx, ST_ADDRESS) : XDP_PASS;
			return XDP_PASS;
		}
	} else {
		return XDP_PASS;
	}

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP)
		return XDP_PASS;
	/* TCP, UDP and SCTP all start with source port, destination port. */
	__u16 *ports = l4;
	if ((void *)(ports + 2) > end)
		return XDP_PASS;
	if (is_service(&k, proto, ports[1]))
		return to_lvsd(ctx, ST_SERVICE);
	count(ST_PASSED);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
