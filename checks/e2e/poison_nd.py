# Neighbour-cache poisoning attempts at the director (scapy), from the client
# namespace: neighbour advertisements that lvsd must not believe, each
# claiming that a real server's address is at ATTACKER_MAC.
# Usage: poison_nd.py IFACE DIRECTOR_MAC CLIENT_MAC ATTACKER_MAC RIP4 RIP6 ROUNDS
import sys
from scapy.all import Ether, IPv6, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, conf

iface, dmac, cmac, amac, rip4, rip6, rounds = sys.argv[1:8]
conf.verb = 0
s = conf.L2socket(iface=iface)
mapped = "::ffff:" + rip4
# (name, IPv6 source, IPv6 destination, Ethernet destination, target, hop limit, ICMPv6 code, checksum)
cases = [
    # The attack: routed (hop limit 64), target ::ffff:<RIP>, unicast and all-nodes.
    ("routed-mapped-unicast", "2001:db8:99::1", "2001:db8:1::21", dmac, mapped, 64, 0, None),
    ("routed-mapped-allnodes", "2001:db8:99::1", "ff02::1", "33:33:00:00:00:01", mapped, 64, 0, None),
    # On the link, but IPv4-mapped: IPv6 never teaches an IPv4 neighbour.
    ("onlink-mapped", "fe80::66", "ff02::1", "33:33:00:00:00:01", mapped, 255, 0, None),
    # The IPv6 real server: routed, bad code, bad checksum.
    ("routed-rip6", "2001:db8:99::1", "ff02::1", "33:33:00:00:00:01", rip6, 64, 0, None),
    ("code-rip6", "fe80::66", "ff02::1", "33:33:00:00:00:01", rip6, 255, 1, None),
    ("checksum-rip6", "fe80::66", "ff02::1", "33:33:00:00:00:01", rip6, 255, 0, 0x1234),
]
sent = 0
for _ in range(int(rounds)):
    for name, src, dst, edst, tgt, hlim, code, cksum in cases:
        na = ICMPv6ND_NA(tgt=tgt, R=0, S=0, O=1, code=code)
        if cksum is not None:
            na.cksum = cksum
        # Ethernet source: the client's own MAC, so the bridge never learns ATTACKER_MAC and a
        # frame forwarded to it would be flooded to every port (the real servers' captures see it).
        frame = Ether(src=cmac, dst=edst) / IPv6(src=src, dst=dst, hlim=hlim) / na / ICMPv6NDOptDstLLAddr(lladdr=amac)
        s.send(bytes(frame))
        sent += 1
print("sent %d neighbour advertisements" % sent, flush=True)
