/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The programs' maps. Their key and value layouts and sizes are in clvs_xdp_maps.h, which the
 * loader (Sources/CLVSXDP) includes too; lvsd finds the maps by these names.
 */
#ifndef LVS_BPF_MAPS_H
#define LVS_BPF_MAPS_H

#include "common.h"

/* Packets and IP bytes forwarded here, per lvsd destination slot and CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct clvs_dest_counters);
} dest_stats SEC(".maps");

/* Established connections lvsd has scheduled (the fast path). Bounded; a full map just leaves
 * connections to lvsd. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLVS_MAX_CONNS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clvs_conn_key);
	__type(value, struct clvs_conn_value);
} conns SEC(".maps");

/* The reply tuples of the NAT connections in `conns` (tc only: bpf/lib/nat.h). lvsd writes and
 * deletes an entry together with its connection's; bounded like `conns`. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLVS_MAX_NAT_REPLIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clvs_nat_reply_key);
	__type(value, struct clvs_nat_reply_value);
} nat_replies SEC(".maps");

/* lvsd's AF_XDP socket per receive queue (the XDP program's way to lvsd). */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, CLVS_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Services and VIP addresses (struct clvs_vip_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CLVS_MAX_VIPS);
	__type(key, struct clvs_vip_key);
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

/* lvsd's heartbeat and orphan timeout (struct clvs_heartbeat), one element: see heartbeat.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clvs_heartbeat);
} heartbeat SEC(".maps");

#endif
