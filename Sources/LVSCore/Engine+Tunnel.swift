import LVSModel

/// The route lvsd found to a tunnelled real server (`ip route get`): the egress interface, the
/// gateway when the real server is not on an attached segment, the route's preferred source
/// (the outer header's source) and the egress MTU.
public struct TunnelRoute: Sendable, Equatable {
    public var interface: Int32
    public var gateway: IPAddress?
    public var source: IPAddress
    public var mtu: Int

    public init(interface: Int32, gateway: IPAddress? = nil, source: IPAddress, mtu: Int) {
        self.interface = interface
        self.gateway = gateway
        self.source = source
        self.mtu = mtu
    }
}

/// One tunnel destination's words in `TunnelState.words`, read without the lock on the packet
/// path (`config`: type + 1, or 0 when the destination is not tunnelled; flags; port; MTU).
@usableFromInline enum TunnelWord: Int {
    case config = 0, sourceHigh, sourceLow, destinationHigh, destinationLow
    @usableFromInline static let width = 5
    @usableFromInline static let flagsShift: UInt64 = 8
    @usableFromInline static let portShift: UInt64 = 16
    @usableFromInline static let mtuShift: UInt64 = 32
    /// The MTU assumed until a route is known.
    static let defaultMTU = 1500
    @inlinable static func index(_ slot: UInt32, _ w: TunnelWord) -> Int { Int(slot) &* width &+ w.rawValue }
}

/// The engine's tunnel state: what the packet path reads (`words`) and, under the engine lock,
/// the routes lvsd was given and which destinations each next hop serves.
///
/// `@unchecked Sendable`: `words` are atomics; `routes` and `viaNextHop` are read and written
/// under the engine lock only.
public final class TunnelState: @unchecked Sendable {
    @usableFromInline let words: AtomicWords
    /// Per real-server address: its route (tunnel destinations only).
    var routes: [IPAddress: TunnelRoute] = [:]
    /// Per gateway address: the tunnel destination slots reached through it.
    var viaNextHop: [IPAddress: [UInt32]] = [:]

    init(maxDestinations: Int) {
        words = AtomicWords(count: maxDestinations * TunnelWord.width)
    }

    deinit { words.deallocate() }
}

extension Engine {
    /// Tunnel words are published with the forwarding word; a tunnel destination's forwarding word
    /// carries `flagTunnel` and its next hop's MAC (the real server's, or its gateway's).
    @usableFromInline static let flagTunnel: UInt64 = 1 << 59

    /// Gives the route to a real server address (nil: forget it, the address is then taken as on
    /// the segment of the interface `assignInterface` picked). Every tunnel destination with this
    /// address follows it; a new next hop is resolved afresh.
    public func setTunnelRoute(_ address: IPAddress, _ route: TunnelRoute?) {
        lock.withLock {
            let old = tunnel.routes[address]
            guard old != route else { return }
            tunnel.routes[address] = route
            for slot in destsByAddress[address] ?? [] where dests[Int(slot)].method == .tunnel {
                if let g = old?.gateway { tunnel.viaNextHop[g]?.removeAll { $0 == slot } }
                if old?.gateway != route?.gateway { forgetNextHop(slot) }
                if let r = route, let i = interfaceSlot(ofIndex: r.interface) {
                    dests[Int(slot)].interface = r.interface
                    dests[Int(slot)].sourceMAC = interfaces[i].mac
                }
                publish(slot)
            }
        }
    }

    /// The addresses of the tunnel destinations in use (whose routes lvsd looks up).
    public func tunnelAddresses() -> Set<IPAddress> {
        lock.withLock {
            Set((0..<destSlotsUsed).lazy.filter { self.dests[$0].inUse && self.dests[$0].method == .tunnel }.map { self.dests[$0].address })
        }
    }

    /// The interfaces lvsd forwards on, read under the lock (for the route lookups' thread).
    public func tunnelInterfaces() -> [EngineInterface] { lock.withLock { interfaces } }

    /// A destination whose method changes may change its next hop (a tunnel's gateway, or the
    /// real server itself): its MAC is resolved afresh. Under the lock.
    func forgetNextHop(_ slot: UInt32) {
        dests[Int(slot)].macKnown = false
        neighbourRequested[slot] = nil
    }

    /// The route lvsd was given for an address.
    public func tunnelRoute(_ address: IPAddress) -> TunnelRoute? { lock.withLock { tunnel.routes[address] } }

    /// The address whose MAC a destination needs: its gateway's for a routed tunnel destination,
    /// its own otherwise. Under the lock.
    func nextHop(_ slot: UInt32) -> IPAddress {
        let d = dests[Int(slot)]
        if d.method == .tunnel, let g = tunnel.routes[d.address]?.gateway { return g }
        return d.address
    }

    /// The destination slots that learn a MAC for `address`: those with that address (not behind
    /// a gateway) and the tunnel destinations routed through it. Under the lock.
    func slotsLearning(_ address: IPAddress) -> [UInt32] {
        var slots = (destsByAddress[address] ?? []).filter { nextHop($0) == address }
        // A slot reused since (or a destination routed elsewhere now) no longer follows the gateway.
        slots += (tunnel.viaNextHop[address] ?? []).filter { dests[Int($0)].inUse && nextHop($0) == address && !slots.contains($0) }
        return slots
    }

    /// Publishes a destination's tunnel words (called from `publish`); returns the forwarding
    /// word's tunnel flag. Under the lock. Every destination in use has them: a tunnel
    /// connection stays one after its destination is edited to another method.
    func publishTunnel(_ slot: UInt32) -> UInt64 {
        let d = dests[Int(slot)]
        guard d.inUse else {
            tunnel.words.store(TunnelWord.index(slot, .config), 0)
            return 0
        }
        let route = tunnel.routes[d.address]
        if d.method == .tunnel, let g = route?.gateway, !(tunnel.viaNextHop[g]?.contains(slot) ?? false) { tunnel.viaNextHop[g, default: []].append(slot) }
        let source = route?.source ?? tunnelSource(for: d.address, interface: d.interface) ?? (d.address.isIPv4 ? .ipv4Zero : .zero)
        let mtu = route?.mtu ?? TunnelWord.defaultMTU
        let config = (UInt64(d.tunnelType.rawValue) + 1) | UInt64(d.tunnelFlags) << TunnelWord.flagsShift
            | UInt64(d.tunnelPort) << TunnelWord.portShift | UInt64(UInt32(clamping: mtu)) << TunnelWord.mtuShift
        tunnel.words.store(TunnelWord.index(slot, .sourceHigh), source.high)
        tunnel.words.store(TunnelWord.index(slot, .sourceLow), source.low)
        tunnel.words.store(TunnelWord.index(slot, .destinationHigh), d.address.high)
        tunnel.words.store(TunnelWord.index(slot, .destinationLow), d.address.low)
        tunnel.words.store(TunnelWord.index(slot, .config), config)
        return d.method == .tunnel ? Self.flagTunnel : 0
    }

    /// Without a route: the egress interface's address of the real server's family, one on its
    /// subnet first.
    func tunnelSource(for address: IPAddress, interface index: Int32) -> IPAddress? {
        guard let ifc = interface(index) else { return nil }
        return ifc.addresses.first { $0.0.isIPv4 == address.isIPv4 && $0.0.masked(prefix: $0.1) == address.masked(prefix: $0.1) }?.0
            ?? ifc.addresses.first { $0.0.isIPv4 == address.isIPv4 && !($0.0.isIPv4 == false && ($0.0.high >> 48) == 0xFE80) }?.0
    }
}
