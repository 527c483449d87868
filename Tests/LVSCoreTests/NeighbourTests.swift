import Testing
@testable import LVSCore
import LVSModel

extension FrameBuilder {
    static let attackerMAC = MACAddress("02:00:de:ad:be:ef")!

    /// A neighbour advertisement (type 136) or solicitation (135) with one link-layer address
    /// option (target for an NA, source for an NS); the checksum is right unless `badChecksum`.
    static func neighbourDiscovery(type: UInt8 = 136, src: String, dst: String = "ff02::1", target: String,
                                   linkLayer: MACAddress, hopLimit: UInt8 = 255, code: UInt8 = 0,
                                   flags: UInt8 = 0x20, badChecksum: Bool = false) -> [UInt8] {
        var b = mac(directorMAC) + mac(linkLayer) + [0x86, 0xDD]
        b += [0x60, 0, 0, 0, 0, 32, 58, hopLimit]
        // An IPv4 address here is its IPv4-mapped form ::ffff:a.b.c.d, written out in 16 bytes.
        b += sixteen(src)
        b += sixteen(dst)
        let targetBytes = sixteen(target)
        let flagsByte: UInt8 = type == 136 ? flags : 0
        let optionType: UInt8 = type == 136 ? 2 : 1
        var icmp: [UInt8] = [type, code, 0, 0, flagsByte, 0, 0, 0]
        icmp += targetBytes
        icmp += [optionType, 1]
        icmp += mac(linkLayer)
        var s = b.withUnsafeBytes { InternetChecksum.sum($0.baseAddress! + 22, count: 32) }
        s = icmp.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 32, initial: s &+ 32 &+ 58) }
        var cs = InternetChecksum.finish(s)
        if badChecksum { cs ^= 0x5A5A }
        icmp[2] = UInt8(cs >> 8)
        icmp[3] = UInt8(cs & 0xFF)
        return b + icmp
    }

    /// An address in 16 bytes (IPv4: the IPv4-mapped form).
    static func sixteen(_ s: String) -> [UInt8] {
        let a = IPAddress(s)!
        var out: [UInt8] = []
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: a.high >> UInt64(56 - 8 * i))) }
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: a.low >> UInt64(56 - 8 * i))) }
        return out
    }

    /// An NA whose source address is IPv4-mapped (::ffff:192.168.1.31).
    static func mappedSourceAdvertisement(target: String, linkLayer: MACAddress) -> [UInt8] {
        neighbourDiscovery(src: "192.168.1.31", target: target, linkLayer: linkLayer)
    }
}

