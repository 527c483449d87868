import LVSModel

/// What kind of frame the parser found.
public enum FrameKind: UInt8, Sendable {
    case ipv4, ipv6, arp, other, malformed
}

/// The parsed view of one Ethernet frame: offsets and header fields, no copies.
///
/// `FrameParser.parse` fills it from raw bytes; every read is bounds-checked against the frame
/// length and the IP length fields, so truncated or inconsistent frames become `.malformed`.
public struct ParsedFrame: Sendable {
    public var kind: FrameKind = .other
    /// Offset of the L3 header (14; 18 with one VLAN tag, 22 with two).
    public var l3Offset: Int = 14
    /// One or two VLAN tags (802.1Q, 802.1ad) precede the EtherType.
    public var vlanTagged: Bool = false
    public var etherType: UInt16 = 0
    /// Upper-layer protocol number (after IPv6 extension headers).
    public var proto: UInt8 = 0
    public var source: IPAddress = .zero
    public var destination: IPAddress = .zero
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    public var tcpFlags: UInt8 = 0
    /// Offset of the L4 header in the frame (valid when `hasPorts`).
    public var l4Offset: Int = 0
    public var hasPorts: Bool = false
    /// Length of the whole IP datagram (header included), as IPVS counts bytes.
    public var ipLength: Int = 0
    /// A fragment other than the first: no transport header.
    public var isLaterFragment: Bool = false
    /// A first fragment (more fragments follow).
    public var isFirstFragment: Bool = false
    /// Fragment identification (IPv4 id, or IPv6 fragment header id).
    public var fragmentID: UInt32 = 0
    /// SCTP packet whose first chunk is INIT.
    public var sctpInit: Bool = false
    /// ICMP/ICMPv6 error carrying an embedded header; `inner*` fields describe it.
    public var isICMPError: Bool = false
    public var innerProto: UInt8 = 0
    public var innerSource: IPAddress = .zero
    public var innerDestination: IPAddress = .zero
    public var innerSourcePort: UInt16 = 0
    public var innerDestinationPort: UInt16 = 0
    /// ICMP type and code (ICMPv4 or ICMPv6).
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0
    /// ARP fields (kind == .arp).
    public var arpOperation: UInt16 = 0
    public var arpSenderMAC: MACAddress = .zero
    /// ICMPv6 neighbour solicitation/advertisement target (kind == .ipv6, proto 58, type 135/136).
    public var ndTarget: IPAddress = .zero
    /// Source link-layer address option of a neighbour advertisement/solicitation, if present.
    public var ndLinkLayer: MACAddress = .zero
    public var malformedReason: MalformedReason = .none

    public init() {}
}

/// Why a frame was classified as malformed.
public enum MalformedReason: UInt8, Sendable {
    case none, truncatedEthernet, truncatedVLAN, truncatedIPv4, badIHL, badIPv4Length, badIPVersion
    case truncatedIPv6, badIPv6Length, truncatedExtension, truncatedTransport, badTCPOffset, truncatedARP
    case truncatedICMP
}

public enum TCPFlag {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
}

