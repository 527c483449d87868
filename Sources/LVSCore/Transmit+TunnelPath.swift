import LVSModel

/// `ip_vs_tunnel_xmit(_v6)` on the packet path: TTL as for DR, the tunnel's MTU (ICMP "too big"
/// to the client, or outer fragments), then the frame encapsulated into the outbox.
extension EngineShard {
    /// Tunnels a frame of an existing or new connection to the destination `destSlot`, whose
    /// forwarding word `word` carries `Engine.flagTunnel` and its next hop's MAC. The frame
    /// leaves through the outbox, so the data plane gets `.drop(.tunnelled)`.
    func transmitTunnel(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, word: UInt64) -> Verdict {
        let p = frame.baseAddress!
        // Leave the Ethernet header as it came (the ICMP goes back to its source MAC); only the TTL.
        guard FrameRewriter.directRoute(frame, l3Offset: f.l3Offset, ipv6: f.kind == .ipv6, destinationMAC: MACAddress(bytes: p),
                                        sourceMAC: MACAddress(bytes: p + 6)) else {
            return drop(.ttlExceeded)
        }
        countIn(f, destSlot: destSlot)
        if f.isFirstFragment { fragments.remember(f, destSlot: ConnectionEntry.destWord(destSlot, .tunnel), now: currentTick) }
        if receiveGSOSize > 0 && f.proto == TCPLayout.protocolNumber {
            return tunnelSegments(frame, f, destSlot: destSlot, word: word)
        }
        if receiveChecksumStart >= 0 {
            // Left to offload by a local sender (veth): the real server must get it complete.
            FrameRewriter.completeChecksum(frame, start: receiveChecksumStart, offset: receiveChecksumOffset, udp: f.proto == 17)
        }
        return tunnelOut(frame, l3Offset: f.l3Offset, ipLength: f.ipLength, ipv6: f.kind == .ipv6,
                         laterFragment: f.isLaterFragment, icmpError: f.isICMPError, gso: receiveGSOSize > 0,
                         flowHash: Self.flowHash(f), destSlot: destSlot, word: word)
    }

