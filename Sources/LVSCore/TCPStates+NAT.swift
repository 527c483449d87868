/// The TCP transition blocks a NAT connection uses (ip_vs_proto_tcp.c `tcp_states`, secure_tcp
/// off): INPUT for client packets, OUTPUT for the real server's replies. A NAT destination never
/// carries the kernel's NOOUTPUT flag, so its client packets never use INPUT-ONLY (the DR case).
extension TCPStateTable {
    private typealias S = TCPState

    /// INPUT block (client → server while replies are seen). Columns NO ES SS SR FW TW CL CW LA LI SA.
    static let input: [[TCPState]] = [
        [.synRecv, .established, .established, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv, .synRecv],
        [.close, .closeWait, .synSent, .timeWait, .timeWait, .timeWait, .close, .closeWait, .lastAck, .listen, .timeWait],
        [.established, .established, .synSent, .established, .finWait, .timeWait, .close, .closeWait, .close, .listen, .established],
        [.close, .close, .close, .synRecv, .close, .close, .close, .close, .lastAck, .listen, .synRecv],
    ]

    /// OUTPUT block (server → client, NAT only).
    static let output: [[TCPState]] = [
        [.synSent, .established, .synSent, .synRecv, .synSent, .synSent, .synSent, .synSent, .synSent, .listen, .synRecv],
        [.timeWait, .finWait, .synSent, .timeWait, .finWait, .timeWait, .close, .timeWait, .lastAck, .listen, .timeWait],
        [.established, .established, .synSent, .established, .finWait, .timeWait, .close, .closeWait, .lastAck, .established, .established],
        [.close, .close, .synSent, .close, .close, .timeWait, .close, .close, .close, .close, .close],
    ]

    /// Flat INPUT block then flat OUTPUT block (`natOutputOffset` further on), indexed like
    /// `inputOnlyFlat` with `index(event:state:)`.
    public static let natFlat: [UInt8] = input.flatMap { $0.map(\.rawValue) } + output.flatMap { $0.map(\.rawValue) }

    /// Where the OUTPUT block starts in `natFlat` (4 event rows of `stateCount` states).
    @usableFromInline static let natOutputOffset = 4 * stateCount

    /// A shard's transition memory: INPUT-ONLY, then NAT's INPUT, then NAT's OUTPUT block.
    static let shardFlat: [UInt8] = inputOnlyFlat + natFlat

    /// Where NAT's INPUT block starts in `shardFlat`.
    @usableFromInline static let natInputBlock = 4 * stateCount
    /// Where NAT's OUTPUT block starts in `shardFlat`.
    @usableFromInline static let natOutputBlock = natInputBlock + natOutputOffset

    /// The block a client's packet uses: 0 (INPUT-ONLY) for DR and TUN, `natInputBlock` for a
    /// NAT connection (a constant on DR's inlined path, `EngineShard.existing`).
    @inlinable @inline(__always) static func inputBlock(_ method: ConnectionMethod) -> Int {
        method == .masquerade ? natInputBlock : 0
    }

    /// Next state of a NAT connection for a segment with `flags`, from the client (`reply`
    /// false, INPUT) or from the real server (`reply` true, OUTPUT). No flag of the four: CLOSE.
    public static func natNext(_ state: TCPState, flags: UInt8, reply: Bool) -> TCPState {
        guard let e = event(flags: flags) else { return .close }
        return TCPState(rawValue: natFlat[(reply ? natOutputOffset : 0) + index(event: e, state: state.rawValue)])!
    }
}

