import Glibc

/// Per connection-table index: the entry's place in the reply index and where its replies go.
public struct ReplyLink: Sendable {
    /// Next entry in the same reply bucket (index + 1, 0 = end).
    public var next: UInt32
    /// The reply bucket + 1 the entry is linked into (0 = not linked).
    public var bucket: UInt32
    /// The client's next hop: its MAC (low 48 bits) and the director's interface slot above it
    /// (`Engine.interfaceSlotShift`), learnt from the connection's first packet.
    public var hop: UInt64
}

/// The second lookup of NAT connections, by the reply's tuple (protocol, real server address
/// and port, client address and port), as the kernel's `ip_vs_conn_out_get` finds a reply's
/// connection. It chains the connection table's own entries (one `ReplyLink` per entry index),
/// so it holds at most as many connections as the table: no separate limit, no allocation.
/// Its memory is mapped lazily: a director without NAT destinations never touches it.
///
/// Changed under the engine lock only (link at a new connection, unlink when the entry is
/// unhashed), read by the shard's worker, as the table's hash chains are.
public struct ReplyIndexView {
    @usableFromInline let buckets: UnsafeMutablePointer<UInt32>
    @usableFromInline let links: UnsafeMutablePointer<ReplyLink>
    /// Linked entries (0: the packet path skips the reply lookup).
    @usableFromInline let linked: UnsafeMutablePointer<Int>
    @usableFromInline let bucketMask: UInt32
    /// An atomic word counting linked entries over all the engine's shards, or nil.
    let total: (words: AtomicWords, index: Int)?

    init(capacity: Int, bucketCount: Int, total: (AtomicWords, Int)?) {
        self.total = total
        buckets = ConnectionTable.mapZeroed(bucketCount * MemoryLayout<UInt32>.stride)
            .bindMemory(to: UInt32.self, capacity: bucketCount)
        links = ConnectionTable.mapZeroed(capacity * MemoryLayout<ReplyLink>.stride)
            .bindMemory(to: ReplyLink.self, capacity: capacity)
        linked = .allocate(capacity: 1)
        linked.initialize(to: 0)
        bucketMask = UInt32(bucketCount - 1)
    }

    func deallocate(capacity: Int) {
        ConnectionTable.unmap(buckets, (Int(bucketMask) + 1) * MemoryLayout<UInt32>.stride)
        ConnectionTable.unmap(links, capacity * MemoryLayout<ReplyLink>.stride)
        linked.deallocate()
    }

    /// Number of linked entries.
    @inlinable public var count: Int { linked.pointee }

    /// Links entry `index` into reply bucket `bucket` with the client's next hop `hop`.
    func link(_ index: UInt32, bucket: UInt32, hop: UInt64) {
        let b = Int(bucket & bucketMask)
        links[Int(index)] = ReplyLink(next: buckets[b], bucket: UInt32(b) + 1, hop: hop)
        buckets[b] = index + 1
        linked.pointee += 1
        if let t = total { t.words.add(t.index, 1) }
    }

    /// Unlinks entry `index` if it is linked.
    func unlink(_ index: UInt32) {
        let stored = links[Int(index)].bucket
        guard stored != 0 else { return }
        let b = Int(stored - 1)
        let next = links[Int(index)].next
        if buckets[b] == index + 1 {
            buckets[b] = next
        } else {
            var i = buckets[b]
            while i != 0 {
                if links[Int(i - 1)].next == index + 1 {
                    links[Int(i - 1)].next = next
                    break
                }
                i = links[Int(i - 1)].next
            }
        }
        links[Int(index)] = ReplyLink(next: 0, bucket: 0, hop: 0)
        linked.pointee -= 1
        if let t = total { t.words.add(t.index, -1) }
    }

    /// The first entry of reply bucket `bucket` (index + 1, 0 = none).
    @inlinable @inline(__always) func head(_ bucket: UInt32) -> UInt32 { buckets[Int(bucket & bucketMask)] }
}
