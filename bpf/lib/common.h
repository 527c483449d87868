/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every part of lvsd's BPF programs includes: kernel UAPI and libbpf's helper headers, and
 * the map layouts shared with the loader (clvs_xdp_maps.h, in Sources/CLVSXDP/include).
 */
#ifndef LVS_BPF_COMMON_H
#define LVS_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "clvs_xdp_maps.h"

/* Header sizes and offsets the programs read (bytes). */
#define IPV4_MIN_HLEN 20
#define IPV4_TOTLEN_OFF 2
#define IPV4_FRAG_OFF 6
#define IPV4_TTL_OFF 8
#define IPV4_PROTO_OFF 9
#define IPV4_CHECK_OFF 10
#define IPV4_SADDR_OFF 12
#define IPV4_DADDR_OFF 16
#define IPV6_HLEN 40
#define IPV6_PLEN_OFF 4
#define IPV6_NEXT_OFF 6
#define IPV6_HOPS_OFF 7
#define IPV6_SADDR_OFF 8
#define IPV6_DADDR_OFF 24
#define TCP_MIN_HLEN 20
#define TCP_FLAGS_OFF 13
#define TCP_CHECK_OFF 16
#define UDP_HLEN 8
#define UDP_CHECK_OFF 6
#define ICMP_HLEN 8

#endif
