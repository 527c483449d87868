import LVSModel

/// lblcr: locality-based least connection with replication (ip_vs_lblcr.c, spec §3.10).
///
/// Per packet destination address a set of destination slots: the least loaded usable member is
/// taken unless lblc-"overloaded", in which case a wlc pick over the service joins the set.
/// A set not modified for `expiration` seconds loses its most loaded member.
public struct LocalityBasedLeastConnectionReplicationScheduler: Scheduler {
    public static let name = "lblcr"
    /// Most entries the cache ever holds.
    public static let maxEntries = LocalityTable.entryLimit

    /// The `lblcr_expiration` sysctl in seconds (default 24 h).
    public var expiration: UInt32 = 24 * 60 * 60
    var table = LocalityTable()

    public init() {}

    /// Live cache entries.
    public var cacheCount: Int { table.count }

    /// The set cached for a packet destination address, most recently added first.
    public func cachedSet(for address: IPAddress) -> [UInt32]? {
        table.find(address).map { table.memberSlots($0) }
    }

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        switch change {
        case .initialized: table.removeAll()
        case let .removed(slot, _): table.forget(slot: slot, sets: true)
        case .added, .edited: break
        }
    }

    /// `ip_vs_dest_set_min`: least weighted overhead among usable members (list index).
    func setMinimum(_ e: Int, _ d: SchedulingDestinations) -> Int? {
        var best = -1
        var bestOverhead: Int64 = 0
        var bestWeight: Int64 = 0
        var m = table.entries[e].setHead
        while m >= 0 {
            let member = table.members[Int(m)]
            m = member.next
            guard let i = d.index(ofSlot: member.slot) else { continue }
            let dest = d[i]
            guard dest.isEligible else { continue }
            let oh = dest.overhead
            let w = Int64(dest.weight)
            if best < 0 || bestOverhead * w > oh * bestWeight {
                best = i
                bestOverhead = oh
                bestWeight = w
            }
        }
        return best < 0 ? nil : best
    }

    /// `ip_vs_dest_set_max`: the member (slot) with the highest weighted overhead, weight > 0 only.
    func setMaximum(_ e: Int, _ d: SchedulingDestinations) -> UInt32? {
        var most: UInt32?
        var mostOverhead: Int64 = 0
        var mostWeight: Int64 = 0
        var m = table.entries[e].setHead
        while m >= 0 {
            let member = table.members[Int(m)]
            m = member.next
            guard let i = d.index(ofSlot: member.slot) else { continue }
            let dest = d[i]
            guard dest.weight > 0 else { continue }
            let oh = dest.overhead
            let w = Int64(dest.weight)
            if most == nil || mostOverhead * w < oh * mostWeight {
                most = member.slot
                mostOverhead = oh
                mostWeight = w
            }
        }
        return most
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        let key = context.destination
        let now = context.nowSeconds
        if let e = table.find(key) {
            table.entries[e].lastUse = now
            let candidate = setMinimum(e, d)
            // time_after(now, lastmod + expiration)
            if table.entries[e].setSize > 1
                && Int32(bitPattern: (table.entries[e].lastMod &+ expiration) &- now) < 0 {
                if let most = setMaximum(e, d) { table.eraseMember(e, slot: most, now: now) }
            }
            if let i = candidate, !isLocalityOverloaded(d[i], d) { return i }
            guard let i = weightedLeastConnection(d) else { return nil }
            table.insertMember(e, slot: d.slot(i), now: now, check: true)
            return i
        }
        guard let i = weightedLeastConnection(d) else { return nil }
        if let e = table.insert(key, slot: d.slot(i), now: now) {
            table.insertMember(e, slot: d.slot(i), now: now, check: false)
        }
        return i
    }

    public mutating func expire(nowSeconds: UInt32) {
        table.expire(now: nowSeconds, expiration: expiration)
    }
}
