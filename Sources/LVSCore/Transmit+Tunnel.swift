import LVSModel

/// Sizes, offsets and values of the headers a tunnel puts in front of the client's datagram
/// (the kernel's `ip_vs_tunnel_xmit`, `ipvs_gue_encap`, `ipvs_gre_encap`).
public enum TunnelLayout {
    public static let ethernetHeader = 14
    public static let ipv4Header = 20
    public static let ipv6Header = 40
    public static let udpHeader = 8
    /// `struct guehdr`: version 0, no control bit, hlen 0, proto_ctype, 16 flag bits.
    public static let gueHeader = 4
    /// GRE without optional fields: flags/version, protocol type.
    public static let greHeader = 4
    /// The checksum and reserved1 fields GRE carries with its C bit.
    public static let greChecksumField = 4
    public static let greChecksumFlag: UInt16 = 0x8000
    /// IP protocol numbers of the outer header.
    public static let protocolIPIP: UInt8 = 4
    public static let protocolIPv6: UInt8 = 41
    public static let protocolUDP: UInt8 = 17
    public static let protocolGRE: UInt8 = 47
    /// The IPv4 "don't fragment" bit of the flags/fragment-offset word.
    public static let dontFragment: UInt16 = 0x4000
    /// ECN field of the TOS/traffic class byte and its two code points used by encapsulation.
    public static let ecnMask: UInt8 = 0x03
    public static let ecnCE: UInt8 = 0x03
    public static let ecnECT0: UInt8 = 0x02
    /// The smallest tunnel MTU the kernel accepts for an outer IPv4 header (IPv6: 1280).
    public static let minimumIPv4MTU = 68
    public static let minimumIPv6MTU = 1280
    /// `inet_get_local_port_range`'s default, where `udp_flow_src_port` picks GUE source ports.
    public static let localPortLow: UInt32 = 32768
    public static let localPortHigh: UInt32 = 60999
    /// ipvsadm's tunnel flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`): none (nocsum), csum, remcsum.
    public static let flagChecksum: UInt8 = 1
    public static let flagRemoteChecksum: UInt8 = 2
}

/// One real server's tunnel: the type and options ipvsadm's `--tun-*` set, and the outer
/// header's addresses (`source`: the preferred source of the route to the real server).
public struct TunnelEncapsulation: Sendable, Equatable {
    public var type: TunnelType
    /// 0 (nocsum), 1 (csum) or 2 (remcsum), as `DestinationOptions.tunnelFlags`.
    public var flags: UInt8
    /// The GUE destination port (`--tun-port`).
    public var port: UInt16
    public var source: IPAddress
    public var destination: IPAddress

    public init(type: TunnelType, flags: UInt8 = 0, port: UInt16 = 0, source: IPAddress, destination: IPAddress) {
        self.type = type
        self.flags = flags
        self.port = port
        self.source = source
        self.destination = destination
    }

    /// A checksum in the UDP (GUE) or GRE header: `--tun-csum`, and `--tun-remcsum` (a datagram
    /// lvsd tunnels never has its checksum left to offload, so the kernel adds no REMCSUM option
    /// and fills the UDP checksum, as for csum).
    @inlinable public var checksummed: Bool {
        switch type {
        case .ipip: return false
        case .gue: return flags & (TunnelLayout.flagChecksum | TunnelLayout.flagRemoteChecksum) != 0
        case .gre: return flags & TunnelLayout.flagChecksum != 0
        }
    }

    /// Bytes between the outer IP header and the client's datagram.
    @inlinable public var encapsulationHeader: Int {
        switch type {
        case .ipip: return 0
        case .gue: return TunnelLayout.udpHeader + TunnelLayout.gueHeader
        case .gre: return TunnelLayout.greHeader + (checksummed ? TunnelLayout.greChecksumField : 0)
        }
    }

    /// Bytes the tunnel adds to the datagram: outer IP header and encapsulation header.
    @inlinable public var overhead: Int {
        (destination.isIPv4 ? TunnelLayout.ipv4Header : TunnelLayout.ipv6Header) + encapsulationHeader
    }

    /// The largest client datagram that fits an egress of `linkMTU` once encapsulated, as
    /// `__ip_vs_get_out_rt(_v6)` computes it; nil below the kernel's floor (68, or 1280 with an
    /// outer IPv6 header), where the kernel drops the packet.
    @inlinable public func mtu(linkMTU: Int) -> Int? {
        let m = linkMTU - overhead
        return m < (destination.isIPv4 ? TunnelLayout.minimumIPv4MTU : TunnelLayout.minimumIPv6MTU) ? nil : m
    }

