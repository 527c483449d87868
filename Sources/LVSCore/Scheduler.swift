import LVSModel

/// The destinations of one service in the kernel's list order (newest first), as a scheduler sees them.
///
/// A view over the engine's destination table: no copies, no allocation.
public struct SchedulingDestinations {
    @usableFromInline let order: UnsafeBufferPointer<UInt32>
    @usableFromInline let table: UnsafePointer<Destination>

    @inlinable public init(order: UnsafeBufferPointer<UInt32>, table: UnsafePointer<Destination>) {
        self.order = order
        self.table = table
    }

    @inlinable public var count: Int { order.count }
    @inlinable public var isEmpty: Bool { order.isEmpty }
    /// The i-th destination in list order.
    @inlinable public subscript(i: Int) -> Destination { table[Int(order[i])] }
    /// The table slot of the i-th destination.
    @inlinable public func slot(_ i: Int) -> UInt32 { order[i] }
    /// The list index of a table slot, if it belongs to this list.
    @inlinable public func index(ofSlot s: UInt32) -> Int? {
        for i in 0..<order.count where order[i] == s { return i }
        return nil
    }
}

/// What a scheduler may look at in the packet that opens a connection.
public struct SchedulingContext {
    /// Client (source) address.
    public var source: IPAddress
    /// Client port (used by sh-port / mh-port).
    public var sourcePort: UInt16
    /// Packet destination address (used by dh, lblc, lblcr).
    public var destination: IPAddress
    /// Service flags (sh-/mh- fallback and port bits).
    public var flags: ServiceFlags
    /// Engine time in seconds (used by lblc/lblcr expiry).
    public var nowSeconds: UInt32
    /// State of the injected random generator (twos); advanced by `nextRandom()`.
    public var randomState: UInt64

    public init(source: IPAddress, sourcePort: UInt16 = 0, destination: IPAddress = .zero,
                flags: ServiceFlags = [], nowSeconds: UInt32 = 0, randomState: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        self.source = source
        self.sourcePort = sourcePort
        self.destination = destination
        self.flags = flags
        self.nowSeconds = nowSeconds
        self.randomState = randomState
    }

    /// SplitMix64: deterministic for a given seed.
    @inlinable public mutating func nextRandom() -> UInt64 {
        randomState &+= 0x9E37_79B9_7F4A_7C15
        var z = randomState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Why a scheduler is told to rebuild its state (the kernel's add_dest / del_dest / upd_dest hooks).
public enum DestinationChange: Sendable {
    /// The service was created or its scheduler replaced.
    case initialized
    /// A destination was inserted at list index 0.
    case added(slot: UInt32)
    /// A destination was removed; it sat at `formerIndex` in the list.
    case removed(slot: UInt32, formerIndex: Int)
    /// A destination's weight or thresholds were edited.
    case edited(slot: UInt32)
}

/// One IPVS scheduling algorithm (one per file, as the kernel keeps one `ip_vs_*.c` each).
public protocol Scheduler {
    /// The name given to `-s`.
    static var name: String { get }
    init()
    /// Called after every change of the destination list or of a destination's weight.
    mutating func update(_ destinations: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange)
    /// Picks a destination for a new connection: an index into `destinations`, or nil ("no destination available").
    mutating func schedule(_ destinations: SchedulingDestinations, _ context: inout SchedulingContext) -> Int?
    /// Periodic housekeeping (lblc/lblcr cache expiry); `nowSeconds` is engine time.
    mutating func expire(nowSeconds: UInt32)
}

extension Scheduler {
    public mutating func update(_ destinations: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {}
    public mutating func expire(nowSeconds: UInt32) {}
}

/// The kernel's `hash_32`: multiplicative hash keeping the top `bits` bits.
@inlinable public func kernelHash32(_ value: UInt32, bits: Int) -> UInt32 {
    (value &* 0x61C8_8647) >> UInt32(32 - bits)
}

/// The eligible destination with the least `overhead / weight`, compared as the kernel does by
/// cross multiplication: a later destination replaces the best only if
/// `overhead(best) * weight(d) > overhead(d) * weight(best)`, so the first wins ties.
/// With `takeIdle`, the first eligible destination without active connections wins at once (nq).
@inlinable public func leastWeightedOverhead(_ d: SchedulingDestinations, takeIdle: Bool = false,
                                            overhead: (Destination) -> Int64) -> Int? {
    var best = -1
    var bestOverhead: Int64 = 0
    var bestWeight: Int64 = 0
    for i in 0..<d.count {
        let dest = d[i]
        guard dest.isEligible else { continue }
        if takeIdle && dest.activeConns == 0 { return i }
        let oh = overhead(dest)
        let w = Int64(dest.weight)
        if best < 0 || bestOverhead * w > oh * bestWeight {
            best = i
            bestOverhead = oh
            bestWeight = w
        }
    }
    return best < 0 ? nil : best
}

/// Least weighted connection overhead (`active * 256 + inactive`) as wlc picks it; shared by wlc,
/// lblc and lblcr.
@inlinable public func weightedLeastConnection(_ d: SchedulingDestinations) -> Int? {
    leastWeightedOverhead(d) { $0.overhead }
}

/// The eligible destination with the highest weight that also passes `accept`; the first (newest)
/// of equal weights wins. Shared by fo and ovf.
@inlinable public func highestWeight(_ d: SchedulingDestinations, accept: (Destination) -> Bool = { _ in true }) -> Int? {
    var best = -1
    var bestWeight: Int32 = 0
    for i in 0..<d.count {
        let dest = d[i]
        guard dest.isEligible, accept(dest) else { continue }
        if best < 0 || dest.weight > bestWeight {
            best = i
            bestWeight = dest.weight
        }
    }
    return best < 0 ? nil : best
}
