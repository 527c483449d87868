import LVSModel

/// Listing a shard's connections (`ipvsadm -Lnc`) in slices.
extension EngineShard {
    /// This shard's connections as `/proc/net/ip_vs_conn` shows them, in one go (tests, tools).
    /// From the shard's thread. A running worker lists in slices instead (`listConnections`).
    public func connections(now: UInt64) -> [ConnectionSnapshot] {
        var listing = ConnectionListing()
        while !listConnections(&listing, now: now) {}
        return listing.entries
    }

    /// One slice of a listing: takes the engine lock once, for at most `ConnectionListing.sliceEntries`
    /// entries (and `sliceBuckets` buckets), and appends them to `listing.entries`. Returns true
    /// when the table has been walked to the end. From the shard's thread; between slices the
    /// worker forwards packets and other workers take the lock, so a listing of a big table never
    /// stalls either for long. Entries present from the first slice to the last are listed once.
    @discardableResult
    public func listConnections(_ listing: inout ConnectionListing, now: UInt64) -> Bool {
        guard let start = listing.nextBucket else { return true }
        let t = Engine.tick(now)
        listing.reserve(forTableOf: table.count)
        listing.lockHolds += 1
        let next = engine.lock.withLock {
            table.forEachLive(fromBucket: start, entries: listing.sliceEntries, buckets: listing.sliceBuckets) { _, e in
                listing.entries.append(engine.connectionSnapshot(e, tick: t))
            }
        }
        listing.nextBucket = next
        return next == nil
    }
}

/// A connection listing in progress: where the walk of a shard's table goes on, and what it found.
public struct ConnectionListing: Sendable {
    /// Entries per lock hold (well under a millisecond of work; lvs-bench measures it).
    public static let defaultSliceEntries = 1024
    /// Buckets per lock hold, so empty stretches of a big table are also walked in parts.
    public static let defaultSliceBuckets = 16384

    public var sliceEntries: Int
    public var sliceBuckets: Int
    /// The bucket the next slice starts at; nil once the walk is complete.
    public var nextBucket: Int? = 0
    /// The entries listed so far.
    public var entries: [ConnectionSnapshot] = []
    /// How many times the walk took the engine lock.
    public var lockHolds = 0

    public init(sliceEntries: Int = ConnectionListing.defaultSliceEntries, sliceBuckets: Int = ConnectionListing.defaultSliceBuckets) {
        precondition(sliceEntries > 0 && sliceBuckets > 0, "a listing slice must take at least one entry and one bucket")
        self.sliceEntries = sliceEntries
        self.sliceBuckets = sliceBuckets
    }

    public var isComplete: Bool { nextBucket == nil }

    /// Grows `entries` before a slice, outside the lock (a copy of a big array inside it would
    /// hold the lock for milliseconds): room for two more slices, doubling as it fills. Not the
    /// whole table's size at once: a streamed listing hands `entries` over in small batches.
    mutating func reserve(forTableOf count: Int) {
        let room = 2 * min(sliceEntries, 1 << 20) + 64
        if entries.capacity - entries.count < room {
            entries.reserveCapacity(min(count, 2 * entries.count) + room)
        }
    }
}
