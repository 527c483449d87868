import LVSModel

/// Sizes and values of the "too big" ICMP errors (`ensure_mtu_is_adequate` → `icmp_send`,
/// `icmpv6_send`).
public enum TooBigLayout {
    public static let icmpHeader = 8
    /// ICMP destination unreachable / fragmentation needed (RFC 1191: next-hop MTU in the low
    /// 16 bits of the second word).
    public static let icmpUnreachable: UInt8 = 3
    public static let icmpFragmentationNeeded: UInt8 = 4
    /// ICMPv6 packet too big (RFC 4443 3.2: the MTU in the second word).
    public static let icmpv6PacketTooBig: UInt8 = 2
    public static let icmpProtocol: UInt8 = 1
    public static let icmpv6Protocol: UInt8 = 58
    /// `icmp_send` quotes what fits in 576 bytes; `icmp6_send` what fits in 1280.
    public static let icmpLimit = 576
    public static let icmpv6Limit = 1280
    /// TOS of an ICMP error: the quoted TOS bits with precedence "internetwork control".
    public static let precedenceInternetControl: UInt8 = 0xC0
    public static let tosMask: UInt8 = 0x1E
    /// TTL (IPv4) and hop limit (IPv6) of the director's own packets (sysctl defaults).
    public static let defaultTTL: UInt8 = 64
}

extension FrameRewriter {
    /// Whether an IPv4 datagram carries the "don't fragment" bit.
    @inlinable public static func dontFragment(_ frame: UnsafeRawPointer, l3Offset: Int) -> Bool {
        UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l3Offset + 6, as: UInt16.self)) & TunnelLayout.dontFragment != 0
    }

    /// Writes into `output` the error the kernel sends a client whose datagram (`ipLength` bytes
    /// at `frame + l3Offset`, from the client's Ethernet frame) does not fit `mtu`: ICMP
    /// destination unreachable / fragmentation needed with the MTU for IPv4, ICMPv6 packet too
    /// big for IPv6, from the address the client sent to (the VIP), TTL/hop limit 64, quoting as
    /// much of the datagram as 576 (IPv4) or 1280 (IPv6) bytes hold. The Ethernet header goes
    /// back to the frame's source MAC from `sourceMAC`. Returns the length written, or 0 when it
    /// does not fit `capacity`.
    public static func tooBig(_ frame: UnsafeRawPointer, l3Offset: Int, ipLength: Int, ipv6: Bool, mtu: Int,
                              sourceMAC: MACAddress, output: UnsafeMutableRawPointer, capacity: Int) -> Int {
        let inner = frame + l3Offset
        let ipHeader = ipv6 ? TunnelLayout.ipv6Header : TunnelLayout.ipv4Header
        let limit = ipv6 ? TooBigLayout.icmpv6Limit : TooBigLayout.icmpLimit
        let quote = min(ipLength, limit - ipHeader - TooBigLayout.icmpHeader)
        let icmpLength = TooBigLayout.icmpHeader + quote
        let length = TunnelLayout.ethernetHeader + ipHeader + icmpLength
        guard length <= capacity else { return 0 }
        let ip = output + TunnelLayout.ethernetHeader
        let icmp = ip + ipHeader
        (icmp + TooBigLayout.icmpHeader).copyMemory(from: inner, byteCount: quote)
        MACAddress(bytes: frame + 6).store(to: output)
        sourceMAC.store(to: output + 6)
        output.storeBytes(of: (ipv6 ? FrameParser.etherTypeIPv6 : FrameParser.etherTypeIPv4).bigEndian, toByteOffset: 12, as: UInt16.self)
        if ipv6 {
            let client = IPAddress(bytes: inner + IPv6Layout.sourceAddress, length: 16)
            let vip = IPAddress(bytes: inner + IPv6Layout.sourceAddress + 16, length: 16)
            Engine.ipv6Header(ip, payload: icmpLength, src: vip, dst: client)
            ip.storeBytes(of: TooBigLayout.defaultTTL, toByteOffset: IPv6Layout.hopLimit, as: UInt8.self)
            icmp.storeBytes(of: (UInt32(TooBigLayout.icmpv6PacketTooBig) << 24).bigEndian, as: UInt32.self) // code 0, checksum 0
            icmp.storeBytes(of: UInt32(mtu).bigEndian, toByteOffset: 4, as: UInt32.self)
            Engine.storeICMPv6Checksum(output, l3: TunnelLayout.ethernetHeader, length: icmpLength)
        } else {
            let tos = (inner.load(fromByteOffset: 1, as: UInt8.self) & TooBigLayout.tosMask) | TooBigLayout.precedenceInternetControl
            ip.storeBytes(of: UInt8(0x45), as: UInt8.self)
            ip.storeBytes(of: tos, toByteOffset: 1, as: UInt8.self)
            ip.storeBytes(of: UInt16(ipHeader + icmpLength).bigEndian, toByteOffset: 2, as: UInt16.self)
            ip.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)          // identification, no DF
            ip.storeBytes(of: TooBigLayout.defaultTTL, toByteOffset: 8, as: UInt8.self)
            ip.storeBytes(of: TooBigLayout.icmpProtocol, toByteOffset: 9, as: UInt8.self)
            ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            (ip + 12).copyMemory(from: inner + 16, byteCount: 4)                       // from the VIP
            (ip + 16).copyMemory(from: inner + 12, byteCount: 4)                       // to the client
            ip.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(ip, count: ipHeader)).bigEndian,
                          toByteOffset: 10, as: UInt16.self)
            icmp.storeBytes(of: TooBigLayout.icmpUnreachable, as: UInt8.self)
            icmp.storeBytes(of: TooBigLayout.icmpFragmentationNeeded, toByteOffset: 1, as: UInt8.self)
            icmp.storeBytes(of: UInt16(0), toByteOffset: 2, as: UInt16.self)
            icmp.storeBytes(of: UInt32(mtu & 0xFFFF).bigEndian, toByteOffset: 4, as: UInt32.self)
            icmp.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(icmp, count: icmpLength)).bigEndian,
                            toByteOffset: 2, as: UInt16.self)
        }
        return length
    }
}
