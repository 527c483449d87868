import LVSCore
import Synchronization

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

/// One row of a `CounterBlock`: `Counter.rowWidth` relaxed atomics (Synchronization's `Atomic`, as
/// LVSCore's `AtomicWords`), written by one worker. A raw pointer, so the packet path adds a
/// constant offset and does no reference counting.
@usableFromInline
typealias CounterRow = UnsafeMutablePointer<Atomic<UInt64>>

/// A block of counter rows written by one worker and read by anyone.
@usableFromInline
final class CounterBlock {
    let rows: Int
    let base: CounterRow
    private let words: Int

    init(rows: Int) {
        self.rows = rows
        words = max(1, rows) * Counter.rowWidth
        base = .allocate(capacity: words)
        for i in 0..<words { (base + i).initialize(to: Atomic(0)) }
    }
    deinit {
        base.deinitialize(count: words)
        base.deallocate()
    }

    @usableFromInline @inline(__always) func row(_ r: Int) -> CounterRow { base + r * Counter.rowWidth }

    func snapshot(row r: Int) -> InterfaceCounters {
        let p = row(r)
        func v(_ c: Counter) -> UInt64 { p[c.rawValue].load(ordering: .relaxed) }
        var out = InterfaceCounters()
        out.rxPackets = v(.rxPackets); out.rxBytes = v(.rxBytes)
        out.txPackets = v(.txPackets); out.txBytes = v(.txBytes)
        out.passed = v(.passed); out.dropped = v(.dropped); out.txErrors = v(.txErrors)
        out.truncated = v(.truncated); out.unknownEgress = v(.unknownEgress); out.vlanPassed = v(.vlanPassed)
        out.passDropped = v(.passDropped)
        for reason in DropReason.allCases {
            let n = p[Counter.reason(reason)].load(ordering: .relaxed)
            if n != 0 { out.dropReasons[reason] = n }
        }
        return out
    }
}

/// Adds to a single-writer counter: a relaxed load and store, no read-modify-write instruction
/// (readers on other threads see whole values), as `AtomicWords.bump`.
@usableFromInline @inline(__always) func bump(_ row: CounterRow, _ c: Int, _ by: UInt64 = 1) {
    row[c].store(row[c].load(ordering: .relaxed) &+ by, ordering: .relaxed)
}
