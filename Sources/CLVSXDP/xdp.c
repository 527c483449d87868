#include "clvs_xdp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

_Static_assert(sizeof(struct clvs_ring) == sizeof(struct xsk_ring_prod), "ring layout");
_Static_assert(sizeof(struct clvs_ring) == sizeof(struct xsk_ring_cons), "ring layout");
_Static_assert(sizeof(struct clvs_desc) == sizeof(struct xdp_desc), "desc layout");

#define PROG_NAME "lvs_xdp_prog"
#define TC_PROG_NAME "lvs_tc_prog"

static int fail(char *err, size_t errlen, int rc, const char *what) {
    if (err && errlen) snprintf(err, errlen, "%s: %s", what, strerror(rc < 0 ? -rc : rc));
    return rc < 0 ? rc : -rc;
}

static int xsk_open_with(struct clvs_xsk *x, const char *ifname, uint32_t queue, uint32_t frame_count,
                         uint32_t frame_size, uint32_t ring_size, int xsks_map_fd, uint16_t copy_flag,
                         char *err, size_t errlen);

int clvs_xsk_open(struct clvs_xsk *x, const char *ifname, uint32_t queue, uint32_t frame_count,
                  uint32_t frame_size, uint32_t ring_size, int xsks_map_fd, int mode, char *err, size_t errlen) {
    if (mode != CLVS_XSK_COPY) {
        /* Zero-copy needs driver support (veth has none: the bind fails and copy mode follows). */
        int rc = xsk_open_with(x, ifname, queue, frame_count, frame_size, ring_size, xsks_map_fd,
                               XDP_ZEROCOPY, err, errlen);
        if (rc == 0) { x->zerocopy = 1; return 0; }
        if (mode == CLVS_XSK_ZEROCOPY) return rc;
    }
    int rc = xsk_open_with(x, ifname, queue, frame_count, frame_size, ring_size, xsks_map_fd, XDP_COPY, err, errlen);
    if (rc == 0) x->zerocopy = 0;
    return rc;
}

static int xsk_open_with(struct clvs_xsk *x, const char *ifname, uint32_t queue, uint32_t frame_count,
                         uint32_t frame_size, uint32_t ring_size, int xsks_map_fd, uint16_t copy_flag,
                         char *err, size_t errlen) {
    memset(x, 0, sizeof(*x));
    x->fd = -1;
    x->area_size = (uint64_t)frame_count * frame_size;
    void *area = mmap(NULL, x->area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return fail(err, errlen, -errno, "mmap(UMEM)");
    x->area = area;
    x->frame_size = frame_size;
    x->frame_count = frame_count;
    x->queue = queue;

    struct xsk_umem_config ucfg = {
        .fill_size = ring_size,
        .comp_size = ring_size,
        .frame_size = frame_size,
        .frame_headroom = 0,
        .flags = 0,
    };
    struct xsk_umem *umem = NULL;
    int rc = xsk_umem__create(&umem, area, x->area_size, (struct xsk_ring_prod *)&x->fill,
                              (struct xsk_ring_cons *)&x->comp, &ucfg);
    if (rc) { munmap(area, x->area_size); x->area = NULL; return fail(err, errlen, rc, "xsk_umem__create"); }
    x->umem = umem;
    /* libxdp opens its AF_XDP sockets without close-on-exec; scripts lvsd starts must not get them. */
    fcntl(xsk_umem__fd(umem), F_SETFD, FD_CLOEXEC);

    struct xsk_socket_config scfg = {
        .rx_size = ring_size,
        .tx_size = ring_size,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD, /* lvsd loads its own program */
        .xdp_flags = 0,
        .bind_flags = copy_flag | XDP_USE_NEED_WAKEUP,
    };
    struct xsk_socket *sock = NULL;
    rc = xsk_socket__create(&sock, ifname, queue, umem, (struct xsk_ring_cons *)&x->rx,
                            (struct xsk_ring_prod *)&x->tx, &scfg);
    if (rc) { clvs_xsk_close(x); return fail(err, errlen, rc, "xsk_socket__create"); }
    x->socket = sock;
    x->fd = xsk_socket__fd(sock);
    fcntl(x->fd, F_SETFD, FD_CLOEXEC);
    if (xsks_map_fd >= 0) {
        int key = (int)queue, fd = x->fd;
        if (bpf_map_update_elem(xsks_map_fd, &key, &fd, BPF_ANY)) {
            rc = -errno;
            clvs_xsk_close(x);
            return fail(err, errlen, rc, "xsks map update");
        }
    }
    return 0;
}

void clvs_xsk_close(struct clvs_xsk *x) {
    if (x->socket) xsk_socket__delete((struct xsk_socket *)x->socket);
    x->socket = NULL;
    if (x->umem) xsk_umem__delete((struct xsk_umem *)x->umem);
    x->umem = NULL;
    if (x->area) munmap(x->area, x->area_size);
    x->area = NULL;
    x->fd = -1;
}

int clvs_xsk_kick_tx(int fd) {
    if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) return 0;
    return -errno;
}

