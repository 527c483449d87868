/// ovf: weighted overflow (ip_vs_ovf.c, spec §3.12).
///
/// The highest-weight eligible destination whose active connections do not exceed its weight;
/// the first of equal weights wins. Inactive connections are not counted.
public struct WeightedOverflowScheduler: Scheduler {
    public static let name = "ovf"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        var best = -1
        var bestWeight: Int32 = 0
        for i in 0..<d.count {
            let dest = d[i]
            guard dest.isEligible, dest.activeConns <= dest.weight else { continue }
            if best < 0 || dest.weight > bestWeight {
                best = i
                bestWeight = dest.weight
            }
        }
        return best < 0 ? nil : best
    }
}
