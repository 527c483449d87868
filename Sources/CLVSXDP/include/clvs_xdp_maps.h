#ifndef CLVS_XDP_MAPS_H
#define CLVS_XDP_MAPS_H
/*
 * Map layouts and sizes shared by the BPF programs (bpf/lvs_xdp.c and bpf/lib, compiled with
 * clang -target bpf) and their loader (xdp.c, Swift through clvs_xdp.h). Each is defined here
 * once; both sides include this file (the BPFObjectPlugin and bpf/Makefile put this directory on
 * the include path). Only <linux/types.h> types, so it compiles for either target; the
 * _Static_asserts at the end hold the layouts still.
 */
#include <linux/types.h>

/* ---- map sizes ---- */

/* Receive queues `xsks` has an AF_XDP socket slot for. */
#define CLVS_MAX_QUEUES 256
/* Destination slots `dest_stats` has room for: as many as lvsd has destinations
 * (Engine.maxDestinations; XDPConnMap.maxDestinationSlots reads this). 32 bytes per slot and CPU. */
#define CLVS_MAX_DESTS 65536
/* Entries of `conns`: as large as lvsd's default connection table (--max-connections 4194304);
 * entries use memory only when present. A full map just leaves connections to lvsd. */
#define CLVS_MAX_CONNS (1 << 22)
/* Entries of `nat_replies`: one per NAT connection in `conns`, so as many. */
#define CLVS_MAX_NAT_REPLIES CLVS_MAX_CONNS
/* Entries of `vips`: services plus one address entry per VIP address. */
#define CLVS_MAX_VIPS 65536

/* ---- VIPs: `vips`, a hash of what goes to lvsd ---- */

/* Key: {family, proto, port, addr} for each service, {family, 0, 0, addr} for each VIP address.
 * The value is one byte of CLVS_VIP_* flags. */
struct clvs_vip_key {
    __u8 family;   /* 4 or 6 */
    __u8 proto;    /* IPPROTO_TCP/UDP/SCTP, 0 = address entry */
    __u16 port;    /* network order, 0 = every port */
    __u8 addr[16]; /* network order; IPv4 in the first 4 bytes, the rest zero */
};

/* The entry exists (every entry has it). */
#define CLVS_VIP_PRESENT 1u
/* On an address entry: the address is under VRRP control and this director does not own it
 * (BACKUP): ARP requests and neighbour solicitations for it are the kernel's, and the fast path
 * forwards none of its connections (they go to lvsd, which drops them) until it is owned again. */
#define CLVS_VIP_NOT_OWNED 2u

/* ---- the fast path: `conns`, a hash of connections lvsd has scheduled ---- */

struct clvs_conn_key {
    __u8 family;     /* 4 or 6 */
    __u8 proto;      /* IPPROTO_TCP or IPPROTO_UDP */
    __u16 cport;     /* client port, network order */
    __u16 vport;     /* virtual port, network order */
    __u16 pad;
    __u8 caddr[16];  /* client address (IPv4 in the first 4 bytes) */
    __u8 vaddr[16];  /* virtual address */
};

/* clvs_conn_value.flags: a NAT (masquerading) connection: the tc program also rewrites the
 * destination to raddr:rport, and its replies are in `nat_replies`. */
#define CLVS_CONN_NAT 1u

struct clvs_conn_value {
    __u8 dmac[6];    /* the real server's MAC */
    __u8 smac[6];    /* the director's MAC on the egress interface */
    __u32 ifindex;   /* egress interface */
    __u32 dest;      /* lvsd's destination slot: the index into `dest_stats` (< CLVS_MAX_DESTS) */
    __u32 flags;     /* CLVS_CONN_* */
    __u64 last_seen; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last packet (of either
                      * direction for NAT); lvsd writes 0 */
    __u8 raddr[16];  /* NAT: the real server's address (IPv4 in the first 4 bytes) */
    __u16 rport;     /* NAT: the real server's port, network order */
    __u16 pad;
    __u32 pad2;
};

/* ---- NAT replies: `nat_replies`, a hash of the reply tuples of NAT connections in `conns` ---- */

/* A reply's tuple, as it arrives from the real server: source = real server, destination =
 * client. */
