extension FrameRewriter {
    /// Splits an IPv4 frame whose datagram is longer than `mtu` into fragments, as the kernel
    /// fragments what IPVS forwards after reassembly (`ip_fragment`).
    ///
    /// Fragment k is written at `output + k * slotSize` (the `l3Offset` link-layer bytes copied,
    /// then an IPv4 header and a slice of the payload, a multiple of 8 bytes except the last) and
    /// its length stored in `lengths[k]`. Returns the number of fragments, or 0 when the frame
    /// may not or cannot be fragmented (not IPv4, DF set, header options, too many fragments).
    public static func fragmentIPv4(_ frame: UnsafeRawBufferPointer, l3Offset: Int, mtu: Int, output: UnsafeMutableRawPointer,
                                    slotSize: Int, maxFragments: Int, lengths: UnsafeMutablePointer<Int>) -> Int {
        guard let p = frame.baseAddress, frame.count >= l3Offset + 20, mtu >= 68 else { return 0 }
        let ip = p + l3Offset
        let vihl = ip.load(as: UInt8.self)
        guard vihl == 0x45 else { return 0 } // IPv4 without options
        let total = Int(UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        let flags = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        guard flags & 0x4000 == 0, total > mtu, l3Offset + total <= frame.count else { return 0 }
        let payload = total - 20
        let chunk = (mtu - 20) & ~7
        let count = (payload + chunk - 1) / chunk
        guard count <= maxFragments, l3Offset + 20 + chunk <= slotSize else { return 0 }
        let baseOffset = Int(flags & 0x1FFF) * 8
        let moreAfter = flags & 0x2000 != 0
        for k in 0..<count {
            let out = output + k * slotSize
            let start = k * chunk
            let size = min(chunk, payload - start)
            out.copyMemory(from: p, byteCount: l3Offset + 20)
            (out + l3Offset + 20).copyMemory(from: ip + 20 + start, byteCount: size)
            let h = out + l3Offset
            h.storeBytes(of: UInt16(20 + size).bigEndian, toByteOffset: 2, as: UInt16.self)
            let more: UInt16 = (k < count - 1 || moreAfter) ? 0x2000 : 0
            h.storeBytes(of: (more | UInt16((baseOffset + start) / 8)).bigEndian, toByteOffset: 6, as: UInt16.self)
            h.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            h.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(h, count: 20)).bigEndian, toByteOffset: 10, as: UInt16.self)
            lengths[k] = l3Offset + 20 + size
        }
        return count
    }

    /// Completes a transport checksum the sender left to offload (CHECKSUM_PARTIAL: the
    /// pseudo-header sum is stored at `start + offset`), over `frame[start...]`.
    public static func completeChecksum(_ frame: UnsafeMutableRawBufferPointer, start: Int, offset: Int, udp: Bool) {
        guard let p = frame.baseAddress, start >= 0, start + offset + 2 <= frame.count else { return }
        var c = InternetChecksum.finish(InternetChecksum.sum(p + start, count: frame.count - start))
        if c == 0 && udp { c = 0xFFFF }
        p.storeBytes(of: c.bigEndian, toByteOffset: start + offset, as: UInt16.self)
    }
}
