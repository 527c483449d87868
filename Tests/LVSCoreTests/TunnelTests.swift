import Testing
@testable import LVSCore
import LVSModel

/// Frames written by scapy 2.5 (IP/GRE/UDP/ICMP checksums its own), checked by hand against
/// `ip_vs_tunnel_xmit`: Ethernet director → next hop, outer 198.51.100.1 → 203.0.113.5
/// (2001:db8:1::1 → 2001:db8:2::5), TOS/TTL from the inner header (inner TOS 0x2b: ECN CE, so 0x2a outside).
enum TunnelGolden {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static let directorMAC = MACAddress("00:50:00:00:04:00")!
    static let nextHopMAC = MACAddress("00:50:00:00:05:00")!
    static let source4 = IPAddress("198.51.100.1")!
    static let server4 = IPAddress("203.0.113.5")!
    static let source6 = IPAddress("2001:db8:1::1")!
    static let server6 = IPAddress("2001:db8:2::5")!

    /// Inner: TCP SYN 192.0.2.10:40000 → 192.0.2.100:80, TOS 0x2b, TTL 63, DF, id 0x4321.
    static let in4 = hex("0050000004000050000003000800452b0028432140003f067415c000020ac00002649c40005000000001000000005002"
        + "20006ee20000")
    static let in4b = hex("005000000400005000000300080045030028432100003f11b432c000020ac00002649c4000350014529f68656c6c6f20"
        + "74756e6e656c")
    static let in6 = hex("00500000040000500000030086dd62b000000014063f20010db800000000000000000000001020010db8000000000000"
        + "0000000001009c40005000000001000000005002200096cf0000")
    static let ipip = hex("0050000005000050000004000800452a003c000040003f04d559c6336401cb007105452b0028432140003f067415c000"
        + "020ac00002649c4000500000000100000000500220006ee20000")
    static let gue = hex("005000000500005000000400080045020048010200003f111467c6336401cb007105a97717c000345ca4000400004503"
        + "0028432100003f11b432c000020ac00002649c4000350014529f68656c6c6f2074756e6e656c")
    static let guenocsum = hex("005000000500005000000400080045020048010200003f111467c6336401cb007105a97717c000340000000400004503"
        + "0028432100003f11b432c000020ac00002649c4000350014529f68656c6c6f2074756e6e656c")
    static let grecsum = hex("0050000005000050000004000800452a0044000040003f2fd526c6336401cb00710580000800fc880000452b00284321"
        + "40003f067415c000020ac00002649c4000500000000100000000500220006ee20000")
    static let gre = hex("0050000005000050000004000800452a0040000040003f2fd52ac6336401cb00710500000800452b0028432140003f06"
        + "7415c000020ac00002649c4000500000000100000000500220006ee20000")
    static let ip6ip6 = hex("00500000050000500000040086dd62a00000003c293f20010db800010000000000000000000120010db8000200000000"
        + "00000000000562b000000014063f20010db800000000000000000000001020010db80000000000000000000001009c40"
        + "005000000001000000005002200096cf0000")
    static let gue6 = hex("00500000050000500000040086dd62a000000048113f20010db800010000000000000000000120010db8000200000000"
        + "000000000005a97717c0004879990029000062b000000014063f20010db800000000000000000000001020010db80000"
        + "000000000000000001009c40005000000001000000005002200096cf0000")
    static let icmp4head = hex("005000000300005000000400080045d00240000000004001f37ec0000264c000020a03047a4f000005c8")
    static let icmp6head = hex("00500000030000500000040086dd6000000004d83a4020010db800000000000000000000010020010db8000000000000"
        + "0000000000100200c7af000005b4")
}

@Suite struct TunnelTests {
    typealias G = TunnelGolden

