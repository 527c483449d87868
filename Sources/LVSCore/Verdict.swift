/// Why the engine dropped a frame (each reason has its own counter).
public enum DropReason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case malformed = 0
    case noDestination
    case destinationUnavailable
    case neighbourUnresolved
    case ttlExceeded
    case tableFull
    case notSchedulable
    case fragment
    /// The SYN-flood defence's drop_packet shed a new connection.
    case dropPacket
    /// To a VIP under VRRP control that this director does not own (BACKUP): not forwarded, not
    /// scheduled; its connections stay for a takeover (`Engine.setOwned`).
    case notOwned
    /// Not a loss: tunnelled, the frame left encapsulated through the shard's outbox
    /// (`EngineShard.transmitTunnel`).
    case tunnelled
    /// Larger than the tunnel's MTU (ICMP "too big" sent to the client), or no room to send it.
    case tooBig

    public var description: String {
        switch self {
        case .malformed: return "malformed"
        case .noDestination: return "no-destination"
        case .destinationUnavailable: return "destination-unavailable"
        case .neighbourUnresolved: return "neighbour-unresolved"
        case .ttlExceeded: return "ttl-exceeded"
        case .tableFull: return "table-full"
        case .notSchedulable: return "not-schedulable"
        case .fragment: return "fragment"
        case .dropPacket: return "drop-packet"
        case .notOwned: return "not-owned"
        case .tunnelled: return "tunnelled"
        case .tooBig: return "too-big"
        }
    }
}

/// What the data plane must do with a frame after `Engine.process`.
public enum Verdict: Equatable, Sendable {
    /// The frame was rewritten in place (MACs, TTL); send it out of `interface`.
    case forward(interface: Int32)
    /// The frame was replaced in place by a reply (ARP reply, neighbour advertisement) of
    /// `length` bytes; send it back out of the interface it came in on.
    case reply(length: Int)
    /// Not ours: leave it to the kernel untouched.
    case pass
    /// Drop it.
    case drop(DropReason)
}

/// A connection the packet path saw in a state a fast path may take over (`remove` false: an
/// ESTABLISHED TCP or a UDP connection it forwarded) or must give back (`remove` true: a TCP
/// FIN/RST went through). See `EngineShard.offloadEnabled`.
public struct OffloadRecord: Sendable {
    public var key: ConnectionKey
    public var destSlot: UInt32
    /// The connection's method (`ConnectionEntry.method`), which may differ from its destination's
    /// after an edit.
    public var method: ConnectionMethod
    public var remove: Bool
}
