import LVSModel

/// Where the fast path sends a NAT connection's packets: the real server its client's packets
/// are rewritten to, and the client's next hop its replies go to (learnt from the connection's
/// first packet: the client's or its router's MAC, the interface it came in on and the
/// director's MAC there).
public struct OffloadedNAT: Sendable, Equatable {
    public var server: IPAddress
    public var serverPort: UInt16
    public var clientMAC: MACAddress
    public var sourceMAC: MACAddress
    public var interface: Int32
}

/// How an offered connection goes into the fast path.
public enum OffloadMethod: Sendable, Equatable {
    /// Direct routing: the client's packets only (the replies bypass the director).
    case direct
    /// NAT: both directions (`OffloadedNAT`).
    case nat(OffloadedNAT)
    /// Not at all: it stays in lvsd (gone, moved, NAT on a plane without NAT in its fast path,
    /// or no reply link).
    case stay
}

/// The fast path's NAT connections (tc: both directions in the program).
extension EngineShard {
    /// Whether connection `index` is forwarded by masquerading (NAT). The one place that decides
    /// it for the fast path: by the connection's own method (`ConnectionEntry.method`).
    @inline(__always) func isNATConnection(_ index: UInt32) -> Bool {
        conns[index].method == .masquerade
    }

    /// How the connection `key` (offered for destination slot `destSlot`) goes into the fast
    /// path. On the worker's thread (the shard's table is its own).
    public func offloadMethod(_ key: ConnectionKey, destSlot: UInt32) -> OffloadMethod {
        guard let index = conns.lookup(key, template: false), conns[index].dest == destSlot, !conns[index].isDead else {
            return .stay
        }
        guard isNATConnection(index) else { return .direct }
        guard offloadsNAT else { return .stay }
        let link = conns.replies.links[Int(index)]
        guard link.bucket != 0 else { return .stay } // replies not indexed (taken over from sync or a restart)
        let ifslot = Engine.interfaceSlot(ofForwarding: link.hop)
        let t = natTarget(destSlot)
        return .nat(OffloadedNAT(
            server: t.address, serverPort: t.port != 0 ? t.port : key.virtualPort,
            clientMAC: MACAddress(value: link.hop),
            sourceMAC: MACAddress(value: interfaceTable.load(InterfaceWord.index(ifslot, .mac))),
            interface: Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(InterfaceWord.index(ifslot, .ifindex))))))
    }
}
