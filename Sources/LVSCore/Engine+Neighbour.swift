/// A frame the engine wants sent on its own (ARP/ND request or announcement).
public struct OutgoingFrame: Sendable {
    public var interface: Int32
    public var bytes: [UInt8]
}

extension Engine {
    // MARK: ARP and neighbour discovery

    func interface(_ index: Int32) -> EngineInterface? { interfaces.first { $0.index == index } }

    /// Learns real-server MACs from ARP traffic and answers requests for VIPs. Under the lock.
    func handleARP(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, interface ifindex: Int32) -> Verdict {
        learn(f.source, mac: f.arpSenderMAC, interface: ifindex)
        guard f.arpOperation == 1, configuration.answerNeighbourRequests, vips.contains(f.destination),
              f.source != f.destination, let ifc = interface(ifindex) else { return .pass }
        // Turn the request into the reply in place.
        let p = frame.baseAddress!
        let l3 = f.l3Offset
        f.arpSenderMAC.store(to: p)           // Ethernet destination: the requester
        ifc.mac.store(to: p + 6)              // Ethernet source: us
        p.storeBytes(of: UInt16(2).bigEndian, toByteOffset: l3 + 6, as: UInt16.self)
        ifc.mac.store(to: p + l3 + 8)         // sender hardware address
        f.destination.store(to: p + l3 + 14)  // sender protocol address: the VIP
        f.arpSenderMAC.store(to: p + l3 + 18) // target hardware address
        f.source.store(to: p + l3 + 24)       // target protocol address
        return .reply(length: frame.count)
    }

    /// Records a MAC for every destination with this address. Under the lock.
    func learn(_ address: IPAddress, mac: MACAddress, interface ifindex: Int32) {
        guard mac != .zero, !mac.isMulticast, let slots = destsByAddress[address] else { return }
        for slot in slots {
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

    func handleNeighbourDiscovery(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, interface ifindex: Int32) -> Verdict {
        if f.icmpType == 136 {
            learn(f.ndTarget, mac: f.ndLinkLayer, interface: ifindex)
            return .pass
        }
        if f.source != .zero { learn(f.source, mac: f.ndLinkLayer, interface: ifindex) }
        let needed = f.l3Offset + 40 + 32
        guard configuration.answerNeighbourRequests, vips.contains(f.ndTarget), f.ndLinkLayer != .zero,
              frame.count >= needed, let ifc = interface(ifindex) else { return .pass }
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

    static func storeICMPv6Checksum(_ p: UnsafeMutableRawPointer, l3: Int, length: Int) {
        var s = InternetChecksum.sum(p + l3 + 8, count: 32)
        s = InternetChecksum.sum(p + l3 + 40, count: length, initial: s &+ UInt32(length) &+ 58)
        p.storeBytes(of: InternetChecksum.finish(s).bigEndian, toByteOffset: l3 + 42, as: UInt16.self)
    }

    /// Frames to send now: gratuitous announcements for new VIPs, and neighbour requests for
    /// destinations whose MAC is unknown (every second until answered) or due for refresh (every 30 s).
    public func pendingFrames(now: UInt64) -> [OutgoingFrame] {
        lock.lock(); defer { lock.unlock() }
        var out: [OutgoingFrame] = []
        let t = Self.tick(now)
        for vip in pendingAnnouncements where configuration.answerNeighbourRequests {
            for ifc in interfaces { if let fr = Self.announcement(vip, ifc) { out.append(fr) } }
        }
        pendingAnnouncements.removeAll()
        for slot in 0..<destSlotsUsed where dests[slot].inUse && dests[slot].available {
            let d = dests[slot]
            let interval = (d.macKnown ? 30 : 1) * Self.ticksPerSecond
            if let last = neighbourRequested[UInt32(slot)], t &- last < interval { continue }
            guard let ifc = interface(d.interface) ?? interfaces.first else { continue }
            neighbourRequested[UInt32(slot)] = t
            if let fr = Self.solicitation(d.address, ifc) { out.append(fr) }
        }
        return out
    }

    /// Gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) for a VIP.
    static func announcement(_ vip: IPAddress, _ ifc: EngineInterface) -> OutgoingFrame? {
        if vip.isIPv4 {
            return arpFrame(op: 1, from: ifc.mac, senderIP: vip, targetMAC: .zero, targetIP: vip, ethDest: .broadcast, ifc.index)
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
            p.storeBytes(of: UInt32(0x2000_0000).bigEndian, toByteOffset: 58, as: UInt32.self) // override
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
