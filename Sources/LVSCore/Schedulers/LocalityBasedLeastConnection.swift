import LVSModel

/// lblc: locality-based least connection (ip_vs_lblc.c, spec §3.9).
///
/// Remembers, per packet destination address, the destination slot last chosen for it; reuses it
/// while it has weight > 0 and is not "overloaded" in the lblc sense (the OVERLOAD threshold flag
/// is not checked on this path), otherwise picks by wlc and replaces the entry.
public struct LocalityBasedLeastConnectionScheduler: Scheduler {
    public static let name = "lblc"
    /// Most entries the cache ever holds.
    public static let maxEntries = LocalityTable.entryLimit

    /// The `lblc_expiration` sysctl in seconds (default 24 h).
    public var expiration: UInt32 = 24 * 60 * 60
    var table = LocalityTable()

    public init() {}

    /// Live cache entries.
    public var cacheCount: Int { table.count }

    /// The cached destination slot for a packet destination address.
    public func cachedSlot(for address: IPAddress) -> UInt32? {
        table.find(address).map { table.entries[$0].slot }
    }

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        switch change {
        case .initialized: table.removeAll()
        case let .removed(slot, _): table.forget(slot: slot, sets: false)
        case .added, .edited: break
        }
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        let key = context.destination
        let now = context.nowSeconds
        let entry = table.find(key)
        if let e = entry {
            table.entries[e].lastUse = now
            if let i = d.index(ofSlot: table.entries[e].slot) {
                let dest = d[i]
                if dest.available && dest.weight > 0 && !isLocalityOverloaded(dest, d) { return i }
            }
        }
        guard let i = weightedLeastConnection(d) else { return nil }
        if let e = entry {
            if table.entries[e].slot != d.slot(i) {
                table.entries[e].slot = d.slot(i)
                table.entries[e].lastUse = now
            }
        } else {
            _ = table.insert(key, slot: d.slot(i), now: now)
        }
        return i
    }

    public mutating func expire(nowSeconds: UInt32) {
        table.expire(now: nowSeconds, expiration: expiration)
    }
}
