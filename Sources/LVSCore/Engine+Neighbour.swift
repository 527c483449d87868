import LVSModel

/// Why lvsd did not learn a real server's MAC from an ARP or neighbour discovery frame. Each
/// reason has its own counter (`EngineCounters.neighbourIgnored`); the frame itself still goes to
/// the kernel, which applies its own rules.
public enum NeighbourIgnoreReason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Received on an interface lvsd was not started with.
    case unknownInterface = 0
    /// ARP whose sender address is on none of the receiving interface's IPv4 subnets.
    case offSubnet
    /// ND with an IPv6 hop limit other than 255: it was routed, so it comes from off the link.
    case hopLimit
    /// ND with an ICMPv6 code other than 0.
    case badCode
    /// ND whose ICMPv6 checksum is wrong (or that is cut short by a fragment header).
    case badChecksum
    /// ND whose target or source is IPv4-mapped (`::ffff:a.b.c.d`): IPv4 neighbours come from ARP only.
    case ipv4Mapped
    /// An ARP reply or neighbour advertisement about an address that is no real server's.
    case unknownAddress
    /// An advertisement without the override flag for a real server whose MAC is known and different.
    case noOverride

    public var description: String {
        switch self {
        case .unknownInterface: return "unknown-interface"
        case .offSubnet: return "arp-off-subnet"
        case .hopLimit: return "nd-hop-limit"
        case .badCode: return "nd-code"
        case .badChecksum: return "nd-checksum"
        case .ipv4Mapped: return "nd-ipv4-mapped"
        case .unknownAddress: return "not-a-real-server"
        case .noOverride: return "nd-no-override"
        }
    }
}

/// Offsets and values in an Ethernet/IPv4 ARP packet (from the start of the ARP header).
enum ARPLayout {
    static let operation = 6
    static let senderMAC = 8
    static let senderIP = 14
    static let targetMAC = 18
    static let targetIP = 24
    static let request: UInt16 = 1
    static let reply: UInt16 = 2
}

/// Offsets and values in the IPv6 header.
enum IPv6Layout {
    static let hopLimit = 7
    static let sourceAddress = 8
    static let icmpv6: UInt8 = 58
    /// RFC 4861: every neighbour discovery message is sent with hop limit 255.
    static let neighbourHopLimit: UInt8 = 255
}

/// Offsets and values in ICMPv6 neighbour discovery messages (from the start of the ICMPv6 header).
enum ICMPv6Layout {
    static let neighbourSolicitation: UInt8 = 135
    static let neighbourAdvertisement: UInt8 = 136
    /// The R, S, O flags byte of an advertisement.
    static let advertisementFlags = 4
    static let overrideFlag: UInt8 = 0x20
    static let routerFlag: UInt8 = 0x80
}

/// A frame the engine wants sent on its own (ARP/ND request or announcement).
public struct OutgoingFrame: Sendable {
    public var interface: Int32
    public var bytes: [UInt8]
}

extension Engine {
    // MARK: ARP and neighbour discovery

    func interface(_ index: Int32) -> EngineInterface? { interfaces.first { $0.index == index } }

    /// Answers ARP requests for VIPs (those it owns, see `setOwned`), and learns a real server's MAC from ARP on the kernel's
    /// terms (see `learnFromARP`). Under the lock.
    func handleARP(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, interface ifindex: Int32) -> Verdict {
        learnFromARP(f, interface: ifindex)
        guard f.arpOperation == ARPLayout.request, configuration.answerNeighbourRequests, vips.contains(f.destination),
              !notOwnedAddresses.contains(f.destination), f.source != f.destination, let ifc = interface(ifindex) else { return .pass }
        // Turn the request into the reply in place.
        let p = frame.baseAddress!
        let l3 = f.l3Offset
        f.arpSenderMAC.store(to: p)           // Ethernet destination: the requester
        ifc.mac.store(to: p + 6)              // Ethernet source: us
        p.storeBytes(of: ARPLayout.reply.bigEndian, toByteOffset: l3 + ARPLayout.operation, as: UInt16.self)
        ifc.mac.store(to: p + l3 + ARPLayout.senderMAC)
        f.destination.store(to: p + l3 + ARPLayout.senderIP)   // the VIP
        f.arpSenderMAC.store(to: p + l3 + ARPLayout.targetMAC)
        f.source.store(to: p + l3 + ARPLayout.targetIP)
        return .reply(length: frame.count)
    }

