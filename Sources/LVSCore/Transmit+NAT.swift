import LVSModel

/// Offsets used by the NAT rewrite (from the L3 or L4 header, or the ICMP header).
enum NATLayout {
    static let ipv4Checksum = 10
    static let ipv4Source = 12
    static let ipv4Destination = 16
    static let ipv6Source = 8
    static let ipv6Destination = 24
    static let sourcePort = 0
    static let destinationPort = 2
    static let tcpChecksum = 16
    static let udpChecksum = 6
    static let sctpChecksum = 8
    static let icmpChecksum = 2
    /// The embedded (quoted) IP header of an ICMP error starts after the 8-byte ICMP header.
    static let icmpQuote = 8
    static let ipv6HeaderLength = 40
}

/// The address and port rewrites of masquerading (the kernel's `ip_vs_nat_xmit` and the
/// protocols' `dnat_handler`/`snat_handler`, `ip_vs_nat_icmp`), in place, checksums updated
/// incrementally (RFC 1624) where the kernel does, recomputed where it does.
public enum NATRewriter {
    @inline(__always) static func fold(_ s: UInt32) -> UInt32 {
        var v = (s & 0xFFFF) &+ (s >> 16)
        v = (v & 0xFFFF) &+ (v >> 16)
        return v
    }

    /// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), `old` and `new` the one's-complement sums of the
    /// replaced and the new 16-bit words.
    @inline(__always) static func adjusted(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        let s = UInt32(~checksum) &+ (~fold(old) & 0xFFFF) &+ fold(new)
        return ~UInt16(truncatingIfNeeded: fold(s))
    }

    @inline(__always) static func load16(_ p: UnsafeMutableRawPointer, _ o: Int) -> UInt16 {
        UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }

    @inline(__always) static func store16(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt16) {
        p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt16.self)
    }

    @inline(__always) static func adjust(_ p: UnsafeMutableRawPointer, at o: Int, old: UInt32, new: UInt32) {
        store16(p, o, adjusted(load16(p, o), old: old, new: new))
    }

    /// Writes `a` at `p + o`: 16 bytes in an IPv6 header, 4 in an IPv4 header. Returns the
    /// one's-complement sums of the old and the new bytes.
    @inline(__always) static func replaceAddress(_ p: UnsafeMutableRawPointer, at o: Int, with a: IPAddress, ipv6: Bool) -> (old: UInt32, new: UInt32) {
        let length = ipv6 ? 16 : 4
        let old = InternetChecksum.sum(p + o, count: length)
        if ipv6 {
            p.storeBytes(of: a.high.bigEndian, toByteOffset: o, as: UInt64.self)
            p.storeBytes(of: a.low.bigEndian, toByteOffset: o + 8, as: UInt64.self)
        } else {
            p.storeBytes(of: a.ipv4Value.bigEndian, toByteOffset: o, as: UInt32.self)
        }
        return (old, InternetChecksum.sum(p + o, count: length))
    }

    /// Rewrites one side of a datagram: the address at L3 offset `addressField` (a `NATLayout`
    /// source or destination field) to `address`, and the L4 port at `portField` to `port`, with
    /// the IPv4 header checksum and the TCP/UDP checksum (pseudo-header included) adjusted, and
    /// SCTP's CRC32c recomputed. A later fragment has no L4 header: only its address changes.
    static func rewrite(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, addressField: Int, portField: Int,
                        address: IPAddress, port: UInt16) {
        let p = frame.baseAddress!
        let ipv6 = f.kind == .ipv6
        let sums = replaceAddress(p, at: f.l3Offset + addressField, with: address, ipv6: ipv6)
        if !ipv6 { adjust(p, at: f.l3Offset + NATLayout.ipv4Checksum, old: sums.old, new: sums.new) }
        guard f.hasPorts && !f.isLaterFragment else { return }
        let l4 = f.l4Offset
        let oldPort = load16(p, l4 + portField)
        store16(p, l4 + portField, port)
        let old = sums.old &+ UInt32(oldPort), new = sums.new &+ UInt32(port)
        switch f.proto {
        case 6:
            adjust(p, at: l4 + NATLayout.tcpChecksum, old: old, new: new)
        case 17:
            // An IPv4 UDP checksum of 0 means "none" and stays so; a computed 0 is sent as 0xFFFF.
            let c = load16(p, l4 + NATLayout.udpChecksum)
            if c != 0 || ipv6 {
                let n = adjusted(c, old: old, new: new)
                store16(p, l4 + NATLayout.udpChecksum, n == 0 ? 0xFFFF : n)
            }
        case 132:
            // The CRC covers the whole packet: not computable from a first fragment alone.
            if !f.isFirstFragment { SCTPChecksum.store(p + l4, length: f.l3Offset + f.ipLength - l4) }
        default:
            break
        }
    }

    /// Translates an ICMP(v6) error about a NAT connection (`ip_vs_nat_icmp`): the outer address
    /// at `outerField` and the quoted header's address at `innerField` become `address`, the
    /// quoted port at `innerPortField` becomes `port` (when the quote holds the ports); the quoted
    /// IPv4 header checksum, the ICMP checksum and the outer IPv4 checksum are recomputed. The
    /// quoted L4 checksum is left as it is, as the kernel leaves it.
    static func translateICMP(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, outerField: Int, innerField: Int,
                              innerPortField: Int, address: IPAddress, port: UInt16) {
        let p = frame.baseAddress!
        let ipv6 = f.kind == .ipv6
        let l3 = f.l3Offset
        let end = l3 + f.ipLength
        let sums = replaceAddress(p, at: l3 + outerField, with: address, ipv6: ipv6)
        if !ipv6 { adjust(p, at: l3 + NATLayout.ipv4Checksum, old: sums.old, new: sums.new) }
        let inner = f.l4Offset + NATLayout.icmpQuote
        _ = replaceAddress(p, at: inner + innerField, with: address, ipv6: ipv6)
        let transport: Int
        if ipv6 {
            transport = inner + NATLayout.ipv6HeaderLength
        } else {
            // The parser checked that the quoted header (ihl bytes) lies within the datagram.
            let ihl = Int(p.load(fromByteOffset: inner, as: UInt8.self) & 0x0F) * 4
            store16(p, inner + NATLayout.ipv4Checksum, 0)
            store16(p, inner + NATLayout.ipv4Checksum, InternetChecksum.finish(InternetChecksum.sum(p + inner, count: ihl)))
            transport = inner + ihl
        }
        if (f.innerProto == 6 || f.innerProto == 17 || f.innerProto == 132) && transport + 4 <= end {
            store16(p, transport + innerPortField, port)
        }
        let icmp = f.l4Offset
        store16(p, icmp + NATLayout.icmpChecksum, 0)
        var s: UInt32 = 0
        if ipv6 {
            // The pseudo-header: both addresses, the upper-layer length, next header 58.
            s = InternetChecksum.sum(p + l3 + NATLayout.ipv6Source, count: 32)
            s = s &+ UInt32(end - icmp) &+ UInt32(IPv6Layout.icmpv6)
        }
        s = InternetChecksum.sum(p + icmp, count: end - icmp, initial: fold(s))
        store16(p, icmp + NATLayout.icmpChecksum, InternetChecksum.finish(s))
    }
}