/* ---- program ---- */

int clvs_xdp_load(struct clvs_xdp_prog *p, const void *object, size_t size, const char *name, int programs,
                  const struct clvs_xdp_prog *shared, char *err, size_t errlen) {
    memset(p, 0, sizeof(*p));
    p->prog_fd = p->tc_prog_fd = p->xsks_fd = p->vips_fd = p->conns_fd = p->stats_fd = -1;
    p->marks_fd = p->settings_fd = p->counters_fd = p->heartbeat_fd = p->nat_replies_fd = -1;
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
    struct bpf_object *obj = bpf_object__open_mem(object, size, &opts);
    int rc = (int)libbpf_get_error(obj);
    if (rc) return fail(err, errlen, rc, "bpf_object__open_mem");
    struct bpf_map *vips = bpf_object__find_map_by_name(obj, "vips");
    struct bpf_map *xsks = bpf_object__find_map_by_name(obj, "xsks");
    struct bpf_map *conns = bpf_object__find_map_by_name(obj, "conns");
    struct bpf_map *stats = bpf_object__find_map_by_name(obj, "dest_stats");
    struct bpf_map *marks = bpf_object__find_map_by_name(obj, "mark_prefixes");
    struct bpf_map *settings = bpf_object__find_map_by_name(obj, "settings");
    struct bpf_map *counters = bpf_object__find_map_by_name(obj, "stats");
    /* Optional: an object from before --orphan-timeout has none (its programs never let go). */
    struct bpf_map *heartbeat = bpf_object__find_map_by_name(obj, "heartbeat");
    /* Optional: an object from before NAT in the tc fast path has none (lvsd then keeps NAT). */
    struct bpf_map *nat_replies = bpf_object__find_map_by_name(obj, "nat_replies");
    struct bpf_program *prog = bpf_object__find_program_by_name(obj, PROG_NAME);
    struct bpf_program *tc = bpf_object__find_program_by_name(obj, TC_PROG_NAME);
    if (!vips || !xsks || !conns || !stats || !marks || !settings || !counters || !prog || !tc) {
        bpf_object__close(obj);
        if (err && errlen)
            snprintf(err, errlen, "%s lacks program " PROG_NAME " or " TC_PROG_NAME
                     " or maps vips/xsks/conns/dest_stats/mark_prefixes/settings/stats", name);
        return -ENOENT;
    }
    bpf_program__set_autoload(prog, (programs & CLVS_PROG_XDP) != 0);
    bpf_program__set_autoload(tc, (programs & CLVS_PROG_TC) != 0);
    if (shared) {
        struct { struct bpf_map *map; int fd; const char *what; } reuse[] = {
            { conns, shared->conns_fd, "bpf_map__reuse_fd(conns)" },
            { stats, shared->stats_fd, "bpf_map__reuse_fd(dest_stats)" },
            { vips, shared->vips_fd, "bpf_map__reuse_fd(vips)" },
            { marks, shared->marks_fd, "bpf_map__reuse_fd(mark_prefixes)" },
            { settings, shared->settings_fd, "bpf_map__reuse_fd(settings)" },
            { counters, shared->counters_fd, "bpf_map__reuse_fd(stats)" },
            { heartbeat, heartbeat ? shared->heartbeat_fd : -1, "bpf_map__reuse_fd(heartbeat)" },
            { nat_replies, nat_replies ? shared->nat_replies_fd : -1, "bpf_map__reuse_fd(nat_replies)" },
        };
        for (size_t i = 0; i < sizeof(reuse) / sizeof(reuse[0]); i++) {
            if (reuse[i].fd >= 0 && (rc = bpf_map__reuse_fd(reuse[i].map, reuse[i].fd))) {
                bpf_object__close(obj);
                return fail(err, errlen, rc, reuse[i].what);
            }
        }
    }
    if ((rc = bpf_object__load(obj))) {
        bpf_object__close(obj);
        return fail(err, errlen, rc, "bpf_object__load");
    }
    p->object = obj;
    if (programs & CLVS_PROG_XDP) p->prog_fd = bpf_program__fd(prog);
    if (programs & CLVS_PROG_TC) p->tc_prog_fd = bpf_program__fd(tc);
    p->xsks_fd = bpf_map__fd(xsks);
    p->vips_fd = bpf_map__fd(vips);
    p->conns_fd = bpf_map__fd(conns);
    p->stats_fd = bpf_map__fd(stats);
    p->marks_fd = bpf_map__fd(marks);
    p->settings_fd = bpf_map__fd(settings);
    p->counters_fd = bpf_map__fd(counters);
    p->heartbeat_fd = heartbeat ? bpf_map__fd(heartbeat) : -1;
    p->nat_replies_fd = nat_replies ? bpf_map__fd(nat_replies) : -1;
    return 0;
}

