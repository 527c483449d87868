/// IPVS TCP connection states, numbered as the kernel numbers them (ip_vs_proto_tcp.c).
public enum TCPState: UInt8, Sendable, CaseIterable {
    case none = 0, established, synSent, synRecv, finWait, timeWait, close, closeWait, lastAck, listen, synAck

    /// Name shown by `ipvsadm -c`.
    public var name: String {
        switch self {
        case .none: return "NONE"
        case .established: return "ESTABLISHED"
        case .synSent: return "SYN_SENT"
        case .synRecv: return "SYN_RECV"
        case .finWait: return "FIN_WAIT"
        case .timeWait: return "TIME_WAIT"
        case .close: return "CLOSE"
        case .closeWait: return "CLOSE_WAIT"
        case .lastAck: return "LAST_ACK"
        case .listen: return "LISTEN"
        case .synAck: return "SYNACK"
        }
    }

    /// Pre-established and established states count as active (Linux ≥ 4.8).
    public var isActive: Bool {
        switch self {
        case .established, .synSent, .synRecv, .synAck: return true
        default: return false
        }
    }
}

/// The TCP transition tables as data (rows: event, columns: current state), and the timeouts.
public enum TCPStateTable {
    /// Event rows: 0 syn, 1 fin, 2 ack, 3 rst.
    public enum Event: Int { case syn = 0, fin, ack, rst }

    private typealias S = TCPState
    /// INPUT-ONLY block (DR and TUN: the director sees only client packets), secure_tcp off.
    /// Columns in state order NO ES SS SR FW TW CL CW LA LI SA.
    static let inputOnly: [[TCPState]] = [
        [.synRecv, .established, .established, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv],
        [.close, .finWait, .synSent, .timeWait, .finWait, .timeWait, .close, .closeWait, .lastAck, .listen, .timeWait],
        [.established, .established, .synSent, .established, .finWait, .timeWait, .close, .closeWait, .close, .listen, .established],
        [.close, .close, .close, .synRecv, .close, .close, .close, .close, .lastAck, .listen, .close],
    ]

    /// Flattened table for the packet path: index `index(event:state:)`.
    public static let inputOnlyFlat: [UInt8] = inputOnly.flatMap { $0.map(\.rawValue) }

    /// States per event row (the table's columns): `TCPState.allCases.count`.
    @usableFromInline static let stateCount = 11

    /// The flat table's index of `state` in the row of `event` (an `Event` raw value, 0...3, so
    /// the arithmetic cannot overflow and wraps instead of checking).
    @inlinable @inline(__always) public static func index(event: Int, state: UInt8) -> Int {
        event &* stateCount &+ Int(state)
    }

    /// The event a segment produces, by priority RST > SYN > FIN > ACK; nil when none of them is set.
    @inlinable @inline(__always) public static func event(flags: UInt8) -> Int? {
        if flags & TCPFlag.rst != 0 { return Event.rst.rawValue }
        if flags & TCPFlag.syn != 0 { return Event.syn.rawValue }
        if flags & TCPFlag.fin != 0 { return Event.fin.rawValue }
        if flags & TCPFlag.ack != 0 { return Event.ack.rawValue }
        return nil
    }

    /// Next state for an input-only packet. A segment with none of the four flags goes to CLOSE.
    public static func next(_ state: TCPState, flags: UInt8) -> TCPState {
        guard let e = event(flags: flags) else { return .close }
        return TCPState(rawValue: inputOnlyFlat[index(event: e, state: state.rawValue)])!
    }

    /// Default timeouts in seconds, indexed by state.
    public static let defaultTimeouts: [UInt32] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120]
}
