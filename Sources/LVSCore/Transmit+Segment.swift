import LVSModel

/// Offsets and flags of the TCP header that segmentation rewrites.
enum TCPLayout {
    static let sequence = 4
    static let dataOffset = 12
    static let flags = 13
    static let checksum = 16
    static let protocolNumber: UInt8 = 6
    /// FIN and PSH stay on the last segment only, CWR on the first only (as the kernel's tcp_gso_segment).
    static let lastOnly: UInt8 = 0x01 | 0x08
    static let firstOnly: UInt8 = 0x80
}

extension FrameRewriter {
    /// Writes segment `index` of a TCP GSO frame (a local sender's TSO, or GRO) into `output`, as
    /// the kernel's `tcp_gso_segment` cuts it: the link and IP headers and the TCP header copied,
    /// `segmentSize` bytes of payload (the last one shorter), the IP length (and IPv4
    /// identification + index, header checksum) and the TCP sequence number adjusted, FIN/PSH on
    /// the last segment only and CWR on the first only, the TCP checksum computed in full.
    /// Returns the segment's length, or 0 past the last segment, for what is not TCP over IPv4
    /// without options or IPv6 without extension headers, or when it does not fit `capacity`.
    public static func segmentTCP(_ frame: UnsafeRawPointer, l3Offset: Int, ipLength: Int, ipv6: Bool, segmentSize: Int,
                                  index: Int, output: UnsafeMutableRawPointer, capacity: Int) -> Int {
        let ip = frame + l3Offset
        let ipHeader = ipv6 ? TunnelLayout.ipv6Header : TunnelLayout.ipv4Header
        guard segmentSize > 0,
              ip.load(fromByteOffset: ipv6 ? 6 : 9, as: UInt8.self) == TCPLayout.protocolNumber,
              ipv6 || ip.load(as: UInt8.self) == 0x45 else { return 0 }
        let tcp = ip + ipHeader
        let tcpHeader = Int(tcp.load(fromByteOffset: TCPLayout.dataOffset, as: UInt8.self) >> 4) * 4
        let payload = ipLength - ipHeader - tcpHeader
        let start = index * segmentSize
        guard tcpHeader >= 20, payload > 0, start < payload else { return 0 }
        let size = min(segmentSize, payload - start)
        let headers = l3Offset + ipHeader + tcpHeader
        guard headers + size <= capacity else { return 0 }
        output.copyMemory(from: frame, byteCount: headers)
        (output + headers).copyMemory(from: tcp + tcpHeader + start, byteCount: size)
        let oip = output + l3Offset
        let otcp = oip + ipHeader
        let length = ipHeader + tcpHeader + size
        if ipv6 {
            oip.storeBytes(of: UInt16(tcpHeader + size).bigEndian, toByteOffset: 4, as: UInt16.self)
        } else {
            oip.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            let id = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 4, as: UInt16.self)) &+ UInt16(truncatingIfNeeded: index)
            oip.storeBytes(of: id.bigEndian, toByteOffset: 4, as: UInt16.self)
            oip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            oip.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(oip, count: ipHeader)).bigEndian,
                           toByteOffset: 10, as: UInt16.self)
        }
        let seq = UInt32(bigEndian: tcp.loadUnaligned(fromByteOffset: TCPLayout.sequence, as: UInt32.self)) &+ UInt32(truncatingIfNeeded: start)
        otcp.storeBytes(of: seq.bigEndian, toByteOffset: TCPLayout.sequence, as: UInt32.self)
        var flags = tcp.load(fromByteOffset: TCPLayout.flags, as: UInt8.self)
        if start + size < payload { flags &= ~TCPLayout.lastOnly }
        if index > 0 { flags &= ~TCPLayout.firstOnly }
        otcp.storeBytes(of: flags, toByteOffset: TCPLayout.flags, as: UInt8.self)
        otcp.storeBytes(of: UInt16(0), toByteOffset: TCPLayout.checksum, as: UInt16.self)
        let segment = tcpHeader + size
        // Pseudo-header: the addresses (IPv4 at 12, IPv6 at 8), protocol and TCP length.
        var s = ipv6 ? InternetChecksum.sum(oip + 8, count: 32) : InternetChecksum.sum(oip + 12, count: 8)
        s = InternetChecksum.sum(otcp, count: segment, initial: s &+ UInt32(TCPLayout.protocolNumber) &+ UInt32(segment))
        otcp.storeBytes(of: InternetChecksum.finish(s).bigEndian, toByteOffset: TCPLayout.checksum, as: UInt16.self)
        return l3Offset + length
    }
}