/* The id of the program attached to `ifindex` in `mode`, 0 when none. */
static uint32_t attached_id(int ifindex, uint32_t mode) {
    uint32_t id = 0;
    if (bpf_xdp_query_id(ifindex, (int)mode, &id)) return 0;
    return id;
}

/* Whether program `id` is lvsd's `name`. */
static int is_named(uint32_t id, const char *name) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) return 0;
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    int ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && strcmp(info.name, name) == 0;
    close(fd);
    return ours;
}

static int is_ours(uint32_t id) { return is_named(id, PROG_NAME); }

int clvs_xdp_detach_stale(int ifindex) {
    int removed = 0;
    uint32_t modes[2] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
    for (int i = 0; i < 2; i++) {
        uint32_t id = attached_id(ifindex, modes[i]);
        if (id && is_ours(id) && bpf_xdp_detach(ifindex, (int)modes[i], NULL) == 0) removed = 1;
    }
    return removed;
}

int clvs_xdp_attach(struct clvs_xdp_prog *p, int ifindex, int allow_generic, char *err, size_t errlen) {
    clvs_xdp_detach_stale(ifindex);
    uint32_t other = attached_id(ifindex, XDP_FLAGS_DRV_MODE);
    if (!other) other = attached_id(ifindex, XDP_FLAGS_SKB_MODE);
    if (other) {
        if (err && errlen) snprintf(err, errlen, "another XDP program (id %u) is attached", other);
        return -EBUSY;
    }
    int rc = bpf_xdp_attach(ifindex, p->prog_fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
    if (rc == 0) { p->ifindex = ifindex; p->mode = XDP_FLAGS_DRV_MODE; return 0; }
    int native_rc = rc;
    if (allow_generic) {
        rc = bpf_xdp_attach(ifindex, p->prog_fd, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
        if (rc == 0) { p->ifindex = ifindex; p->mode = XDP_FLAGS_SKB_MODE; return 0; }
    }
    if (err && errlen)
        snprintf(err, errlen, "bpf_xdp_attach native: %s%s%s", strerror(-native_rc),
                 allow_generic ? "; generic: " : "", allow_generic ? strerror(-rc) : "");
    return rc;
}

int clvs_tc_attach(struct clvs_xdp_prog *p, int ifindex, char *err, size_t errlen) {
    if (p->tc_prog_fd < 0) {
        if (err && errlen) snprintf(err, errlen, TC_PROG_NAME " not loaded");
        return -EINVAL;
    }
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    int rc = bpf_tc_hook_create(&hook);
    if (rc && rc != -EEXIST) return fail(err, errlen, rc, "bpf_tc_hook_create(clsact)");
    int created = rc == 0;
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, there, .handle = CLVS_TC_HANDLE, .priority = CLVS_TC_PRIORITY);
    if (bpf_tc_query(&hook, &there) == 0 && !is_named(there.prog_id, TC_PROG_NAME)) {
        if (err && errlen)
            snprintf(err, errlen, "another tc filter (program id %u) holds ingress handle 0x%x priority 0x%x",
                     there.prog_id, CLVS_TC_HANDLE, CLVS_TC_PRIORITY);
        return -EBUSY;
    }
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CLVS_TC_HANDLE, .priority = CLVS_TC_PRIORITY,
                        .prog_fd = p->tc_prog_fd, .flags = BPF_TC_F_REPLACE);
    rc = bpf_tc_attach(&hook, &opts);
    if (rc) {
        if (created) {
            hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
            bpf_tc_hook_destroy(&hook);
        }
        return fail(err, errlen, rc, "bpf_tc_attach(ingress)");
    }
    p->tc_ifindex = ifindex;
    p->tc_created_hook = created;
    return 0;
}