    /// ARP teaches a MAC only when it comes in on one of lvsd's interfaces, its sender address is
    /// on one of that interface's IPv4 subnets, and that address is a real server's. Under the lock.
    func learnFromARP(_ f: ParsedFrame, interface ifindex: Int32) {
        guard f.source != .ipv4Zero else { return } // an ARP probe (address conflict detection) teaches nothing
        guard let ifc = interface(ifindex) else { return ignoreNeighbour(.unknownInterface) }
        guard f.source.isIPv4, ifc.contains(f.source) else { return ignoreNeighbour(.offSubnet) }
        guard destsByAddress[f.source] != nil || tunnel.viaNextHop[f.source] != nil else {
            // Requests from other hosts are ordinary traffic; a reply about a stranger is counted.
            if f.arpOperation == ARPLayout.reply { ignoreNeighbour(.unknownAddress) }
            return
        }
        learn(f.source, mac: f.arpSenderMAC, interface: ifindex)
    }

    /// Counts a neighbour message lvsd did not learn from. Under the lock.
    func ignoreNeighbour(_ r: NeighbourIgnoreReason) {
        neighbourIgnored[Int(r.rawValue)] &+= 1
    }

    /// Records a MAC for every destination whose next hop is this address (see `slotsLearning`). Under the lock.
    func learn(_ address: IPAddress, mac: MACAddress, interface ifindex: Int32) {
        guard mac != .zero, !mac.isMulticast else { return }
        for slot in slotsLearning(address) {
            dests[Int(slot)].mac = mac
            dests[Int(slot)].macKnown = true
            if let ifc = interface(ifindex) {
                dests[Int(slot)].interface = ifc.index
                dests[Int(slot)].sourceMAC = ifc.mac
            }
            publish(slot)
        }
    }

    /// Sets a destination's MAC directly (static neighbours, tests).
    public func setNeighbour(_ address: IPAddress, mac: MACAddress, interface: Int32) {
        lock.withLock { learn(address, mac: mac, interface: interface) }
    }

