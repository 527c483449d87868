#ifndef CLVS_XDP_H
#define CLVS_XDP_H
/*
 * What lvsd's AF_XDP data plane needs from libxdp/libbpf, in a form Swift imports:
 * UMEM + one AF_XDP socket per interface queue (copy mode), ring operations as
 * inline helpers, loading/attaching lvsd's XDP program, the VIP map, and a
 * packet tap for the ARP/ND frames the program leaves to the kernel.
 * libxdp/libbpf headers stay in xdp.c.
 */
#include <stdint.h>
#include <stddef.h>
#include "clvs_xdp_maps.h"

#pragma clang assume_nonnull begin

/* Same layout as libxdp's struct xsk_ring_prod / xsk_ring_cons (checked in xdp.c). */
struct clvs_ring {
    uint32_t cached_prod;
    uint32_t cached_cons;
    uint32_t mask;
    uint32_t size;
    uint32_t *producer;
    uint32_t *consumer;
    void *ring;
    uint32_t *flags;
};

/* Same layout as struct xdp_desc. */
struct clvs_desc {
    uint64_t addr;
    uint32_t len;
    uint32_t options;
};

/* One AF_XDP socket with its own UMEM. */
struct clvs_xsk {
    struct clvs_ring rx, tx, fill, comp;
    uint8_t *_Nullable area;          /* UMEM: frame_count x frame_size bytes */
    uint64_t area_size;
    uint32_t frame_size;
    uint32_t frame_count;
    int fd;
    uint32_t queue;
    void *_Nullable socket;           /* struct xsk_socket * */
    void *_Nullable umem;             /* struct xsk_umem * */
    int zerocopy;                     /* 1: bound with XDP_ZEROCOPY, 0: copy mode */
};

/* Socket modes: zero-copy where the driver has it, else copy (AUTO); or only one of them. */
enum { CLVS_XSK_AUTO = 0, CLVS_XSK_COPY = 1, CLVS_XSK_ZEROCOPY = 2 };

/* Creates UMEM and socket (XDP_ZEROCOPY or XDP_COPY, with XDP_USE_NEED_WAKEUP, no program loaded
 * by libxdp) and inserts it into `xsks_map_fd` at `queue`. `x->zerocopy` tells which mode bound.
 * 0 or -errno; `err` says what failed. */
int clvs_xsk_open(struct clvs_xsk *x, const char *ifname, uint32_t queue, uint32_t frame_count,
                  uint32_t frame_size, uint32_t ring_size, int xsks_map_fd, int mode, char *err, size_t errlen);
void clvs_xsk_close(struct clvs_xsk *x);

/* ---- rings (single producer / single consumer, as in libxdp) ---- */

static inline uint32_t clvs_cons_peek(struct clvs_ring *r, uint32_t max, uint32_t *idx) {
    uint32_t avail = r->cached_prod - r->cached_cons;
    if (avail == 0) {
        r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
        avail = r->cached_prod - r->cached_cons;
    }
    if (avail > max) avail = max;
    *idx = r->cached_cons;
    r->cached_cons += avail;
    return avail;
}

static inline void clvs_cons_release(struct clvs_ring *r, uint32_t n) {
    __atomic_store_n(r->consumer, *r->consumer + n, __ATOMIC_RELEASE);
}

/* Reserves up to `n` slots; returns how many, first index in *idx. */
static inline uint32_t clvs_prod_reserve(struct clvs_ring *r, uint32_t n, uint32_t *idx) {
    /* cached_cons runs `size` ahead of the consumer, so this is the number of free slots. */
    uint32_t free_entries = r->cached_cons - r->cached_prod;
    if (free_entries < n) {
        r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) + r->size;
        free_entries = r->cached_cons - r->cached_prod;
    }
    if (n > free_entries) n = free_entries;
    *idx = r->cached_prod;
    r->cached_prod += n;
    return n;
}

static inline void clvs_prod_submit(struct clvs_ring *r, uint32_t n) {
    __atomic_store_n(r->producer, *r->producer + n, __ATOMIC_RELEASE);
}

static inline uint64_t *_Nonnull clvs_addr_slot(struct clvs_ring *r, uint32_t idx) {
    return &((uint64_t *)r->ring)[idx & r->mask];
}

static inline struct clvs_desc *_Nonnull clvs_desc_slot(struct clvs_ring *r, uint32_t idx) {
    return &((struct clvs_desc *)r->ring)[idx & r->mask];
}

static inline int clvs_needs_wakeup(const struct clvs_ring *r) {
    return (*r->flags & 1 /* XDP_RING_NEED_WAKEUP */) != 0;
}

/* Copy mode transmits in this syscall. 0 or -errno (EAGAIN/EBUSY/ENOBUFS: try again later). */
int clvs_xsk_kick_tx(int fd);

/* ---- the XDP program ---- */