void clvs_tc_detach(struct clvs_xdp_prog *p) {
    if (!p->tc_ifindex) return;
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = p->tc_ifindex, .attach_point = BPF_TC_INGRESS);
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CLVS_TC_HANDLE, .priority = CLVS_TC_PRIORITY);
    bpf_tc_detach(&hook, &opts);
    if (p->tc_created_hook) {
        hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS; /* removes the clsact qdisc */
        bpf_tc_hook_destroy(&hook);
    }
    p->tc_ifindex = 0;
    p->tc_created_hook = 0;
}

void clvs_xdp_close(struct clvs_xdp_prog *p) {
    if (p->ifindex) bpf_xdp_detach(p->ifindex, (int)p->mode, NULL);
    p->ifindex = 0;
    clvs_tc_detach(p);
    if (p->object) bpf_object__close((struct bpf_object *)p->object);
    p->object = NULL;
    p->prog_fd = p->tc_prog_fd = p->xsks_fd = p->vips_fd = p->conns_fd = p->stats_fd = -1;
    p->marks_fd = p->settings_fd = p->counters_fd = p->heartbeat_fd = p->nat_replies_fd = -1;
}

int clvs_vip_set(int vips_fd, uint8_t family, const uint8_t *addr, uint8_t proto, uint16_t port, uint8_t flags) {
    struct clvs_vip_key k;
    memset(&k, 0, sizeof(k));
    k.family = family;
    k.proto = proto;
    k.port = htons(port);
    memcpy(k.addr, addr, family == 4 ? 4 : 16);
    if (flags) {
        return bpf_map_update_elem(vips_fd, &k, &flags, BPF_ANY) ? -errno : 0;
    }
    if (bpf_map_delete_elem(vips_fd, &k) && errno != ENOENT) return -errno;
    return 0;
}