/// Ethernet, ARP, IPv4/IPv6, TCP/UDP/SCTP and ICMP parsing over raw bytes.
public enum FrameParser {
    public static let etherTypeIPv4: UInt16 = 0x0800
    public static let etherTypeIPv6: UInt16 = 0x86DD
    public static let etherTypeARP: UInt16 = 0x0806
    /// 802.1Q (a C-tag).
    public static let etherTypeVLAN: UInt16 = 0x8100
    /// 802.1ad (an S-tag, the outer tag of QinQ).
    public static let etherTypeQinQ: UInt16 = 0x88A8
    /// Bytes of one VLAN tag (TPID + TCI).
    static let vlanTagLength = 4

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 {
        UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }
    @inline(__always) static func u32(_ p: UnsafeRawPointer, _ o: Int) -> UInt32 {
        UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))
    }

    /// Parses one frame; never traps, whatever the bytes.
    @inlinable public static func parse(_ frame: UnsafeRawBufferPointer) -> ParsedFrame {
        var f = ParsedFrame()
        parse(frame, into: &f)
        return f
    }

    public static func parse(_ frame: UnsafeRawBufferPointer, into f: inout ParsedFrame) {
        guard let p = frame.baseAddress, frame.count >= 14 else {
            f.kind = .malformed; f.malformedReason = .truncatedEthernet; return
        }
        let n = frame.count
        var type = u16(p, 12)
        var l3 = 14
        // At most two tags: an 802.1Q or 802.1ad tag, then optionally an inner 802.1Q tag (QinQ);
        // the same rule as the BPF programs' after_ethernet(). Deeper stacks stay `.other`.
        // The tag's TCI is at l3, the next EtherType after it.
        if type == etherTypeVLAN || type == etherTypeQinQ {
            guard n >= l3 + vlanTagLength else { f.kind = .malformed; f.malformedReason = .truncatedVLAN; return }
            f.vlanTagged = true
            type = u16(p, l3 + 2)
            l3 += vlanTagLength
            if type == etherTypeVLAN {
                guard n >= l3 + vlanTagLength else { f.kind = .malformed; f.malformedReason = .truncatedVLAN; return }
                type = u16(p, l3 + 2)
                l3 += vlanTagLength
            }
        }
        f.etherType = type
        f.l3Offset = l3
        switch type {
        case etherTypeIPv4: parseIPv4(p, l3, n, &f)
        case etherTypeIPv6: parseIPv6(p, l3, n, &f)
        case etherTypeARP: parseARP(p, l3, n, &f)
        default: f.kind = .other
        }
    }

    static func malformed(_ f: inout ParsedFrame, _ r: MalformedReason) {
        f.kind = .malformed
        f.malformedReason = r
    }

    static func parseARP(_ p: UnsafeRawPointer, _ l3: Int, _ n: Int, _ f: inout ParsedFrame) {
        // Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
        guard n >= l3 + 28 else { return malformed(&f, .truncatedARP) }
        guard u16(p, l3) == 1, u16(p, l3 + 2) == etherTypeIPv4, p.load(fromByteOffset: l3 + 4, as: UInt8.self) == 6,
              p.load(fromByteOffset: l3 + 5, as: UInt8.self) == 4 else { f.kind = .other; return }
        f.kind = .arp
        f.arpOperation = u16(p, l3 + 6)
        f.arpSenderMAC = MACAddress(bytes: p + l3 + 8)
        f.source = IPAddress(bytes: p + l3 + 14, length: 4)
        f.destination = IPAddress(bytes: p + l3 + 24, length: 4)
    }

    static func parseIPv4(_ p: UnsafeRawPointer, _ l3: Int, _ n: Int, _ f: inout ParsedFrame) {
        guard n >= l3 + 20 else { return malformed(&f, .truncatedIPv4) }
        let vihl = p.load(fromByteOffset: l3, as: UInt8.self)
        guard vihl >> 4 == 4 else { return malformed(&f, .badIPVersion) }
        let ihl = Int(vihl & 0x0F) * 4
        guard ihl >= 20 else { return malformed(&f, .badIHL) }
        let total = Int(u16(p, l3 + 2))
        guard total >= ihl, l3 + total <= n else { return malformed(&f, .badIPv4Length) }
        f.kind = .ipv4
        f.ipLength = total
        f.proto = p.load(fromByteOffset: l3 + 9, as: UInt8.self)
        f.source = IPAddress(bytes: p + l3 + 12, length: 4)
        f.destination = IPAddress(bytes: p + l3 + 16, length: 4)
        let frag = u16(p, l3 + 6)
        let offset = frag & 0x1FFF
        let more = frag & 0x2000 != 0
        f.fragmentID = UInt32(u16(p, l3 + 4))
        if offset != 0 { f.isLaterFragment = true; return }
        f.isFirstFragment = more
        parseTransport(p, l3 + ihl, l3 + total, &f, v6: false)
    }

    static func parseIPv6(_ p: UnsafeRawPointer, _ l3: Int, _ n: Int, _ f: inout ParsedFrame) {
        guard n >= l3 + 40 else { return malformed(&f, .truncatedIPv6) }
        guard p.load(fromByteOffset: l3, as: UInt8.self) >> 4 == 6 else { return malformed(&f, .badIPVersion) }
        let payload = Int(u16(p, l3 + 4))
        let end = l3 + 40 + payload
        guard end <= n else { return malformed(&f, .badIPv6Length) }
        f.kind = .ipv6
        f.ipLength = 40 + payload
        f.source = IPAddress(bytes: p + l3 + 8, length: 16)
        f.destination = IPAddress(bytes: p + l3 + 24, length: 16)
        var next = p.load(fromByteOffset: l3 + 6, as: UInt8.self)
        var off = l3 + 40
        // Walk the extension-header chain (bounded: at most 8 headers).
        for _ in 0..<8 {
            switch next {
            case 0, 43, 60: // hop-by-hop, routing, destination options
                guard off + 8 <= end else { return malformed(&f, .truncatedExtension) }
                let len = (Int(p.load(fromByteOffset: off + 1, as: UInt8.self)) + 1) * 8
                guard off + len <= end else { return malformed(&f, .truncatedExtension) }
                next = p.load(fromByteOffset: off, as: UInt8.self)
                off += len
            case 44: // fragment
                guard off + 8 <= end else { return malformed(&f, .truncatedExtension) }
                let fo = u16(p, off + 2)
                f.fragmentID = u32(p, off + 4)
                next = p.load(fromByteOffset: off, as: UInt8.self)
                off += 8
                if fo & 0xFFF8 != 0 { f.proto = next; f.isLaterFragment = true; return }
                f.isFirstFragment = fo & 1 != 0
            case 51: // authentication header: length in 4-octet units minus 2
                guard off + 8 <= end else { return malformed(&f, .truncatedExtension) }
                let len = (Int(p.load(fromByteOffset: off + 1, as: UInt8.self)) + 2) * 4
                guard off + len <= end else { return malformed(&f, .truncatedExtension) }
                next = p.load(fromByteOffset: off, as: UInt8.self)
                off += len
            default:
                f.proto = next
                parseTransport(p, off, end, &f, v6: true)
                return
            }
        }
        f.proto = next
    }

    /// Reads the transport header at `off` (the datagram ends at `end`).
    static func parseTransport(_ p: UnsafeRawPointer, _ off: Int, _ end: Int, _ f: inout ParsedFrame, v6: Bool) {
        switch f.proto {
        case 6: // TCP
            guard off + 20 <= end else { return malformed(&f, .truncatedTransport) }
            let doff = Int(p.load(fromByteOffset: off + 12, as: UInt8.self) >> 4) * 4
            guard doff >= 20, off + doff <= end else { return malformed(&f, .badTCPOffset) }
            f.sourcePort = u16(p, off)
            f.destinationPort = u16(p, off + 2)
            f.tcpFlags = p.load(fromByteOffset: off + 13, as: UInt8.self)
            f.l4Offset = off
            f.hasPorts = true
        case 17: // UDP
            guard off + 8 <= end else { return malformed(&f, .truncatedTransport) }
            f.sourcePort = u16(p, off)
            f.destinationPort = u16(p, off + 2)
            f.l4Offset = off
            f.hasPorts = true
        case 132: // SCTP: common header 12 bytes, then chunks
            guard off + 12 <= end else { return malformed(&f, .truncatedTransport) }
            f.sourcePort = u16(p, off)
            f.destinationPort = u16(p, off + 2)
            f.l4Offset = off
            f.hasPorts = true
            if off + 13 <= end { f.sctpInit = p.load(fromByteOffset: off + 12, as: UInt8.self) == 1 }
        case 1 where !v6, 58 where v6:
            parseICMP(p, off, end, &f, v6: v6)
        default:
            break
        }
    }

    static func parseICMP(_ p: UnsafeRawPointer, _ off: Int, _ end: Int, _ f: inout ParsedFrame, v6: Bool) {
        guard off + 8 <= end else { return malformed(&f, .truncatedICMP) }
        let type = p.load(fromByteOffset: off, as: UInt8.self)
        f.icmpType = type
        f.icmpCode = p.load(fromByteOffset: off + 1, as: UInt8.self)
        f.l4Offset = off
        if v6 {
            if type == 135 || type == 136 { // neighbour solicitation / advertisement
                guard off + 24 <= end else { return malformed(&f, .truncatedICMP) }
                f.ndTarget = IPAddress(bytes: p + off + 8, length: 16)
                // Options: type 1 (source LLA) or 2 (target LLA), 8 bytes for Ethernet.
                var o = off + 24
                while o + 8 <= end {
                    let ot = p.load(fromByteOffset: o, as: UInt8.self)
                    let ol = Int(p.load(fromByteOffset: o + 1, as: UInt8.self)) * 8
                    guard ol > 0, o + ol <= end else { break }
                    if (ot == 1 || ot == 2) && ol == 8 { f.ndLinkLayer = MACAddress(bytes: p + o + 2) }
                    o += ol
                }
                return
            }
            guard type < 128 else { return } // informational
        } else {
            guard type == 3 || type == 4 || type == 11 else { return } // the errors IPVS relates to connections
        }
        // Error: embedded header starts 8 bytes in.
        let inner = off + 8
        var innerEnd = end
        var transport = 0
        if v6 {
            guard inner + 40 <= end else { return malformed(&f, .truncatedICMP) }
            f.innerProto = p.load(fromByteOffset: inner + 6, as: UInt8.self)
            f.innerSource = IPAddress(bytes: p + inner + 8, length: 16)
            f.innerDestination = IPAddress(bytes: p + inner + 24, length: 16)
            transport = inner + 40
        } else {
            guard inner + 20 <= end else { return malformed(&f, .truncatedICMP) }
            let ihl = Int(p.load(fromByteOffset: inner, as: UInt8.self) & 0x0F) * 4
            guard ihl >= 20, inner + ihl <= end else { return malformed(&f, .truncatedICMP) }
            f.innerProto = p.load(fromByteOffset: inner + 9, as: UInt8.self)
            f.innerSource = IPAddress(bytes: p + inner + 12, length: 4)
            f.innerDestination = IPAddress(bytes: p + inner + 16, length: 4)
            transport = inner + ihl
            innerEnd = end
        }
        f.isICMPError = true
        if (f.innerProto == 6 || f.innerProto == 17 || f.innerProto == 132) && transport + 4 <= innerEnd {
            f.innerSourcePort = u16(p, transport)
            f.innerDestinationPort = u16(p, transport + 2)
        }
    }
}

/// Internet checksum helpers (RFC 1071).
public enum InternetChecksum {
    /// One's-complement sum of `count` bytes at `p`, folded into `initial`.
    public static func sum(_ p: UnsafeRawPointer, count: Int, initial: UInt32 = 0) -> UInt32 {
        var s = UInt64(initial)
        var i = 0
        while i + 1 < count {
            s += UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt16.self)))
            i += 2
        }
        if i < count { s += UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << 8 }
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return UInt32(s)
    }

    public static func finish(_ s: UInt32) -> UInt16 {
        var v = s
        while v >> 16 != 0 { v = (v & 0xFFFF) + (v >> 16) }
        return ~UInt16(truncatingIfNeeded: v)
    }

    /// Verifies an IPv4 header checksum (true when valid).
    public static func ipv4HeaderValid(_ p: UnsafeRawPointer, headerLength: Int) -> Bool {
        finish(sum(p, count: headerLength)) == 0
    }
}
