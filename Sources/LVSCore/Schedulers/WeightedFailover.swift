/// fo: weighted failover (ip_vs_fo.c, spec §3.11).
///
/// The eligible destination with the highest weight; the first (newest) of equal weights wins.
public struct WeightedFailoverScheduler: Scheduler {
    public static let name = "fo"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        highestWeight(d)
    }
}
