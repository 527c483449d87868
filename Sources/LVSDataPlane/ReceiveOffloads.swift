/// The virtio-net header a packet socket puts before each frame (`struct virtio_net_hdr`,
/// little-endian): what the kernel left for the transmit side to do.
public enum ReceiveOffloads {
    @usableFromInline static let flags = 0
    @usableFromInline static let gsoType = 1
    @usableFromInline static let gsoSize = 4
    @usableFromInline static let checksumStart = 6
    @usableFromInline static let checksumOffset = 8
    /// VIRTIO_NET_HDR_F_NEEDS_CSUM.
    @usableFromInline static let needsChecksum: UInt8 = 1

    /// Tells `processor` what the header at `vnetHeader` says (or, `set` false, that the next
    /// frame has nothing pending).
    @inlinable @inline(__always)
    public static func tell<P: FrameProcessor>(_ processor: P, vnetHeader: UnsafeMutableRawPointer, set: Bool) {
        guard set else { return processor.setReceiveOffloads(checksumStart: -1, checksumOffset: 0, gsoSize: 0) }
        let partial = vnetHeader.load(fromByteOffset: flags, as: UInt8.self) & needsChecksum != 0
        let start = partial ? Int(UInt16(littleEndian: vnetHeader.loadUnaligned(fromByteOffset: checksumStart, as: UInt16.self))) : -1
        let offset = Int(UInt16(littleEndian: vnetHeader.loadUnaligned(fromByteOffset: checksumOffset, as: UInt16.self)))
        let gso = vnetHeader.load(fromByteOffset: gsoType, as: UInt8.self) != 0
            ? Int(UInt16(littleEndian: vnetHeader.loadUnaligned(fromByteOffset: gsoSize, as: UInt16.self))) : 0
        processor.setReceiveOffloads(checksumStart: start, checksumOffset: offset, gsoSize: gso)
    }
}
