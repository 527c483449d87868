import LVSModel

/// Which forwarding methods each data plane carries, and the refusal of the others at `-a`/`-e`
/// (never a silent fallback to DR).
///
/// NAT needs the real servers' replies: they come back addressed to the client, not to a VIP.
/// afpacket and tc read every frame of their interfaces with packet sockets, so lvsd sees the
/// replies; the afxdp and xdp planes' XDP program hands lvsd only frames to a VIP (the rest
/// goes to the kernel), so NAT's replies would never reach it.
enum ForwardingSupport {
    /// The refusal text for `method` on data plane `plane` (`--dataplane` spelling), or nil.
    static func refusal(method: ForwardMethod, plane: String) -> String? {
        guard method == .masquerade, plane == "afxdp" || plane == "xdp" else { return nil }
        return "lvsd: forwarding method masquerading (-m, NAT) is not supported on the \(plane) data plane "
            + "(its XDP program passes the real servers' replies to the kernel); use --dataplane afpacket or tc\n"
    }
}

extension Director {
    /// A refusal for a request that adds or edits a destination with a method the running data
    /// plane does not carry (a batch is refused whole, before any of it is applied); nil otherwise.
    func methodRefusal(_ request: ControlRequest) -> ControlResponse? {
        guard let backend = dataPlane else { return nil }
        let plane = fastPath != nil ? fastPathKind : backend.kindName
        switch request {
        case let .addDestination(_, o), let .editDestination(_, o):
            return ForwardingSupport.refusal(method: o.method, plane: plane).map { .text($0) }
        case let .batch(b):
            for r in b.requests { if let refused = methodRefusal(r) { return refused } }
            return nil
        default:
            return nil
        }
    }
}
