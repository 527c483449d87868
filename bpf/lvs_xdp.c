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
 *     `settings` says --no-arp or the VIP's address entry says lvsd does
 *     not own it (VRRP BACKUP, CLVS_VIP_NOT_OWNED): then they are the
 *     kernel's.
 * All other ARP and neighbour discovery (replies to lvsd's requests among
 * them) pass to the kernel; lvsd learns real-server MACs from a packet tap
 * that sees exactly those frames.
 *
 * lvsd fills `vips` while the program runs: key {family, proto, port, addr}
 * for each service, plus {family, 0, 0, addr} for each VIP address; and
 * `mark_prefixes` with the rules whose mark has a service (layouts and sizes in
 * Sources/CLVSXDP/include/clvs_xdp_maps.h, shared with the loader).
 * If the socket of a queue is missing, bpf_redirect_map falls back to
 * XDP_DROP (its flags argument): no lvsd reads the queue (a restart's gap,
 * --restart-guard leaves the program attached), and a VIP's frame must not
 * reach the director's kernel, which would answer it (docs/restart.md).
 *
 * Fast path (`lvsd --dataplane xdp`): `conns` holds established connections
 * lvsd has already scheduled, keyed by {family, proto, client address/port,
 * VIP/port}. A TCP/UDP frame to a service whose key is there and that is not
 * a TCP SYN, FIN or RST is forwarded here (unless its VIP is not owned: see
 * CLVS_SETTING_SOME_NOT_OWNED), as lvsd would: destination and
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
 *
 * lvsd's heartbeat (lib/heartbeat.h): when lvsd has not written it for --orphan-timeout, both
 * entry points leave every frame to the kernel, so a dead lvsd stops claiming the VIPs.
 *
 * Both entry points are thin: they call the one classifier, lvs_classify
 * (lib/classify.h), and turn its verdict into their actions. The rest is in
 * lib/: parse.h (Ethernet, VLAN tags), lookup.h (VIPs, fwmark trie,
 * connections), csum.h, rewrite.h, stats.h, maps.h.
 */
#include "lib/classify.h"
#include "lib/heartbeat.h"

SEC("xdp")
int lvs_xdp_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 ifindex = 0;

	if (lvsd_orphaned()) /* lvsd is gone: the kernel's (lib/heartbeat.h) */
		return XDP_PASS;
	switch (lvs_classify(data, end, LVS_HOOK_XDP, &ifindex, NULL)) {
	case LVS_TO_LVSD:
		/* No socket on this queue (no lvsd runs): XDP_DROP (the flags argument). */
		return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_DROP);
	case LVS_FORWARD:
		if (ifindex == ctx->ingress_ifindex)
			return XDP_TX;
		return bpf_redirect(ifindex, 0);
	default:
		count(CLVS_STAT_PASSED);
		return XDP_PASS;
	}
}

/*
 * The tc half of `lvsd --dataplane tc`, attached to clsact ingress in direct-
 * action mode. It runs on the skb the kernel has already built, after the
 * packet taps and before the protocol handlers, so nothing is copied:
 *   - a frame of a connection in `conns` is forwarded here as in XDP (the skb
 *     keeps its checksum state, so there is none to complete) and leaves
 *     through bpf_redirect; for a NAT connection both directions are (its
 *     replies through `nat_replies`), the addresses and ports rewritten with
 *     the kernel's checksum helpers (lib/nat.h);
 *   - a frame lvsd must handle (the same ones the XDP program redirects) is
 *     marked PACKET_OTHERHOST and goes on: lvsd's packet sockets, bound to
 *     IPv4, IPv6 and ARP so they see frames only after this program, receive
 *     it, while the kernel's IPv4, IPv6 and ARP input drop it;
 *   - everything else goes on untouched.
 * VLAN tags are out of band at this point; tagged frames are the kernel's, as
 * in the afpacket data plane.
 */
SEC("tc")
int lvs_tc_prog(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 ifindex = 0;

	if (skb->vlan_present || lvsd_orphaned())
		return TC_ACT_OK;
	/* A sender's skb may hold only the Ethernet header in its linear part. */
	__u32 want = linear_headers_len(data, end);
	if (want > skb->len)
		want = skb->len;
	if (data + want > end) {
		if (bpf_skb_pull_data(skb, want))
			return TC_ACT_OK;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	struct nat_rewrite nat = {};
	switch (lvs_classify(data, end, LVS_HOOK_TC, &ifindex, &nat)) {
	case LVS_TO_LVSD:
		bpf_skb_change_type(skb, PACKET_OTHERHOST);
		return TC_ACT_OK;
	case LVS_FORWARD:
		return bpf_redirect(ifindex, 0);
	case LVS_FORWARD_NAT:
		if (nat_apply(skb, &nat)) /* half rewritten: not for anybody */
			return TC_ACT_SHOT;
		return bpf_redirect(ifindex, 0);
	default:
		return TC_ACT_OK;
	}
}

char _license[] SEC("license") = "GPL";
