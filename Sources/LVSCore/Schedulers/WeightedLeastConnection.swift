/// wlc: weighted least connection, the default scheduler (ip_vs_wlc.c, spec §3.4).
///
/// Minimises overhead / weight by 64-bit cross multiplication; the earlier destination wins ties.
public struct WeightedLeastConnectionScheduler: Scheduler {
    public static let name = "wlc"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        weightedLeastConnection(d)
    }
}
