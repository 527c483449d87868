import CLVSShim
import LVSCore

/// Counters of one interface, summed over workers.
public struct InterfaceCounters: Sendable, Equatable {
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Verdict `.pass`: left to the kernel.
    public var passed: UInt64 = 0
    /// Verdict `.drop`, all reasons.
    public var dropped: UInt64 = 0
    /// sendmmsg rejected the frame (full queue, too big, ...), counted on the egress interface.
    public var txErrors: UInt64 = 0
    /// Frame bigger than the ring slot and no full copy available.
    public var truncated: UInt64 = 0
    /// `.forward(interface:)` to an interface without a socket.
    public var unknownEgress: UInt64 = 0
    /// Frames with an out-of-band VLAN tag, left to the kernel.
    public var vlanPassed: UInt64 = 0
    /// AF_XDP only: verdict `.pass` on a frame the XDP program took from the kernel; it cannot be
    /// given back, so it is dropped (the program only takes VIP traffic and ARP/ND for VIPs).
    public var passDropped: UInt64 = 0
    public var dropReasons: [DropReason: UInt64] = [:]

    public init() {}

    static func += (a: inout InterfaceCounters, b: InterfaceCounters) {
        a.rxPackets &+= b.rxPackets; a.rxBytes &+= b.rxBytes
        a.txPackets &+= b.txPackets; a.txBytes &+= b.txBytes
        a.passed &+= b.passed; a.dropped &+= b.dropped; a.txErrors &+= b.txErrors
        a.truncated &+= b.truncated; a.unknownEgress &+= b.unknownEgress; a.vlanPassed &+= b.vlanPassed
        a.passDropped &+= b.passDropped
        for (k, v) in b.dropReasons { a.dropReasons[k, default: 0] &+= v }
    }
}

/// Slots of a counter row (one row per interface per worker), single writer, relaxed atomics.
@usableFromInline
enum Counter: Int {
    case rxPackets, rxBytes, txPackets, txBytes, passed, dropped, txErrors, truncated, unknownEgress, vlanPassed, passDropped
    /// The first per-`DropReason` slot: one past the last case (`passDropped`).
    @usableFromInline static let reasonBase = 11
    @usableFromInline static let rowWidth = reasonBase + DropReason.allCases.count
    /// The slot counting drops for `reason`.
    @usableFromInline @inline(__always) static func reason(_ reason: DropReason) -> Int { reasonBase + Int(reason.rawValue) }
}

/// A block of counter rows written by one worker and read by anyone.
@usableFromInline
final class CounterBlock {
    let rows: Int
    let base: UnsafeMutablePointer<UInt64>

    init(rows: Int) {
        self.rows = rows
        base = .allocate(capacity: max(1, rows) * Counter.rowWidth)
        base.initialize(repeating: 0, count: max(1, rows) * Counter.rowWidth)
    }
    deinit { base.deallocate() }

    @usableFromInline @inline(__always) func row(_ r: Int) -> UnsafeMutablePointer<UInt64> { base + r * Counter.rowWidth }

    func snapshot(row r: Int) -> InterfaceCounters {
        let p = row(r)
        func v(_ c: Counter) -> UInt64 { clvs_load_relaxed_u64(p + c.rawValue) }
        var out = InterfaceCounters()
        out.rxPackets = v(.rxPackets); out.rxBytes = v(.rxBytes)
        out.txPackets = v(.txPackets); out.txBytes = v(.txBytes)
        out.passed = v(.passed); out.dropped = v(.dropped); out.txErrors = v(.txErrors)
        out.truncated = v(.truncated); out.unknownEgress = v(.unknownEgress); out.vlanPassed = v(.vlanPassed)
        out.passDropped = v(.passDropped)
        for reason in DropReason.allCases {
            let n = clvs_load_relaxed_u64(p + Counter.reason(reason))
            if n != 0 { out.dropReasons[reason] = n }
        }
        return out
    }
}

/// Adds to a single-writer counter (relaxed store, so readers on other threads see whole values).
@usableFromInline @inline(__always) func bump(_ row: UnsafeMutablePointer<UInt64>, _ c: Int, _ by: UInt64 = 1) {
    let p = row + c
    clvs_store_relaxed_u64(p, clvs_load_relaxed_u64(p) &+ by)
}
