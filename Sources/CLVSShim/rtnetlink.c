#include "clvs_shim.h"

#include <linux/rtnetlink.h>

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
