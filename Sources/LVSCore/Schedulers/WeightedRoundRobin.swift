import LVSModel

/// wrr: weighted round robin (ip_vs_wrr.c, spec §3.2).
///
/// Scans the list from the last chosen destination for one whose weight is at least the current
/// weight `cw`; each time the end of the list is reached `cw` drops by the gcd of the weights.
public struct WeightedRoundRobinScheduler: Scheduler {
    public static let name = "wrr"
    /// Slot of the current destination, or nil for the list head.
    var current: UInt32?
    /// Current weight.
    var cw = 0
    /// Maximum weight less (gcd - 1).
    var mw = 0
    /// Decreasing interval: gcd of the positive weights (1 if none).
    var di = 1

    public init() {}

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        current = nil
        var g = 0
        var maxWeight = 0
        for i in 0..<d.count {
            let w = Int(d[i].weight)
            guard w > 0 else { continue }
            g = g > 0 ? greatestCommonDivisor(w, g) : w
            if w > maxWeight { maxWeight = w }
        }
        di = g > 0 ? g : 1
        mw = maxWeight - (di - 1)
        if case .initialized = change {
            cw = mw
        } else if cw > mw || cw == 0 {
            cw = mw
        } else if di > 1 {
            cw = (cw / di) * di + 1
        }
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ context: inout SchedulingContext) -> Int? {
        guard mw > 0, !d.isEmpty else { return nil }
        // -1 stands for the list head.
        let last = current.flatMap { d.index(ofSlot: $0) } ?? -1
        var position = last
        var stop = -2
        var lastPass = false
        var restarted = false
        while true {
            var i = position + 1
            while i < d.count {
                let dest = d[i]
                if dest.available && !dest.overloaded && Int(dest.weight) >= cw {
                    current = d.slot(i)
                    return i
                }
                if i == stop { return nil }
                i += 1
            }
            position = -1
            cw -= di
            if cw <= 0 {
                cw = mw
                // Every weight down to 1 has been tried from the first destination: give up.
                if lastPass || last == -1 { return nil }
                restarted = true
            }
            lastPass = cw <= di
            if lastPass && restarted && last != -1 {
                // The weight >= 1 pass so far only covered the dests after `last`; finish at `last`.
                stop = last
            }
        }
    }
}