    /// The MTU check and the encapsulation of a frame whose TTL is already decremented.
    func tunnelOut(_ frame: UnsafeMutableRawBufferPointer, l3Offset: Int, ipLength: Int, ipv6: Bool, laterFragment: Bool,
                   icmpError: Bool, gso: Bool = false, flowHash: UInt32, destSlot: UInt32, word: UInt64) -> Verdict {
        let config = tunnelWords.load(TunnelWord.index(destSlot, .config))
        guard config != 0, let type = TunnelType(rawValue: UInt8(truncatingIfNeeded: config) &- 1) else { return drop(.noDestination) }
        let tunnel = TunnelEncapsulation(
            type: type, flags: UInt8(truncatingIfNeeded: config >> TunnelWord.flagsShift),
            port: UInt16(truncatingIfNeeded: config >> TunnelWord.portShift),
            source: IPAddress(high: tunnelWords.load(TunnelWord.index(destSlot, .sourceHigh)),
                              low: tunnelWords.load(TunnelWord.index(destSlot, .sourceLow))),
            destination: IPAddress(high: tunnelWords.load(TunnelWord.index(destSlot, .destinationHigh)),
                                   low: tunnelWords.load(TunnelWord.index(destSlot, .destinationLow))))
        let linkMTU = Int(UInt32(truncatingIfNeeded: config >> TunnelWord.mtuShift))
        guard let mtu = tunnel.mtu(linkMTU: linkMTU) else { return drop(.tooBig) }
        let ifslot = Engine.interfaceSlot(ofForwarding: word)
        let egress = Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(InterfaceWord.index(ifslot, .ifindex))))
        let myMAC = MACAddress(value: interfaceTable.load(InterfaceWord.index(ifslot, .mac)))
        var fragmentOuter = false
        if ipLength > mtu && gso {
            // A GSO frame (a local sender's, or GRO's): its segments may fit, but lvsd does not
            // segment before encapsulating (yet); no ICMP, which would be wrong for them.
            return drop(.tooBig)
        }
        if ipLength > mtu && !icmpError {
            // `ensure_mtu_is_adequate`: IPv6 always, IPv4 with DF, gets "too big" (IPv6 only for
            // a first fragment); IPv4 without DF is sent in outer fragments.
            let p = UnsafeRawPointer(frame.baseAddress!)
            if ipv6 || FrameRewriter.dontFragment(p, l3Offset: l3Offset) {
                if !(ipv6 && laterFragment) { sendTooBig(p, l3Offset: l3Offset, ipLength: ipLength, ipv6: ipv6, mtu: mtu) }
                return drop(.tooBig)
            }
            // IPv4 without DF to an IPv6 real server: the kernel sends outer IPv6 fragments;
            // lvsd does not write IPv6 fragments (yet), and no ICMP fits this case.
            guard tunnel.destination.isIPv4 else { return drop(.tooBig) }
            fragmentOuter = true
        }
        ipIdentification &+= 1
        let total = TunnelLayout.ethernetHeader + tunnel.overhead + ipLength
        if !fragmentOuter {
            guard let out = outbox.reserve(length: total, interface: egress) else { return drop(.tooBig) }
            _ = FrameRewriter.encapsulate(frame.baseAddress!, l3Offset: l3Offset, ipLength: ipLength, tunnel: tunnel,
                                          destinationMAC: MACAddress(value: word), sourceMAC: myMAC, ipID: ipIdentification,
                                          flowHash: flowHash, output: out, capacity: total)
        } else {
            let n = FrameRewriter.encapsulate(frame.baseAddress!, l3Offset: l3Offset, ipLength: ipLength, tunnel: tunnel,
                                              destinationMAC: MACAddress(value: word), sourceMAC: myMAC, ipID: ipIdentification,
                                              flowHash: flowHash, output: tunnelScratch, capacity: Outbox.slotSize)
            guard n > 0, outbox.sendFragments(UnsafeRawBufferPointer(start: tunnelScratch, count: n), mtu: linkMTU, interface: egress) else {
                return drop(.tooBig)
            }
        }
        counters.bump(ShardCounter.forwarded.rawValue, by: 1)
        return .drop(.tunnelled)
    }

    /// A TCP GSO frame (a local sender's TSO, or GRO): cut into its segments as the kernel's GSO
    /// would after encapsulating, each one tunnelled (checked against the tunnel's MTU) on its own.
    func tunnelSegments(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, word: UInt64) -> Verdict {
        let hash = Self.flowHash(f)
        var index = 0
        while true {
            let n = FrameRewriter.segmentTCP(frame.baseAddress!, l3Offset: f.l3Offset, ipLength: f.ipLength, ipv6: f.kind == .ipv6,
                                             segmentSize: receiveGSOSize, index: index, output: tunnelScratch,
                                             capacity: Outbox.slotSize)
            guard n > 0 else { break }
            let segment = UnsafeMutableRawBufferPointer(start: tunnelScratch, count: n)
            let v = tunnelOut(segment, l3Offset: f.l3Offset, ipLength: n - f.l3Offset, ipv6: f.kind == .ipv6, laterFragment: false,
                              icmpError: false, flowHash: hash, destSlot: destSlot, word: word)
            if v != .drop(.tunnelled) { return v }
            index += 1
        }
        return index > 0 ? .drop(.tunnelled) : drop(.tooBig)
    }

    /// A held frame of a tunnel destination whose next hop's MAC is now known (`releaseHeldFrames`).
    func releaseTunnelled(_ frame: UnsafeMutableRawBufferPointer, destSlot: UInt32, word: UInt64) {
        var f = ParsedFrame()
        FrameParser.parse(UnsafeRawBufferPointer(frame), into: &f)
        let p = frame.baseAddress!
        guard f.kind == .ipv4 || f.kind == .ipv6,
              FrameRewriter.directRoute(frame, l3Offset: f.l3Offset, ipv6: f.kind == .ipv6, destinationMAC: MACAddress(bytes: p),
                                        sourceMAC: MACAddress(bytes: p + 6)) else {
            counters.bump(ShardCounter.drop(.ttlExceeded), by: 1)
            return
        }
        _ = tunnelOut(frame, l3Offset: f.l3Offset, ipLength: f.ipLength, ipv6: f.kind == .ipv6, laterFragment: f.isLaterFragment,
                      icmpError: f.isICMPError, flowHash: Self.flowHash(f), destSlot: destSlot, word: word)
    }

    /// ICMP fragmentation needed / ICMPv6 packet too big to the client, rate-limited with the
    /// other ICMP errors.
    func sendTooBig(_ frame: UnsafeRawPointer, l3Offset: Int, ipLength: Int, ipv6: Bool, mtu: Int) {
        guard takeICMPBudget(), let ifslot = interfaceSlot(ingressInterface) else { return }
        let myMAC = MACAddress(value: interfaceTable.load(InterfaceWord.index(ifslot, .mac)))
        let limit = (ipv6 ? TooBigLayout.icmpv6Limit : TooBigLayout.icmpLimit) + TunnelLayout.ethernetHeader
        guard let out = outbox.reserve(length: limit, interface: ingressInterface) else { return }
        let n = FrameRewriter.tooBig(frame, l3Offset: l3Offset, ipLength: ipLength, ipv6: ipv6, mtu: mtu, sourceMAC: myMAC,
                                     output: out, capacity: limit)
        outbox.shrinkLast(to: n)
    }

    /// A hash of the client's flow for the GUE source port (the kernel's `skb_get_hash`: one
    /// flow, one port).
    @inline(__always) static func flowHash(_ f: ParsedFrame) -> UInt32 {
        var h = UInt64(f.source.words.3) &* 0x9E37_79B9_7F4A_7C15
        h ^= UInt64(f.source.words.2) &+ UInt64(f.sourcePort) << 16 &+ UInt64(f.destinationPort) &+ UInt64(f.proto) << 32
        h = (h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
        h ^= UInt64(f.destination.words.3)
        h = (h ^ (h >> 32)) &* 0x94D0_49BB_1331_11EB
        return UInt32(truncatingIfNeeded: h ^ (h >> 31))
    }
}

extension Outbox {
    /// Gives back the unused end of the last reserved slot (0: the slot is given back).
    mutating func shrinkLast(to length: Int) {
        guard count > 0 else { return }
        if length == 0 { count -= 1 } else { lengths[count - 1] = min(lengths[count - 1], length) }
    }

    /// Queues an encapsulated IPv4 frame in fragments of at most `mtu` bytes (outer header,
    /// `FrameRewriter.fragmentIPv4`); false when they do not fit in the box.
    mutating func sendFragments(_ frame: UnsafeRawBufferPointer, mtu: Int, interface: Int32) -> Bool {
        let free = capacity - count
        guard free > 0 else { return false }
        let first = storage + count * Self.slotSize
        let lengthsOut = lengths + count
        let n = FrameRewriter.fragmentIPv4(frame, l3Offset: TunnelLayout.ethernetHeader, mtu: mtu, output: first,
                                           slotSize: Self.slotSize, maxFragments: free, lengths: lengthsOut)
        guard n > 0 else { return false }
        for k in 0..<n { interfaces[count + k] = interface }
        count += n
        return true
    }
}