struct clvs_nat_reply_key {
    __u8 family;     /* 4 or 6 */
    __u8 proto;      /* IPPROTO_TCP or IPPROTO_UDP */
    __u16 rport;     /* the real server's port (the reply's source port), network order */
    __u16 cport;     /* the client's port (its destination port), network order */
    __u16 pad;
    __u8 raddr[16];  /* the real server's address (IPv4 in the first 4 bytes) */
    __u8 caddr[16];  /* the client's address */
};

/* Where a reply goes: the connection's `conns` key (its VIP:vport become the reply's source; its
 * entry's last-seen time is refreshed, so a reply keeps the connection alive), the client's next
 * hop (the MAC and interface the connection's first packet came from) and the destination slot
 * the reply is counted for (out_packets/out_bytes). */
struct clvs_nat_reply_value {
    struct clvs_conn_key conn;
    __u8 dmac[6];    /* the client's next hop */
    __u8 smac[6];    /* the director's MAC on that interface */
    __u32 ifindex;   /* that interface */
    __u32 dest;      /* lvsd's destination slot (< CLVS_MAX_DESTS) */
    __u32 pad;
};

/* ---- per-destination counters: `dest_stats`, a per-CPU array of CLVS_MAX_DESTS ---- */

/* Packets and IP bytes the fast path forwarded, per destination slot and CPU (lvsd sums the CPUs
 * and adds the growth to its statistics): to the real server (In), and NAT replies from it (Out). */
struct clvs_dest_counters {
    __u64 packets;
    __u64 bytes;
    __u64 out_packets;
    __u64 out_bytes;
};

/* ---- fwmark rules: `mark_prefixes`, an LPM trie ---- */

/* Port ranges (with their protocol) one trie entry holds: every range of every active fwmark rule
 * whose prefix covers the entry's prefix (so the longest match alone decides). */
#define CLVS_MARK_MAX_RANGES 16
/* Distinct prefixes the trie holds. */
#define CLVS_MARK_MAX_PREFIXES 4096
/* Bits in front of the address in the key's data: the family byte. */
#define CLVS_MARK_FAMILY_BITS 8

/* Key: `prefixlen` counts the family byte's 8 bits plus the prefix length, so an IPv4 rule never
 * matches an IPv6 address (bpf_lpm_trie_key layout: prefix length, then the data). */
struct clvs_mark_key {
    __u32 prefixlen;
    __u8 family;   /* 4 or 6 */
    __u8 addr[16]; /* network order; IPv4 in the first 4 bytes, the rest zero */
};

/* Protocol value matching TCP, UDP and SCTP alike (a rule without a protocol). */
#define CLVS_MARK_ANY_PROTO 0

/* One port range of a rule: destination ports lo..hi (host order) of protocol `proto`. */
struct clvs_mark_range {
    __u8 proto; /* IPPROTO_TCP/UDP/SCTP or CLVS_MARK_ANY_PROTO */
    __u8 pad;
    __u16 lo;
    __u16 hi;
};

struct clvs_mark_value {
    __u32 count; /* ranges in use, at most CLVS_MARK_MAX_RANGES */
    struct clvs_mark_range ranges[CLVS_MARK_MAX_RANGES];
};

/* ---- settings: `settings`, an array of one element ---- */

/* --no-arp: ARP requests and neighbour solicitations for VIPs go to the kernel, not to lvsd. */
#define CLVS_SETTING_NO_ARP 1u
/* Some VIP address entry has CLVS_VIP_NOT_OWNED: the fast path then looks up the address entry of
 * each frame it would forward (without it, a forwarded frame costs no lookup but its connection's). */
#define CLVS_SETTING_SOME_NOT_OWNED 2u
/* `nat_replies` has held an entry (lvsd sets it at the first): only then does the tc program look
 * up the replies of NAT connections (without it, a frame it leaves alone costs no such lookup). */
#define CLVS_SETTING_NAT_REPLIES 4u

struct clvs_xdp_settings {
    __u32 flags; /* CLVS_SETTING_* */
};

/* ---- lvsd's heartbeat: `heartbeat`, an array of one element (bpf/lib/heartbeat.h) ---- */

/* lvsd --orphan-timeout: when `beat_ns` is more than `timeout_ns` old, the programs leave every
 * frame to the kernel. Both CLOCK_MONOTONIC ns (bpf_ktime_get_ns); timeout 0: never. */
struct clvs_heartbeat {
    __u64 beat_ns;    /* lvsd's last heartbeat */
    __u64 timeout_ns; /* the orphan timeout, 0 = none */
};