/// SCTP's CRC32c (RFC 4960 appendix B, reflected polynomial 0x82F63B78), for a rewritten port.
enum SCTPChecksum {
    static let polynomial: UInt32 = 0x82F6_3B78
    /// The byte-wise table; `nonisolated(unsafe)`: written only by its one-time initialiser.
    nonisolated(unsafe) static let table: UnsafeMutablePointer<UInt32> = {
        let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ polynomial : c >> 1 }
            t[i] = c
        }
        return t
    }()

    /// Computes the CRC of the `length`-byte SCTP packet at `p` and stores it (checksum field
    /// zero while computing; stored in the byte order RFC 4960 gives, least significant first).
    static func store(_ p: UnsafeMutableRawPointer, length: Int) {
        p.storeBytes(of: UInt32(0), toByteOffset: NATLayout.sctpChecksum, as: UInt32.self)
        p.storeBytes(of: crc(p, length: length).littleEndian, toByteOffset: NATLayout.sctpChecksum, as: UInt32.self)
    }

    /// CRC32c of `length` bytes at `p`.
    static func crc(_ p: UnsafeRawPointer, length: Int) -> UInt32 {
        let t = table
        var c: UInt32 = 0xFFFF_FFFF
        for i in 0..<length {
            c = t[Int((c ^ UInt32(p.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
        }
        return ~c
    }
}

/// The client → real server direction of masquerading.
extension EngineShard {
    /// The real server of NAT destination `slot` (address, and port: 0 keeps the packet's port).
    @inline(__always) func natTarget(_ slot: UInt32) -> (address: IPAddress, port: UInt16) {
        let t = engine.natTargets
        return (IPAddress(high: t.load(NATTargetWord.index(slot, .addressHigh)), low: t.load(NATTargetWord.index(slot, .addressLow))),
                UInt16(truncatingIfNeeded: t.load(NATTargetWord.index(slot, .port))))
    }

    /// Rewrites a client's packet for NAT destination `destSlot`: destination address and port
    /// to the real server's; an ICMP error about the connection gets its quoted source (the VIP)
    /// rewritten too. The MACs and TTL are then set as for DR (`transmit`).
    @inline(__always)
    func masquerade(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32) {
        let t = natTarget(destSlot)
        let ipv6 = f.kind == .ipv6
        if f.isICMPError {
            NATRewriter.translateICMP(frame, f, outerField: ipv6 ? NATLayout.ipv6Destination : NATLayout.ipv4Destination,
                                      innerField: ipv6 ? NATLayout.ipv6Source : NATLayout.ipv4Source,
                                      innerPortField: NATLayout.sourcePort, address: t.address,
                                      port: t.port != 0 ? t.port : f.innerSourcePort)
            return
        }
        NATRewriter.rewrite(frame, f, addressField: ipv6 ? NATLayout.ipv6Destination : NATLayout.ipv4Destination,
                            portField: NATLayout.destinationPort, address: t.address,
                            port: t.port != 0 ? t.port : f.destinationPort)
    }

    /// `transmit` for a NAT destination: the address rewrite, then as DR. Out of line, so that
    /// DR's inlined path pays one test for it.
    @inline(never)
    func transmitNAT(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, word: UInt64) -> Verdict {
        masquerade(frame, f, destSlot: destSlot)
        return forward(frame, f, destSlot: destSlot, word: word, method: .masquerade)
    }

    /// Links a new NAT connection into the reply index, with the client's next hop (the
    /// frame's source MAC and the interface it came in on). Under the engine lock.
    func linkReply(_ index: UInt32, _ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32) {
        let t = natTarget(destSlot)
        let port = t.port != 0 ? t.port : f.destinationPort
        let bucket = conns.bucket(proto: f.proto, client: t.address, cport: port, vlow: f.source.words.3, vport: f.sourcePort)
        let mac = MACAddress(bytes: frame.baseAddress! + 6)
        let ifslot = UInt64(interfaceSlot(ingressInterface) ?? 0)
        conns.replies.link(index, bucket: bucket, hop: mac.value | ifslot << Engine.interfaceSlotShift)
    }
}
