import LVSModel

/// A periodic checkpoint of the restart state (lvsd --checkpoint-interval, docs/restart.md) in
/// progress: the entries `Engine.exportState` would write, gathered while the data plane runs.
/// A shard's table is walked on its worker's own thread (`EngineShard.exportState`), the shared
/// tables (synced connections, templates) from any thread (`Engine.exportSharedState`); each
/// slice holds the engine lock for at most `sliceEntries` entries, so neither the workers nor new
/// connections wait for long whatever the table's size.
public struct StateExport: Sendable {
    /// Entries per lock hold (as a listing's slice).
    public static let defaultSliceEntries = 1024
    /// Buckets per lock hold, so empty stretches of a big table are also walked in parts.
    public static let defaultSliceBuckets = 16384

    public var sliceEntries: Int
    public var sliceBuckets: Int
    /// Where the walk of the current table goes on; nil once it is complete.
    public var nextBucket: Int? = 0
    /// What the walk found so far, in sync-message form with the time each entry has left.
    public var entries: [SyncConnection] = []
    /// How many times the walk took the engine lock.
    public var lockHolds = 0

    public init(sliceEntries: Int = StateExport.defaultSliceEntries, sliceBuckets: Int = StateExport.defaultSliceBuckets) {
        precondition(sliceEntries > 0 && sliceBuckets > 0, "a slice must take at least one entry and one bucket")
        self.sliceEntries = sliceEntries
        self.sliceBuckets = sliceBuckets
    }

    public var isComplete: Bool { nextBucket == nil }

    /// Grows `entries` outside the lock (a copy of a big array inside it would hold the lock for
    /// milliseconds): room for two more slices, doubling as it fills.
    mutating func reserveForSlice() {
        let room = 2 * sliceEntries + 64
        if entries.capacity - entries.count < room { entries.reserveCapacity(2 * entries.count + room) }
    }

    /// One slice of `table`'s walk under `engine`'s lock; true at its end.
    mutating func walk(_ table: ConnectionTable, of engine: Engine, now: UInt64) -> Bool {
        guard let start = nextBucket else { return true }
        let t = Engine.tick(now)
        reserveForSlice()
        lockHolds += 1
        let next = engine.lock.withLock {
            table.forEachLive(fromBucket: start, entries: sliceEntries, buckets: sliceBuckets) { _, e in
                if let c = engine.stateEntry(e, tick: t) { entries.append(c) }
            }
        }
        nextBucket = next
        return next == nil
    }
}

extension EngineShard {
    /// One slice of a checkpoint of this shard's table; true when it has been walked to the end.
    /// From the shard's thread (between its batches), like a listing.
    @discardableResult
    public func exportState(_ export: inout StateExport, now: UInt64) -> Bool {
        export.walk(table, of: engine, now: now)
    }
}

extension Engine {
    /// The entries of the tables no worker owns, synced connections and persistence templates,
    /// for a checkpoint: walked in slices from the calling thread (any), the lock taken per slice.
    public func exportSharedState(now: UInt64, sliceEntries: Int = StateExport.defaultSliceEntries) -> [SyncConnection] {
        var out: [SyncConnection] = []
        for table in [templates, synced] {
            var export = StateExport(sliceEntries: sliceEntries)
            while !export.walk(table, of: self, now: now) {}
            out += export.entries
        }
        return out
    }

    /// An entry as the state file holds it: its sync message with the time it has left as its
    /// timeout (at least a second); nil for a dead entry or one sync cannot carry. Under the lock.
    func stateEntry(_ e: ConnectionEntry, tick t: UInt32) -> SyncConnection? {
        guard !e.isDead, var c = syncConnection(e) else { return nil }
        let left = Int64(Int32(bitPattern: e.expires &- t))
        c.timeout = UInt32(max(1, (left + Int64(Self.ticksPerSecond) - 1) / Int64(Self.ticksPerSecond)))
        return c
    }
}
