import LVSModel

/// mh: Maglev hashing (ip_vs_mh.c, spec §3.13), with the mh-fallback and mh-port flags, and
/// lvsd's own mh-sorted (flag-3).
///
/// Each destination walks its own permutation of the M = 4093 table slots (offset, then steps of
/// skip); rounds over the list (newest first) let each destination claim `turns` free slots until
/// the table is full. Turns come from `lastWeight`, so a quiesced destination keeps its slots.
/// With mh-sorted the rounds go over the destinations sorted by (address, port) instead of the
/// list: the table then depends only on the set of (address, port, weight), so directors behind
/// ECMP agree whatever order their real servers were added in (docs/compatibility.md).
public struct MaglevScheduler: Scheduler {
    public static let name = "mh"
    /// `CONFIG_IP_VS_MH_TAB_INDEX` default 12 → primes[4].
    public static let tableIndex = 12
    /// Table size M (a prime).
    public static let tableSize = 4093
    /// `IP_VS_MH_TAB_BITS` = index / 2.
    public static let tableBits = tableIndex / 2
    /// The kernel refuses more destinations than table slots (EINVAL).
    public static let maxDestinations = tableSize

    public static let key1 = SipHashKey(k0: 2_654_435_761, k1: 2_654_435_761)
    public static let key2 = SipHashKey(k0: 2_654_446_892, k1: 2_654_446_892)

    /// List index (at the last populate) per table slot, -1 when empty.
    var lookup: [Int32]
    var list = ListSnapshot()
    // Per-destination setup, reused between populates.
    var perm: [Int] = []
    var skip: [Int] = []
    var turns: [Int] = []
    /// The list indices in the order the rounds visit them (list order, or sorted: mh-sorted).
    var order: [Int] = []
    var taken: [Bool]

    public init() {
        lookup = Array(repeating: -1, count: Self.tableSize)
        taken = Array(repeating: false, count: Self.tableSize)
    }

    /// The kernel's `ip_vs_mh_hashkey`: hsiphash of the host-order `offset + port + addr_fold`.
    @inlinable public static func hashKey(_ address: IPAddress, port: UInt16, key: SipHashKey, offset: UInt32 = 0) -> UInt32 {
        hsiphash32(offset &+ UInt32(port) &+ address.folded, key: key)
    }

    /// Starting slot of a destination's permutation.
    public static func offset(of address: IPAddress, port: UInt16) -> Int {
        Int(hashKey(address, port: port, key: key1) % UInt32(tableSize))
    }

    /// Step of a destination's permutation.
    public static func skip(of address: IPAddress, port: UInt16) -> Int {
        Int(hashKey(address, port: port, key: key2) % UInt32(tableSize - 1)) + 1
    }

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        list.capture(d)
        let n = d.count
        var g = 0
        var maxWeight = 0
        for i in 0..<n {
            let w = Int(d[i].lastWeight)
            guard w > 0 else { continue }
            g = g > 0 ? greatestCommonDivisor(w, g) : w
            if w > maxWeight { maxWeight = w }
        }
        for c in 0..<lookup.count { lookup[c] = -1 }
        guard g >= 1 else { return }
        let rshift = max(0, findLastSet(maxWeight / g) - Self.tableBits)

        perm.removeAll(keepingCapacity: true)
        skip.removeAll(keepingCapacity: true)
        turns.removeAll(keepingCapacity: true)
        for i in 0..<n {
            let dest = d[i]
            perm.append(Self.offset(of: dest.address, port: dest.port))
            skip.append(Self.skip(of: dest.address, port: dest.port))
            let lw = Int(dest.lastWeight)
            let t = lw > 0 ? (lw / g) >> rshift : 0
            turns.append(t != 0 ? t : (lw != 0 ? 1 : 0))
        }

        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: 0..<n)
        if flags.contains(.sortedTable) {
            order.sort { a, b in (d[a].address, d[a].port) < (d[b].address, d[b].port) }
        }

        for c in 0..<taken.count { taken[c] = false }
        let m = Self.tableSize
        var filled = 0
        while filled < m {
            var k = 0
            var claims = 0
            while k < n {
                let i = order[k]
                if turns[i] < 1 {
                    k += 1
                    continue
                }
                var c = perm[i]
                while taken[c] {
                    c += skip[i]
                    if c >= m { c -= m }
                }
                perm[i] = c
                taken[c] = true
                lookup[c] = Int32(i)
                filled += 1
                if filled == m { return }
                claims += 1
                if claims >= turns[i] {
                    claims = 0
                    k += 1
                }
            }
        }
    }

    /// Number of table slots held by the destination at list index `i` (for tests and listings).
    public func slotCount(ofIndex i: Int) -> Int {
        var count = 0
        for c in lookup where Int(c) == i { count += 1 }
        return count
    }

    /// The list index (at the last populate) held by a table slot, or nil.
    public func indexAt(tableSlot c: Int) -> Int? {
        lookup[c] < 0 ? nil : Int(lookup[c])
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        let port = context.flags.contains(.hashPort) ? context.sourcePort : 0
        let m = UInt32(Self.tableSize)
        let home = Self.hashKey(context.source, port: port, key: Self.key1) % m
        guard let primary = list.resolve(lookup[Int(home)], in: d) else { return nil }
        if !isUnavailableForHashing(d[primary]) { return primary }
        guard context.flags.contains(.fallback) else { return nil }
        for k in 0..<m {
            let roffset = (k &+ home) % m
            let c = Self.hashKey(context.source, port: port, key: Self.key1, offset: roffset) % m
            guard let i = list.resolve(lookup[Int(c)], in: d) else { return nil }
            if !isUnavailableForHashing(d[i]) { return i }
        }
        return nil
    }
}