struct clvs_xdp_prog {
    void *_Nullable object;    /* struct bpf_object * */
    int prog_fd;     /* lvs_xdp_prog, -1 when not loaded */
    int tc_prog_fd;  /* lvs_tc_prog (`lvsd --dataplane tc`), -1 when not loaded */
    int xsks_fd;
    int vips_fd;
    int conns_fd;    /* the fast path's connection map (`lvsd --dataplane xdp` and `tc`) */
    int stats_fd;    /* its per-destination counters (`dest_stats`, per CPU) */
    int marks_fd;    /* the fwmark rules' LPM trie (`mark_prefixes`) */
    int settings_fd; /* lvsd's settings (`settings`: struct clvs_xdp_settings) */
    int counters_fd; /* frames per enum clvs_xdp_stat (`stats`, per CPU) */
    int ifindex;     /* attached to, 0 = not attached */
    uint32_t mode;   /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE once attached */
    int tc_ifindex;  /* the tc program is attached to its clsact ingress, 0 = not */
    int tc_created_hook; /* the clsact qdisc was created by lvsd (removed again on detach) */
    int heartbeat_fd; /* lvsd's heartbeat (`heartbeat`: struct clvs_heartbeat), -1 in an object without one */
    int nat_replies_fd; /* NAT replies of the tc fast path (`nat_replies`), -1 in an object without one */
};

/* Which programs of the object `clvs_xdp_load` loads into the kernel. */
#define CLVS_PROG_XDP 1
#define CLVS_PROG_TC 2

/* Opens the ELF object in `object` (`size` bytes; `name` for messages) and loads the programs named
 * by `programs` (CLVS_PROG_*). With `shared` (an object loaded before) the object uses its maps
 * (VIPs, connections, destination counters, fwmark rules, settings, counters) instead of its own:
 * one of each for every interface. 0 or -errno. */
int clvs_xdp_load(struct clvs_xdp_prog *p, const void *object, size_t size, const char *name, int programs,
                  const struct clvs_xdp_prog *_Nullable shared, char *err, size_t errlen);
/* Attaches in native mode, else (when `allow_generic`) in generic/skb mode; sets p->mode.
 * Replaces an earlier lvsd program (a stale one of a killed lvsd), refuses anybody else's. */
int clvs_xdp_attach(struct clvs_xdp_prog *p, int ifindex, int allow_generic, char *err, size_t errlen);
/* Detaches (if attached) and frees the object. */
void clvs_xdp_close(struct clvs_xdp_prog *p);
/* Detaches whatever lvsd program is attached to `ifindex` (any mode); 1 when one was removed. */
int clvs_xdp_detach_stale(int ifindex);
/* Attaches lvs_tc_prog to the clsact ingress of `ifindex` (creating the qdisc when missing) as
 * filter handle CLVS_TC_HANDLE, priority CLVS_TC_PRIORITY, direct action. Replaces an earlier
 * lvsd program there (a stale one of a killed lvsd), refuses anybody else's. 0 or -errno. */
int clvs_tc_attach(struct clvs_xdp_prog *p, int ifindex, char *err, size_t errlen);
/* Removes the filter (and the clsact qdisc when lvsd created it); idempotent. */
void clvs_tc_detach(struct clvs_xdp_prog *p);
#define CLVS_TC_HANDLE 0x1c5
#define CLVS_TC_PRIORITY 0x1c5

/* VIP map element: family 4 or 6, address in network order (4 or 16 bytes), port host order;
 * `flags` CLVS_VIP_* (CLVS_VIP_PRESENT at least) inserts or replaces it, 0 deletes it (a missing
 * entry is not an error). 0 or -errno. */
int clvs_vip_set(int vips_fd, uint8_t family, const uint8_t *addr, uint8_t proto, uint16_t port, uint8_t flags);

/* fwmark trie entry (`mark_prefixes`): inserts or replaces `k` with `v`, or deletes `k` when `v` is
 * NULL (a missing entry is not an error). 0 or -errno (-E2BIG/-ENOMEM: the trie is full). */
int clvs_mark_set(int marks_fd, const struct clvs_mark_key *k, const struct clvs_mark_value *_Nullable v);
/* Writes the settings element (flags: CLVS_SETTING_*). 0 or -errno. */
int clvs_settings_set(int settings_fd, uint32_t flags);
/* Writes the heartbeat element (CLOCK_MONOTONIC ns; timeout 0: never orphaned). 0 or -errno. */
int clvs_heartbeat_set(int heartbeat_fd, uint64_t beat_ns, uint64_t timeout_ns);
/* The programs' frame counters (`stats`), summed over the CPUs, into out[CLVS_STAT_COUNT]. 0 or -errno. */
int clvs_xdp_counters_read(int counters_fd, uint64_t *out);
/* Runs program `prog_fd` once on `frame` (BPF_PROG_TEST_RUN; nothing is sent anywhere) and stores
 * its return value (the XDP action, or the tc action). With `out` (room for *out_len bytes), the
 * frame as the program left it is copied there and *out_len becomes its length. 0 or -errno
 * (-ENOSPC: `out` too small). For tests. */
