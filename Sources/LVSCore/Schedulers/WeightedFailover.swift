/// fo: weighted failover (ip_vs_fo.c, spec §3.11).
///
/// The eligible destination with the highest weight; the first (newest) of equal weights wins.
public struct WeightedFailoverScheduler: Scheduler {
    public static let name = "fo"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        var best = -1
        var bestWeight: Int32 = 0
        for i in 0..<d.count {
            let dest = d[i]
            guard dest.isEligible else { continue }
            if best < 0 || dest.weight > bestWeight {
                best = i
                bestWeight = dest.weight
            }
        }
        return best < 0 ? nil : best
    }
}
