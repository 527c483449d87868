import Testing
@testable import LVSCore
import LVSModel

/// Frames with every checksum computed from scratch, so that a frame the engine rewrote
/// incrementally can be compared byte for byte with one built directly.
enum NATFrames {
    static let clientSide: Int32 = 2, serverSide: Int32 = 3
    static let directorOut = MACAddress("00:50:00:00:05:00")!
    static let serverMAC = MACAddress("00:50:00:00:01:00")!
    static let clientMAC = FrameBuilder.clientMAC
    static let directorIn = FrameBuilder.directorMAC

    static func checksum(_ b: [UInt8], initial: UInt32 = 0) -> UInt16 {
        InternetChecksum.finish(b.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: b.count, initial: initial) })
    }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func address(_ s: String) -> [UInt8] { s.contains(":") ? FrameBuilder.v6(s) : FrameBuilder.v4(s) }

    /// A TCP or UDP segment with its checksum over the pseudo-header (`zeroUDPChecksum`: none).
    static func transport(proto: UInt8, src: String, sport: UInt16, dst: String, dport: UInt16, flags: UInt8,
                          payload: [UInt8], zeroUDPChecksum: Bool = false) -> [UInt8] {
        var l4: [UInt8]
        if proto == 6 {
            l4 = be16(sport) + be16(dport) + [0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x50, flags, 0x72, 0x10, 0, 0, 0, 0] + payload
        } else {
            l4 = be16(sport) + be16(dport) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
        }
        if proto == 17 && zeroUDPChecksum { return l4 }
        var pseudo = address(src) + address(dst)
        pseudo += src.contains(":") ? [0, 0] + be16(UInt16(l4.count)) + [0, 0, 0, proto] : [0, proto] + be16(UInt16(l4.count))
        var c = checksum(pseudo + l4 + (l4.count % 2 == 1 ? [0] : []))
        if proto == 17 && c == 0 { c = 0xFFFF }
        let at = proto == 6 ? 16 : 6
        l4[at] = UInt8(c >> 8); l4[at + 1] = UInt8(c & 0xFF)
        return l4
    }

    /// An IP packet (no Ethernet header) around `l4`.
    static func ip(proto: UInt8, src: String, dst: String, ttl: UInt8, _ l4: [UInt8]) -> [UInt8] {
        if src.contains(":") {
            return [0x60, 0, 0, 0] + be16(UInt16(l4.count)) + [proto, ttl] + address(src) + address(dst) + l4
        }
        var h: [UInt8] = [0x45, 0] + be16(UInt16(20 + l4.count)) + [0x12, 0x34, 0x40, 0, ttl, proto, 0, 0] + address(src) + address(dst)
        let c = checksum(h)
        h[10] = UInt8(c >> 8); h[11] = UInt8(c & 0xFF)
        return h + l4
    }

    static func ethernet(to: MACAddress, from: MACAddress, _ packet: [UInt8]) -> [UInt8] {
        FrameBuilder.mac(to) + FrameBuilder.mac(from) + (packet[0] >> 4 == 6 ? [0x86, 0xDD] : [0x08, 0x00]) + packet
    }

    static func segment(to: MACAddress, from: MACAddress, proto: UInt8 = 6, src: String, sport: UInt16, dst: String, dport: UInt16,
                        flags: UInt8 = TCPFlag.ack, ttl: UInt8 = 64, payload: [UInt8] = [1, 2, 3], zeroUDPChecksum: Bool = false) -> [UInt8] {
        ethernet(to: to, from: from, ip(proto: proto, src: src, dst: dst, ttl: ttl,
                                        transport(proto: proto, src: src, sport: sport, dst: dst, dport: dport, flags: flags,
                                                  payload: payload, zeroUDPChecksum: zeroUDPChecksum)))
    }

    /// An ICMPv4 destination unreachable (code `code`) quoting `quote` (an IP header and 8 bytes).
    static func icmpError(to: MACAddress, from: MACAddress, src: String, dst: String, ttl: UInt8 = 64, code: UInt8, quote: [UInt8]) -> [UInt8] {
        var icmp: [UInt8] = [3, code, 0, 0, 0, 0, 0x05, 0xDC] + quote
        let c = checksum(icmp)
        icmp[2] = UInt8(c >> 8); icmp[3] = UInt8(c & 0xFF)
        return ethernet(to: to, from: from, ip(proto: 1, src: src, dst: dst, ttl: ttl, icmp))
    }

    /// The first 28 bytes of an IPv4 TCP packet, as an ICMP error quotes it.
    static func quote(src: String, sport: UInt16, dst: String, dport: UInt16, tcpChecksum: UInt16 = 0xBEEF) -> [UInt8] {
        var q = ip(proto: 6, src: src, dst: dst, ttl: 63, be16(sport) + be16(dport) + [0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x50, 0x10, 0x72, 0x10] + be16(tcpChecksum) + [0, 0])
        // Quoted as sent: the IP total length is the original's, the quote is cut after 8 bytes of TCP.
        q[2] = 0; q[3] = 40
        q[10] = 0; q[11] = 0
        let c = checksum(Array(q[0..<20]))
        q[10] = UInt8(c >> 8); q[11] = UInt8(c & 0xFF)
        return Array(q[0..<28])
    }
}

