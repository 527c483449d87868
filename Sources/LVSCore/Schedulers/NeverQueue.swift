/// nq: never queue (ip_vs_nq.c, spec §3.6).
///
/// The first eligible destination with no active connection is taken at once; otherwise as sed.
public struct NeverQueueScheduler: Scheduler {
    public static let name = "nq"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        var best = -1
        var bestOverhead: Int64 = 0
        var bestWeight: Int64 = 0
        for i in 0..<d.count {
            let dest = d[i]
            guard dest.isEligible else { continue }
            if dest.activeConns == 0 { return i }
            let oh = Int64(dest.activeConns) + 1
            let w = Int64(dest.weight)
            if best < 0 || bestOverhead * w > oh * bestWeight {
                best = i
                bestOverhead = oh
                bestWeight = w
            }
        }
        return best < 0 ? nil : best
    }
}
