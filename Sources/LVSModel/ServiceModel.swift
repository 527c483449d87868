/// Transport protocol of a virtual service (IP protocol numbers).
public enum IPProtocolNumber: UInt8, Sendable, Codable, CaseIterable {
    case ip = 0
    case icmp = 1
    case tcp = 6
    case udp = 17
    case icmpv6 = 58
    case sctp = 132

    /// Name as ipvsadm prints it in listings (`TCP`, `UDP`, `SCTP`, `IP`).
    public var listName: String {
        switch self {
        case .tcp: return "TCP"
        case .udp: return "UDP"
        case .sctp: return "SCTP"
        case .ip: return "IP"
        default: return "?"
        }
    }
}

/// Identifies a virtual service: (protocol, VIP, port), or a firewall mark with an address family.
public struct ServiceKey: Hashable, Sendable, Codable, CustomStringConvertible {
    public var proto: IPProtocolNumber
    public var address: IPAddress
    public var port: UInt16
    /// Non-zero for firewall-mark services; then `address` is zero and `isIPv6` gives the family.
    public var fwmark: UInt32
    public var isIPv6: Bool

    public init(proto: IPProtocolNumber, address: IPAddress, port: UInt16) {
        self.proto = proto
        self.address = address
        self.port = port
        self.fwmark = 0
        self.isIPv6 = !address.isIPv4
    }

    /// A firewall-mark service. As in ipvsadm, its protocol is recorded as TCP.
    public init(fwmark: UInt32, ipv6: Bool) {
        self.proto = .tcp
        self.address = ipv6 ? .zero : .ipv4Zero
        self.port = 0
        self.fwmark = fwmark
        self.isIPv6 = ipv6
    }

    @inlinable public var isFwmark: Bool { fwmark != 0 }

    public var description: String {
        if isFwmark { return "FWM \(fwmark)\(isIPv6 ? " IPv6" : "")" }
        return "\(proto.listName) \(address.bracketed):\(port)"
    }
}

/// How packets reach a real server (the conn_flags values ipvsadm uses).
public enum ForwardMethod: UInt8, Sendable, Codable {
    case masquerade = 0
    case local = 1
    case tunnel = 2
    case directRoute = 3

    /// The `Forward` column of `ipvsadm -L`.
    public var listName: String {
        switch self {
        case .masquerade: return "Masq"
        case .local: return "Local"
        case .tunnel: return "Tunnel"
        case .directRoute: return "Route"
        }
    }
}

/// Encapsulation of a tunnel destination (`--tun-type`).
public enum TunnelType: UInt8, Sendable, Codable {
    case ipip = 0, gue = 1, gre = 2
}

/// Service flags that ipvsadm's `-b` sets (SCHED1/2/3) plus persistence and one-packet scheduling.
public struct ServiceFlags: OptionSet, Hashable, Sendable, Codable {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    // Computed and inlinable, as IPAddress.zero: the packet path tests these flags.
    @inlinable public static var persistent: ServiceFlags { ServiceFlags(rawValue: 0x0001) }
    @inlinable public static var hashed: ServiceFlags { ServiceFlags(rawValue: 0x0002) }
    @inlinable public static var onePacket: ServiceFlags { ServiceFlags(rawValue: 0x0004) }
    @inlinable public static var sched1: ServiceFlags { ServiceFlags(rawValue: 0x0008) }
    @inlinable public static var sched2: ServiceFlags { ServiceFlags(rawValue: 0x0010) }
    @inlinable public static var sched3: ServiceFlags { ServiceFlags(rawValue: 0x0020) }
    /// sh-fallback / mh-fallback.
    @inlinable public static var fallback: ServiceFlags { sched1 }
    /// sh-port / mh-port.
    @inlinable public static var hashPort: ServiceFlags { sched2 }
    /// mh-sorted (lvsd's, flag-3 to the kernel, which ignores it for mh): the mh table depends
    /// only on the set of (address, port, weight), not on the order the real servers were added.
    @inlinable public static var sortedTable: ServiceFlags { sched3 }
    @inlinable public static var schedMask: ServiceFlags { ServiceFlags(rawValue: 0x0038) }
}