    /// The GUE UDP source port for a flow hash, as `udp_flow_src_port` spreads it over the local
    /// port range (the hash folded with itself shifted by 16 first).
    @inlinable public static func sourcePort(flowHash: UInt32) -> UInt16 {
        let h = flowHash ^ (flowHash << 16)
        let span = UInt64(TunnelLayout.localPortHigh - TunnelLayout.localPortLow)
        return UInt16(truncatingIfNeeded: ((UInt64(h) * span) >> 32) + UInt64(TunnelLayout.localPortLow))
    }
}

extension FrameRewriter {
    /// The outer TOS (traffic class) for an inner one: `INET_ECN_encapsulate`, DSCP copied, ECN
    /// copied except CE, which becomes ECT(0).
    @inlinable static func encapsulatedTOS(_ inner: UInt8) -> UInt8 {
        let ecn = inner & TunnelLayout.ecnMask
        return (inner & ~TunnelLayout.ecnMask) | (ecn == TunnelLayout.ecnCE ? TunnelLayout.ecnECT0 : ecn)
    }

    /// Writes the client's datagram (`ipLength` bytes at `frame + l3Offset`, TTL already
    /// decremented as for DR) encapsulated for `tunnel` into `output`, as `ip_vs_tunnel_xmit(_v6)`
    /// builds it: an Ethernet header to `destinationMAC` from `sourceMAC`, the outer IPv4 (or
    /// IPv6) header (TOS/traffic class from the inner one, TTL/hop limit = the inner one, DF
    /// copied from an inner IPv4 header when `pmtuDiscovery`, identification `ipID` unless DF is
    /// set, then 0), the UDP and GUE headers or the GRE header, then the datagram. `output` may
    /// be `frame` itself when it has room (the datagram is moved, not overwritten). Returns the
    /// length written, or 0 when it does not fit in `capacity`.
    public static func encapsulate(_ frame: UnsafeRawPointer, l3Offset: Int, ipLength: Int, tunnel: TunnelEncapsulation,
                                   destinationMAC: MACAddress, sourceMAC: MACAddress, ipID: UInt16, flowHash: UInt32,
                                   pmtuDiscovery: Bool = true, output: UnsafeMutableRawPointer, capacity: Int) -> Int {
        let outerIPv4 = tunnel.destination.isIPv4
        let ipHeader = outerIPv4 ? TunnelLayout.ipv4Header : TunnelLayout.ipv6Header
        let encap = tunnel.encapsulationHeader
        let total = TunnelLayout.ethernetHeader + ipHeader + encap + ipLength
        guard ipLength >= TunnelLayout.ipv4Header, total <= capacity else { return 0 }
        let inner = frame + l3Offset
        let innerIPv6 = inner.load(as: UInt8.self) >> 4 == 6
        // Inner fields first: the move below may overwrite the inner headers' old place.
        let tos: UInt8
        let ttl: UInt8
        var fragmentWord: UInt16 = 0
        if innerIPv6 {
            let word = UInt32(bigEndian: inner.loadUnaligned(as: UInt32.self))
            tos = UInt8(truncatingIfNeeded: word >> 20)
            ttl = inner.load(fromByteOffset: IPv6Layout.hopLimit, as: UInt8.self)
        } else {
            tos = inner.load(fromByteOffset: 1, as: UInt8.self)
            ttl = inner.load(fromByteOffset: 8, as: UInt8.self)
            if pmtuDiscovery {
                fragmentWord = UInt16(bigEndian: inner.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & TunnelLayout.dontFragment
            }
        }
        let payload = output + TunnelLayout.ethernetHeader + ipHeader + encap
        if payload != UnsafeMutableRawPointer(mutating: inner) { payload.copyMemory(from: inner, byteCount: ipLength) }

        destinationMAC.store(to: output)
        sourceMAC.store(to: output + 6)
        output.storeBytes(of: (outerIPv4 ? FrameParser.etherTypeIPv4 : FrameParser.etherTypeIPv6).bigEndian,
                          toByteOffset: 12, as: UInt16.self)
        let innerProtocol = innerIPv6 ? TunnelLayout.protocolIPv6 : TunnelLayout.protocolIPIP
        let outerProtocol: UInt8
        let e = output + TunnelLayout.ethernetHeader + ipHeader
        switch tunnel.type {
        case .ipip:
            outerProtocol = innerProtocol
        case .gue:
            outerProtocol = TunnelLayout.protocolUDP
            let udpLength = UInt16(encap + ipLength)
            e.storeBytes(of: TunnelEncapsulation.sourcePort(flowHash: flowHash).bigEndian, as: UInt16.self)
            e.storeBytes(of: tunnel.port.bigEndian, toByteOffset: 2, as: UInt16.self)
            e.storeBytes(of: udpLength.bigEndian, toByteOffset: 4, as: UInt16.self)
            e.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
            // GUE: version 0, C 0, hlen 0; proto_ctype; no flags.
            e.storeBytes(of: UInt8(0), toByteOffset: TunnelLayout.udpHeader, as: UInt8.self)
            e.storeBytes(of: innerProtocol, toByteOffset: TunnelLayout.udpHeader + 1, as: UInt8.self)
            e.storeBytes(of: UInt16(0), toByteOffset: TunnelLayout.udpHeader + 2, as: UInt16.self)
            if tunnel.checksummed {
                var s = pseudoHeaderSum(tunnel, protocol: TunnelLayout.protocolUDP, length: Int(udpLength))
                s = InternetChecksum.sum(e, count: Int(udpLength), initial: s)
                var c = InternetChecksum.finish(s)
                if c == 0 { c = 0xFFFF }
                e.storeBytes(of: c.bigEndian, toByteOffset: 6, as: UInt16.self)
            }
        case .gre:
            outerProtocol = TunnelLayout.protocolGRE
            let withChecksum = tunnel.checksummed
            e.storeBytes(of: (withChecksum ? TunnelLayout.greChecksumFlag : 0).bigEndian, as: UInt16.self)
            e.storeBytes(of: (innerIPv6 ? FrameParser.etherTypeIPv6 : FrameParser.etherTypeIPv4).bigEndian,
                         toByteOffset: 2, as: UInt16.self)
            if withChecksum {
                e.storeBytes(of: UInt32(0), toByteOffset: TunnelLayout.greHeader, as: UInt32.self)
                let c = InternetChecksum.finish(InternetChecksum.sum(e, count: encap + ipLength))
                e.storeBytes(of: c.bigEndian, toByteOffset: TunnelLayout.greHeader, as: UInt16.self)
            }
        }
        let ip = output + TunnelLayout.ethernetHeader
        let outerTOS = encapsulatedTOS(tos)
        if outerIPv4 {
            ip.storeBytes(of: UInt8(0x45), as: UInt8.self)
            ip.storeBytes(of: outerTOS, toByteOffset: 1, as: UInt8.self)
            ip.storeBytes(of: UInt16(ipHeader + encap + ipLength).bigEndian, toByteOffset: 2, as: UInt16.self)
            ip.storeBytes(of: (fragmentWord != 0 ? 0 : ipID).bigEndian, toByteOffset: 4, as: UInt16.self)
            ip.storeBytes(of: fragmentWord.bigEndian, toByteOffset: 6, as: UInt16.self)
            ip.storeBytes(of: ttl, toByteOffset: 8, as: UInt8.self)
            ip.storeBytes(of: outerProtocol, toByteOffset: 9, as: UInt8.self)
            ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            tunnel.source.store(to: ip + 12)
            tunnel.destination.store(to: ip + 16)
            ip.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(ip, count: ipHeader)).bigEndian,
                          toByteOffset: 10, as: UInt16.self)
        } else {
            // Version 6, traffic class, flow label 0.
            ip.storeBytes(of: (UInt32(0x6000_0000) | UInt32(outerTOS) << 20).bigEndian, as: UInt32.self)
            ip.storeBytes(of: UInt16(encap + ipLength).bigEndian, toByteOffset: 4, as: UInt16.self)
            ip.storeBytes(of: outerProtocol, toByteOffset: 6, as: UInt8.self)
            ip.storeBytes(of: ttl, toByteOffset: IPv6Layout.hopLimit, as: UInt8.self)
            tunnel.source.store(to: ip + IPv6Layout.sourceAddress)
            tunnel.destination.store(to: ip + IPv6Layout.sourceAddress + 16)
        }
        return total
    }

    /// The one's-complement sum of the outer pseudo-header (RFC 768 / RFC 8200 8.1).
    @inlinable static func pseudoHeaderSum(_ tunnel: TunnelEncapsulation, protocol proto: UInt8, length: Int) -> UInt32 {
        var s: UInt32 = UInt32(proto) &+ UInt32(length)
        if tunnel.source.isIPv4 {
            let a = tunnel.source.ipv4Value, b = tunnel.destination.ipv4Value
            s = s &+ (a >> 16) &+ (a & 0xFFFF) &+ (b >> 16) &+ (b & 0xFFFF)
        } else {
            s = s &+ wordSum(tunnel.source.high) &+ wordSum(tunnel.source.low)
                &+ wordSum(tunnel.destination.high) &+ wordSum(tunnel.destination.low)
        }
        return s
    }

    /// The sum of a 64-bit value's four 16-bit words.
    @inlinable static func wordSum(_ v: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: v >> 48) &+ UInt32(truncatingIfNeeded: (v >> 32) & 0xFFFF)
            &+ UInt32(truncatingIfNeeded: (v >> 16) & 0xFFFF) &+ UInt32(truncatingIfNeeded: v & 0xFFFF)
    }
}