/* ---- the programs' counters: `stats`, a per-CPU array (frames by what the program did) ---- */

enum clvs_xdp_stat {
    CLVS_STAT_SERVICE,   /* to lvsd: a service or fwmark frame */
    CLVS_STAT_ADDRESS,   /* to lvsd: a fragment or ICMP error to a VIP address */
    CLVS_STAT_NEIGHBOUR, /* to lvsd: ARP request / neighbour solicitation for a VIP */
    CLVS_STAT_PASSED,    /* to the kernel */
    CLVS_STAT_FAST,      /* forwarded by the fast path */
    CLVS_STAT_ORPHANED,  /* to the kernel: lvsd's heartbeat is older than its timeout */
    CLVS_STAT_NAT_REPLY, /* a NAT reply forwarded by the fast path (tc) */
    CLVS_STAT_COUNT
};

/* ---- layout checks: the kernel, libbpf and Swift all read these as raw bytes ---- */

#define CLVS_LAYOUT(type, size) _Static_assert(sizeof(struct type) == (size), #type " layout")
#define CLVS_OFFSET(type, field, at) \
    _Static_assert(__builtin_offsetof(struct type, field) == (at), #type "." #field " offset")

CLVS_LAYOUT(clvs_vip_key, 20);
CLVS_OFFSET(clvs_vip_key, port, 2);
CLVS_OFFSET(clvs_vip_key, addr, 4);
CLVS_LAYOUT(clvs_conn_key, 40);
CLVS_OFFSET(clvs_conn_key, cport, 2);
CLVS_OFFSET(clvs_conn_key, vport, 4);
CLVS_OFFSET(clvs_conn_key, caddr, 8);
CLVS_OFFSET(clvs_conn_key, vaddr, 24);
CLVS_LAYOUT(clvs_conn_value, 56);
CLVS_OFFSET(clvs_conn_value, ifindex, 12);
CLVS_OFFSET(clvs_conn_value, dest, 16);
CLVS_OFFSET(clvs_conn_value, flags, 20);
CLVS_OFFSET(clvs_conn_value, last_seen, 24);
CLVS_OFFSET(clvs_conn_value, raddr, 32);
CLVS_OFFSET(clvs_conn_value, rport, 48);
CLVS_LAYOUT(clvs_nat_reply_key, 40);
CLVS_OFFSET(clvs_nat_reply_key, rport, 2);
CLVS_OFFSET(clvs_nat_reply_key, cport, 4);
CLVS_OFFSET(clvs_nat_reply_key, raddr, 8);
CLVS_OFFSET(clvs_nat_reply_key, caddr, 24);
CLVS_LAYOUT(clvs_nat_reply_value, 64);
CLVS_OFFSET(clvs_nat_reply_value, dmac, 40);
CLVS_OFFSET(clvs_nat_reply_value, smac, 46);
CLVS_OFFSET(clvs_nat_reply_value, ifindex, 52);
CLVS_OFFSET(clvs_nat_reply_value, dest, 56);
/* clvs_dest_stats_read reads a CPU's value as four consecutive u64: packets, bytes, out_packets,
 * out_bytes. */
CLVS_LAYOUT(clvs_dest_counters, 32);
CLVS_OFFSET(clvs_dest_counters, bytes, 8);
CLVS_OFFSET(clvs_dest_counters, out_packets, 16);
CLVS_OFFSET(clvs_dest_counters, out_bytes, 24);
/* bpf_lpm_trie_key: the 32-bit prefix length, then the data (family byte + 16 address bytes). */
CLVS_LAYOUT(clvs_mark_key, 24);
CLVS_OFFSET(clvs_mark_key, family, 4);
CLVS_OFFSET(clvs_mark_key, addr, 5);
CLVS_LAYOUT(clvs_mark_range, 6);
CLVS_OFFSET(clvs_mark_value, ranges, 4);
CLVS_LAYOUT(clvs_mark_value, 4 + 6 * CLVS_MARK_MAX_RANGES);
CLVS_LAYOUT(clvs_xdp_settings, 4);
CLVS_LAYOUT(clvs_heartbeat, 16);
CLVS_OFFSET(clvs_heartbeat, timeout_ns, 8);

#undef CLVS_LAYOUT
#undef CLVS_OFFSET

#endif
