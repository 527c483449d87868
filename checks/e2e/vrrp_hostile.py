#!/usr/bin/env python3
"""Sends hostile and broken VRRP adverts (IP protocol 112) for the HA tests.

usage: vrrp_hostile.py CASE SOURCE VRID [COUNT]

Every case but `ok` is one an lvsd MASTER must ignore and count (lvsd's reason in brackets):
  ttl        a priority-255 v2 advert with TTL 64, as if routed       [ttl]
  checksum   a priority-255 v2 advert with a wrong checksum           [checksum]
  password   a priority-255 v2 advert with the wrong PASS password    [auth-password]
  version    a priority-255 advert claiming version 4                 [version]
  truncated  the first 6 bytes of an advert                           [truncated]
  count      an advert whose address count says 9 for one address    [address-count]
  vrid       a priority-255 advert for a VRID nobody has              [vrid]
Sent to 224.0.0.18 from SOURCE with IP_HDRINCL (the TTL is ours to choose)."""
import socket
import struct
import sys

GROUP = "224.0.0.18"


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def advert(vrid: int, priority: int, vip: str, password: bytes, version: int = 2, count=None) -> bytes:
    addrs = socket.inet_aton(vip)
    n = 1 if count is None else count
    head = struct.pack("!BBBBBBH", (version << 4) | 1, vrid, priority, n, 1, 1, 0)
    body = head + addrs + password.ljust(8, b"\0")[:8]
    c = checksum(body)
    return body[:6] + struct.pack("!H", c) + body[8:]


def ip_packet(source: str, payload: bytes, ttl: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, 112, 0,
                         socket.inet_aton(source), socket.inet_aton(GROUP))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def main() -> int:
    case, source, vrid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    vip, password = "192.168.1.100", b"lvslab"
    ttl = 255
    if case == "ttl":
        payload, ttl = advert(vrid, 255, vip, password), 64
    elif case == "checksum":
        p = bytearray(advert(vrid, 255, vip, password))
        p[6] ^= 0x5A
        payload = bytes(p)
    elif case == "password":
        payload = advert(vrid, 255, vip, b"guessed")
    elif case == "version":
        payload = advert(vrid, 255, vip, password, version=4)
    elif case == "truncated":
        payload = advert(vrid, 255, vip, password)[:6]
    elif case == "count":
        payload = advert(vrid, 255, vip, password, count=9)
    elif case == "vrid":
        payload = advert((vrid % 255) + 1, 255, vip, password)
    elif case == "ok":
        payload = advert(vrid, 255, vip, password)
    else:
        print(f"unknown case {case}", file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    for _ in range(count):
        s.sendto(ip_packet(source, payload, ttl), (GROUP, 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
