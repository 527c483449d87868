import LVSModel

/// sh: source hashing (ip_vs_sh.c, spec §3.7), with the sh-fallback and sh-port flags.
///
/// 256 buckets filled by walking the list (newest first), each destination taking `weight`
/// consecutive buckets (at least one, even at weight 0), wrapping until all are filled.
public struct SourceHashingScheduler: Scheduler {
    public static let name = "sh"
    /// `CONFIG_IP_VS_SH_TAB_BITS` default.
    public static let tableBits = 8
    public static let tableSize = 1 << tableBits

    /// List index (at the last update) per bucket, -1 for none.
    var buckets: [Int32]
    var list = ListSnapshot()

    public init() {
        buckets = Array(repeating: -1, count: Self.tableSize)
    }

    /// The kernel's `ip_vs_sh_hashkey`.
    @inlinable static func bucket(_ address: IPAddress, port: UInt16, offset: UInt32) -> Int {
        let h = kernelHash32(UInt32(port) &+ address.folded, bits: tableBits)
        return Int((offset &+ h) & UInt32(tableSize - 1))
    }

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        list.capture(d)
        guard !d.isEmpty else {
            for b in 0..<buckets.count { buckets[b] = -1 }
            return
        }
        var i = 0
        var taken = 0
        for b in 0..<buckets.count {
            buckets[b] = Int32(i)
            taken += 1
            if taken >= Int(d[i].weight) {
                i = (i + 1) % d.count
                taken = 0
            }
        }
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        let port = context.flags.contains(.hashPort) ? context.sourcePort : 0
        let home = Self.bucket(context.source, port: port, offset: 0)
        guard let primary = list.resolve(buckets[home], in: d) else { return nil }
        if !isUnavailableForHashing(d[primary]) { return primary }
        guard context.flags.contains(.fallback) else { return nil }
        for k in 0..<Self.tableSize {
            let roffset = UInt32((k + home) % Self.tableSize)
            let b = Self.bucket(context.source, port: port, offset: roffset)
            guard let i = list.resolve(buckets[b], in: d) else { return nil }
            if !isUnavailableForHashing(d[i]) { return i }
        }
        return nil
    }
}
