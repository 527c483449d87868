/// sed: shortest expected delay (ip_vs_sed.c, spec §3.5).
///
/// Minimises `(activeconns + 1) / weight`; inactive connections are ignored; first wins ties.
public struct ShortestExpectedDelayScheduler: Scheduler {
    public static let name = "sed"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        var best = -1
        var bestOverhead: Int64 = 0
        var bestWeight: Int64 = 0
        for i in 0..<d.count {
            let dest = d[i]
            guard dest.isEligible else { continue }
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