    /// Why a neighbour solicitation or advertisement must not be believed (the kernel's ndisc
    /// rules, RFC 4861 7.1.1/7.1.2), or nil. Under the lock.
    func ndRejection(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> NeighbourIgnoreReason? {
        let p = UnsafeRawPointer(frame.baseAddress!)
        let l3 = f.l3Offset
        // Hop limit 255: the message was not routed, its sender is on this link.
        guard p.load(fromByteOffset: l3 + IPv6Layout.hopLimit, as: UInt8.self) == IPv6Layout.neighbourHopLimit else { return .hopLimit }
        guard f.icmpCode == 0 else { return .badCode }
        // The ICMPv6 checksum over the pseudo-header and the whole message (the parser checked
        // that the datagram, and so the message, lies within the frame).
        let end = l3 + f.ipLength
        let length = end - f.l4Offset
        guard f.l4Offset > l3, length >= 24, end <= frame.count else { return .badChecksum }
        var s = InternetChecksum.sum(p + l3 + IPv6Layout.sourceAddress, count: 32)
        s = InternetChecksum.sum(p + f.l4Offset, count: length, initial: s &+ UInt32(length) &+ UInt32(IPv6Layout.icmpv6))
        guard InternetChecksum.finish(s) == 0 else { return .badChecksum }
        // IPv4 neighbours are learnt from ARP only.
        guard !f.ndTarget.isIPv4, !f.source.isIPv4 else { return .ipv4Mapped }
        return nil
    }

    func handleNeighbourDiscovery(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, interface ifindex: Int32) -> Verdict {
        if let reason = ndRejection(frame, f) {
            ignoreNeighbour(reason)
            return .pass // the kernel applies the same rules
        }
        guard let ifc = interface(ifindex) else {
            ignoreNeighbour(.unknownInterface)
            return .pass
        }
        if f.icmpType == ICMPv6Layout.neighbourAdvertisement {
            learnFromAdvertisement(frame, f, interface: ifindex)
            return .pass
        }
        // A solicitation from a real server carries its MAC (none from the unspecified address).
        if f.source != .zero, f.ndLinkLayer != .zero, destsByAddress[f.source] != nil {
            learn(f.source, mac: f.ndLinkLayer, interface: ifindex)
        }
        let needed = f.l3Offset + 40 + 32
        guard configuration.answerNeighbourRequests, vips.contains(f.ndTarget), !notOwnedAddresses.contains(f.ndTarget),
              f.ndLinkLayer != .zero, frame.count >= needed else { return .pass }
        let p = frame.baseAddress!
        let l3 = f.l3Offset
        f.ndLinkLayer.store(to: p)
        ifc.mac.store(to: p + 6)
        // IPv6 header: payload 32, next header 58, hop limit 255, src = target, dst = solicitor.
        p.storeBytes(of: UInt16(32).bigEndian, toByteOffset: l3 + 4, as: UInt16.self)
        p.storeBytes(of: UInt8(58), toByteOffset: l3 + 6, as: UInt8.self)
        p.storeBytes(of: UInt8(255), toByteOffset: l3 + 7, as: UInt8.self)
        f.ndTarget.store(to: p + l3 + 8)
        f.source.store(to: p + l3 + 24)
        let icmp = l3 + 40
        p.storeBytes(of: UInt32(0x8800_0000 | 0).bigEndian, toByteOffset: icmp, as: UInt32.self) // type 136, code 0, csum 0
        p.storeBytes(of: UInt32(0x6000_0000).bigEndian, toByteOffset: icmp + 4, as: UInt32.self)  // solicited, override
        f.ndTarget.store(to: p + icmp + 8)
        p.storeBytes(of: UInt16(0x0201).bigEndian, toByteOffset: icmp + 24, as: UInt16.self)   // target LLA option
        ifc.mac.store(to: p + icmp + 26)
        Self.storeICMPv6Checksum(p, l3: l3, length: 32)
        return .reply(length: needed)
    }

    /// A valid advertisement teaches the target's MAC when the target is a real server; without
    /// the override flag it does not replace a different MAC already known (the kernel's rule).
    func learnFromAdvertisement(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, interface ifindex: Int32) {
        guard f.ndLinkLayer != .zero else { return } // no target link-layer option: nothing to learn
        let slots = slotsLearning(f.ndTarget)
        guard !slots.isEmpty else { return ignoreNeighbour(.unknownAddress) }
        let flags = frame.load(fromByteOffset: f.l4Offset + ICMPv6Layout.advertisementFlags, as: UInt8.self)
        if flags & ICMPv6Layout.overrideFlag == 0,
           slots.contains(where: { dests[Int($0)].macKnown && dests[Int($0)].mac != f.ndLinkLayer }) {
            return ignoreNeighbour(.noOverride)
        }
        learn(f.ndTarget, mac: f.ndLinkLayer, interface: ifindex)
    }

    static func storeICMPv6Checksum(_ p: UnsafeMutableRawPointer, l3: Int, length: Int) {
        var s = InternetChecksum.sum(p + l3 + 8, count: 32)
        s = InternetChecksum.sum(p + l3 + 40, count: length, initial: s &+ UInt32(length) &+ 58)
        p.storeBytes(of: InternetChecksum.finish(s).bigEndian, toByteOffset: l3 + 42, as: UInt16.self)
    }

    /// Frames to send now: gratuitous announcements for new VIPs (those it owns), and neighbour requests for
    /// destinations whose MAC is unknown (every second until answered) or due for refresh (every 30 s).
    public func pendingFrames(now: UInt64) -> [OutgoingFrame] {
        lock.lock(); defer { lock.unlock() }
        var out: [OutgoingFrame] = []
        let t = Self.tick(now)
        for vip in pendingAnnouncements where configuration.answerNeighbourRequests && !notOwnedAddresses.contains(vip) {
            for ifc in interfaces { if let fr = Self.announcement(vip, ifc) { out.append(fr) } }
        }
        pendingAnnouncements.removeAll()
        for slot in 0..<destSlotsUsed where dests[slot].inUse && dests[slot].available {
            let d = dests[slot]
            let interval = (d.macKnown ? 30 : 1) * Self.ticksPerSecond
            if let last = neighbourRequested[UInt32(slot)], t &- last < interval { continue }
            guard let ifc = interface(d.interface) ?? interfaces.first else { continue }
            neighbourRequested[UInt32(slot)] = t
            if let fr = Self.solicitation(nextHop(UInt32(slot)), ifc) { out.append(fr) }
        }
        return out
    }

    /// Gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) for a VIP, byte for byte
    /// as keepalived sends them (vrrp_arp.c, vrrp_ndisc.c): an ARP request to the Ethernet broadcast
    /// with sender and target address the VIP and target MAC broadcast; an NA from the VIP to
    /// all-nodes with the override flag and the target link-layer option, and the router flag
    /// when `router` (keepalived sets it when the interface forwards IPv6).
    static func announcement(_ vip: IPAddress, _ ifc: EngineInterface, router: Bool = false) -> OutgoingFrame? {
        if vip.isIPv4 {
            return arpFrame(op: ARPLayout.request, from: ifc.mac, senderIP: vip, targetMAC: .broadcast, targetIP: vip,
                            ethDest: .broadcast, ifc.index)
        }
        // Unsolicited NA to all-nodes (ff02::1).
        var b = [UInt8](repeating: 0, count: 14 + 40 + 32)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            MACAddress(value: 0x3333_0000_0001).store(to: p)
            ifc.mac.store(to: p + 6)
            p.storeBytes(of: UInt16(0x86DD).bigEndian, toByteOffset: 12, as: UInt16.self)
            ipv6Header(p + 14, payload: 32, src: vip, dst: IPAddress(high: 0xFF02_0000_0000_0000, low: 1))
            p.storeBytes(of: UInt32(0x8800_0000).bigEndian, toByteOffset: 54, as: UInt32.self)
            let flags = UInt32(ICMPv6Layout.overrideFlag) << 24 | (router ? UInt32(ICMPv6Layout.routerFlag) << 24 : 0)
            p.storeBytes(of: flags.bigEndian, toByteOffset: 58, as: UInt32.self)
            vip.store(to: p + 62)
            p.storeBytes(of: UInt16(0x0201).bigEndian, toByteOffset: 78, as: UInt16.self)
            ifc.mac.store(to: p + 80)
            storeICMPv6Checksum(p, l3: 14, length: 32)
        }
        return OutgoingFrame(interface: ifc.index, bytes: b)
    }

