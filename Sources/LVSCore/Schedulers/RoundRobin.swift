import LVSModel

/// rr: round robin over eligible destinations, weights otherwise ignored (ip_vs_rr.c).
///
/// Keeps the last chosen destination; the first pick after creation is the newest destination.
public struct RoundRobinScheduler: Scheduler {
    public static let name = "rr"
    /// Slot of the last chosen destination, or nil for the list head.
    var last: UInt32?

    public init() {}

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        switch change {
        case .initialized:
            last = nil
        case let .removed(slot, formerIndex):
            // The kernel moves the pointer to the previous node when its node is deleted.
            if last == slot { last = formerIndex == 0 ? nil : d.slot(formerIndex - 1) }
        case .added, .edited:
            break
        }
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        let n = d.count
        guard n > 0 else { return nil }
        let start = last.flatMap { d.index(ofSlot: $0) }.map { $0 + 1 } ?? 0
        for k in 0..<n {
            let i = (start + k) % n
            if d[i].isEligible {
                last = d.slot(i)
                return i
            }
        }
        return nil
    }
}
