/// Helpers shared by several schedulers.

/// A destination is "unavailable" to sh, dh and mh when its weight is ≤ 0 or it is OVERLOADed.
@inlinable func isUnavailableForHashing(_ dest: Destination) -> Bool {
    !dest.isEligible
}

/// Greatest common divisor of two positive integers.
@inlinable func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
    var x = a, y = b
    while y != 0 { (x, y) = (y, x % y) }
    return x
}

/// Position of the most significant set bit, 1-based (the kernel's `fls`); 0 for 0.
@inlinable func findLastSet(_ v: Int) -> Int {
    v <= 0 ? 0 : Int.bitWidth - v.leadingZeroBitCount
}

/// The lblc/lblcr notion of "overloaded": the destination has more active connections than its
/// weight while some destination of the service has `activeconns * 2 < weight`.
@inlinable func isLocalityOverloaded(_ dest: Destination, _ d: SchedulingDestinations) -> Bool {
    guard Int64(dest.activeConns) > Int64(dest.weight) else { return false }
    for i in 0..<d.count {
        let other = d[i]
        if Int64(other.activeConns) * 2 < Int64(other.weight) { return true }
    }
    return false
}

/// The destination list as it was at the last `update`, so that hash tables can hold list indices
/// (O(1) lookups) and still resolve them safely should the list have changed since.
struct ListSnapshot {
    var slots: [UInt32] = []

    mutating func capture(_ d: SchedulingDestinations) {
        slots.removeAll(keepingCapacity: true)
        slots.reserveCapacity(d.count)
        for i in 0..<d.count { slots.append(d.slot(i)) }
    }

    /// The current list index of the destination that sat at `index` when the snapshot was taken.
    @inline(__always) func resolve(_ index: Int32, in d: SchedulingDestinations) -> Int? {
        let i = Int(index)
        guard i >= 0, i < slots.count else { return nil }
        let s = slots[i]
        if i < d.count && d.slot(i) == s { return i }
        return d.index(ofSlot: s)
    }
}