int clvs_prog_test_run(int prog_fd, const void *frame, uint32_t len, uint32_t *retval,
                       void *_Nullable out, uint32_t *_Nullable out_len);
/* Runs program `prog_fd` `repeat` times on `frame` (the kernel keeps one copy: a rewrite carries
 * over to the next run) and stores the last return value and the mean run time in ns. 0 or
 * -errno. For measurements. */
int clvs_prog_test_run_timed(int prog_fd, const void *frame, uint32_t len, uint32_t repeat, uint32_t *retval,
                             uint32_t *duration);

/* ---- the fast path's connection map (struct clvs_conn_key / clvs_conn_value and CLVS_MAX_DESTS:
 * clvs_xdp_maps.h) ---- */

/* Inserts or replaces (last seen zero). 0 or -errno (-E2BIG/-ENOMEM: map full). */
int clvs_conn_put(int fd, const struct clvs_conn_key *k, const uint8_t *dmac, const uint8_t *smac, uint32_t ifindex,
                  uint32_t dest);
/* As clvs_conn_put, for a NAT connection (CLVS_CONN_NAT): the tc program also rewrites the
 * destination to `raddr` (4 or 16 bytes, by the key's family) and `rport` (host order). */
int clvs_conn_put_nat(int fd, const struct clvs_conn_key *k, const uint8_t *dmac, const uint8_t *smac, uint32_t ifindex,
                      uint32_t dest, const uint8_t *raddr, uint16_t rport);
/* Packets and bytes the programs forwarded to destination slot `dest` (and NAT replies from it),
 * summed over the CPUs. 0 or -errno. */
int clvs_dest_stats_read(int stats_fd, uint32_t dest, struct clvs_dest_counters *out);
/* `nat_replies`: inserts or replaces; 0 or -errno (-E2BIG/-ENOMEM: map full). */
int clvs_nat_reply_put(int fd, const struct clvs_nat_reply_key *k, const struct clvs_nat_reply_value *v);
/* 0 and *v, or -ENOENT. */
int clvs_nat_reply_get(int fd, const struct clvs_nat_reply_key *k, struct clvs_nat_reply_value *v);
/* 0 or -errno (a missing entry is not an error). */
int clvs_nat_reply_delete(int fd, const struct clvs_nat_reply_key *k);
/* 0 and *v, or -ENOENT. */
int clvs_conn_get(int fd, const struct clvs_conn_key *k, struct clvs_conn_value *v);
/* 0 or -errno (a missing entry is not an error). */
int clvs_conn_delete(int fd, const struct clvs_conn_key *k);
/* The key after `k` (NULL: the first key). 0 or -errno (-ENOENT: no more). */
int clvs_conn_next_key(int fd, const struct clvs_conn_key *_Nullable k, struct clvs_conn_key *next);
/* Bytes of the opaque position `clvs_conn_read_batch` keeps between calls. */
#define CLVS_BATCH_TOKEN_SIZE 64
/* Reads up to *count entries in one BPF_MAP_LOOKUP_BATCH call, from the start (`first`) or after
 * the position in `token` (updated); *count becomes the number read. 0: more may follow; 1: that
 * was the end; -errno on failure (-EINVAL on kernels without batch operations). */
int clvs_conn_read_batch(int fd, uint8_t *token, int first, struct clvs_conn_key *keys,
                         struct clvs_conn_value *values, uint32_t *count);
/* Entries in the map (for status lines and tests). */
uint64_t clvs_conn_count(int fd);

/* The driver name of an interface (ETHTOOL_GDRVINFO), "" when unknown. */
void clvs_if_driver(const char *ifname, char *out, size_t outlen);

/* GRO of an interface (ETHTOOL_GGRO): 1 on, 0 off, -errno when unknown. */
int clvs_if_gro(const char *ifname);

/* Number of receive queues of an interface (ETHTOOL_GCHANNELS, else 1). */
int clvs_if_rx_queues(const char *ifname);

/* AF_PACKET tap on `ifindex` seeing received ARP and ICMPv6 NS/NA frames (classic BPF filter),
 * non-blocking, outgoing frames ignored. fd or -errno. */
int clvs_neighbour_tap_open(int ifindex);

/* Completes a TCP/UDP checksum left as CHECKSUM_PARTIAL by the sender (the field holds only the
 * pseudo-header sum): 1 when rewritten, 0 otherwise. Ethernet frame, VLAN tags as lvsd's parser
 * reads them (an 802.1Q or 802.1ad tag, then optionally an 802.1Q tag). */
int clvs_complete_l4_checksum(uint8_t *frame, uint32_t len);

#pragma clang assume_nonnull end

#endif