/// Everything `-A`/`-E` sets on a service.
public struct ServiceOptions: Hashable, Sendable, Codable {
    public var scheduler: String
    public var flags: ServiceFlags
    /// Persistence timeout in seconds (used when `.persistent` is set).
    public var timeout: UInt32
    /// IPv4: dotted netmask as host-order value; IPv6: prefix length 1...128.
    public var netmask: UInt32
    public var persistenceEngine: String?

    public init(scheduler: String = "wlc", flags: ServiceFlags = [], timeout: UInt32 = 0,
                netmask: UInt32 = 0xFFFF_FFFF, persistenceEngine: String? = nil) {
        self.scheduler = scheduler
        self.flags = flags
        self.timeout = timeout
        self.netmask = netmask
        self.persistenceEngine = persistenceEngine
    }
}

/// Everything `-a`/`-e` sets on a destination (real server).
public struct DestinationOptions: Hashable, Sendable, Codable {
    public var address: IPAddress
    public var port: UInt16
    public var method: ForwardMethod
    public var weight: Int32
    public var upperThreshold: UInt32
    public var lowerThreshold: UInt32
    public var tunnelType: TunnelType
    public var tunnelPort: UInt16
    /// 0 nocsum, 1 csum, 2 remcsum.
    public var tunnelFlags: UInt8

    public init(address: IPAddress, port: UInt16, method: ForwardMethod = .directRoute, weight: Int32 = 1,
                upperThreshold: UInt32 = 0, lowerThreshold: UInt32 = 0, tunnelType: TunnelType = .ipip,
                tunnelPort: UInt16 = 0, tunnelFlags: UInt8 = 0) {
        self.address = address
        self.port = port
        self.method = method
        self.weight = weight
        self.upperThreshold = upperThreshold
        self.lowerThreshold = lowerThreshold
        self.tunnelType = tunnelType
        self.tunnelPort = tunnelPort
        self.tunnelFlags = tunnelFlags
    }
}

/// The kernel's answers to control operations, named by the errno IPVS returns.
/// On the control socket an error is its case name (`"noSuchService"`).
public enum IPVSError: String, Error, Hashable, Sendable, Codable {
    /// EEXIST on add service.
    case serviceExists
    /// ENOENT on add/edit service: scheduler or persistence engine not found.
    case schedulerNotFound
    /// ESRCH: the service does not exist.
    case noSuchService
    /// EEXIST on add destination.
    case destinationExists
    /// ENOENT on edit/delete destination.
    case noSuchDestination
    /// EINVAL.
    case invalid
    /// ERANGE (bad weight or thresholds).
    case outOfRange
    /// ENOMEM: a configured table limit is reached.
    case noMemory
    /// EEXIST on start-daemon.
    case daemonRunning
    /// ESRCH on stop-daemon.
    case noDaemon
    /// ENODEV on start-daemon: the multicast interface does not exist.
    case noDevice

    public var errnoName: String {
        switch self {
        case .serviceExists, .destinationExists, .daemonRunning: return "EEXIST"
        case .schedulerNotFound, .noSuchDestination: return "ENOENT"
        case .noSuchService, .noDaemon: return "ESRCH"
        case .invalid: return "EINVAL"
        case .outOfRange: return "ERANGE"
        case .noMemory: return "ENOMEM"
        case .noDevice: return "ENODEV"
        }
    }
}

/// Timeouts tunable with `--set tcp tcpfin udp`, in seconds.
public struct IPVSTimeouts: Hashable, Sendable, Codable {
    public var tcp: UInt32 = 900
    public var tcpFin: UInt32 = 120
    public var udp: UInt32 = 300
    public init(tcp: UInt32 = 900, tcpFin: UInt32 = 120, udp: UInt32 = 300) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
    }
}
