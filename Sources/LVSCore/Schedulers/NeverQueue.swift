/// nq: never queue (ip_vs_nq.c, spec §3.6).
///
/// The first eligible destination with no active connection is taken at once; otherwise as sed.
public struct NeverQueueScheduler: Scheduler {
    public static let name = "nq"

    public init() {}

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        leastWeightedOverhead(d, takeIdle: true) { Int64($0.activeConns) + 1 }
    }
}
