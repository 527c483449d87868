import LVSModel

/// In-place rewrites of a frame.
public enum FrameRewriter {
    /// The DR rewrite: destination MAC = real server, source MAC = director; TTL/hop limit
    /// decremented as the kernel does since 4.10 (IPv4 checksum updated incrementally, RFC 1624).
    /// Returns false (frame untouched) when the TTL would expire.
    @inlinable public static func directRoute(_ frame: UnsafeMutableRawBufferPointer, l3Offset: Int, ipv6: Bool,
                                              destinationMAC: MACAddress, sourceMAC: MACAddress) -> Bool {
        let p = frame.baseAddress!
        if ipv6 {
            let hop = p.load(fromByteOffset: l3Offset + 7, as: UInt8.self)
            guard hop > 1 else { return false }
            p.storeBytes(of: hop - 1, toByteOffset: l3Offset + 7, as: UInt8.self)
        } else {
            let ttl = p.load(fromByteOffset: l3Offset + 8, as: UInt8.self)
            guard ttl > 1 else { return false }
            p.storeBytes(of: ttl - 1, toByteOffset: l3Offset + 8, as: UInt8.self)
            // TTL is the high byte of the 16-bit word at offset 8: the word drops by 0x0100,
            // so the one's-complement checksum rises by 0x0100 (with end-around carry).
            let old = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: l3Offset + 10, as: UInt16.self))
            var sum = UInt32(old) + 0x0100
            sum = (sum & 0xFFFF) + (sum >> 16)
            p.storeBytes(of: UInt16(truncatingIfNeeded: sum).bigEndian, toByteOffset: l3Offset + 10, as: UInt16.self)
        }
        destinationMAC.store(to: p)
        sourceMAC.store(to: p + 6)
        return true
    }
}

/// Transmit (the kernel's ip_vs_xmit.c): the DR rewrite and its counters, frames held until a
/// real server's MAC is known, and the ICMP port unreachable for a client nothing can take.
extension EngineShard {
    /// Counts, rewrites and forwards a frame to a destination whose forwarding word is `word`,
    /// by `method` (the connection's).
    @inline(__always) func transmit(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, word: UInt64,
                                    method: ConnectionMethod) -> Verdict {
        switch method {
        case .directRoute: return forward(frame, f, destSlot: destSlot, word: word)
        case .tunnel: return transmitTunnelled(frame, f, destSlot: destSlot, word: word)
        case .masquerade: return transmitNAT(frame, f, destSlot: destSlot, word: word)
        }
    }

    /// The first frame of a new connection (or a one-packet datagram), by its destination's
    /// method (the one the connection takes). Under the engine lock.
    func transmitNew(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32) -> Verdict {
        let word = forwarding.load(Int(destSlot))
        return transmit(frame, f, destSlot: destSlot, word: word, method: ConnectionMethod(forwarding: word))
    }

    /// The MAC rewrite (DR, and NAT after its address rewrite: `method`, which a first fragment's
    /// later ones take), counters, held frames.
    @inline(__always) func forward(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, word: UInt64,
                                   method: ConnectionMethod = .directRoute) -> Verdict {
        guard word & Engine.flagMACKnown != 0 else { return hold(frame, f, destSlot: destSlot, method: .directRoute) }
        return send(frame, f, hop: word, destSlot: destSlot, packets: .inPackets, bytes: .inBytes, remembersFragment: true, method: method)
    }

    /// A tunnel connection's frame: held until the next hop's MAC is known, then encapsulated.
    func transmitTunnelled(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, word: UInt64) -> Verdict {
        guard word & Engine.flagMACKnown != 0 else { return hold(frame, f, destSlot: destSlot, method: .tunnel) }
        return transmitTunnel(frame, f, destSlot: destSlot, word: word)
    }

