import Testing
@testable import LVSCore
import LVSModel

/// The tunnel method through the engine: a real server on another subnet reached through a
/// gateway whose MAC the neighbour code learns, frames leaving encapsulated through the outbox.
@Suite struct TunnelEngineTests {
    static let gatewayMAC = MACAddress("00:50:00:00:09:00")!
    static let server = IPAddress("10.9.0.31")!
    static let gateway = IPAddress("192.168.1.254")!

    static let udpVIP = ServiceKey(proto: .udp, address: IPAddress("192.168.1.100")!, port: 53)

    /// The seed's VIP (TCP 80, or UDP 53) with one tunnel real server behind 192.168.1.254.
    func tunnelEngine(_ type: TunnelType = .ipip, flags: UInt8 = 0, port: UInt16 = 0, mtu: Int = 1500, udp: Bool = false) -> Engine {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                         addresses: [(IPAddress("192.168.1.21")!, 24)])])
        let key = udp ? Self.udpVIP : vip
        try! e.addService(key, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(key, DestinationOptions(address: Self.server, port: udp ? 53 : 80, method: .tunnel,
                                                      tunnelType: type, tunnelPort: port, tunnelFlags: flags))
        e.setTunnelRoute(Self.server, TunnelRoute(interface: 2, gateway: Self.gateway, source: IPAddress("192.168.1.21")!, mtu: mtu))
        return e
    }

    func drain(_ e: Engine) -> [[UInt8]] {
        var sent: [[UInt8]] = []
        e.primary.outbox.drain { bytes, ifindex in
            #expect(ifindex == 2)
            sent.append(Array(bytes))
        }
        return sent
    }

    @Test func resolvesTheGatewayAndEncapsulates() {
        let e = tunnelEngine()
        // The gateway is asked for, not the off-link real server.
        let asks = e.pendingFrames(now: second).filter { $0.bytes.count == 42 && $0.bytes[21] == 1 }
        #expect(asks.contains { Array($0.bytes[38..<42]) == FrameBuilder.v4("192.168.1.254") })
        #expect(!asks.contains { Array($0.bytes[38..<42]) == FrameBuilder.v4("10.9.0.31") })
        // Until it answers, the SYN waits; its reply releases it encapsulated.
        #expect(e.syn(40000, at: second).0 == .drop(.neighbourUnresolved))
        _ = e.run(FrameBuilder.arpReply(senderMAC: Self.gatewayMAC, senderIP: "192.168.1.254", targetIP: "192.168.1.21"), at: second)
        e.tick(now: second + 20_000_000)
        var sent = drain(e)
        #expect(sent.count == 1)
        let inner = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 40001, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        #expect(e.run(inner, at: 2 * second).0 == .drop(.tunnelled))
        sent += drain(e)
        #expect(sent.count == 2)
        for frame in sent {
            #expect(Array(frame[0..<6]) == FrameBuilder.mac(Self.gatewayMAC))
            #expect(Array(frame[6..<12]) == FrameBuilder.mac(FrameBuilder.directorMAC))
            let outer = frame.withUnsafeBytes { FrameParser.parse($0) }
            #expect(outer.kind == .ipv4 && outer.proto == 4)
            #expect(outer.source == IPAddress("192.168.1.21")! && outer.destination == Self.server)
            #expect(frame.withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress! + 14, headerLength: 20) })
            #expect(frame[14 + 8] == 63) // outer TTL = the inner one, decremented
            #expect(frame.count == 14 + 20 + inner.count - 14)
        }
        // The inner datagram as DR sends it: addresses unchanged, TTL 63.
        #expect(Array(sent[1][34...]) != Array(inner[14...]))
        #expect(sent[1][34 + 8] == 63 && Array(sent[1][34 + 12..<34 + 20]) == Array(inner[26..<34]))
        #expect(e.dest("10.9.0.31").stats.inPackets == 1) // the held SYN is not counted twice
        // Sent, so counted as forwarded (the data plane's verdict says tunnelled), not as a drop.
        #expect(e.counters.forwarded == 2 && e.counters.drops[Int(DropReason.tunnelled.rawValue)] == 0)
    }

    func ready(_ e: Engine) {
        _ = e.run(FrameBuilder.arpReply(senderMAC: Self.gatewayMAC, senderIP: "192.168.1.254", targetIP: "192.168.1.21"), at: second)
    }

    /// A 1,500-byte datagram with DF: ICMP fragmentation needed carrying 1,480 (IPIP), 1,468
    /// (GUE), 1,476 / 1,472 (GRE without / with checksum), from the VIP to the client.
    @Test func fragmentationNeededWithTheTunnelMTU() {
        for (type, flags, port, expected) in [(TunnelType.ipip, UInt8(0), UInt16(0), 1480), (.gue, 0, 6080, 1468),
                                              (.gre, 0, 0, 1476), (.gre, 1, 0, 1472)] {
            let cfg = tunnelEngine(type, flags: flags, port: port, udp: true)
            ready(cfg)
            let big = TunnelTests.big4(dst: "192.168.1.100", src: "192.168.1.12")
            #expect(cfg.run(big, at: second).0 == .drop(.tooBig))
            let sent = drain(cfg)
            #expect(sent.count == 1)
            let f = sent[0].withUnsafeBytes { FrameParser.parse($0) }
            #expect(f.isICMPError && f.icmpType == 3 && f.icmpCode == 4)
            #expect(f.source == IPAddress("192.168.1.100")! && f.destination == IPAddress("192.168.1.12")!)
            #expect(Int(sent[0][40]) << 8 | Int(sent[0][41]) == expected)
            #expect(Array(sent[0][0..<6]) == FrameBuilder.mac(FrameBuilder.clientMAC))
        }
    }

    /// Without DF the datagram goes in outer fragments of at most the egress MTU.
    @Test func withoutDFOuterFragments() {
        let e = tunnelEngine(udp: true)
        ready(e)
        var big = TunnelTests.big4(dst: "192.168.1.100", src: "192.168.1.12")
        big[14 + 6] = 0 // clear DF (the header checksum is not checked on the way)
        let s = InternetChecksum.finish(big.withUnsafeBytes { b -> UInt32 in
            var h = Array(b[14..<34]); h[10] = 0; h[11] = 0
            return InternetChecksum.sum(h, count: 20)
        })
        big[24] = UInt8(s >> 8); big[25] = UInt8(s & 0xFF)
        #expect(e.run(big, at: second).0 == .drop(.tunnelled))
        let sent = drain(e)
        #expect(sent.count == 2)
        #expect(sent.allSatisfy { $0.count - 14 <= 1500 })
        #expect(sent.reduce(0) { $0 + $1.count - 34 } == 1500) // the inner datagram, split
        #expect(sent[0][14 + 9] == 4 && sent[0][14 + 6] & 0x20 != 0)
    }

    /// A new gateway is resolved afresh: frames wait for its MAC, then go to it; the route's MTU
    /// and source follow.
    @Test func routeChangeMovesTheNextHop() {
        let e = tunnelEngine()
        ready(e)
        #expect(e.syn(40000, at: second).0 == .drop(.tunnelled))
        _ = drain(e)
        let other = MACAddress("00:50:00:00:0a:00")!
        e.setTunnelRoute(Self.server, TunnelRoute(interface: 2, gateway: IPAddress("192.168.1.253")!,
                                                  source: IPAddress("192.168.1.21")!, mtu: 1400))
        #expect(e.syn(40001, at: 2 * second).0 == .drop(.neighbourUnresolved))
        let asks = e.pendingFrames(now: 2 * second).filter { $0.bytes.count == 42 && $0.bytes[21] == 1 }
        #expect(asks.contains { Array($0.bytes[38..<42]) == FrameBuilder.v4("192.168.1.253") })
        // The old gateway's ARP no longer teaches anything about this real server.
        _ = e.run(FrameBuilder.arpReply(senderMAC: Self.gatewayMAC, senderIP: "192.168.1.254", targetIP: "192.168.1.21"), at: 2 * second)
        #expect(e.syn(40002, at: 2 * second).0 == .drop(.neighbourUnresolved))
        _ = e.run(FrameBuilder.arpReply(senderMAC: other, senderIP: "192.168.1.253", targetIP: "192.168.1.21"), at: 2 * second)
        e.tick(now: 2 * second + 20_000_000)
        let sent = drain(e)
        #expect(sent.count == 2 && sent.allSatisfy { Array($0[0..<6]) == FrameBuilder.mac(other) })
        #expect(e.tunnelRoute(Self.server)?.mtu == 1400)
    }

    /// From tunnel (through a gateway) to DR: the gateway's MAC is forgotten, the real server's
    /// own resolved (a DR real server must be on the segment).
    @Test func methodChangeResolvesTheNextHopAfresh() {
        let e = tunnelEngine()
        ready(e)
        #expect(e.syn(40000, at: second).0 == .drop(.tunnelled))
        _ = drain(e)
        try! e.editDestination(vip, DestinationOptions(address: Self.server, port: 80, method: .directRoute))
        #expect(e.syn(40001, at: second).0 == .drop(.neighbourUnresolved))
        let asks = e.pendingFrames(now: second).filter { $0.bytes.count == 42 && $0.bytes[21] == 1 }
        #expect(asks.contains { Array($0.bytes[38..<42]) == FrameBuilder.v4("10.9.0.31") })
    }

    /// IPv4 without DF to an IPv6 real server: no ICMP (the kernel would send outer IPv6
    /// fragments, which lvsd does not write), dropped as too big.
    @Test func ipv4WithoutDFToAnIPv6ServerIsDroppedWithoutICMP() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                         addresses: [(IPAddress("192.168.1.21")!, 24), (IPAddress("2001:db8:1::21")!, 64)])])
        try! e.addService(Self.udpVIP, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(Self.udpVIP, DestinationOptions(address: IPAddress("2001:db8:1::31")!, port: 53, method: .tunnel))
        e.setNeighbour(IPAddress("2001:db8:1::31")!, mac: rs1MAC, interface: 2)
        var big = TunnelTests.big4(dst: "192.168.1.100", src: "192.168.1.12")
        big[14 + 6] = 0
        let s = InternetChecksum.finish(big.withUnsafeBytes { b -> UInt32 in
            var h = Array(b[14..<34]); h[10] = 0; h[11] = 0
            return InternetChecksum.sum(h, count: 20)
        })
        big[24] = UInt8(s >> 8); big[25] = UInt8(s & 0xFF)
        #expect(e.run(big, at: second).0 == .drop(.tooBig))
        #expect(drain(e).isEmpty)
        // A small one goes out in IPv4-in-IPv6 (next header 4) from the interface's address.
        let small = FrameBuilder.ipv4UDP(src: "192.168.1.12", sport: 5000, dst: "192.168.1.100", dport: 53)
        #expect(e.run(small, at: second).0 == .drop(.tunnelled))
        let out = drain(e)
        #expect(out.count == 1 && out[0][12] == 0x86 && out[0][13] == 0xDD && out[0][14 + 6] == 4)
        #expect(Array(out[0][22..<38]) == FrameBuilder.v6("2001:db8:1::21"))
    }

    /// A TCP GSO frame (3,000 bytes of payload, segment size 1,400: 1,440-byte datagrams fit the tunnel's 1,480): three IPIP frames, each
    /// segment with its sequence number, IPv4 identification and checksums as tcp_gso_segment
    /// makes them, FIN/PSH on the last only.
    @Test func gsoFramesAreSegmentedBeforeEncapsulation() {
        let e = tunnelEngine()
        ready(e)
        #expect(e.syn(40000, at: second).0 == .drop(.tunnelled))
        _ = drain(e)
        var big = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 40000, dst: "192.168.1.100", dport: 80,
                                       flags: TCPFlag.ack | TCPFlag.psh | TCPFlag.fin, payload: 3000)
        big[14 + 6] = 0x40 // DF, as TCP sends
        big[24] = 0; big[25] = 0
        let hc = InternetChecksum.finish(big.withUnsafeBytes { InternetChecksum.sum($0.baseAddress! + 14, count: 20) })
        big[24] = UInt8(hc >> 8); big[25] = UInt8(hc & 0xFF)
        e.primary.receiveGSOSize = 1400
        #expect(e.run(big, at: second).0 == .drop(.tunnelled))
        e.primary.receiveGSOSize = 0
        let sent = drain(e)
        #expect(sent.map(\.count) == [14 + 20 + 40 + 1400, 14 + 20 + 40 + 1400, 14 + 20 + 40 + 200])
        for (k, s) in sent.enumerated() {
            let inner = Array(s[34...])
            #expect(inner.withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress!, headerLength: 20) })
            #expect(Int(inner[4]) << 8 | Int(inner[5]) == 0x1234 + k)
            let seq = inner[24..<28].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(seq == 1 + UInt32(k * 1400))
            #expect(inner[33] & (TCPFlag.fin | TCPFlag.psh) == (k == 2 ? TCPFlag.fin | TCPFlag.psh : 0))
            let tcpLength = inner.count - 20
            var sum = InternetChecksum.sum(Array(inner[12..<20]), count: 8)
            sum = InternetChecksum.sum(Array(inner[20...]), count: tcpLength, initial: sum &+ 6 &+ UInt32(tcpLength))
            #expect(InternetChecksum.finish(sum) == 0)
            #expect(Array(inner[40..<(40 + min(16, inner.count - 40))]) == Array(big[(54 + k * 1400)..<(54 + k * 1400 + min(16, inner.count - 40))]))
        }
        // Segments of 1,448 (1,488-byte datagrams) do not fit: ICMP fragmentation needed, as the
        // kernel answers a GSO packet whose segments are too big for the route.
        e.primary.receiveGSOSize = 1448
        #expect(e.run(big, at: second).0 == .drop(.tooBig))
        e.primary.receiveGSOSize = 0
        let icmp = drain(e)
        #expect(icmp.count == 1 && icmp[0][34] == 3 && icmp[0][35] == 4 && Int(icmp[0][40]) << 8 | Int(icmp[0][41]) == 1480)
    }

    /// A tunnel destination with no route given: on-link through its interface, the
    /// interface's address as the source.
    @Test func onLinkWithoutRoute() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                         addresses: [(IPAddress("192.168.1.21")!, 24)])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80, method: .tunnel,
                                                      tunnelType: .gre))
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: 2)
        #expect(e.syn(40000, at: second).0 == .drop(.tunnelled))
        let sent = drain(e)
        #expect(sent.count == 1 && sent[0][14 + 9] == 47)
        #expect(Array(sent[0][0..<6]) == FrameBuilder.mac(rs1MAC))
        #expect(Array(sent[0][26..<30]) == FrameBuilder.v4("192.168.1.21"))
    }
}
