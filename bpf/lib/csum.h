/* SPDX-License-Identifier: GPL-2.0 */
/* Checksums: completing a CHECKSUM_PARTIAL TCP/UDP checksum (XDP only). */
#ifndef LVS_BPF_CSUM_H
#define LVS_BPF_CSUM_H

#include "lookup.h"

static __always_inline __u32 fold(__u32 s)
{
	s = (s & 0xFFFF) + (s >> 16);
	return (s & 0xFFFF) + (s >> 16);
}

#define MAX_L4_WORDS 750 /* 1500 bytes: larger segments go to lvsd */

/*
 * A sender on veth leaves the TCP/UDP checksum to "hardware" (CHECKSUM_PARTIAL:
 * the field holds only the pseudo-header sum) and XDP loses that metadata, so
 * such a checksum is completed here, as lvsd does for the frames it handles.
 * Sums are of raw 16-bit loads (one's complement sums are byte-order neutral).
 * `pseudo` is the raw sum of the addresses. 0 = done (or nothing to do), -1 =
 * leave the frame to lvsd.
 */
static __always_inline int complete_checksum(void *l4, void *end, __u8 proto, __u32 l4len, __u32 pseudo, int v4)
{
	__u16 *field = (__u16 *)((__u8 *)l4 + (proto == IPPROTO_TCP ? TCP_CHECK_OFF : UDP_CHECK_OFF));
	if ((void *)(field + 1) > end)
		return -1;
	pseudo += bpf_htons(proto) + bpf_htons((__u16)l4len);
	__u16 want = (__u16)fold(pseudo), have = *field;
	if (proto == IPPROTO_UDP && v4 && have == 0)
		return 0; /* IPv4 UDP without checksum */
	if ((want == 0 ? 0xFFFF : want) != (have == 0 ? 0xFFFF : have))
		return 0; /* a complete checksum already */
	__u32 n = l4len >> 1;
	if (n > MAX_L4_WORDS)
		return -1;
	*field = 0;
	__u32 s = pseudo;
	__u16 *w = l4;
	for (__u32 i = 0; i < MAX_L4_WORDS; i++) {
		if (i >= n)
			break;
		/* keeps clang from folding the bounds checks into arithmetic on `end` */
		asm volatile("" : "+r"(w));
		if ((void *)(w + 1) > end)
			return -1;
		s += *w;
		w++;
	}
	if (l4len & 1) {
		__u8 *b = (__u8 *)w;
		if ((void *)(b + 1) > end)
			return -1;
		s += bpf_htons((__u16)*b << 8);
	}
	__u16 c = (__u16)~fold(s);
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xFFFF;
	*field = c;
	return 0;
}

/* complete_checksum for a service frame whose L4 segment is `l4len` bytes: sums its addresses
 * first. 0 = done (or nothing to do), -1 = leave the frame to lvsd. */
static __always_inline int complete_frame_checksum(struct service_frame *f, void *end, __u32 l4len)
{
	__u32 pseudo = 0;
	__u8 *ip = f->ip;
	int v4 = f->k.family == 4;
	/* (bounds checked again: the verifier does not tie them to `family`) */
	if (v4) {
		if ((void *)(ip + IPV4_MIN_HLEN) > end)
			return -1;
		__u16 *a = (__u16 *)(ip + IPV4_SADDR_OFF);
		for (int i = 0; i < 4; i++)
			pseudo += a[i];
	} else {
		if ((void *)(ip + IPV6_HLEN) > end)
			return -1;
		__u16 *a = (__u16 *)(ip + IPV6_SADDR_OFF);
		for (int i = 0; i < 16; i++)
			pseudo += a[i];
	}
	return complete_checksum(f->l4, end, f->proto, l4len, pseudo, v4);
}

#endif
