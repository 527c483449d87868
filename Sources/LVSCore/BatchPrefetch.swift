import CLVSShim
import LVSModel

/// Batch prefetch: a data-plane worker that holds a batch of received frames announces them all
/// (`prefetch`), then calls `prefetchEntries`, then `process`es them one by one. The first pass
/// starts loading each frame's hash bucket, the second the first entry of each bucket, so the
/// cache misses of a batch overlap instead of stalling `process` one after another (with a
/// million connections the table is far larger than the caches). Only hints: skipping them
/// changes nothing but speed.
extension EngineShard {
    /// Stage 1: starts loading the hash bucket of the connection `frame` may belong to (IPv4 or
    /// IPv6, TCP/UDP/SCTP, not a later fragment). At most `prefetchCapacity` frames per batch.
    @inlinable
    public func prefetch(_ frame: UnsafeRawBufferPointer) {
        if prefetchCount == 0 { prefetchReady = 0 } // a new batch: the last one's frames are done
        guard prefetchCount < Self.prefetchCapacity, let (b, print) = Self.bucketAndFingerprint(of: frame, in: conns) else { return }
        clvs_prefetch_write(conns.buckets + Int(b))
        prefetchBuckets[prefetchCount] = b
        prefetchFrames[prefetchCount] = frame.baseAddress
        prefetchPrints[prefetchCount] = print
        prefetchCount += 1
    }

    /// The bucket stage 1 computed for this frame, when `process` meets the announced frames in
    /// their order (the data planes do); nil otherwise, and the caller hashes the key itself.
    @inlinable @inline(__always)
    func prefetchedBucket(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> UInt32? {
        let n = prefetchNext
        guard n < prefetchReady, prefetchFrames[n] == UnsafeRawPointer(frame.baseAddress) else { return nil }
        prefetchNext = n + 1
        guard prefetchPrints[n] == Self.fingerprint(sourcePort: f.sourcePort, destinationPort: f.destinationPort,
                                                    sourceLow: UInt32(truncatingIfNeeded: f.source.low)) else { return nil }
        return prefetchBuckets[n]
    }

    @inlinable @inline(__always)
    static func fingerprint(sourcePort: UInt16, destinationPort: UInt16, sourceLow: UInt32) -> UInt64 {
        UInt64(sourcePort) << 48 | UInt64(destinationPort) << 32 | UInt64(sourceLow)
    }

    /// Stage 2: starts loading the first entry of each announced bucket, then (stage 3) the
    /// second entry of each bucket that has one (the keyed bucket hash spreads keys at random, so
    /// at half load about one lookup in four goes on to a second entry), and ends the batch.
    @inlinable
    public func prefetchEntries() {
        // A reply's bucket in the reply index is its frame's bucket number (`linkReply`).
        let replies = conns.replies.count != 0
        if replies { prefetchReplyBuckets() }
        for k in 0..<prefetchCount {
            let i = conns.buckets[Int(prefetchBuckets[k])]
            if i != 0 { clvs_prefetch_write(conns.entries + Int(i - 1)) }
        }
        for k in 0..<prefetchCount {
            let i = conns.buckets[Int(prefetchBuckets[k])]
            guard i != 0 else { continue }
            let next = conns.entries[Int(i - 1)].hashNext
            if next != 0 { clvs_prefetch_write(conns.entries + Int(next - 1)) }
        }
        if replies { prefetchReplyEntries() }
        prefetchReady = prefetchCount
        prefetchNext = 0
        prefetchCount = 0
    }

    /// The hash bucket of a frame's connection key, from its headers alone (no full parse); nil
    /// for frames that cannot belong to a connection or are too short to tell.
    @inlinable @inline(__always)
    static func bucket(of frame: UnsafeRawBufferPointer, in conns: ConnectionTableView) -> UInt32? {
        bucketAndFingerprint(of: frame, in: conns)?.0
    }

    /// `bucket(of:in:)` and the frame's `fingerprint`.
    @inlinable @inline(__always)
    static func bucketAndFingerprint(of frame: UnsafeRawBufferPointer, in conns: ConnectionTableView) -> (UInt32, UInt64)? {
        guard let p = frame.baseAddress else { return nil }
        let n = frame.count
        @inline(__always) func u16(_ o: Int) -> UInt16 { UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        @inline(__always) func u32(_ o: Int) -> UInt32 { UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        guard n >= 18 else { return nil }
        var l3 = 14
        var type = u16(12)
        if type == 0x8100 { type = u16(16); l3 = 18 }
        if type == 0x0800 {
            guard n >= l3 + 20 else { return nil }
            let vihl = p.load(fromByteOffset: l3, as: UInt8.self)
            let l4 = l3 + Int(vihl & 0x0F) * 4
            let proto = p.load(fromByteOffset: l3 + 9, as: UInt8.self)
            guard vihl >> 4 == 4, n >= l4 + 4, u16(l3 + 6) & 0x1FFF == 0, proto == 6 || proto == 17 || proto == 132 else { return nil }
            let source = u32(l3 + 12), sport = u16(l4), dport = u16(l4 + 2)
            return (conns.bucket(proto: proto, client: IPAddress(ipv4: source), cport: sport, vlow: u32(l3 + 16), vport: dport),
                    fingerprint(sourcePort: sport, destinationPort: dport, sourceLow: source))
        }
        if type == 0x86DD {
            guard n >= l3 + 44 else { return nil }
            let proto = p.load(fromByteOffset: l3 + 6, as: UInt8.self)
            guard proto == 6 || proto == 17 || proto == 132 else { return nil }
            let sport = u16(l3 + 40), dport = u16(l3 + 42)
            return (conns.bucket(proto: proto, client: IPAddress(bytes: p + l3 + 8, length: 16), cport: sport, vlow: u32(l3 + 36), vport: dport),
                    fingerprint(sourcePort: sport, destinationPort: dport, sourceLow: u32(l3 + 20)))
        }
        return nil
    }
}
