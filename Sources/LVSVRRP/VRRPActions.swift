import LVSModel

/// An advert (or anything else) received on IP protocol 112, as the socket layer hands it to
/// `VRRPRouter.receive`: the VRRP message only (no IP header), and what the IP header said.
public struct VRRPReceived: Sendable {
    public var interface: String
    public var source: IPAddress
    public var destination: IPAddress
    /// IPv4 TTL or IPv6 hop limit (from the header or IPV6_HOPLIMIT).
    public var hopLimit: UInt8
    public var payload: [UInt8]
    public init(interface: String, source: IPAddress, destination: IPAddress, hopLimit: UInt8, payload: [UInt8]) {
        self.interface = interface; self.source = source; self.destination = destination
        self.hopLimit = hopLimit; self.payload = payload
    }
}

/// What the router asks its owner (lvsd's VRRP service) to do. The owner performs actions in order.
public enum VRRPAction: Sendable, Hashable {
    /// Send this VRRP message (checksum filled in) from `source` to `destination` on the
    /// instance's interface, IP protocol 112, TTL / hop limit 255.
    case send(instance: String, interface: String, source: IPAddress, destination: IPAddress, message: [UInt8])
    /// The instance changed state (log it, count it, show it in status and metrics).
    case stateChanged(instance: String, from: VRRPState, to: VRRPState, priority: UInt8)
    /// Becoming MASTER: own these addresses (answer ARP/ND, forward, add to the interface).
    case takeAddresses(instance: String, addresses: [VRRPAddress])
    /// Leaving MASTER: stop owning them.
    case releaseAddresses(instance: String, addresses: [VRRPAddress])
    /// Send `count` gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) for each address now.
    case announce(instance: String, addresses: [VRRPAddress], count: Int)
    /// Run a notify script with keepalived's arguments.
    case runScript(command: VRRPScriptCommand, arguments: [String])
    /// The lvs sync daemon tied to this instance (`lvs_sync_daemon`) should run as master
    /// (true) or backup (false).
    case syncRole(instance: String, master: Bool)
}

/// Why a received VRRP packet was ignored. Each has its own counter.
public enum VRRPRejection: String, Sendable, Hashable, CaseIterable {
    case truncated = "truncated"
    case hopLimit = "ttl"
    case version = "version"
    case type = "type"
    case checksum = "checksum"
    /// No instance on this interface and family has the packet's VRID.
    case unknownVRID = "vrid"
    case authType = "auth-type"
    case authPassword = "auth-password"
    /// The address count does not match the packet's length.
    case addressCount = "address-count"
    /// v2: advert interval differs from ours (RFC 3768 drops it).
    case interval = "interval"
    /// The advert came from one of our own addresses.
    case ownAddress = "own-address"
    /// Unicast mode: the source is not one of the `unicast_peer`s.
    case unknownPeer = "unknown-peer"
    case family = "family"
    /// The instance is not receiving (INIT, FAULT or stopped): keepalived ignores adverts then.
    case inactive = "inactive"
    /// The advert's addresses are not the instance's virtual addresses (keepalived's address list check).
    case addressList = "address-list"
}
