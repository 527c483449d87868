#ifndef CLVS_XDP_MAPS_H
#define CLVS_XDP_MAPS_H
/*
 * Map layouts shared by the BPF programs (bpf/lvs_xdp.c, compiled with clang -target bpf) and
 * their loader (xdp.c, Swift through clvs_xdp.h). Defined here once; both sides include this
 * file. Only <linux/types.h> types, so it compiles for either target.
 */
#include <linux/types.h>

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

struct clvs_xdp_settings {
    __u32 flags; /* CLVS_SETTING_* */
};

/* ---- the programs' counters: `stats`, a per-CPU array (frames by what the program did) ---- */

enum clvs_xdp_stat {
    CLVS_STAT_SERVICE,   /* to lvsd: a service or fwmark frame */
    CLVS_STAT_ADDRESS,   /* to lvsd: a fragment or ICMP error to a VIP address */
    CLVS_STAT_NEIGHBOUR, /* to lvsd: ARP request / neighbour solicitation for a VIP */
    CLVS_STAT_PASSED,    /* to the kernel */
    CLVS_STAT_FAST,      /* forwarded by the fast path */
    CLVS_STAT_COUNT
};

#endif
