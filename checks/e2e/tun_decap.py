#!/usr/bin/env python3
"""A tunnel real server's decapsulation in user space, for kernels without the ipip, fou and
ip_gre modules (the e2e machine's): IPIP / IPv6-in-IPv4 / IPv6-in-IPv6 (raw sockets, protocols
4 and 41), GRE (protocol 47, checksum verified when present) and GUE (UDP to --gue-port). The
inner datagram is written to a TUN device, so the real server's kernel receives it as the
kernel's decapsulation would hand it on. Counts per kind (and bad frames) go to --stats as
"kind count" lines, rewritten after every packet. Stops by itself after --seconds.

  tun_decap.py --tun tun0 --gue-port 6080 --stats FILE --seconds 120
"""
import argparse
import fcntl
import os
import select
import socket
import struct
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
GRE_CHECKSUM = 0x8000
ETHERTYPES = (0x0800, 0x86DD)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tun", required=True)
    ap.add_argument("--gue-port", type=int, default=6080)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--seconds", type=float, default=120)
    a = ap.parse_args()
    tun = open_tun(a.tun)
    socks = {}
    for proto, kind in ((4, "ipip"), (41, "ip6ip"), (47, "gre")):
        socks[socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)] = (kind, 4)
    socks[socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)] = ("ip6ip6", 6)
    socks[socket.socket(socket.AF_INET6, socket.SOCK_RAW, 47)] = ("gre6", 6)
    for family in (socket.AF_INET, socket.AF_INET6):
        u = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        u.bind(("", a.gue_port))
        socks[u] = ("gue" if family == socket.AF_INET else "gue6", 0)
    counts = {}
    with open(a.stats, "w") as f:  # ready: the device is attached, the sockets open
        f.write("")
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(socks), [], [], 0.5)
        for s in ready:
            kind, outer = socks[s]
            data = s.recv(65535)
            if outer == 4:  # a raw IPv4 socket hands over the outer header too
                data = data[(data[0] & 0x0F) * 4:]
            if kind.startswith("gre"):
                flags, ethertype = struct.unpack("!HH", data[:4])
                if ethertype not in ETHERTYPES:
                    kind = "bad-" + kind
                elif flags & GRE_CHECKSUM:
                    kind += "-csum" if checksum(data) == 0 else "-badcsum"
                    data = data[8:]
                else:
                    data = data[4:]
            elif kind.startswith("gue"):
                if data[0] >> 6 != 0:
                    kind = "bad-" + kind
                data = data[4 + (data[0] & 0x1F) * 4:]
            if not kind.startswith("bad") and not kind.endswith("badcsum"):
                os.write(tun, data)
            counts[kind] = counts.get(kind, 0) + 1
            with open(a.stats + ".tmp", "w") as f:
                f.writelines("%s %d\n" % kv for kv in sorted(counts.items()))
            os.replace(a.stats + ".tmp", a.stats)


if __name__ == "__main__":
    main()
