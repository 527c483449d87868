/// ovf: weighted overflow (ip_vs_ovf.c, spec §3.12).
///
/// The highest-weight eligible destination whose active connections do not exceed its weight;
/// the first of equal weights wins. Inactive connections are not counted.
public struct WeightedOverflowScheduler: Scheduler {
    public static let name = "ovf"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        highestWeight(d) { $0.activeConns <= $0.weight }
    }
}