int clvs_mark_set(int marks_fd, const struct clvs_mark_key *k, const struct clvs_mark_value *v) {
    if (v) {
        if (v->count > CLVS_MARK_MAX_RANGES) return -E2BIG;
        return bpf_map_update_elem(marks_fd, k, v, BPF_ANY) ? -errno : 0;
    }
    if (bpf_map_delete_elem(marks_fd, k) && errno != ENOENT) return -errno;
    return 0;
}

int clvs_settings_set(int settings_fd, uint32_t flags) {
    uint32_t key = 0;
    struct clvs_xdp_settings s = { .flags = flags };
    return bpf_map_update_elem(settings_fd, &key, &s, BPF_ANY) ? -errno : 0;
}

int clvs_heartbeat_set(int heartbeat_fd, uint64_t beat_ns, uint64_t timeout_ns) {
    uint32_t key = 0;
    struct clvs_heartbeat h = { .beat_ns = beat_ns, .timeout_ns = timeout_ns };
    return bpf_map_update_elem(heartbeat_fd, &key, &h, BPF_ANY) ? -errno : 0;
}

int clvs_xdp_counters_read(int counters_fd, uint64_t *out) {
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return cpus < 0 ? cpus : -EINVAL;
    if (cpus > 4096) return -E2BIG;
    uint64_t values[cpus]; /* at most 32 KiB of stack */
    for (uint32_t what = 0; what < CLVS_STAT_COUNT; what++) {
        if (bpf_map_lookup_elem(counters_fd, &what, values)) return -errno;
        uint64_t sum = 0;
        for (int i = 0; i < cpus; i++) sum += values[i];
        out[what] = sum;
    }
    return 0;
}

int clvs_prog_test_run(int prog_fd, const void *frame, uint32_t len, uint32_t *retval,
                       void *out, uint32_t *out_len) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len, .repeat = 1);
    if (out && out_len) {
        opts.data_out = out;
        opts.data_size_out = *out_len;
    }
    int rc = bpf_prog_test_run_opts(prog_fd, &opts);
    if (rc) return rc < 0 ? rc : -rc;
    *retval = opts.retval;
    if (out && out_len) *out_len = opts.data_size_out;
    return 0;
}

int clvs_prog_test_run_timed(int prog_fd, const void *frame, uint32_t len, uint32_t repeat, uint32_t *retval,
                             uint32_t *duration) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len, .repeat = repeat);
    int rc = bpf_prog_test_run_opts(prog_fd, &opts);
    if (rc) return rc < 0 ? rc : -rc;
    *retval = opts.retval;
    *duration = opts.duration;
    return 0;
}

/* A `conns` value forwarding to `dest` through ifindex with those MACs (flags, real server, last-seen 0). */
static struct clvs_conn_value conn_value(const uint8_t *dmac, const uint8_t *smac, uint32_t ifindex, uint32_t dest) {
    struct clvs_conn_value v;
    memset(&v, 0, sizeof(v));
    memcpy(v.dmac, dmac, 6);
    memcpy(v.smac, smac, 6);
    v.ifindex = ifindex;
    v.dest = dest;
    return v;
}

int clvs_conn_put(int fd, const struct clvs_conn_key *k, const uint8_t *dmac, const uint8_t *smac, uint32_t ifindex,
                  uint32_t dest) {
    if (dest >= CLVS_MAX_DESTS) return -ERANGE;
    struct clvs_conn_value v = conn_value(dmac, smac, ifindex, dest);
    return bpf_map_update_elem(fd, k, &v, BPF_ANY) ? -errno : 0;
}

int clvs_dest_stats_read(int stats_fd, uint32_t dest, struct clvs_dest_counters *out) {
    /* Per-CPU values come as one 8-byte aligned value per possible CPU. */
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return cpus < 0 ? cpus : -EINVAL;
    if (cpus > 4096) return -E2BIG;
    struct clvs_dest_counters values[cpus]; /* at most 64 KiB of stack */
    if (bpf_map_lookup_elem(stats_fd, &dest, values)) return -errno;
    struct clvs_dest_counters sum;
    memset(&sum, 0, sizeof(sum));
    for (int i = 0; i < cpus; i++) {
        sum.packets += values[i].packets;
        sum.bytes += values[i].bytes;
        sum.out_packets += values[i].out_packets;
        sum.out_bytes += values[i].out_bytes;
    }
    *out = sum;
    return 0;
}