    /// Encapsulates `inner` (an Ethernet frame) for `tunnel` through a separate output buffer
    /// and in place (the datagram moved within one buffer); both must give the same bytes.
    func encapsulate(_ inner: [UInt8], _ tunnel: TunnelEncapsulation, ipID: UInt16 = 0x0102,
                     flowHash: UInt32 = 0xDEAD_BEEF) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 2048)
        let n = inner.withUnsafeBytes { i in
            out.withUnsafeMutableBytes { o in
                FrameRewriter.encapsulate(i.baseAddress!, l3Offset: 14, ipLength: inner.count - 14, tunnel: tunnel,
                                          destinationMAC: G.nextHopMAC, sourceMAC: G.directorMAC, ipID: ipID,
                                          flowHash: flowHash, output: o.baseAddress!, capacity: o.count)
            }
        }
        // In place: the frame sits `overhead` bytes into a buffer, the new frame starts at 0.
        var buffer = [UInt8](repeating: 0xEE, count: tunnel.overhead) + inner + [UInt8](repeating: 0, count: 64)
        let m = buffer.withUnsafeMutableBytes { b in
            FrameRewriter.encapsulate(UnsafeRawPointer(b.baseAddress! + tunnel.overhead), l3Offset: 14, ipLength: inner.count - 14,
                                      tunnel: tunnel, destinationMAC: G.nextHopMAC, sourceMAC: G.directorMAC, ipID: ipID,
                                      flowHash: flowHash, output: b.baseAddress!, capacity: b.count)
        }
        #expect(m == n)
        #expect(Array(buffer[0..<m]) == Array(out[0..<n]))
        return Array(out[0..<n])
    }

    @Test func ipipCopiesDFAndTOSWithZeroID() {
        let t = TunnelEncapsulation(type: .ipip, source: G.source4, destination: G.server4)
        #expect(encapsulate(G.in4, t, ipID: 0x1234) == G.ipip)
        #expect(t.overhead == 20)
    }

    @Test func gueWithChecksumTurnsCEIntoECT0() {
        let t = TunnelEncapsulation(type: .gue, flags: TunnelLayout.flagChecksum, port: 6080, source: G.source4, destination: G.server4)
        #expect(encapsulate(G.in4b, t) == G.gue)
        // remcsum: no REMCSUM option without a partial checksum, the UDP checksum filled.
        let r = TunnelEncapsulation(type: .gue, flags: TunnelLayout.flagRemoteChecksum, port: 6080, source: G.source4, destination: G.server4)
        #expect(encapsulate(G.in4b, r) == G.gue)
        let n = TunnelEncapsulation(type: .gue, port: 6080, source: G.source4, destination: G.server4)
        #expect(encapsulate(G.in4b, n) == G.guenocsum)
        #expect(TunnelEncapsulation.sourcePort(flowHash: 0xDEAD_BEEF) == 43383)
        #expect(t.overhead == 32)
    }

    @Test func greWithAndWithoutChecksum() {
        let c = TunnelEncapsulation(type: .gre, flags: TunnelLayout.flagChecksum, source: G.source4, destination: G.server4)
        #expect(encapsulate(G.in4, c) == G.grecsum)
        let p = TunnelEncapsulation(type: .gre, source: G.source4, destination: G.server4)
        #expect(encapsulate(G.in4, p) == G.gre)
        // remcsum is no GRE option (ipvsadm refuses it): a plain header.
        let r = TunnelEncapsulation(type: .gre, flags: TunnelLayout.flagRemoteChecksum, source: G.source4, destination: G.server4)
        #expect(encapsulate(G.in4, r) == G.gre)
        #expect(c.overhead == 28 && p.overhead == 24)
    }

    @Test func ipv6InIPv6AndGUEOverIPv6() {
        let t = TunnelEncapsulation(type: .ipip, source: G.source6, destination: G.server6)
        #expect(encapsulate(G.in6, t) == G.ip6ip6)
        let g = TunnelEncapsulation(type: .gue, flags: TunnelLayout.flagChecksum, port: 6080, source: G.source6, destination: G.server6)
        #expect(encapsulate(G.in6, g) == G.gue6)
    }

    @Test func withoutPMTUDiscoveryNoDF() {
        let t = TunnelEncapsulation(type: .ipip, source: G.source4, destination: G.server4)
        var out = [UInt8](repeating: 0, count: 256)
        let n = G.in4.withUnsafeBytes { i in
            out.withUnsafeMutableBytes { o in
                FrameRewriter.encapsulate(i.baseAddress!, l3Offset: 14, ipLength: G.in4.count - 14, tunnel: t,
                                          destinationMAC: G.nextHopMAC, sourceMAC: G.directorMAC, ipID: 0x1234, flowHash: 0,
                                          pmtuDiscovery: false, output: o.baseAddress!, capacity: o.count)
            }
        }
        #expect(n == G.ipip.count)
        #expect(out[18] == 0x12 && out[19] == 0x34 && out[20] == 0 && out[21] == 0) // id kept, no DF
        #expect(out.withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress! + 14, headerLength: 20) })
        // Too small an output: nothing written.
        let none = G.in4.withUnsafeBytes { i in
            out.withUnsafeMutableBytes { o in
                FrameRewriter.encapsulate(i.baseAddress!, l3Offset: 14, ipLength: G.in4.count - 14, tunnel: t,
                                          destinationMAC: G.nextHopMAC, sourceMAC: G.directorMAC, ipID: 0, flowHash: 0,
                                          output: o.baseAddress!, capacity: G.ipip.count - 1)
            }
        }
        #expect(none == 0)
    }

    @Test func tunnelMTUAsTheKernelComputesIt() {
        func mtu(_ type: TunnelType, _ flags: UInt8 = 0, v6: Bool = false, link: Int = 1500) -> Int? {
            TunnelEncapsulation(type: type, flags: flags, port: 6080, source: v6 ? G.source6 : G.source4,
                                destination: v6 ? G.server6 : G.server4).mtu(linkMTU: link)
        }
        #expect(mtu(.ipip) == 1480)
        #expect(mtu(.gue) == 1468)
        #expect(mtu(.gue, TunnelLayout.flagChecksum) == 1468)
        #expect(mtu(.gre) == 1476)
        #expect(mtu(.gre, TunnelLayout.flagChecksum) == 1472)
        #expect(mtu(.ipip, v6: true) == 1460)
        #expect(mtu(.ipip, link: 87) == nil)
        #expect(mtu(.ipip, link: 88) == 68)
        #expect(mtu(.ipip, v6: true, link: 1319) == nil)
    }

    /// 1,500-byte UDP datagram with DF from the client 192.0.2.10 to the VIP 192.0.2.100.
    static func big4(dst: String = "192.0.2.100", src: String = "192.0.2.10") -> [UInt8] {
        var ip: [UInt8] = [0x45, 0x10, 0x05, 0xDC, 0, 7, 0x40, 0, 64, 17, 0, 0] + FrameBuilder.v4(src) + FrameBuilder.v4(dst)
        let cs = InternetChecksum.finish(ip.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) })
        ip[10] = UInt8(cs >> 8); ip[11] = UInt8(cs & 0xFF)
        let payload = (0..<1472).map { UInt8($0 & 0xFF) }
        var udp: [UInt8] = [0x9C, 0x40, 0, 53, 0x05, 0xC8, 0, 0]
        // UDP checksum over the pseudo-header, as the client's stack fills it.
        var s = InternetChecksum.sum(FrameBuilder.v4(src) + FrameBuilder.v4(dst) + [0, 17, 0x05, 0xC8], count: 12)
        s = InternetChecksum.sum(udp + payload, count: 1480, initial: s)
        let u = InternetChecksum.finish(s)
        udp[6] = UInt8(u >> 8); udp[7] = UInt8(u & 0xFF)
        return FrameBuilder.mac(FrameBuilder.directorMAC) + FrameBuilder.mac(FrameBuilder.clientMAC) + [0x08, 0x00] + ip + udp + payload
    }

    @Test func fragmentationNeededCarriesTheTunnelMTU() {
        let frame = Self.big4()
        #expect(frame.withUnsafeBytes { FrameRewriter.dontFragment($0.baseAddress!, l3Offset: 14) })
        var out = [UInt8](repeating: 0, count: 2048)
        let n = frame.withUnsafeBytes { f in
            out.withUnsafeMutableBytes { o in
                FrameRewriter.tooBig(f.baseAddress!, l3Offset: 14, ipLength: 1500, ipv6: false, mtu: 1480,
                                     sourceMAC: G.directorMAC, output: o.baseAddress!, capacity: o.count)
            }
        }
        #expect(n == 590)
        #expect(Array(out[0..<42]) == G.icmp4head)
        #expect(Array(out[42..<590]) == Array(frame[14..<(14 + 548)]))
    }

    @Test func packetTooBigForIPv6() {
        let payload = (0..<1452).map { UInt8($0 & 0xFF) }
        var b = FrameBuilder.mac(FrameBuilder.directorMAC) + FrameBuilder.mac(FrameBuilder.clientMAC) + [0x86, 0xDD]
        b += [0x60, 0, 0, 0, 0x05, 0xB4, 17, 64] + FrameBuilder.v6("2001:db8::10") + FrameBuilder.v6("2001:db8::100")
        b += [0x9C, 0x40, 0, 53, 0x05, 0xB4, 0, 0] + payload
        // The quoted UDP checksum is scapy's (the golden header's ICMPv6 checksum covers it).
        var s = InternetChecksum.sum(Array(b[22..<54]), count: 32)
        s = InternetChecksum.sum(Array(b[54...]), count: 1460, initial: s &+ 1460 &+ 17)
        let u = InternetChecksum.finish(s)
        b[60] = UInt8(u >> 8); b[61] = UInt8(u & 0xFF)
        var out = [UInt8](repeating: 0, count: 2048)
        let n = b.withUnsafeBytes { f in
            out.withUnsafeMutableBytes { o in
                FrameRewriter.tooBig(f.baseAddress!, l3Offset: 14, ipLength: 1500, ipv6: true, mtu: 1460,
                                     sourceMAC: G.directorMAC, output: o.baseAddress!, capacity: o.count)
            }
        }
        #expect(n == 1294)
        #expect(Array(out[0..<62]) == G.icmp6head)
        #expect(Array(out[62..<1294]) == Array(b[14..<(14 + 1232)]))
    }
}
