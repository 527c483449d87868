#include "clvs_xdp_adopt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* The programs' names in bpf/lvs_xdp.c (also xdp.c's). */
#define ADOPT_XDP_NAME "lvs_xdp_prog"
#define ADOPT_TC_NAME "lvs_tc_prog"
/* Maps one program may use (lvsd's use seven). */
#define ADOPT_MAX_MAPS 64

/* Whether program `id` exists and is named `name`. */
static int prog_named(uint32_t id, const char *name) {
    if (!id) return 0;
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) return 0;
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    int yes = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && strcmp(info.name, name) == 0;
    close(fd);
    return yes;
}

/* The program of lvsd's tc filter slot on `ifindex` ingress; 0 when none. libbpf's messages
 * are off meanwhile: an interface without a clsact qdisc is the usual case, not an error worth
 * a line in lvsd's log. Start-up only (libbpf's print function is process-wide). */
static int tc_query_quiet(int ifindex, uint32_t *prog_id) {
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = CLVS_TC_HANDLE, .priority = CLVS_TC_PRIORITY);
    libbpf_print_fn_t previous = libbpf_set_print(NULL);
    int found = bpf_tc_query(&hook, &q) == 0;
    libbpf_set_print(previous);
    *prog_id = found ? q.prog_id : 0;
    return found;
}

void clvs_attached_lvsd(int ifindex, struct clvs_attached *out) {
    uint32_t tc = 0;
    memset(out, 0, sizeof(*out));
    uint32_t modes[2] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
    for (int i = 0; i < 2 && !out->xdp_id; i++) {
        uint32_t id = 0;
        if (bpf_xdp_query_id(ifindex, (int)modes[i], &id) == 0 && prog_named(id, ADOPT_XDP_NAME)) {
            out->xdp_id = id;
            out->xdp_mode = modes[i];
        }
    }
    if (tc_query_quiet(ifindex, &tc) && prog_named(tc, ADOPT_TC_NAME)) out->tc_id = tc;
}

int clvs_prog_map(uint32_t prog_id, const char *name, struct clvs_map_layout *layout) {
    int pfd = bpf_prog_get_fd_by_id(prog_id);
    if (pfd < 0) return -errno;
    uint32_t ids[ADOPT_MAX_MAPS];
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    info.nr_map_ids = ADOPT_MAX_MAPS;
    info.map_ids = (uint64_t)(uintptr_t)ids;
    int rc = bpf_obj_get_info_by_fd(pfd, &info, &len) ? -errno : 0;
    close(pfd);
    if (rc) return rc;
    uint32_t n = info.nr_map_ids < ADOPT_MAX_MAPS ? info.nr_map_ids : ADOPT_MAX_MAPS;
    for (uint32_t i = 0; i < n; i++) {
        int mfd = bpf_map_get_fd_by_id(ids[i]);
        if (mfd < 0) continue;
        struct bpf_map_info m;
        uint32_t mlen = sizeof(m);
        memset(&m, 0, sizeof(m));
        if (bpf_obj_get_info_by_fd(mfd, &m, &mlen) == 0 && strcmp(m.name, name) == 0) {
            layout->type = m.type;
            layout->key_size = m.key_size;
            layout->value_size = m.value_size;
            layout->max_entries = m.max_entries;
            layout->flags = m.map_flags;
            return mfd;
        }
        close(mfd);
    }
    return -ENOENT;
}

int clvs_object_map_layout(const void *object, size_t size, const char *name, struct clvs_map_layout *layout) {
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "lvsd");
    struct bpf_object *obj = bpf_object__open_mem(object, size, &opts);
    int rc = (int)libbpf_get_error(obj);
    if (rc) return rc < 0 ? rc : -rc;
    struct bpf_map *map = bpf_object__find_map_by_name(obj, name);
    if (!map) {
        bpf_object__close(obj);
        return -ENOENT;
    }
    layout->type = (uint32_t)bpf_map__type(map);
    layout->key_size = bpf_map__key_size(map);
    layout->value_size = bpf_map__value_size(map);
    layout->max_entries = bpf_map__max_entries(map);
    layout->flags = bpf_map__map_flags(map);
    bpf_object__close(obj);
    return 0;
}

int clvs_xdp_replace(struct clvs_xdp_prog *p, int ifindex, uint32_t old_id, uint32_t mode, char *err, size_t errlen) {
    int old = bpf_prog_get_fd_by_id(old_id);
    if (old < 0) {
        int e = errno;
        if (err && errlen) snprintf(err, errlen, "previous program %u: %s", old_id, strerror(e));
        return -e;
    }
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = old);
    int rc = bpf_xdp_attach(ifindex, p->prog_fd, mode | XDP_FLAGS_REPLACE, &opts);
    close(old);
    if (rc) {
        if (err && errlen) snprintf(err, errlen, "bpf_xdp_attach (replace %u): %s", old_id, strerror(rc < 0 ? -rc : rc));
        return rc < 0 ? rc : -rc;
    }
    p->ifindex = ifindex;
    p->mode = mode;
    return 0;
}

int clvs_tc_detach_stale(int ifindex) {
    uint32_t id = 0;
    if (!tc_query_quiet(ifindex, &id) || !prog_named(id, ADOPT_TC_NAME)) return 0;
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, d, .handle = CLVS_TC_HANDLE, .priority = CLVS_TC_PRIORITY);
    return bpf_tc_detach(&hook, &d) == 0;
}

void clvs_xdp_leave_attached(struct clvs_xdp_prog *p) {
    p->ifindex = 0;
    p->tc_ifindex = 0;
    p->tc_created_hook = 0;
}
