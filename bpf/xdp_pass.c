// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_pass: passes every frame. Attached to the PEER of a veth that lvsd's
 * `--dataplane xdp` transmits on with XDP_TX/redirect: a veth hands such frames
 * to its peer only when the peer receives in NAPI mode, and (measured on kernel
 * 6.18) GRO on at the peer is not enough to get them delivered, an XDP program
 * there is. scripts/lvs-lab attaches it to the director's switch port.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
