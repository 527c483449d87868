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
 *   - TCP/UDP/SCTP an active fwmark rule matches (`mark_prefixes`: prefix,
 *     protocol, port range);
 *   - IPv4 fragments / IPv6 fragment headers and ICMP/ICMPv6 errors whose
 *     destination is a VIP address (any service); fragments to an address in
 *     an fwmark prefix, and ICMP errors about what an fwmark service's real
 *     server sent (quoted source: that address, a port the rule covers);
 *   - ARP requests whose target address is a VIP, IPv6 neighbour
 *     solicitations whose target is a VIP (lvsd answers them), unless
 *     `settings` says --no-arp: then they are the kernel's.
 * All other ARP and neighbour discovery (replies to lvsd's requests among
 * them) pass to the kernel; lvsd learns real-server MACs from a packet tap
 * that sees exactly those frames.
 *
 * lvsd fills `vips` while the program runs: key {family, proto, port, addr}
 * for each service, plus {family, 0, 0, addr} for each VIP address; and
 * `mark_prefixes` with the rules whose mark has a service (layouts in
 * Sources/CLVSXDP/include/clvs_xdp_maps.h, shared with the loader).
 * If the socket of a queue is missing, bpf_redirect_map falls back to
 * XDP_PASS (its flags argument).
 *
 * Fast path (`lvsd --dataplane xdp`): `conns` holds established connections
 * lvsd has already scheduled, keyed by {family, proto, client address/port,
 * VIP/port}. A TCP/UDP frame to a service whose key is there and that is not
 * a TCP SYN, FIN or RST is forwarded here, as lvsd would: destination and
 * source MAC rewritten, TTL/hop limit decremented, then XDP_TX (same
 * interface) or bpf_redirect (another one). The value keeps the last-seen
 * time, which lvsd reads when the connection's idle timer runs out (so IPVS
 * timeouts still decide); packets and IP bytes are counted per destination in
 * `dest_stats`, which lvsd reads every second for its statistics
 * and idle timeouts, and removes entries when the connection ends or moves.
 * With `conns` empty (the afxdp data plane) every lookup misses.
 *
 * On veth, XDP_TX/redirect frames are delivered only when the peer receives in
 * NAPI mode (GRO on, or an XDP program there); otherwise they are dropped.
 *
 * The same object holds lvs_tc_prog, the tc program of `lvsd --dataplane tc`
 * (see there), which shares `conns`, `vips` and the classification.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "clvs_xdp_maps.h" /* the layouts shared with the loader (Sources/CLVSXDP/include) */

#define MAX_QUEUES 256

struct vip_key {
	__u8 family;   /* 4 or 6 */
	__u8 proto;    /* IPPROTO_TCP/UDP/SCTP, 0 = address entry */
	__u16 port;    /* network order, 0 = every port */
	__u8 addr[16]; /* IPv4 in the first 4 bytes, rest zero */
};

/* Must match struct clvs_conn_key / clvs_conn_value in Sources/CLVSXDP. */
struct conn_key {
	__u8 family;      /* 4 or 6 */
	__u8 proto;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u16 cport;      /* client port, network order */
	__u16 vport;      /* virtual port, network order */
	__u16 pad;
	__u8 caddr[16];   /* client address (IPv4 in the first 4 bytes) */
	__u8 vaddr[16];   /* virtual address */
};

struct conn_value {
	__u8 dmac[6];     /* the real server's MAC */
	__u8 smac[6];     /* the director's MAC on the egress interface */
	__u32 ifindex;    /* egress interface */
	__u32 dest;       /* lvsd's destination slot: the index into `dest_stats` */
	__u32 pad;
	__u64 last_seen;  /* bpf_ktime_get_ns() of the last packet */
};

/* Packets and IP bytes forwarded here, per lvsd destination slot and CPU
 * (lvsd sums the CPUs and adds the growth to its statistics). As many slots as
 * lvsd has destinations (Engine.maxDestinations); 16 bytes per slot and CPU. */
