#ifndef CLVS_SHIM_H
#define CLVS_SHIM_H

// Linux headers and a few helpers that Glibc's Swift overlay does not expose.
// Everything needing _GNU_SOURCE lives in shim.c behind plain prototypes, because the
// Glibc module seen by Swift is built without it.

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/random.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/virtio_net.h>

// ---- constants that Swift cannot import as macros ----------------------------------------

static const int clvs_tpacket_v2 = TPACKET_V2;
static const int clvs_tpacket_alignment = TPACKET_ALIGNMENT;
static const size_t clvs_tpacket2_hdrlen = TPACKET2_HDRLEN;
static const size_t clvs_vnet_hdr_len = sizeof(struct virtio_net_hdr);

static inline size_t clvs_tpacket_align(size_t x) { return TPACKET_ALIGN(x); }

// ---- time and atomics -----------------------------------------------------------------------

/// CLOCK_MONOTONIC in nanoseconds.
static inline uint64_t clvs_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Swift code uses Synchronization's Atomic (LVSCore's AtomicWords) for its atomics.

// ---- TPACKET_V2 frame header accessors (hdr = start of a ring slot) --------------------------

static inline uint32_t clvs_tp2_status(const void *hdr) {
    return __atomic_load_n(&((const struct tpacket2_hdr *)hdr)->tp_status, __ATOMIC_ACQUIRE);
}
/// Hands the slot back to the kernel (release: our reads and writes of the slot happen before).
static inline void clvs_tp2_release(void *hdr) {
    __atomic_store_n(&((struct tpacket2_hdr *)hdr)->tp_status, (uint32_t)TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}
static inline uint32_t clvs_tp2_len(const void *hdr) { return ((const struct tpacket2_hdr *)hdr)->tp_len; }
static inline uint32_t clvs_tp2_snaplen(const void *hdr) { return ((const struct tpacket2_hdr *)hdr)->tp_snaplen; }
static inline uint16_t clvs_tp2_mac(const void *hdr) { return ((const struct tpacket2_hdr *)hdr)->tp_mac; }
/// sll_pkttype of the sockaddr_ll that follows the header (PACKET_HOST, PACKET_OUTGOING, ...).
static inline uint8_t clvs_tp2_pkttype(const void *hdr) {
    const struct sockaddr_ll *sll =
        (const struct sockaddr_ll *)((const uint8_t *)hdr + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
    return sll->sll_pkttype;
}

// ---- AF_PACKET socket helpers ------------------------------------------------------------

/// bind() to `ifindex` with `protocol` (host order; ETH_P_ALL = every frame, before tc ingress).
int clvs_packet_bind(int fd, int ifindex, uint16_t protocol);
/// A sockaddr_ll naming `ifindex` with protocol 0, for sendmmsg through a socket bound to one
/// protocol: the kernel then takes each frame's protocol from its Ethernet header. Free with free().
void *_Nullable clvs_packet_send_address(int ifindex, unsigned int *_Nonnull length);
/// PACKET_RX_RING with a tpacket_req.
int clvs_packet_rx_ring(int fd, unsigned block_size, unsigned block_nr, unsigned frame_size, unsigned frame_nr);
/// Joins a fanout group. With id < 0 asks the kernel for a unique id (PACKET_FANOUT_FLAG_UNIQUEID)
/// and returns it; otherwise joins `id`. Returns the group id or -1 (errno set).
int clvs_packet_fanout(int fd, int id, int type, int flags);
/// Stores the socket's PACKET_FANOUT setting as the kernel reports it: group id in bits 0-15, the
/// mode (PACKET_FANOUT_HASH, _CPU, ...) in bits 16-23, the flags shifted right by 8 in bits 24-31;
/// 0 when the socket is in no group. Returns 0, or -1 with errno.
int clvs_packet_fanout_setting(int fd, unsigned *setting);
int clvs_setsockopt_int(int fd, int level, int name, int value);

// ---- sendmmsg --------------------------------------------------------------------------------

/// Same layout as struct mmsghdr (checked in shim.c).
struct clvs_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
int clvs_sendmmsg(int fd, struct clvs_mmsghdr *msgs, unsigned int vlen, int flags);

// ---- interfaces and CPUs ------------------------------------------------------------------

/// Index, MAC (6 bytes) and MTU of `name` in the caller's network namespace. 0 or -1 (errno set).
int clvs_if_info(const char *name, int *index, uint8_t *mac, int *mtu);
/// Number of CPUs in the calling thread's affinity mask (at least 1).
int clvs_affinity_cpu_count(void);
/// Moves the calling thread into the network namespace at `path` (e.g. /run/netns/NAME). 0 or -1.
int clvs_setns_net(const char *path);

// ---- poll --------------------------------------------------------------------------------------

/// poll() over `n` descriptors for POLLIN; returns poll's result (EINTR reported as 0).
int clvs_poll_in(struct pollfd *fds, int n, int timeout_ms);

/// Opens a plain AF_PACKET socket for sending whole frames (no vnet header, not bound).
int clvs_packet_open_sender(void);
/// Sends one complete Ethernet frame out of interface `ifindex`.
long clvs_packet_sendto(int fd, int ifindex, const void *frame, size_t len);

/// accept(2) with the new descriptor close-on-exec (accept4 is not visible to Swift).
int clvs_accept_cloexec(int fd);
/// SOCK_CLOEXEC, for socket(2)'s type argument.
static const int clvs_sock_cloexec = SOCK_CLOEXEC;

/// The uid of the peer of a connected Unix socket, or -1.
long clvs_peer_uid(int fd);

// ---- process signals (lvsd) ----------------------------------------------------------------

/// Installs lvsd's signal dispositions: SIGHUP, SIGTERM and SIGINT only record that they came
/// (async-signal-safe: an atomic and one byte written to a self-pipe, SA_RESTART); SIGPIPE is
/// ignored. Idempotent. Returns the self-pipe's read end (O_CLOEXEC), or -1 with errno set.
int clvs_signals_install(void);
/// SIGHUPs received since the last call (the count is reset to 0).
unsigned clvs_signals_take_hup(void);
/// The first SIGTERM or SIGINT received (its number), or 0.
int clvs_signals_stop_signal(void);
/// How many SIGTERMs and SIGINTs came (a second one ends lvsd's announcement hold at once).
unsigned clvs_signals_stop_count(void);

// ---- the announcement device (lvsd --announce-table; tun.c) ----------------------------------

/// Size of `clvs_tun_open`'s name buffer (IFNAMSIZ).
static const int clvs_ifnamsiz = 16;
/// Opens a TUN device (no packet information, not persistent: it and the routes through it go
/// when its last descriptor closes, also when the process is killed) named from `pattern`
/// ("lvsann%d": the kernel picks the number); writes the device's name into `name`
/// (`clvs_ifnamsiz` bytes). Returns the descriptor (close-on-exec), or -1 with errno set.
int clvs_tun_open(const char *pattern, char *name);
/// Starts `argv` (PATH lookup, posix_spawn) from the calling thread, so in its network namespace,
/// in a process group of its own, with `in_fd` as its standard input, `out_fd` as its standard
/// output, /dev/null as standard error, no other descriptor, every signal at its default and
/// unblocked. Returns the pid (the caller reaps it), or -1 with errno set.
int clvs_spawn_detached(char *const argv[], int in_fd, int out_fd);

// ---- rtnetlink notifications (lvsd's tunnel route watcher; rtnetlink.c) ----------------------
// <linux/netlink.h> and <linux/rtnetlink.h> stay out of this header (fewer system headers in this
// module); their layouts and values are declared here and checked against the kernel's headers in
// rtnetlink.c. Swift files that use MSG_DONTWAIT import this module too: depending on the build
// order, clang may give <bits/socket.h>'s anonymous enum to this module rather than to Glibc's,
// and a file that imports Glibc alone then fails with "cannot find 'MSG_DONTWAIT' in scope".

/// struct sockaddr_nl: family (AF_NETLINK), padding, port id, multicast groups.
struct clvs_sockaddr_nl {
    uint16_t nl_family;
    uint16_t nl_pad;
    uint32_t nl_pid;
    uint32_t nl_groups;
};
/// struct nlmsghdr: length, type, flags, sequence number, port id.
struct clvs_nlmsghdr {
    uint32_t nlmsg_len;
    uint16_t nlmsg_type;
    uint16_t nlmsg_flags;
    uint32_t nlmsg_seq;
    uint32_t nlmsg_pid;
};
/// NETLINK_ROUTE (the socket protocol) and NLMSG_NOOP (a message type).
extern const int clvs_netlink_route;
extern const uint16_t clvs_nlmsg_noop;

/// The multicast groups RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE, RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR.
extern const uint32_t clvs_rtmgrp_ipv4_route, clvs_rtmgrp_ipv6_route, clvs_rtmgrp_link,
    clvs_rtmgrp_ipv4_ifaddr, clvs_rtmgrp_ipv6_ifaddr;
/// The message types RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWNEIGH.
extern const uint16_t clvs_rtm_newlink, clvs_rtm_dellink, clvs_rtm_newaddr, clvs_rtm_deladdr,
    clvs_rtm_newroute, clvs_rtm_delroute, clvs_rtm_newneigh;

#endif
