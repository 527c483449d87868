# Hostile frames at the director from the client namespace (scapy): about
# 5000 malformed, truncated, fragmented, VLAN-tagged, garbage, ARP-garbage
# and ICMP-error frames. Usage: hostile.py IFACE DIRECTOR_MAC VIP VIP6 CLIENT_IP
import os, random, struct, sys
from scapy.all import (ARP, Dot1Q, Ether, ICMP, IP, IPv6, IPv6ExtHdrFragment, ICMPv6ND_NS,
                       TCP, UDP, Raw, conf, fragment)

iface, dmac, vip, vip6, cip = sys.argv[1:6]
conf.verb = 0
random.seed(int(os.environ.get("E2E_SEED", "1")))
s = conf.L2socket(iface=iface)
smac = "00:50:00:00:03:00"
eth = Ether(src=smac, dst=dmac)
sent = {"n": 0, "err": 0}

def send(frame):
    b = bytes(frame) if not isinstance(frame, (bytes, bytearray)) else bytes(frame)
    try:
        s.send(b)
        sent["n"] += 1
    except OSError:
        sent["err"] += 1

def rport():
    return random.randint(1024, 65535)

def syn():
    return IP(src=cip, dst=vip) / TCP(sport=rport(), dport=80, flags="S")

for i in range(250):
    # IP total length larger than the frame
    b = bytes(eth / syn())
    b = b[:14] + b[14:16] + struct.pack("!H", random.choice([1500, 9000, 65535])) + b[18:]
    send(b)
    # IHL < 5
    b = bytearray(bytes(eth / syn()))
    b[14] = 0x40 | random.randint(0, 4)
    send(b)
    # TCP data offset 0 (and other bad offsets)
    send(eth / IP(src=cip, dst=vip) / TCP(sport=rport(), dport=80, dataofs=random.choice([0, 1, 4, 15]), flags="S"))
    # truncated anywhere
    b = bytes(eth / syn() / Raw(os.urandom(40)))
    send(b[:random.randint(14, len(b) - 1)])
    # VLAN-tagged and QinQ to the VIP
    send(eth / Dot1Q(vlan=random.randint(1, 4094)) / syn())
    send(Ether(src=smac, dst=dmac, type=0x88a8) / Dot1Q(vlan=5) / Dot1Q(vlan=7) / syn())
    # random garbage Ethernet frames (unicast to the director and broadcast)
    send(bytes.fromhex(dmac.replace(":", "")) + os.urandom(random.randint(6, 1500)))
    send(b"\xff" * 6 + os.urandom(random.randint(6, 200)))
    # ARP garbage: bad sizes, truncated, unknown opcodes, for the VIP
    send(Ether(src=smac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=random.randint(0, 65535), hwlen=random.randint(0, 255),
         plen=random.randint(0, 255), psrc="10.99.%d.%d" % (i % 250, i % 200), pdst=vip))
    b = bytes(Ether(src=smac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=cip, pdst=vip))
    send(b[:random.randint(14, 41)])

# ICMP errors quoting fake connections (and quoting garbage)
for i in range(200):
    inner = IP(src=vip, dst=cip) / TCP(sport=80, dport=rport(), seq=random.getrandbits(32))
    send(eth / IP(src=cip, dst=vip) / ICMP(type=3, code=random.choice([1, 3, 4])) / inner)
    send(eth / IP(src="192.168.1.77", dst=vip) / ICMP(type=3, code=4, nexthopmtu=68) / bytes(inner)[:random.randint(0, 27)])
    send(eth / IP(src=cip, dst=vip) / ICMP(type=11) / Raw(os.urandom(random.randint(0, 60))))

# IPv4 fragments to the VIP: whole trains, lone first/middle/last fragments, overlaps
for i in range(150):
    pkt = IP(src=cip, dst=vip, id=random.getrandbits(16)) / TCP(sport=rport(), dport=80, flags="S") / Raw(os.urandom(1200))
    for f in fragment(pkt, fragsize=8 if i % 15 == 0 else random.choice([256, 512])):
        send(eth / f)
    send(eth / IP(src=cip, dst=vip, flags="MF", frag=0, proto=6) / Raw(os.urandom(16)))
    send(eth / IP(src=cip, dst=vip, flags="MF", frag=random.randint(1, 8000), proto=17) / Raw(os.urandom(64)))
    send(eth / IP(src=cip, dst=vip, frag=random.randint(1, 8191), proto=6) / Raw(os.urandom(8)))

# IPv6: truncated, fragment headers, garbage NS for VIP6
for i in range(100):
    send(Ether(src=smac, dst=dmac) / IPv6(src="2001:db8:1::12", dst=vip6, plen=random.choice([0, 9000, 65535])) / TCP(sport=rport(), dport=80, flags="S"))
    send(Ether(src=smac, dst=dmac) / IPv6(src="2001:db8:1::12", dst=vip6) / IPv6ExtHdrFragment(m=1, offset=random.randint(0, 100)) / Raw(os.urandom(24)))
    b = bytes(Ether(src=smac, dst=dmac) / IPv6(src="2001:db8:1::12", dst=vip6) / ICMPv6ND_NS(tgt=vip6))
    send(b[:random.randint(14, len(b) - 1)])

print("sent %d frames (%d refused by the kernel)" % (sent["n"], sent["err"]), flush=True)
