import LVSModel

/// dh: destination hashing (ip_vs_dh.c, spec §3.8).
///
/// 256 buckets assigned round robin over the list, one per destination per lap, weights ignored;
/// keyed by the packet's destination address. No fallback.
public struct DestinationHashingScheduler: Scheduler {
    public static let name = "dh"
    public static let tableBits = 8
    public static let tableSize = 1 << tableBits

    /// List index (at the last fill) per bucket, -1 for none.
    var buckets: [Int32]
    var list = ListSnapshot()

    public init() {
        buckets = Array(repeating: -1, count: Self.tableSize)
    }

    @inlinable static func bucket(_ address: IPAddress) -> Int {
        Int(kernelHash32(address.folded, bits: tableBits))
    }

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        // The kernel has no upd_dest hook for dh: an edit keeps the table.
        if case .edited = change { return }
        list.capture(d)
        for b in 0..<buckets.count {
            buckets[b] = d.isEmpty ? -1 : Int32(b % d.count)
        }
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        guard let i = list.resolve(buckets[Self.bucket(context.destination)], in: d),
              d[i].isEligible else { return nil }
        return i
    }
}
