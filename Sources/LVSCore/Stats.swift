import LVSModel

/// Packet and connection counters of one service or destination.
public struct StatsCounters: Sendable {
    public var conns: UInt64 = 0
    public var inPackets: UInt64 = 0
    public var outPackets: UInt64 = 0
    public var inBytes: UInt64 = 0
    public var outBytes: UInt64 = 0
    public init() {}

    public var snapshot: StatsSnapshot {
        StatsSnapshot(conns: conns, inPackets: inPackets, outPackets: outPackets, inBytes: inBytes, outBytes: outBytes)
    }

    public static func += (a: inout StatsCounters, b: StatsCounters) {
        a.conns &+= b.conns
        a.inPackets &+= b.inPackets
        a.outPackets &+= b.outPackets
        a.inBytes &+= b.inBytes
        a.outBytes &+= b.outBytes
    }
}

/// The kernel's rate estimator (ip_vs_est.c): sampled every 2 seconds, EWMA with weight 1/4.
///
/// Rates are kept scaled (packets and connections by 2^10, bytes by 2^5) in integers, exactly as
/// the kernel keeps them, and rounded to nearest when read.
public struct RateEstimator: Sendable {
    var lastConns: UInt64 = 0, lastInPackets: UInt64 = 0, lastOutPackets: UInt64 = 0
    var lastInBytes: UInt64 = 0, lastOutBytes: UInt64 = 0
    var cps: Int64 = 0, inPPS: Int64 = 0, outPPS: Int64 = 0, inBPS: Int64 = 0, outBPS: Int64 = 0
    public init() {}

    /// The estimator interval in seconds.
    public static let intervalSeconds: UInt64 = 2

    /// One 2-second sample.
    public mutating func sample(_ s: StatsCounters) {
        func step(_ est: inout Int64, _ now: UInt64, _ last: inout UInt64, _ shift: Int64) {
            let rate = Int64(bitPattern: now &- last) << shift
            last = now
            est += (rate - est) >> 2
        }
        step(&cps, s.conns, &lastConns, 9)
        step(&inPPS, s.inPackets, &lastInPackets, 9)
        step(&outPPS, s.outPackets, &lastOutPackets, 9)
        step(&inBPS, s.inBytes, &lastInBytes, 4)
        step(&outBPS, s.outBytes, &lastOutBytes, 4)
    }

    /// Restart from `s` with all rates 0 (what `-Z` does).
    public mutating func reset(to s: StatsCounters) {
        self = RateEstimator()
        lastConns = s.conns
        lastInPackets = s.inPackets
        lastOutPackets = s.outPackets
        lastInBytes = s.inBytes
        lastOutBytes = s.outBytes
    }

    public var rates: RateSnapshot {
        func r(_ v: Int64, _ round: Int64, _ shift: Int64) -> UInt64 { UInt64(max(0, (v + round) >> shift)) }
        return RateSnapshot(cps: r(cps, 0x1FF, 10), inPPS: r(inPPS, 0x1FF, 10), outPPS: r(outPPS, 0x1FF, 10),
                            inBPS: r(inBPS, 0xF, 5), outBPS: r(outBPS, 0xF, 5))
    }
}