#define MAX_DESTS 65536

struct dest_counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_DESTS);
	__type(key, __u32);
	__type(value, struct dest_counters);
} dest_stats SEC(".maps");

/* Bounded, as large as lvsd's default connection table (--max-connections
 * 4194304); entries use memory only when present. A full map just leaves
 * connections to lvsd. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 22);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct conn_key);
	__type(value, struct conn_value);
} conns SEC(".maps");

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

/*
 * fwmark rules (lvsd --fwmark): the active rules' prefixes, longest match first; the value lists
 * the protocol/port ranges of every active rule whose prefix covers the entry's (lvsd computes
 * them), so one lookup decides.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CLVS_MARK_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clvs_mark_key);
	__type(value, struct clvs_mark_value);
} mark_prefixes SEC(".maps");

/* lvsd's settings (CLVS_SETTING_*), one element. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clvs_xdp_settings);
} settings SEC(".maps");

/* Frames per reason (enum clvs_xdp_stat), per CPU (for debugging with bpftool, and the tests). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLVS_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

enum {
	ST_SERVICE = CLVS_STAT_SERVICE,
	ST_ADDRESS = CLVS_STAT_ADDRESS,
	ST_NEIGHBOUR = CLVS_STAT_NEIGHBOUR,
	ST_PASSED = CLVS_STAT_PASSED,
	ST_FAST = CLVS_STAT_FAST,
};

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

/* The fwmark trie's entry for the address in `k` (the longest prefix holding it), or NULL. */
static __always_inline struct clvs_mark_value *mark_entry(const struct vip_key *k)
{
	struct clvs_mark_key mk = {};
	mk.prefixlen = CLVS_MARK_FAMILY_BITS + (k->family == 4 ? 32 : 128);
	mk.family = k->family;
	__builtin_memcpy(mk.addr, k->addr, 16);
	return bpf_map_lookup_elem(&mark_prefixes, &mk);
}

/* A VIP address, or an address some active fwmark rule covers (fragments). */
static __always_inline int is_lvsd_address(struct vip_key *k)
{
	return is_vip_address(k) || mark_entry(k) != NULL;
}

/* Whether an active fwmark rule matches protocol `proto` and destination port `port` (network
 * order) at the address in `k`. */
static __always_inline int is_marked(const struct vip_key *k, __u8 proto, __u16 port)
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
static __always_inline int is_marked_error(struct vip_key *k, __u8 *icmp, void *end)
{
	__u8 *inner = icmp + 8; /* the quoted IP header */
	__u8 proto;
	__u16 *ports;

	if (k->family == 4) {
		if ((void *)(inner + 20) > end)
			return 0;
		__u32 ihl = (inner[0] & 0x0F) * 4;
		if (ihl < 20 || !same_bytes(inner + 12, k->addr, 4))
			return 0;
		proto = inner[9];
		ports = (__u16 *)(inner + ihl);
	} else {
		if ((void *)(inner + 40) > end)
			return 0;
		if (!same_bytes(inner + 8, k->addr, 16))
			return 0;
		proto = inner[6];
		ports = (__u16 *)(inner + 40);
	}
	if ((void *)(ports + 2) > end)
		return 0;
	return is_marked(k, proto, ports[0]);
}

