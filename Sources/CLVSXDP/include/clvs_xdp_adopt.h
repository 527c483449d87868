#ifndef CLVS_XDP_ADOPT_H
#define CLVS_XDP_ADOPT_H
/*
 * A restart on the BPF planes (docs/restart.md): with --restart-guard a stopping lvsd leaves its
 * program attached to each interface (XDP or tc ingress), and the attachment keeps the program's
 * maps alive. The next lvsd finds the program through the interface, takes its `conns` map when
 * the layout matches its own object's, and replaces the program atomically.
 */
#include <stdint.h>
#include <stddef.h>
#include "clvs_xdp.h"

#pragma clang assume_nonnull begin

/* lvsd's programs attached to one interface (ids 0 = none; anybody else's are not listed). */
struct clvs_attached {
    uint32_t xdp_id;   /* lvs_xdp_prog attached in XDP */
    uint32_t xdp_mode; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE, with xdp_id */
    uint32_t tc_id;    /* lvs_tc_prog at clsact ingress, handle/priority CLVS_TC_HANDLE/PRIORITY */
};

/* The parts of a map's definition that must match for a map to be taken over. */
struct clvs_map_layout {
    uint32_t type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t flags;
};

/* What of lvsd's is attached to `ifindex`. Never fails: what cannot be read counts as none. */
void clvs_attached_lvsd(int ifindex, struct clvs_attached *out);
/* A new descriptor of the map named `name` that program `prog_id` uses, and its layout.
 * fd or -errno (-ENOENT: the program or the map is gone). */
int clvs_prog_map(uint32_t prog_id, const char *name, struct clvs_map_layout *layout);
/* The layout the ELF object `object` (`size` bytes) declares for map `name`. 0 or -errno. */
int clvs_object_map_layout(const void *object, size_t size, const char *name, struct clvs_map_layout *layout);
/* Replaces program `old_id`, attached in XDP `mode`, by p's XDP program in one netlink request
 * (XDP_FLAGS_REPLACE: no frame sees neither). Sets p->ifindex and p->mode. 0 or -errno. */
int clvs_xdp_replace(struct clvs_xdp_prog *p, int ifindex, uint32_t old_id, uint32_t mode, char *err, size_t errlen);
/* Removes lvsd's tc filter from the clsact ingress of `ifindex` (a previous lvsd's, on another
 * plane); 1 when one was removed. */
int clvs_tc_detach_stale(int ifindex);
/* Forgets the attachments, so that clvs_xdp_close / clvs_tc_detach leave the programs attached. */
void clvs_xdp_leave_attached(struct clvs_xdp_prog *p);

#pragma clang assume_nonnull end

#endif
