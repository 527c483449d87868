#include "clvs_shim.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

_Static_assert(sizeof(struct clvs_sockaddr_nl) == sizeof(struct sockaddr_nl), "sockaddr_nl layout");
_Static_assert(__builtin_offsetof(struct clvs_sockaddr_nl, nl_groups) == __builtin_offsetof(struct sockaddr_nl, nl_groups),
               "sockaddr_nl.nl_groups offset");
_Static_assert(sizeof(struct clvs_nlmsghdr) == sizeof(struct nlmsghdr), "nlmsghdr layout");
_Static_assert(__builtin_offsetof(struct clvs_nlmsghdr, nlmsg_type) == __builtin_offsetof(struct nlmsghdr, nlmsg_type),
               "nlmsghdr.nlmsg_type offset");

const int clvs_netlink_route = NETLINK_ROUTE;
const uint16_t clvs_nlmsg_noop = NLMSG_NOOP;

const uint32_t clvs_rtmgrp_ipv4_route = RTMGRP_IPV4_ROUTE;
const uint32_t clvs_rtmgrp_ipv6_route = RTMGRP_IPV6_ROUTE;
const uint32_t clvs_rtmgrp_link = RTMGRP_LINK;
const uint32_t clvs_rtmgrp_ipv4_ifaddr = RTMGRP_IPV4_IFADDR;
const uint32_t clvs_rtmgrp_ipv6_ifaddr = RTMGRP_IPV6_IFADDR;

const uint16_t clvs_rtm_newlink = RTM_NEWLINK;
const uint16_t clvs_rtm_dellink = RTM_DELLINK;
const uint16_t clvs_rtm_newaddr = RTM_NEWADDR;
const uint16_t clvs_rtm_deladdr = RTM_DELADDR;
const uint16_t clvs_rtm_newroute = RTM_NEWROUTE;
const uint16_t clvs_rtm_delroute = RTM_DELROUTE;
const uint16_t clvs_rtm_newneigh = RTM_NEWNEIGH;