/* --no-arp: ARP and neighbour discovery for VIPs are the kernel's. */
static __always_inline int no_arp(void)
{
	__u32 zero = 0;
	struct clvs_xdp_settings *s = bpf_map_lookup_elem(&settings, &zero);
	return s && (s->flags & CLVS_SETTING_NO_ARP);
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

static __always_inline __u32 fold(__u32 s)
{
	s = (s & 0xFFFF) + (s >> 16);
	return (s & 0xFFFF) + (s >> 16);
}

#define MAX_L4_WORDS 750 /* 1500 bytes: larger segments go to lvsd */

/*
 * A sender on veth leaves the TCP/UDP checksum to "hardware" (CHECKSUM_PARTIAL:
 * the field holds only the pseudo-header sum) and XDP loses that metadata, so
 * such a checksum is completed here, as lvsd does for the frames it handles.
 * Sums are of raw 16-bit loads (one's complement sums are byte-order neutral).
 * `pseudo` is the raw sum of the addresses. 0 = done (or nothing to do), -1 =
 * leave the frame to lvsd.
 */
static __always_inline int complete_checksum(void *l4, void *end, __u8 proto, __u32 l4len, __u32 pseudo, int v4)
{
	__u16 *field = (__u16 *)((__u8 *)l4 + (proto == IPPROTO_TCP ? 16 : 6));
	if ((void *)(field + 1) > end)
		return -1;
	pseudo += bpf_htons(proto) + bpf_htons((__u16)l4len);
	__u16 want = (__u16)fold(pseudo), have = *field;
	if (proto == IPPROTO_UDP && v4 && have == 0)
		return 0; /* IPv4 UDP without checksum */
	if ((want == 0 ? 0xFFFF : want) != (have == 0 ? 0xFFFF : have))
		return 0; /* a complete checksum already */
	__u32 n = l4len >> 1;
	if (n > MAX_L4_WORDS)
		return -1;
	*field = 0;
	__u32 s = pseudo;
	__u16 *w = l4;
	for (__u32 i = 0; i < MAX_L4_WORDS; i++) {
		if (i >= n)
			break;
		/* keeps clang from folding the bounds checks into arithmetic on `end` */
		asm volatile("" : "+r"(w));
		if ((void *)(w + 1) > end)
			return -1;
		s += *w;
		w++;
	}
	if (l4len & 1) {
		__u8 *b = (__u8 *)w;
		if ((void *)(b + 1) > end)
			return -1;
		s += bpf_htons((__u16)*b << 8);
	}
	__u16 c = (__u16)~fold(s);
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xFFFF;
	*field = c;
	return 0;
}

/* What a frame is to lvsd (the same for the XDP and the tc program). */
enum frame_class {
	FC_KERNEL,    /* not lvsd's: the kernel handles it */
	FC_ADDRESS,   /* a fragment or ICMP error to a VIP address: lvsd */
	FC_NEIGHBOUR, /* ARP request / neighbour solicitation for a VIP: lvsd */
	FC_TRANSPORT, /* TCP/UDP/SCTP to a VIP address: the fast path, else lvsd if
	               * it is a service (checked after the connection lookup, so a
	               * forwarded frame costs one hash lookup) */
};

/* A frame of class FC_TRANSPORT: its VIP key (family, address), protocol, destination port, IP
 * and L4 headers. */
struct service_frame {
	struct vip_key k;
	__u8 proto;
	__u16 dport;  /* network order */
	__u8 *ip;
	void *l4;
};

/*
 * The entry of a service frame the fast path may forward, with the IP packet's
 * and the L4 segment's lengths; NULL when lvsd must see the frame (not in
 * `conns`, TCP SYN/FIN/RST, not TCP/UDP, TTL would expire, odd lengths).
 */
static __always_inline struct conn_value *lookup_conn(struct service_frame *f, void *end, __u32 *iplen, __u32 *l4len)
{
	struct conn_key ck = {};
	__u8 *ip = f->ip;
	__u16 *ports = f->l4;

	if (f->proto == IPPROTO_TCP) {
		__u8 *tcp = f->l4;
		if ((void *)(tcp + 20) > end)
			return NULL;
		if (tcp[13] & 0x07) /* FIN, SYN, RST: state changes are lvsd's */
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
		if ((void *)(ip + 20) > end)
			return NULL;
		__builtin_memcpy(ck.caddr, ip + 12, 4);
		*iplen = (__u32)ip[2] << 8 | ip[3];
		if (*iplen < (__u32)((__u8 *)f->l4 - ip) || ip[8] <= 1)
			return NULL;
		*l4len = *iplen - (__u32)((__u8 *)f->l4 - ip);
	} else {
		if ((void *)(ip + 40) > end)
			return NULL;
		__builtin_memcpy(ck.caddr, ip + 8, 16);
		*l4len = (__u32)ip[4] << 8 | ip[5];
		*iplen = *l4len + 40;
		if (ip[7] <= 1)
			return NULL;
	}
	return bpf_map_lookup_elem(&conns, &ck);
}

/*
 * Forwards as lvsd would: TTL / hop limit minus one (the IPv4 checksum rises by
 * 0x0100, RFC 1624), the real server's and the director's MACs, and the
 * destination's counters and the entry's last-seen time. 0, or -1 when the
 * headers are short.
 */
static __always_inline int rewrite(struct ethhdr *eth, __u8 *ip, void *end, int v4, struct conn_value *v, __u32 iplen)
{
	if (v4) {
		if ((void *)(ip + 20) > end)
			return -1;
		__u16 *check = (__u16 *)(ip + 10);
		__u32 c = (__u32)*check + bpf_htons(0x0100);
		*check = (__u16)(c + (c >= 0xFFFF));
		ip[8]--;
	} else {
		if ((void *)(ip + 40) > end)
			return -1;
		ip[7]--;
	}
	__builtin_memcpy(eth->h_dest, v->dmac, 6);
	__builtin_memcpy(eth->h_source, v->smac, 6);
	__u32 dest = v->dest;
	struct dest_counters *c = bpf_map_lookup_elem(&dest_stats, &dest);
	if (c) { /* this CPU's own counters: no atomics needed */
		c->packets += 1;
		c->bytes += iplen;
	}
	v->last_seen = bpf_ktime_get_ns();
	count(ST_FAST);
	return 0;
}

/*
 * The XDP fast path for a service frame: -1 when lvsd must see it, else the
 * XDP action that forwards it.
 */
static __always_inline int fast_path(struct xdp_md *ctx, struct ethhdr *eth, struct service_frame *f, void *end)
{
	__u32 iplen = 0, l4len = 0, pseudo = 0;
	__u8 *ip = f->ip;
	int v4 = f->k.family == 4;
	struct conn_value *v = lookup_conn(f, end, &iplen, &l4len);
	if (!v)
		return -1;
	/* (bounds checked again: the verifier does not tie them to `family`) */
	if (v4) {
		if ((void *)(ip + 20) > end)
			return -1;
		__u16 *a = (__u16 *)(ip + 12);
		for (int i = 0; i < 4; i++)
			pseudo += a[i];
	} else {
		if ((void *)(ip + 40) > end)
			return -1;
		__u16 *a = (__u16 *)(ip + 8);
		for (int i = 0; i < 16; i++)
			pseudo += a[i];
	}
	if (complete_checksum(f->l4, end, f->proto, l4len, pseudo, v4))
		return -1;
	if (rewrite(eth, ip, end, v4, v, iplen))
		return -1;
	if (v->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(v->ifindex, 0);
}

/*
 * Classifies the frame whose L3 header (after Ethernet and its VLAN tags) starts at `l3`
 * with EtherType `type`. Only FC_TRANSPORT fills `out` completely.
 */
static __always_inline int classify(void *l3, __u16 type, void *end, struct service_frame *out)
{
	struct vip_key *k = &out->k;

	if (type == bpf_htons(ETH_P_ARP)) {
		/* Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4. */
		__u8 *a = l3;
		if ((void *)(a + 28) > end)
			return FC_KERNEL;
		if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4)
			return FC_KERNEL;
		if (a[6] != 0 || a[7] != 1) /* only requests; replies go to the kernel */
			return FC_KERNEL;
		k->family = 4;
		__builtin_memcpy(k->addr, a + 24, 4); /* target protocol address */
		return !no_arp() && is_vip_address(k) ? FC_NEIGHBOUR : FC_KERNEL;
	}

	__u8 proto;
	void *l4;
	if (type == bpf_htons(ETH_P_IP)) {
		__u8 *ip = l3;
		if ((void *)(ip + 20) > end)
			return FC_KERNEL;
		__u32 ihl = (ip[0] & 0x0F) * 4;
		if (ihl < 20)
			return FC_KERNEL;
		k->family = 4;
		__builtin_memcpy(k->addr, ip + 16, 4);
		proto = ip[9];
		/* Fragments: only the first carries ports; lvsd tracks the rest. */
		if ((ip[6] & 0x3F) != 0 || ip[7] != 0)
			return is_lvsd_address(k) ? FC_ADDRESS : FC_KERNEL;
		l4 = ip + ihl;
		if (proto == IPPROTO_ICMP) {
			__u8 *icmp = l4;
			if ((void *)(icmp + 1) > end)
				return FC_KERNEL;
			/* Errors about packets a real server sent from the VIP. */
			if (icmp[0] == 3 || icmp[0] == 4 || icmp[0] == 11 || icmp[0] == 12)
				return is_vip_address(k) || is_marked_error(k, icmp, end) ? FC_ADDRESS : FC_KERNEL;
			return FC_KERNEL;
		}
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		__u8 *ip6 = l3;
		if ((void *)(ip6 + 40) > end)
			return FC_KERNEL;
		k->family = 6;
		__builtin_memcpy(k->addr, ip6 + 24, 16);
		proto = ip6[6];
		l4 = ip6 + 40;
		if (proto == 44) /* fragment header */
			return is_lvsd_address(k) ? FC_ADDRESS : FC_KERNEL;
		if (proto == 58) {
			__u8 *icmp = l4;
			if ((void *)(icmp + 24) > end)
				return FC_KERNEL;
			if (icmp[0] == 135) { /* neighbour solicitation: the target decides */
				__builtin_memcpy(k->addr, icmp + 8, 16);
				return !no_arp() && is_vip_address(k) ? FC_NEIGHBOUR : FC_KERNEL;
			}
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

/*
 * The L3 header after Ethernet and its VLAN tags, as lvsd's parser (FrameParser.parse) reads
 * them: at most two, the outer one 802.1Q (0x8100) or 802.1ad (0x88A8), an inner one 802.1Q
 * (QinQ: 0x88A8 then 0x8100, or 0x8100 then 0x8100). Any other stack of tags leaves `*type` a tag
 * type, which no class knows: such frames go to the kernel.
 */
static __always_inline void *after_ethernet(struct ethhdr *eth, void *end, __u16 *type)
{
	void *l3 = eth + 1;
	*type = eth->h_proto;
	if (*type == bpf_htons(ETH_P_8021Q) || *type == bpf_htons(ETH_P_8021AD)) {
		__u16 *tag = l3; /* TCI, then the next type */
		if ((void *)(tag + 2) > end)
			return NULL;
		*type = tag[1];
		l3 = tag + 2;
		if (*type == bpf_htons(ETH_P_8021Q)) {
			tag = l3;
			if ((void *)(tag + 2) > end)
				return NULL;
			*type = tag[1];
			l3 = tag + 2;
		}
	}
	return l3;
}

SEC("xdp")
int lvs_xdp_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct service_frame f = {};
	__u16 type;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	void *l3 = after_ethernet(eth, end, &type);
	if (!l3)
		return XDP_PASS;
	switch (classify(l3, type, end, &f)) {
	case FC_NEIGHBOUR:
		return to_lvsd(ctx, ST_NEIGHBOUR);
	case FC_ADDRESS:
		return to_lvsd(ctx, ST_ADDRESS);
	case FC_TRANSPORT: {
		int action = fast_path(ctx, eth, &f, end);
		if (action >= 0)
			return action;
		if (is_service(&f.k, f.proto, f.dport) || is_marked(&f.k, f.proto, f.dport))
			return to_lvsd(ctx, ST_SERVICE);
		count(ST_PASSED);
		return XDP_PASS;
	}
	default:
		count(ST_PASSED);
		return XDP_PASS;
	}
}

/*
 * The tc half of `lvsd --dataplane tc`, attached to clsact ingress in direct-
 * action mode. It runs on the skb the kernel has already built, after the
 * packet taps and before the protocol handlers, so nothing is copied:
 *   - a frame of a connection in `conns` is forwarded here as in XDP (the skb
 *     keeps its checksum state, so there is none to complete) and leaves
 *     through bpf_redirect;
 *   - a frame lvsd must handle (the same ones the XDP program redirects) is
 *     marked PACKET_OTHERHOST and goes on: lvsd's packet sockets, bound to
 *     IPv4, IPv6 and ARP so they see frames only after this program, receive
 *     it, while the kernel's IPv4, IPv6 and ARP input drop it;
 *   - everything else goes on untouched.
 * VLAN tags are out of band at this point; tagged frames are the kernel's, as
 * in the afpacket data plane.
 */
#define TC_LINEAR 96 /* Ethernet + IPv6 + TCP or a neighbour solicitation (78), rounded up */

/*
 * How much of the frame must be in the skb's linear part for the program to
 * read every header it reads: for IPv4 and IPv6 TCP and UDP (nearly all
 * traffic) exactly their headers, else TC_LINEAR. A frame from a local TCP
 * stack has all its headers there, but its payload in pages; pulling beyond
 * the headers would copy the skb's head (it is a clone) for every segment.
 */
static __always_inline __u32 tc_headers_len(void *data, void *end)
{
	__u8 *p = data;
	if ((void *)(p + 14 + 40) > end)
		return TC_LINEAR;
	__u16 type = *(__u16 *)(p + 12);
	__u8 *ip = p + 14;
	if (type == bpf_htons(ETH_P_IP)) {
		__u32 ihl = (ip[0] & 0x0F) * 4;
		if (ip[9] == IPPROTO_TCP)
			return 14 + ihl + 20;
		if (ip[9] == IPPROTO_UDP)
			return 14 + ihl + 8;
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		if (ip[6] == IPPROTO_TCP)
			return 14 + 40 + 20;
		if (ip[6] == IPPROTO_UDP)
			return 14 + 40 + 8;
	}
	return TC_LINEAR;
}

static __always_inline int tc_to_lvsd(struct __sk_buff *skb, __u32 what)
{
	count(what);
	bpf_skb_change_type(skb, PACKET_OTHERHOST);
	return TC_ACT_OK;
}

SEC("tc")
int lvs_tc_prog(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct service_frame f = {};
	__u16 type;

	if (skb->vlan_present)
		return TC_ACT_OK;
	/* A sender's skb may hold only the Ethernet header in its linear part. */
	__u32 want = tc_headers_len(data, end);
	if (want > skb->len)
		want = skb->len;
	if (data + want > end) {
		if (bpf_skb_pull_data(skb, want))
			return TC_ACT_OK;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	void *l3 = after_ethernet(eth, end, &type);
	if (!l3)
		return TC_ACT_OK;
	switch (classify(l3, type, end, &f)) {
	case FC_NEIGHBOUR:
		return tc_to_lvsd(skb, ST_NEIGHBOUR);
	case FC_ADDRESS:
		return tc_to_lvsd(skb, ST_ADDRESS);
	case FC_TRANSPORT: {
		__u32 iplen = 0, l4len = 0;
		struct conn_value *v = lookup_conn(&f, end, &iplen, &l4len);
		if (v && rewrite(eth, f.ip, end, f.k.family == 4, v, iplen) == 0)
			return bpf_redirect(v->ifindex, 0);
		if (is_service(&f.k, f.proto, f.dport) || is_marked(&f.k, f.proto, f.dport))
			return tc_to_lvsd(skb, ST_SERVICE);
		return TC_ACT_OK;
	}
	default:
		return TC_ACT_OK;
	}
}

char _license[] SEC("license") = "GPL";