/// Neighbour learning on the kernel's terms (issue 13 item 4): what an attacker on the segment,
/// or anywhere with a route, can no longer make lvsd believe.
@Suite struct NeighbourTests {
    /// A dual-stack engine: rs1 has 192.168.1.31 and 2001:db8:1::31, both resolved.
    static func engine() -> Engine {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                         addresses: [(IPAddress("192.168.1.21")!, 24), (IPAddress("2001:db8:1::21")!, 64)])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80))
        let six = ServiceKey(proto: .tcp, address: IPAddress("2001:db8:1::100")!, port: 80)
        try! e.addService(six, ServiceOptions(scheduler: "rr", netmask: 128))
        try! e.addDestination(six, DestinationOptions(address: IPAddress("2001:db8:1::31")!, port: 80))
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: 2)
        e.setNeighbour(IPAddress("2001:db8:1::31")!, mac: rs1MAC, interface: 2)
        return e
    }

    /// The MAC that a new connection to the IPv4 VIP is forwarded to (rs1 is its only server).
    static func forwardedMAC(_ e: Engine, port: UInt16) -> MACAddress {
        let (v, out) = e.syn(port, at: second)
        #expect(v == .forward(interface: 2))
        return out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) }
    }

    static func forwardedMAC6(_ e: Engine, port: UInt16) -> MACAddress {
        let (v, out) = e.run(FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: port, dst: "2001:db8:1::100", dport: 80,
                                                  flags: TCPFlag.syn), at: second)
        #expect(v == .forward(interface: 2))
        return out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) }
    }

    static func ignored(_ e: Engine, _ r: NeighbourIgnoreReason) -> UInt64 { e.counters.neighbourIgnored[Int(r.rawValue)] }

    /// The attack: one routed NA (hop limit 64) for ::ffff:<RIP>.
    @Test func routedMappedAdvertisementDoesNotPoisonAnIPv4RealServer() {
        let e = Self.engine()
        let na = FrameBuilder.neighbourDiscovery(src: "2001:db8:99::1", target: "192.168.1.31", linkLayer: FrameBuilder.attackerMAC,
                                                 hopLimit: 64)
        #expect(e.run(na, at: second).0 == .pass)
        #expect(Self.forwardedMAC(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .hopLimit) == 1)
    }

    @Test func ndNeedsHopLimit255() {
        let e = Self.engine()
        let na = FrameBuilder.neighbourDiscovery(src: "2001:db8:1::31", target: "2001:db8:1::31", linkLayer: FrameBuilder.attackerMAC,
                                                 hopLimit: 254)
        #expect(e.run(na, at: second).0 == .pass)
        #expect(Self.forwardedMAC6(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .hopLimit) == 1)
        // The same NA with hop limit 255 is believed (the control case).
        let good = FrameBuilder.neighbourDiscovery(src: "2001:db8:1::31", target: "2001:db8:1::31", linkLayer: rs2MAC)
        _ = e.run(good, at: second)
        #expect(Self.forwardedMAC6(e, port: 2) == rs2MAC)
    }

    @Test func ndNeedsCodeZero() {
        let e = Self.engine()
        let na = FrameBuilder.neighbourDiscovery(src: "2001:db8:1::31", target: "2001:db8:1::31", linkLayer: FrameBuilder.attackerMAC,
                                                 code: 1)
        _ = e.run(na, at: second)
        #expect(Self.forwardedMAC6(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .badCode) == 1)
    }

    @Test func ndNeedsAValidChecksum() {
        let e = Self.engine()
        let na = FrameBuilder.neighbourDiscovery(src: "2001:db8:1::31", target: "2001:db8:1::31", linkLayer: FrameBuilder.attackerMAC,
                                                 badChecksum: true)
        _ = e.run(na, at: second)
        #expect(Self.forwardedMAC6(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .badChecksum) == 1)
    }

    /// Even on the link (hop limit 255, valid checksum), IPv6 never teaches an IPv4 neighbour:
    /// neither an NA for ::ffff:<RIP> nor an NS from ::ffff:<RIP>.
    @Test func ipv6NeverTeachesAnIPv4Neighbour() {
        let e = Self.engine()
        _ = e.run(FrameBuilder.neighbourDiscovery(src: "2001:db8:1::66", target: "192.168.1.31", linkLayer: FrameBuilder.attackerMAC), at: second)
        _ = e.run(FrameBuilder.neighbourDiscovery(type: 135, src: "192.168.1.31", dst: "ff02::1:ff00:100",
                                                  target: "2001:db8:1::100", linkLayer: FrameBuilder.attackerMAC), at: second)
        _ = e.run(FrameBuilder.mappedSourceAdvertisement(target: "2001:db8:1::31", linkLayer: FrameBuilder.attackerMAC), at: second)
        #expect(Self.forwardedMAC(e, port: 1) == rs1MAC)
        #expect(Self.forwardedMAC6(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .ipv4Mapped) == 3)
        // An NS for ::ffff:<VIP> is not answered either (it is no IPv6 VIP).
        let ns = FrameBuilder.neighbourDiscovery(type: 135, src: "2001:db8:1::12", dst: "ff02::1:ff00:100",
                                                 target: "192.168.1.100", linkLayer: FrameBuilder.clientMAC)
        #expect(e.run(ns, at: second).0 == .pass)
    }

    /// ARP teaches a MAC only from a sender on the receiving interface's subnet.
    @Test func arpOnlyFromTheInterfacesSubnet() {
        let e = Self.engine()
        // 192.168.1.31 is the RIP, but suppose the interface were 10.0.0.0/8 only: off-subnet.
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                         addresses: [(IPAddress("10.0.0.21")!, 8)])])
        _ = e.run(FrameBuilder.arpReply(senderMAC: FrameBuilder.attackerMAC, senderIP: "192.168.1.31", targetIP: "192.168.1.21"), at: second)
        #expect(Self.forwardedMAC(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .offSubnet) == 1)
        // On the subnet it is learnt (the control case).
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                         addresses: [(IPAddress("192.168.1.21")!, 24)])])
        _ = e.run(FrameBuilder.arpReply(senderMAC: rs2MAC, senderIP: "192.168.1.31", targetIP: "192.168.1.21"), at: second)
        #expect(Self.forwardedMAC(e, port: 2) == rs2MAC)
    }

    /// A frame from an interface lvsd does not serve teaches nothing.
    @Test func unknownInterfaceTeachesNothing() {
        let e = Self.engine()
        var arp = FrameBuilder.arpReply(senderMAC: FrameBuilder.attackerMAC, senderIP: "192.168.1.31", targetIP: "192.168.1.21")
        #expect(arp.withUnsafeMutableBytes { e.process($0, interface: 9, now: second) } == .pass)
        var na = FrameBuilder.neighbourDiscovery(src: "2001:db8:1::31", target: "2001:db8:1::31", linkLayer: FrameBuilder.attackerMAC)
        #expect(na.withUnsafeMutableBytes { e.process($0, interface: 9, now: second) } == .pass)
        #expect(Self.forwardedMAC(e, port: 1) == rs1MAC)
        #expect(Self.forwardedMAC6(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .unknownInterface) == 2)
    }

    /// Replies about addresses that are no real server's create nothing, and are counted.
    @Test func unsolicitedRepliesAboutStrangersAreNotKept() {
        let e = Self.engine()
        let before = e.lock.withLock { e.destsByAddress.count }
        for i in 1...50 {
            _ = e.run(FrameBuilder.arpReply(senderMAC: FrameBuilder.attackerMAC, senderIP: "192.168.1.\(100 + i)", targetIP: "192.168.1.21"), at: second)
            _ = e.run(FrameBuilder.neighbourDiscovery(src: "2001:db8:1::\(i)", target: "2001:db8:1::\(200 + i)",
                                                      linkLayer: FrameBuilder.attackerMAC), at: second)
        }
        #expect(e.lock.withLock { e.destsByAddress.count } == before)
        #expect(Self.ignored(e, .unknownAddress) == 100)
        // ARP requests from ordinary hosts, and ARP probes (sender 0.0.0.0), are not counted as anything.
        _ = e.run(FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.21"), at: second)
        _ = e.run(FrameBuilder.arpRequest(senderIP: "0.0.0.0", targetIP: "192.168.1.31"), at: second)
        #expect(Self.ignored(e, .unknownAddress) == 100)
        #expect(e.counters.neighbourIgnored.reduce(0, +) == 100)
    }

    /// Without the override flag an NA does not replace a known, different MAC (the kernel's rule).
    @Test func advertisementWithoutOverrideKeepsAKnownMAC() {
        let e = Self.engine()
        _ = e.run(FrameBuilder.neighbourDiscovery(src: "2001:db8:1::31", target: "2001:db8:1::31", linkLayer: FrameBuilder.attackerMAC,
                                                  flags: 0x40), at: second)
        #expect(Self.forwardedMAC6(e, port: 1) == rs1MAC)
        #expect(Self.ignored(e, .noOverride) == 1)
    }

    /// Valid solicitations for an IPv6 VIP are still answered; invalid ones are not.
    @Test func solicitationsForTheVIPAnsweredOnlyWhenValid() {
        let e = Self.engine()
        let ns = FrameBuilder.neighbourDiscovery(type: 135, src: "2001:db8:1::12", dst: "ff02::1:ff00:100",
                                                 target: "2001:db8:1::100", linkLayer: FrameBuilder.clientMAC)
        let (v, reply) = e.run(ns, at: second)
        #expect(v == .reply(length: 86))
        #expect(reply[54] == 136 && reply[21] == 255)
        let check = reply.withUnsafeBytes { p -> UInt16 in
            let s = InternetChecksum.sum(p.baseAddress! + 22, count: 32)
            return InternetChecksum.finish(InternetChecksum.sum(p.baseAddress! + 54, count: 32, initial: s &+ 32 &+ 58))
        }
        #expect(check == 0)
        let routed = FrameBuilder.neighbourDiscovery(type: 135, src: "2001:db8:1::12", dst: "ff02::1:ff00:100",
                                                     target: "2001:db8:1::100", linkLayer: FrameBuilder.clientMAC, hopLimit: 64)
        #expect(e.run(routed, at: second).0 == .pass)
    }

    /// Truncated and inconsistent ARP/ND frames of every length: no trap, no learning, no reply
    /// beyond the frame.
    @Test func truncatedNeighbourFramesNeverCrash() {
        let e = Self.engine()
        let frames = [
            FrameBuilder.arpReply(senderMAC: FrameBuilder.attackerMAC, senderIP: "192.168.1.31", targetIP: "192.168.1.21"),
            FrameBuilder.arpRequest(senderIP: "192.168.1.31", targetIP: "192.168.1.100"),
            FrameBuilder.neighbourDiscovery(src: "2001:db8:1::31", target: "2001:db8:1::31", linkLayer: FrameBuilder.attackerMAC),
            FrameBuilder.neighbourDiscovery(type: 135, src: "2001:db8:1::31", dst: "ff02::1:ff00:100",
                                            target: "2001:db8:1::100", linkLayer: FrameBuilder.attackerMAC),
        ]
        for frame in frames {
            for n in 0..<frame.count {
                var cut = Array(frame[0..<n])
                let v = cut.withUnsafeMutableBytes { e.process($0, interface: 2, now: second) }
                if case let .reply(length) = v { #expect(length <= n) }
                // Whole ND frames whose IPv6 payload length lies (longer or shorter than the message).
                guard frame[12] == 0x86 else { continue }
                var lying = frame
                lying[19] = UInt8(truncatingIfNeeded: n % 2 == 0 ? 33 + n : n % 32)
                let lv = lying.withUnsafeMutableBytes { e.process($0, interface: 2, now: second) }
                if case let .reply(length) = lv { #expect(length <= lying.count) }
            }
        }
        #expect(Self.forwardedMAC6(e, port: 1) == rs1MAC)
    }
}