int clvs_conn_put_nat(int fd, const struct clvs_conn_key *k, const uint8_t *dmac, const uint8_t *smac, uint32_t ifindex,
                      uint32_t dest, const uint8_t *raddr, uint16_t rport) {
    if (dest >= CLVS_MAX_DESTS) return -ERANGE;
    struct clvs_conn_value v = conn_value(dmac, smac, ifindex, dest);
    v.flags = CLVS_CONN_NAT;
    memcpy(v.raddr, raddr, k->family == 4 ? 4 : 16);
    v.rport = htons(rport);
    return bpf_map_update_elem(fd, k, &v, BPF_ANY) ? -errno : 0;
}

int clvs_nat_reply_put(int fd, const struct clvs_nat_reply_key *k, const struct clvs_nat_reply_value *v) {
    if (v->dest >= CLVS_MAX_DESTS) return -ERANGE;
    return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

int clvs_nat_reply_get(int fd, const struct clvs_nat_reply_key *k, struct clvs_nat_reply_value *v) {
    return bpf_map_lookup_elem(fd, k, v) ? -errno : 0;
}

int clvs_nat_reply_delete(int fd, const struct clvs_nat_reply_key *k) {
    if (bpf_map_delete_elem(fd, k) && errno != ENOENT) return -errno;
    return 0;
}

int clvs_conn_get(int fd, const struct clvs_conn_key *k, struct clvs_conn_value *v) {
    return bpf_map_lookup_elem(fd, k, v) ? -errno : 0;
}

int clvs_conn_delete(int fd, const struct clvs_conn_key *k) {
    if (bpf_map_delete_elem(fd, k) && errno != ENOENT) return -errno;
    return 0;
}

int clvs_conn_next_key(int fd, const struct clvs_conn_key *k, struct clvs_conn_key *next) {
    return bpf_map_get_next_key(fd, k, next) == 0 ? 0 : -errno;
}

uint64_t clvs_conn_count(int fd) {
    struct clvs_conn_key k, next;
    uint64_t entries = 0;
    const void *prev = NULL;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        entries += 1;
        k = next;
        prev = &k;
    }
    return entries;
}

int clvs_conn_read_batch(int fd, uint8_t *token, int first, struct clvs_conn_key *keys,
                         struct clvs_conn_value *values, uint32_t *count) {
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint8_t in[CLVS_BATCH_TOKEN_SIZE];
    memcpy(in, token, sizeof(in));
    int rc = bpf_map_lookup_batch(fd, first ? NULL : in, token, keys, values, count, &opts);
    /* libbpf 1.x returns -errno. */
    if (rc == -ENOENT) return 1; /* the last batch (*count may be > 0) */
    return rc;
}

/* One SIOCETHTOOL request on `ifname`; `cmd` starts with the ethtool command word. 0 or -errno. */
static int ethtool_request(const char *ifname, void *cmd) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    ifr.ifr_data = cmd;
    int rc = ioctl(fd, SIOCETHTOOL, &ifr) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

void clvs_if_driver(const char *ifname, char *out, size_t outlen) {
    if (outlen) out[0] = 0;
    struct ethtool_drvinfo info;
    memset(&info, 0, sizeof(info));
    info.cmd = ETHTOOL_GDRVINFO;
    if (ethtool_request(ifname, &info) == 0 && outlen) snprintf(out, outlen, "%s", info.driver);
}