    /// Sends a frame to `hop` (a MAC and an interface slot, as in a forwarding word): TTL and
    /// MACs as DR sets them, counted on the destination and its service in `packets`/`bytes`
    /// (in for the client's packets, out for NAT replies). A first fragment's destination and
    /// `method` are remembered for the later ones when `remembersFragment`.
    @inline(__always) func send(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, hop: UInt64, destSlot: UInt32,
                                packets: StatsWord, bytes: StatsWord, remembersFragment: Bool,
                                method: ConnectionMethod = .directRoute) -> Verdict {
        let ifslot = Engine.interfaceSlot(ofForwarding: hop)
        guard FrameRewriter.directRoute(frame, l3Offset: f.l3Offset, ipv6: f.kind == .ipv6,
                                        destinationMAC: MACAddress(value: hop),
                                        sourceMAC: MACAddress(value: interfaceTable.load(InterfaceWord.index(ifslot, .mac)))) else {
            return drop(.ttlExceeded)
        }
        count(f, destSlot: destSlot, packets: packets, bytes: bytes)
        counters.bump(ShardCounter.forwarded.rawValue, by: 1)
        if remembersFragment && f.isFirstFragment {
            fragments.remember(f, destSlot: ConnectionEntry.destWord(destSlot, method), now: currentTick)
        }
        return .forward(interface: Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(InterfaceWord.index(ifslot, .ifindex)))))
    }

    /// Counts a frame into its destination's and service's input statistics.
    @inline(__always) func countIn(_ f: ParsedFrame, destSlot: UInt32) {
        count(f, destSlot: destSlot, packets: .inPackets, bytes: .inBytes)
    }

    /// Counts a frame into its destination's and service's statistics `packets` and `bytes`.
    @inline(__always) func count(_ f: ParsedFrame, destSlot: UInt32, packets: StatsWord, bytes: StatsWord) {
        let length = UInt64(f.ipLength)
        destCounters.bump(StatsWord.index(Int(destSlot), packets), by: 1)
        destCounters.bump(StatsWord.index(Int(destSlot), bytes), by: length)
        let svc = destService.load(Int(destSlot))
        if svc != Engine.noService {
            serviceCounters.bump(StatsWord.index(Int(svc), packets), by: 1)
            serviceCounters.bump(StatsWord.index(Int(svc), bytes), by: length)
        }
    }

    // MARK: Frames waiting for a MAC, ICMP errors

    /// Keeps a copy of a frame whose real server's MAC is not known yet (the first packet after
    /// a destination is added); `tick` sends it once the MAC is learnt, or drops it after 1 s.
    /// `method`: how it is sent then (a NAT frame is held rewritten, and sent as DR).
    func hold(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, method: ConnectionMethod) -> Verdict {
        guard heldCount < Self.heldCapacity, frame.count <= Outbox.slotSize, f.ipLength + f.l3Offset <= Outbox.slotSize else {
            return drop(.neighbourUnresolved)
        }
        (heldFrames + heldCount * Outbox.slotSize).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
        held[heldCount] = HeldFrame(destSlot: destSlot, length: frame.count, l3Offset: f.l3Offset, ipv6: f.kind == .ipv6,
                                    deadline: currentTick &+ Engine.ticksPerSecond, method: method)
        heldCount += 1
        counters.bump(ShardCounter.held.rawValue, by: 1)
        return .drop(.neighbourUnresolved)
    }

    func releaseHeldFrames(tick: UInt32) {
        var kept = 0
        for i in 0..<heldCount {
            let h = held[i]
            let word = forwarding.load(Int(h.destSlot))
            let frame = heldFrames + i * Outbox.slotSize
            if word & Engine.flagMACKnown != 0 && word & Engine.flagAvailable != 0 {
                let ifslot = Engine.interfaceSlot(ofForwarding: word)
                let buffer = UnsafeMutableRawBufferPointer(start: frame, count: h.length)
                if h.method == .tunnel {
                    releaseTunnelled(buffer, destSlot: h.destSlot, word: word)
                    continue
                }
                if FrameRewriter.directRoute(buffer, l3Offset: h.l3Offset, ipv6: h.ipv6, destinationMAC: MACAddress(value: word),
                                             sourceMAC: MACAddress(value: interfaceTable.load(InterfaceWord.index(ifslot, .mac)))),
                   let out = outbox.reserve(length: h.length, interface: Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(InterfaceWord.index(ifslot, .ifindex))))) {
                    out.copyMemory(from: frame, byteCount: h.length)
                    counters.bump(ShardCounter.forwarded.rawValue, by: 1)
                    continue
                }
            } else if Int32(bitPattern: h.deadline &- tick) > 0 {
                if kept != i {
                    held[kept] = h
                    (heldFrames + kept * Outbox.slotSize).copyMemory(from: frame, byteCount: h.length)
                }
                kept += 1
                continue
            }
            counters.bump(ShardCounter.drop(.neighbourUnresolved), by: 1)
        }
        heldCount = kept
    }

    /// ICMP (or ICMPv6) port unreachable from the VIP to the client, as the kernel's `ip_vs_leave`
    /// answers a packet no real server can take. Rate-limited to `icmpPerSecond`.
    func sendPortUnreachable(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, interface: Int32) {
        guard takeICMPBudget(), let ifslot = interfaceSlot(interface) else { return }
        let myMAC = MACAddress(value: interfaceTable.load(InterfaceWord.index(ifslot, .mac)))
        let p = frame.baseAddress!
        let l3 = f.l3Offset
        let ipv6 = f.kind == .ipv6
        // Quote the original datagram: IPv4 header + 8 bytes; IPv6 as much as fits in 1280 bytes.
        let quote = ipv6 ? min(f.ipLength, 1280 - 48) : min(f.ipLength, Int(p.load(fromByteOffset: l3, as: UInt8.self) & 0x0F) * 4 + 8)
        let ipHeader = ipv6 ? 40 : 20
        let length = 14 + ipHeader + 8 + quote
        guard let out = outbox.reserve(length: length, interface: interface) else { return }
        out.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        MACAddress(bytes: p + 6).store(to: out)          // to the client's MAC
        myMAC.store(to: out + 6)
        out.storeBytes(of: (ipv6 ? FrameParser.etherTypeIPv6 : FrameParser.etherTypeIPv4).bigEndian, toByteOffset: 12, as: UInt16.self)
        let ip = out + 14
        let icmp = ip + ipHeader
        (icmp + 8).copyMemory(from: p + l3, byteCount: quote)
        if ipv6 {
            Engine.ipv6Header(ip, payload: 8 + quote, src: f.destination, dst: f.source)
            ip.storeBytes(of: UInt8(64), toByteOffset: 7, as: UInt8.self)
            icmp.storeBytes(of: UInt8(1), as: UInt8.self)      // destination unreachable
            icmp.storeBytes(of: UInt8(4), toByteOffset: 1, as: UInt8.self) // port unreachable
            Engine.storeICMPv6Checksum(out, l3: 14, length: 8 + quote)
        } else {
            ip.storeBytes(of: UInt8(0x45), as: UInt8.self)
            ip.storeBytes(of: UInt16(20 + 8 + quote).bigEndian, toByteOffset: 2, as: UInt16.self)
            ip.storeBytes(of: UInt8(64), toByteOffset: 8, as: UInt8.self)
            ip.storeBytes(of: UInt8(1), toByteOffset: 9, as: UInt8.self)
            f.destination.store(to: ip + 12)
            f.source.store(to: ip + 16)
            ip.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(ip, count: 20)).bigEndian, toByteOffset: 10, as: UInt16.self)
            icmp.storeBytes(of: UInt8(3), as: UInt8.self)
            icmp.storeBytes(of: UInt8(3), toByteOffset: 1, as: UInt8.self)
            icmp.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(icmp, count: 8 + quote)).bigEndian, toByteOffset: 2, as: UInt16.self)
        }
    }

    /// Takes one ICMP error from this second's budget (`icmpPerSecond`); false when spent.
    func takeICMPBudget() -> Bool {
        if currentTick &- icmpBudgetTick >= Engine.ticksPerSecond {
            icmpBudgetTick = currentTick
            icmpBudget = Self.icmpPerSecond
        }
        guard icmpBudget > 0 else { return false }
        icmpBudget -= 1
        return true
    }

    func interfaceSlot(_ ifindex: Int32) -> Int? {
        for i in 0..<Engine.maxInterfaces where interfaceTable.load(InterfaceWord.index(i, .ifindex)) == UInt64(UInt32(bitPattern: ifindex))
            && interfaceTable.load(InterfaceWord.index(i, .mac)) != 0 {
            return i
        }
        return nil
    }
}
