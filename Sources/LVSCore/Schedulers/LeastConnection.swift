/// lc: least connection (ip_vs_lc.c, spec §3.3).
///
/// Minimal `active * 256 + inactive` among eligible destinations; the first (newest) wins ties.
public struct LeastConnectionScheduler: Scheduler {
    public static let name = "lc"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        var best = -1
        var bestOverhead: Int64 = 0
        for i in 0..<d.count {
            let dest = d[i]
            guard dest.isEligible else { continue }
            let oh = dest.overhead
            if best < 0 || oh < bestOverhead {
                best = i
                bestOverhead = oh
            }
        }
        return best < 0 ? nil : best
    }
}
