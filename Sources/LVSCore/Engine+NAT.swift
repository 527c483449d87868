import LVSModel

/// Layout of `Engine.natTargets`: per destination slot, the real server's address (two words,
/// `IPAddress.high`/`.low`) and port, for the NAT rewrite on the packet path.
@usableFromInline
enum NATTargetWord: Int {
    case addressHigh = 0, addressLow, port
    @usableFromInline static let width = 3
    /// After the per-slot words: the NAT connections linked in every shard's reply index
    /// (replies are looked for only while there are some).
    @inlinable @inline(__always) static func linkedReplies(maxDestinations: Int) -> Int { maxDestinations &* width }
    /// The word `word` of destination slot `slot`.
    @inlinable @inline(__always) static func index(_ slot: UInt32, _ word: NATTargetWord) -> Int {
        Int(slot) &* width &+ word.rawValue
    }
}

extension Engine {
    /// A forwarding word's masquerading flag: the destination is a NAT (`-m`) real server.
    @usableFromInline static let flagMasq: UInt64 = 1 << masqShift
    @usableFromInline static let masqShift: UInt64 = 62

    /// Adds a destination's NAT flag to its forwarding word and publishes its address and port
    /// (`natTargets`) before the word, so the packet path never sees the flag without them.
    func publishNAT(_ d: Destination, slot: UInt32, into word: inout UInt64) {
        guard d.method == .masquerade else { return }
        // SCTP's CRC table is built here, on the control path: its one-time initialiser
        // allocates, which the packet path must never do.
        _ = SCTPChecksum.table
        natTargets.store(NATTargetWord.index(slot, .addressHigh), d.address.high)
        natTargets.store(NATTargetWord.index(slot, .addressLow), d.address.low)
        natTargets.store(NATTargetWord.index(slot, .port), UInt64(d.port))
        word |= Self.flagMasq
    }

    /// NAT connections in all shards (relaxed read, for the packet path).
    @inline(__always) var natConnections: UInt64 {
        natTargets.load(NATTargetWord.linkedReplies(maxDestinations: configuration.maxDestinations))
    }

    /// Where shards count their linked reply entries (`ReplyIndexView`).
    var replyTotal: (AtomicWords, Int) { (natTargets, NATTargetWord.linkedReplies(maxDestinations: configuration.maxDestinations)) }
}