/// A director with two interfaces: clients on eth0 (192.168.1.21/24, ifindex 2), NAT real servers
/// on eth1 (10.0.0.1/24, ifindex 3); VIP 192.168.1.100:80, real servers 10.0.0.11:8080 and 10.0.0.12:8080.
func natEngine(proto: IPProtocolNumber = .tcp, ipv6: Bool = false, servers: Int = 1) -> (Engine, ServiceKey) {
    let e = Engine()
    e.setInterfaces([
        EngineInterface(index: NATFrames.clientSide, name: "eth0", mac: NATFrames.directorIn,
                        addresses: [(IPAddress(ipv6 ? "2001:db8:1::21" : "192.168.1.21")!, ipv6 ? 64 : 24)]),
        EngineInterface(index: NATFrames.serverSide, name: "eth1", mac: NATFrames.directorOut,
                        addresses: [(IPAddress(ipv6 ? "fd00::1" : "10.0.0.1")!, ipv6 ? 64 : 24)]),
    ])
    let key = ServiceKey(proto: proto, address: IPAddress(ipv6 ? "2001:db8:1::100" : "192.168.1.100")!, port: 80)
    var options = ServiceOptions(scheduler: "rr")
    if ipv6 { options.netmask = 128 }
    try! e.addService(key, options)
    for i in 1...servers {
        let rs = IPAddress(ipv6 ? "fd00::1\(i)" : "10.0.0.1\(i)")!
        try! e.addDestination(key, DestinationOptions(address: rs, port: 8080, method: .masquerade))
        e.setNeighbour(rs, mac: MACAddress(value: NATFrames.serverMAC.value + UInt64(i - 1)), interface: NATFrames.serverSide)
    }
    return (e, key)
}

extension Engine {
    func run(_ frame: [UInt8], on interface: Int32, at now: UInt64) -> (Verdict, [UInt8]) {
        var b = frame
        let v = b.withUnsafeMutableBytes { process($0, interface: interface, now: now) }
        return (v, b)
    }
}

@Suite struct NATTests {
    typealias N = NATFrames
    let client = "192.168.1.12", vip = "192.168.1.100", rs = "10.0.0.11"