    /// ARP request or neighbour solicitation for a real server's address.
    static func solicitation(_ target: IPAddress, _ ifc: EngineInterface) -> OutgoingFrame? {
        if target.isIPv4 {
            guard let src = ifc.addresses.first(where: { $0.0.isIPv4 && $0.0.masked(prefix: $0.1) == target.masked(prefix: $0.1) })?.0
                    ?? ifc.addresses.first(where: { $0.0.isIPv4 })?.0 else { return nil }
            return arpFrame(op: 1, from: ifc.mac, senderIP: src, targetMAC: .zero, targetIP: target, ethDest: .broadcast, ifc.index)
        }
        guard let src = ifc.addresses.first(where: { !$0.0.isIPv4 && ($0.0.high >> 48) == 0xFE80 })?.0
                ?? ifc.addresses.first(where: { !$0.0.isIPv4 })?.0 else { return nil }
        let solicited = IPAddress(high: 0xFF02_0000_0000_0000, low: 0x0000_0001_FF00_0000 | (target.low & 0xFF_FFFF))
        var b = [UInt8](repeating: 0, count: 14 + 40 + 32)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            MACAddress(value: 0x3333_0000_0000 | (solicited.low & 0xFFFF_FFFF)).store(to: p)
            ifc.mac.store(to: p + 6)
            p.storeBytes(of: UInt16(0x86DD).bigEndian, toByteOffset: 12, as: UInt16.self)
            ipv6Header(p + 14, payload: 32, src: src, dst: solicited)
            p.storeBytes(of: UInt32(0x8700_0000).bigEndian, toByteOffset: 54, as: UInt32.self)
            target.store(to: p + 62)
            p.storeBytes(of: UInt16(0x0101).bigEndian, toByteOffset: 78, as: UInt16.self) // source LLA option
            ifc.mac.store(to: p + 80)
            storeICMPv6Checksum(p, l3: 14, length: 32)
        }
        return OutgoingFrame(interface: ifc.index, bytes: b)
    }

    static func ipv6Header(_ p: UnsafeMutableRawPointer, payload: Int, src: IPAddress, dst: IPAddress) {
        p.storeBytes(of: UInt32(0x6000_0000).bigEndian, as: UInt32.self)
        p.storeBytes(of: UInt16(payload).bigEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: UInt8(58), toByteOffset: 6, as: UInt8.self)
        p.storeBytes(of: UInt8(255), toByteOffset: 7, as: UInt8.self)
        src.store(to: p + 8)
        dst.store(to: p + 24)
    }

    static func arpFrame(op: UInt16, from mac: MACAddress, senderIP: IPAddress, targetMAC: MACAddress, targetIP: IPAddress,
                         ethDest: MACAddress, _ ifindex: Int32) -> OutgoingFrame {
        var b = [UInt8](repeating: 0, count: 42)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            ethDest.store(to: p)
            mac.store(to: p + 6)
            p.storeBytes(of: UInt16(0x0806).bigEndian, toByteOffset: 12, as: UInt16.self)
            p.storeBytes(of: UInt16(1).bigEndian, toByteOffset: 14, as: UInt16.self)
            p.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 16, as: UInt16.self)
            p.storeBytes(of: UInt8(6), toByteOffset: 18, as: UInt8.self)
            p.storeBytes(of: UInt8(4), toByteOffset: 19, as: UInt8.self)
            p.storeBytes(of: op.bigEndian, toByteOffset: 20, as: UInt16.self)
            mac.store(to: p + 22)
            senderIP.store(to: p + 28)
            targetMAC.store(to: p + 32)
            targetIP.store(to: p + 38)
        }
        return OutgoingFrame(interface: ifindex, bytes: b)
    }

    /// Destinations that have not answered neighbour requests (for a once-per-destination log line).
    public func unresolvedDestinations() -> [(address: IPAddress, port: UInt16)] {
        lock.lock(); defer { lock.unlock() }
        return (0..<destSlotsUsed).compactMap { s in
            let d = dests[s]
            return d.inUse && d.available && !d.macKnown ? (d.address, d.port) : nil
        }
    }
}
