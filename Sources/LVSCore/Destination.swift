import LVSModel

/// A real server as the engine keeps it: configuration, connection counts and link-layer address.
///
/// Destinations live in one preallocated table indexed by slot number; services hold lists of slots
/// in the kernel's order (newest first). A deleted destination keeps its slot (not `available`)
/// until no connection refers to it, as the kernel's trash list does.
public struct Destination: Sendable {
    public var address: IPAddress
    public var port: UInt16
    public var method: ForwardMethod
    public var weight: Int32
    /// The last non-zero weight (Maglev keeps a quiesced destination's table slots).
    public var lastWeight: Int32
    public var upperThreshold: UInt32
    public var lowerThreshold: UInt32
    public var activeConns: Int32
    public var inactConns: Int32
    public var persistConns: Int32
    /// The threshold OVERLOAD flag.
    public var overloaded: Bool
    /// False once the destination has been deleted (it stays in the table while connections use it).
    public var available: Bool
    /// True while the slot is allocated.
    public var inUse: Bool
    public var serviceSlot: UInt32
    public var tunnelType: TunnelType
    public var tunnelPort: UInt16
    public var tunnelFlags: UInt8
    /// Link-layer address of the real server, once resolved.
    public var mac: MACAddress
    public var macKnown: Bool
    /// Data-plane interface index the real server is reached through.
    public var interface: Int32
    /// MAC of that interface (the rewritten source MAC).
    public var sourceMAC: MACAddress

    public init(options o: DestinationOptions, serviceSlot: UInt32) {
        address = o.address
        port = o.port
        method = o.method
        weight = o.weight
        lastWeight = o.weight
        upperThreshold = o.upperThreshold
        lowerThreshold = o.lowerThreshold
        activeConns = 0
        inactConns = 0
        persistConns = 0
        overloaded = false
        available = true
        inUse = true
        self.serviceSlot = serviceSlot
        tunnelType = o.tunnelType
        tunnelPort = o.tunnelPort
        tunnelFlags = o.tunnelFlags
        mac = .zero
        macKnown = false
        interface = -1
        sourceMAC = .zero
    }

    /// Active + inactive connections (templates excluded), as thresholds count them.
    @inlinable public var totalConns: Int32 { activeConns + inactConns }

    /// The classic least-connection overhead: `activeconns * 256 + inactconns`.
    ///
    /// Kernel 6.1.192 uses `active * 257 + inactive`; we keep the long-standing formula that
    /// every deployed kernel before that rework used (see README, compatibility notes).
    @inlinable public var overhead: Int64 { Int64(activeConns) << 8 + Int64(inactConns) }

    /// Eligible for a new connection from a scheduler: weight > 0 and not OVERLOADed.
    @inlinable public var isEligible: Bool { weight > 0 && !overloaded && available }

    public var options: DestinationOptions {
        DestinationOptions(address: address, port: port, method: method, weight: weight,
                           upperThreshold: upperThreshold, lowerThreshold: lowerThreshold,
                           tunnelType: tunnelType, tunnelPort: tunnelPort, tunnelFlags: tunnelFlags)
    }
}
