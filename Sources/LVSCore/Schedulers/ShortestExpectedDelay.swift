/// sed: shortest expected delay (ip_vs_sed.c, spec §3.5).
///
/// Minimises `(activeconns + 1) / weight`; inactive connections are ignored; first wins ties.
public struct ShortestExpectedDelayScheduler: Scheduler {
    public static let name = "sed"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        leastWeightedOverhead(d) { Int64($0.activeConns) + 1 }
    }
}