    /// The NAT engine after the client's SYN from port 40000 (to 10.0.0.11:8080).
    func connected() -> Engine {
        let (e, _) = natEngine()
        _ = e.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80, flags: TCPFlag.syn),
                  on: N.clientSide, at: second)
        return e
    }

    @Test func clientPacketGetsTheRealServersAddressPortAndChecksums() {
        let (e, _) = natEngine()
        let (v, out) = e.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80, flags: TCPFlag.syn),
                             on: N.clientSide, at: second)
        #expect(v == .forward(interface: N.serverSide))
        #expect(out == N.segment(to: N.serverMAC, from: N.directorOut, src: client, sport: 40000, dst: rs, dport: 8080,
                                 flags: TCPFlag.syn, ttl: 63))
    }

    @Test func replyGetsTheVIPBackAndGoesToTheClientsHop() {
        let e = connected()
        let reply = N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: 8080, dst: client, dport: 40000,
                              flags: TCPFlag.syn | TCPFlag.ack, payload: [9, 8, 7, 6, 5])
        let (v, out) = e.run(reply, on: N.serverSide, at: second)
        #expect(v == .forward(interface: N.clientSide))
        #expect(out == N.segment(to: N.clientMAC, from: N.directorIn, src: vip, sport: 80, dst: client, dport: 40000,
                                 flags: TCPFlag.syn | TCPFlag.ack, ttl: 63, payload: [9, 8, 7, 6, 5]))
        // OutPkts/OutBytes on the real server and its service, as ip_vs_out_stats counts them.
        let d = e.snapshot().services[0].destinations[0]
        #expect(d.stats.outPackets == 1 && d.stats.outBytes == 20 + 20 + 5)
        #expect(d.stats.inPackets == 1 && d.stats.inBytes == 20 + 20 + 3)
        #expect(e.snapshot().services[0].stats.outPackets == 1)
    }

    @Test func replyOfNoConnectionGoesToTheKernelUntouched() {
        let e = connected()
        for (sport, dport) in [(8080, 40001), (8081, 40000)] as [(UInt16, UInt16)] {
            let stranger = N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: sport, dst: client, dport: dport)
            let (v, out) = e.run(stranger, on: N.serverSide, at: second)
            #expect(v == .pass)
            #expect(out == stranger)
        }
        #expect(e.snapshot().services[0].destinations[0].stats.outPackets == 0)
    }

    @Test func udpChecksumsIncludingNone() {
        let (e, _) = natEngine(proto: .udp)
        for zero in [false, true] {
            let port: UInt16 = zero ? 5001 : 5000
            let (v, out) = e.run(N.segment(to: N.directorIn, from: N.clientMAC, proto: 17, src: client, sport: port, dst: vip, dport: 80,
                                           payload: [0xFF, 0xFE, 0x01], zeroUDPChecksum: zero), on: N.clientSide, at: second)
            #expect(v == .forward(interface: N.serverSide))
            #expect(out == N.segment(to: N.serverMAC, from: N.directorOut, proto: 17, src: client, sport: port, dst: rs, dport: 8080,
                                     ttl: 63, payload: [0xFF, 0xFE, 0x01], zeroUDPChecksum: zero))
            let (rv, rout) = e.run(N.segment(to: N.directorOut, from: N.serverMAC, proto: 17, src: rs, sport: 8080, dst: client, dport: port,
                                             payload: [0x00, 0x01], zeroUDPChecksum: zero), on: N.serverSide, at: second)
            #expect(rv == .forward(interface: N.clientSide))
            #expect(rout == N.segment(to: N.clientMAC, from: N.directorIn, proto: 17, src: vip, sport: 80, dst: client, dport: port,
                                      ttl: 63, payload: [0x00, 0x01], zeroUDPChecksum: zero))
        }
    }

    @Test func ipv6BothDirections() {
        let (e, _) = natEngine(ipv6: true)
        let c6 = "2001:db8:1::12", v6 = "2001:db8:1::100", r6 = "fd00::11"
        let (v, out) = e.run(N.segment(to: N.directorIn, from: N.clientMAC, src: c6, sport: 40000, dst: v6, dport: 80, flags: TCPFlag.syn),
                             on: N.clientSide, at: second)
        #expect(v == .forward(interface: N.serverSide))
        #expect(out == N.segment(to: N.serverMAC, from: N.directorOut, src: c6, sport: 40000, dst: r6, dport: 8080, flags: TCPFlag.syn, ttl: 63))
        let (rv, rout) = e.run(N.segment(to: N.directorOut, from: N.serverMAC, src: r6, sport: 8080, dst: c6, dport: 40000,
                                         flags: TCPFlag.syn | TCPFlag.ack), on: N.serverSide, at: second)
        #expect(rv == .forward(interface: N.clientSide))
        #expect(rout == N.segment(to: N.clientMAC, from: N.directorIn, src: v6, sport: 80, dst: c6, dport: 40000,
                                  flags: TCPFlag.syn | TCPFlag.ack, ttl: 63))
    }

    /// The NAT tables are ipvs.md §4.4's INPUT and OUTPUT blocks (the kernel's tcp_states).
    @Test func transitionTablesAreTheKernels() {
        let order: [TCPState] = [.none, .established, .synSent, .synRecv, .finWait, .timeWait, .close, .closeWait, .lastAck, .listen, .synAck]
        let short: [TCPState: String] = [.none: "NO", .established: "ES", .synSent: "SS", .synRecv: "SR", .finWait: "FW", .timeWait: "TW",
                                         .close: "CL", .closeWait: "CW", .lastAck: "LA", .listen: "LI", .synAck: "SA"]
        let flags = [TCPFlag.syn, TCPFlag.fin, TCPFlag.ack, TCPFlag.rst]
        func row(_ f: UInt8, reply: Bool) -> String { order.map { short[TCPStateTable.natNext($0, flags: f, reply: reply)]! }.joined(separator: " ") }
        let input = flags.map { row($0, reply: false) }
        let output = flags.map { row($0, reply: true) }
        #expect(input == ["SR ES ES SR SR SR SR SR SR SR SR", "CL CW SS TW TW TW CL CW LA LI TW",
                          "ES ES SS ES FW TW CL CW CL LI ES", "CL CL CL SR CL CL CL CL LA LI SR"])
        #expect(output == ["SS ES SS SR SS SS SS SS SS LI SR", "TW FW SS TW FW TW CL TW LA LI TW",
                           "ES ES SS ES FW TW CL CW LA ES ES", "CL CL SS CL CL TW CL CL CL CL CL"])
    }

    /// A connection's states follow both directions: the server closes first, then the client.
    @Test func stateWalkBothDirections() {
        let (e, _) = natEngine()
        var t = second
        func input(_ flags: UInt8) {
            t += second
            let (v, _) = e.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80, flags: flags),
                               on: N.clientSide, at: t)
            #expect(v == .forward(interface: N.serverSide))
        }
        func output(_ flags: UInt8) {
            t += second
            let (v, _) = e.run(N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: 8080, dst: client, dport: 40000, flags: flags),
                               on: N.serverSide, at: t)
            #expect(v == .forward(interface: N.clientSide))
        }
        func state() -> String { e.connections(now: t).first?.state ?? "-" }
        input(TCPFlag.syn); #expect(state() == "SYN_RECV")
        output(TCPFlag.syn | TCPFlag.ack); #expect(state() == "SYN_RECV")
        input(TCPFlag.ack); #expect(state() == "ESTABLISHED")
        #expect(e.snapshot().services[0].destinations[0].activeConns == 1)
        output(TCPFlag.fin | TCPFlag.ack); #expect(state() == "FIN_WAIT")
        #expect(e.snapshot().services[0].destinations[0].inactConns == 1)
        input(TCPFlag.ack); #expect(state() == "FIN_WAIT")
        input(TCPFlag.fin | TCPFlag.ack); #expect(state() == "TIME_WAIT")
        output(TCPFlag.ack); #expect(state() == "TIME_WAIT")

        // Client first: ESTABLISHED + client FIN is CLOSE_WAIT with NAT (FIN_WAIT for DR), the
        // server's FIN then TIME_WAIT.
        let (e2, _) = natEngine()
        for (flags, reply) in [(TCPFlag.syn, false), (TCPFlag.syn | TCPFlag.ack, true), (TCPFlag.ack, false), (TCPFlag.fin | TCPFlag.ack, false)] {
            _ = reply ? e2.run(N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: 8080, dst: client, dport: 40000, flags: flags), on: N.serverSide, at: t)
                      : e2.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80, flags: flags), on: N.clientSide, at: t)
        }
        #expect(e2.connections(now: t).first?.state == "CLOSE_WAIT")
        _ = e2.run(N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: 8080, dst: client, dport: 40000, flags: TCPFlag.fin | TCPFlag.ack),
                   on: N.serverSide, at: t)
        #expect(e2.connections(now: t).first?.state == "TIME_WAIT")
    }

    /// ICMP errors about a NAT connection, both ways: from the client (it quotes VIP:80 →
    /// client) the outer destination and the quoted source become the real server's; from the
    /// servers' side (it quotes client → RS:8080) the outer source and the quoted destination
    /// become VIP:80, and it is counted as output.
    @Test func icmpErrorsAreTranslatedBothWays() {
        let e = connected()
        let cases: [(in: [UInt8], on: Int32, out: [UInt8], to: Int32)] = [
            (N.icmpError(to: N.directorIn, from: N.clientMAC, src: client, dst: vip, code: 4,
                         quote: N.quote(src: vip, sport: 80, dst: client, dport: 40000)), N.clientSide,
             N.icmpError(to: N.serverMAC, from: N.directorOut, src: client, dst: rs, ttl: 63, code: 4,
                         quote: N.quote(src: rs, sport: 8080, dst: client, dport: 40000)), N.serverSide),
            (N.icmpError(to: N.directorOut, from: N.serverMAC, src: rs, dst: client, code: 3,
                         quote: N.quote(src: client, sport: 40000, dst: rs, dport: 8080)), N.serverSide,
             N.icmpError(to: N.clientMAC, from: N.directorIn, src: vip, dst: client, ttl: 63, code: 3,
                         quote: N.quote(src: client, sport: 40000, dst: vip, dport: 80)), N.clientSide),
        ]
        for c in cases {
            let (v, out) = e.run(c.in, on: c.on, at: second)
            #expect(v == .forward(interface: c.to))
            #expect(out == c.out)
        }
        #expect(e.snapshot().services[0].destinations[0].stats.outPackets == 1)
        // About no connection: the kernel's.
        let stranger = N.icmpError(to: N.directorOut, from: N.serverMAC, src: rs, dst: client, code: 3,
                                   quote: N.quote(src: client, sport: 40001, dst: rs, dport: 8080))
        #expect(e.run(stranger, on: N.serverSide, at: second).0 == .pass)
    }

    /// The reply index lets go of a connection when it expires; a DR real server in the same
    /// service keeps the DR rewrite (a mixed service).
    @Test func expiryUnlinksAndMixedServiceKeepsDR() {
        let (e, key) = natEngine()
        try! e.addDestination(key, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80))
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: N.clientSide)
        // rr: the newest (DR) first, then the NAT server.
        let (v1, dr) = e.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80, flags: TCPFlag.syn),
                             on: N.clientSide, at: second)
        #expect(v1 == .forward(interface: N.clientSide))
        var expected = N.segment(to: rs1MAC, from: N.directorIn, src: client, sport: 40000, dst: vip, dport: 80, flags: TCPFlag.syn, ttl: 63)
        // DR leaves the IP header alone but the TTL (checksum adjusted) and the TCP checksum as sent.
        #expect(Array(dr[0..<6]) == Array(expected[0..<6]) && Array(dr[26..<34]) == Array(expected[26..<34]))
        expected = N.segment(to: N.serverMAC, from: N.directorOut, src: client, sport: 40001, dst: rs, dport: 8080, flags: TCPFlag.syn, ttl: 63)
        let (v2, nat) = e.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40001, dst: vip, dport: 80, flags: TCPFlag.syn),
                              on: N.clientSide, at: second)
        #expect(v2 == .forward(interface: N.serverSide) && nat == expected)
        #expect(e.primary.table.view.replies.count == 1 && e.natConnections == 1)
        e.tick(now: 200 * second)
        #expect(e.connectionCount == 0 && e.primary.table.view.replies.count == 0 && e.natConnections == 0)
        let late = N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: 8080, dst: client, dport: 40001)
        #expect(e.run(late, on: N.serverSide, at: 200 * second).0 == .pass)
    }

    /// The data plane spreads frames over workers by a hash of their addresses, which NAT
    /// changes: a reply reaching another worker's shard is still translated and counted.
    @Test func replyOnAnotherShard() {
        let (e, _) = natEngine()
        let a = e.makeShard(), b = e.makeShard()
        var syn = N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80, flags: TCPFlag.syn)
        #expect(syn.withUnsafeMutableBytes { a.process($0, interface: N.clientSide, now: second) } == .forward(interface: N.serverSide))
        var reply = N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: 8080, dst: client, dport: 40000,
                              flags: TCPFlag.syn | TCPFlag.ack)
        #expect(reply.withUnsafeMutableBytes { b.process($0, interface: N.serverSide, now: second) } == .forward(interface: N.clientSide))
        #expect(reply == N.segment(to: N.clientMAC, from: N.directorIn, src: vip, sport: 80, dst: client, dport: 40000,
                                   flags: TCPFlag.syn | TCPFlag.ack, ttl: 63))
        var error = N.icmpError(to: N.directorOut, from: N.serverMAC, src: rs, dst: client, code: 3,
                                quote: N.quote(src: client, sport: 40000, dst: rs, dport: 8080))
        #expect(error.withUnsafeMutableBytes { b.process($0, interface: N.serverSide, now: second) } == .forward(interface: N.clientSide))
        #expect(e.snapshot().services[0].destinations[0].stats.outPackets == 2)
    }

    /// SCTP's CRC32c is recomputed after the port rewrite (RFC 3720's check value for the
    /// algorithm; the rewritten packet's CRC checks out).
    @Test func sctpChecksumIsRecomputed() {
        #expect(Array("123456789".utf8).withUnsafeBytes { SCTPChecksum.crc($0.baseAddress!, length: 9) } == 0xE306_9283)
        let (e, _) = natEngine(proto: .sctp)
        // Common header (ports, verification tag 0, CRC) and an INIT chunk (type 1, length 20).
        var sctp: [UInt8] = N.be16(40000) + N.be16(80) + [0, 0, 0, 0, 0, 0, 0, 0]
        sctp += [1, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 1, 0, 1, 0, 0, 0, 1]
        var crc = sctp.withUnsafeBytes { SCTPChecksum.crc($0.baseAddress!, length: sctp.count) }
        for k in 0..<4 { sctp[8 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
        let frame = N.ethernet(to: N.directorIn, from: N.clientMAC, N.ip(proto: 132, src: client, dst: vip, ttl: 64, sctp))
        let (v, out) = e.run(frame, on: N.clientSide, at: second)
        #expect(v == .forward(interface: N.serverSide))
        var l4 = Array(out[34...])
        #expect(Array(l4[0..<4]) == N.be16(40000) + N.be16(8080))
        let stored = UInt32(l4[8]) | UInt32(l4[9]) << 8 | UInt32(l4[10]) << 16 | UInt32(l4[11]) << 24
        for k in 8..<12 { l4[k] = 0 }
        crc = l4.withUnsafeBytes { SCTPChecksum.crc($0.baseAddress!, length: l4.count) }
        #expect(stored == crc)
    }

    /// A backup that takes over a synced NAT connection (at the client's next packet) also
    /// translates its replies.
    @Test func syncedConnectionRepliesAfterTakeover() throws {
        let (master, _) = natEngine()
        try master.startSyncMaster(masterConfig)
        for flags in [TCPFlag.syn, TCPFlag.ack, TCPFlag.ack] {
            _ = master.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80, flags: flags),
                           on: N.clientSide, at: second)
        }
        master.tick(now: second)
        let messages = master.takeSyncMessages(now: second, flushAfter: 0)
        let (backup, _) = natEngine()
        try backup.startSyncBackup(backupConfig)
        #expect(messages.count == 1)
        #expect(messages.map { backup.applySync($0, now: second).applied }.reduce(0, +) == 1)
        let (v, out) = backup.run(N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: 40000, dst: vip, dport: 80),
                                  on: N.clientSide, at: 2 * second)
        #expect(v == .forward(interface: N.serverSide))
        #expect(out == N.segment(to: N.serverMAC, from: N.directorOut, src: client, sport: 40000, dst: rs, dport: 8080, ttl: 63))
        let (rv, rout) = backup.run(N.segment(to: N.directorOut, from: N.serverMAC, src: rs, sport: 8080, dst: client, dport: 40000),
                                    on: N.serverSide, at: 2 * second)
        #expect(rv == .forward(interface: N.clientSide))
        #expect(rout == N.segment(to: N.clientMAC, from: N.directorIn, src: vip, sport: 80, dst: client, dport: 40000, ttl: 63))
    }
}