int clvs_if_gro(const char *ifname) {
    struct ethtool_value ev = { .cmd = ETHTOOL_GGRO };
    int rc = ethtool_request(ifname, &ev);
    return rc == 0 ? (ev.data ? 1 : 0) : rc;
}

int clvs_if_rx_queues(const char *ifname) {
    struct ethtool_channels ch;
    memset(&ch, 0, sizeof(ch));
    ch.cmd = ETHTOOL_GCHANNELS;
    if (ethtool_request(ifname, &ch) != 0) return 1;
    uint32_t q = ch.rx_count > ch.combined_count ? ch.rx_count : ch.combined_count;
    return q > 0 ? (int)q : 1;
}

int clvs_neighbour_tap_open(int ifindex) {
    /* ARP, or IPv6 without extension headers carrying ICMPv6 type 135/136. */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 6, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 6),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 20),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 58, 0, 4),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 54),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 135, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 136, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xFFFF),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) ||
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one))) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* ---- checksum completion ---- */

static uint32_t sum16(const uint8_t *p, uint32_t n, uint32_t s) {
    for (; n > 1; p += 2, n -= 2) s += (uint32_t)p[0] << 8 | p[1];
    if (n) s += (uint32_t)p[0] << 8;
    return s;
}

static uint16_t fold(uint32_t s) {
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)s;
}

int clvs_complete_l4_checksum(uint8_t *f, uint32_t len) {
    uint32_t l3 = 14;
    if (len < 14) return 0;
    uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
    if (type == 0x8100 || type == 0x88A8) {
        if (len < 18) return 0;
        type = (uint16_t)(f[16] << 8 | f[17]);
        l3 = 18;
        if (type == 0x8100) { /* QinQ: the inner 802.1Q tag */
            if (len < 22) return 0;
            type = (uint16_t)(f[20] << 8 | f[21]);
            l3 = 22;
        }
    }
    uint32_t pseudo, l4, l4len;
    uint8_t proto;
    if (type == 0x0800) {
        if (len < l3 + 20) return 0;
        uint32_t ihl = (f[l3] & 0x0F) * 4u, total = (uint32_t)f[l3 + 2] << 8 | f[l3 + 3];
        if (ihl < 20 || total < ihl || l3 + total > len) return 0;
        if ((f[l3 + 6] & 0x3F) || f[l3 + 7]) return 0; /* fragments are never CHECKSUM_PARTIAL */
        proto = f[l3 + 9];
        l4 = l3 + ihl;
        l4len = total - ihl;
        pseudo = sum16(f + l3 + 12, 8, 0);
    } else if (type == 0x86DD) {
        if (len < l3 + 40) return 0;
        l4len = (uint32_t)f[l3 + 4] << 8 | f[l3 + 5];
        proto = f[l3 + 6];
        l4 = l3 + 40;
        if (l4 + l4len > len) return 0;
        pseudo = sum16(f + l3 + 8, 32, 0);
    } else {
        return 0;
    }
    uint32_t field;
    if (proto == 6) field = 16;
    else if (proto == 17) field = 6;
    else return 0;
    if (l4len < field + 2) return 0;
    pseudo += proto + l4len;
    uint16_t want = fold(pseudo), have = (uint16_t)(f[l4 + field] << 8 | f[l4 + field + 1]);
    if (proto == 17 && type == 0x0800 && have == 0) return 0; /* IPv4 UDP without checksum */
    /* One's complement: 0x0000 and 0xFFFF are the same number. */
    if ((want == 0 ? 0xFFFF : want) != (have == 0 ? 0xFFFF : have)) return 0;
    f[l4 + field] = 0;
    f[l4 + field + 1] = 0;
    uint16_t c = (uint16_t)~fold(sum16(f + l4, l4len, pseudo));
    if (proto == 17 && c == 0) c = 0xFFFF;
    f[l4 + field] = (uint8_t)(c >> 8);
    f[l4 + field + 1] = (uint8_t)c;
    return 1;
}
