/// twos: power of two choices (ip_vs_twos.c, spec §3.14).
///
/// Two weighted random picks among eligible destinations; the one with the lower
/// overhead / weight wins (the first pick on a tie). Randomness comes from `context.nextRandom()`.
public struct PowerOfTwoChoicesScheduler: Scheduler {
    public static let name = "twos"

    public init() {}

    /// Uniform value in `0..<bound` from one 64-bit random draw (multiply-high, no modulo).
    @inline(__always) static func below(_ bound: Int64, _ context: inout SchedulingContext) -> Int64 {
        Int64(context.nextRandom().multipliedFullWidth(by: UInt64(bound)).high)
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        var total: Int64 = 0
        var choice1 = -1
        for i in 0..<d.count where d[i].isEligible {
            total += Int64(d[i].weight)
            choice1 = i
        }
        guard choice1 >= 0 else { return nil }
        total += 1
        var r1 = Self.below(total, &context)
        var r2 = Self.below(total, &context)

        var choice2 = -1
        var weight1: Int64 = -1, weight2: Int64 = -1
        var overhead1: Int64 = 0, overhead2: Int64 = 0
        for i in 0..<d.count {
            let dest = d[i]
            guard dest.isEligible else { continue }
            let w = Int64(dest.weight)
            r1 -= w
            r2 -= w
            if r1 <= 0 && weight1 == -1 {
                choice1 = i
                weight1 = w
                overhead1 = dest.overhead
            }
            if r2 <= 0 && weight2 == -1 {
                choice2 = i
                weight2 = w
                overhead2 = dest.overhead
            }
            if weight1 != -1 && weight2 != -1 { break }
        }
        if choice2 >= 0 && weight2 * overhead1 > weight1 * overhead2 {
            return choice2
        }
        return choice1
    }
}
