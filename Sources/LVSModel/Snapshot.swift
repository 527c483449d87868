/// Counters of a service or destination (the kernel's `ip_vs_stats` values).
public struct StatsSnapshot: Hashable, Sendable, Codable {
    public var conns: UInt64 = 0
    public var inPackets: UInt64 = 0
    public var outPackets: UInt64 = 0
    public var inBytes: UInt64 = 0
    public var outBytes: UInt64 = 0
    public init(conns: UInt64 = 0, inPackets: UInt64 = 0, outPackets: UInt64 = 0, inBytes: UInt64 = 0, outBytes: UInt64 = 0) {
        self.conns = conns
        self.inPackets = inPackets
        self.outPackets = outPackets
        self.inBytes = inBytes
        self.outBytes = outBytes
    }
}

/// Rates from the 2-second estimator: connections/s, packets/s and bytes/s.
public struct RateSnapshot: Hashable, Sendable, Codable {
    public var cps: UInt64 = 0
    public var inPPS: UInt64 = 0
    public var outPPS: UInt64 = 0
    public var inBPS: UInt64 = 0
    public var outBPS: UInt64 = 0
    public init(cps: UInt64 = 0, inPPS: UInt64 = 0, outPPS: UInt64 = 0, inBPS: UInt64 = 0, outBPS: UInt64 = 0) {
        self.cps = cps
        self.inPPS = inPPS
        self.outPPS = outPPS
        self.inBPS = inBPS
        self.outBPS = outBPS
    }
}

/// One real server as listed by `ipvsadm -L`.
public struct DestinationSnapshot: Hashable, Sendable, Codable {
    public var options: DestinationOptions
    public var activeConns: UInt32
    public var inactConns: UInt32
    public var persistConns: UInt32
    public var stats: StatsSnapshot
    public var rates: RateSnapshot
    public init(options: DestinationOptions, activeConns: UInt32 = 0, inactConns: UInt32 = 0, persistConns: UInt32 = 0,
                stats: StatsSnapshot = .init(), rates: RateSnapshot = .init()) {
        self.options = options
        self.activeConns = activeConns
        self.inactConns = inactConns
        self.persistConns = persistConns
        self.stats = stats
        self.rates = rates
    }
}

/// One virtual service with its destinations in the kernel's list order (newest first).
public struct ServiceSnapshot: Hashable, Sendable, Codable {
    public var key: ServiceKey
    public var options: ServiceOptions
    public var destinations: [DestinationSnapshot]
    public var stats: StatsSnapshot
    public var rates: RateSnapshot
    public init(key: ServiceKey, options: ServiceOptions, destinations: [DestinationSnapshot] = [],
                stats: StatsSnapshot = .init(), rates: RateSnapshot = .init()) {
        self.key = key
        self.options = options
        self.destinations = destinations
        self.stats = stats
        self.rates = rates
    }
}

/// One connection-table entry as `/proc/net/ip_vs_conn` shows it.
public struct ConnectionSnapshot: Hashable, Sendable, Codable {
    /// Protocol name as in proc: TCP, UDP, SCTP, or IP for firewall-mark templates.
    public var protocolName: String
    public var clientAddress: IPAddress
    public var clientPort: UInt16
    /// Virtual address (for fwmark templates: the mark as an IPv4-style address).
    public var virtualAddress: IPAddress
    public var virtualPort: UInt16
    public var destinationAddress: IPAddress
    public var destinationPort: UInt16
    /// State name (ESTABLISHED, UDP, NONE, ASSURED, ...).
    public var state: String
    /// Remaining time in whole seconds.
    public var expiresSeconds: UInt32
    public var isTemplate: Bool
    public init(protocolName: String, clientAddress: IPAddress, clientPort: UInt16, virtualAddress: IPAddress,
                virtualPort: UInt16, destinationAddress: IPAddress, destinationPort: UInt16, state: String,
                expiresSeconds: UInt32, isTemplate: Bool = false) {
        self.protocolName = protocolName
        self.clientAddress = clientAddress
        self.clientPort = clientPort
        self.virtualAddress = virtualAddress
        self.virtualPort = virtualPort
        self.destinationAddress = destinationAddress
        self.destinationPort = destinationPort
        self.state = state
        self.expiresSeconds = expiresSeconds
        self.isTemplate = isTemplate
    }
}

/// A running sync daemon (`ipvsadm -L --daemon`).
public struct SyncDaemonSnapshot: Hashable, Sendable, Codable {
    /// "master" or "backup".
    public var role: String
    public var interface: String
    public var syncID: UInt8
    public var maxLength: UInt32
    public var group: String
    public var port: UInt16
    public var ttl: UInt8
    public init(role: String, interface: String, syncID: UInt8, maxLength: UInt32, group: String, port: UInt16, ttl: UInt8) {
        self.role = role
        self.interface = interface
        self.syncID = syncID
        self.maxLength = maxLength
        self.group = group
        self.port = port
        self.ttl = ttl
    }
}

/// Everything the listing commands need, in one value.
public struct TableSnapshot: Hashable, Sendable, Codable {
    /// "1.2.1".
    public var version: String
    /// The `size=` of the header: connection hash table buckets.
    public var connectionTableSize: Int
    /// Services in kernel dump order; the CLI sorts unless `--nosort`.
    public var services: [ServiceSnapshot]
    public var timeouts: IPVSTimeouts
    public var daemons: [SyncDaemonSnapshot]
    public init(version: String = "1.2.1", connectionTableSize: Int = 4096, services: [ServiceSnapshot] = [],
                timeouts: IPVSTimeouts = .init(), daemons: [SyncDaemonSnapshot] = []) {
        self.version = version
        self.connectionTableSize = connectionTableSize
        self.services = services
        self.timeouts = timeouts
        self.daemons = daemons
    }
}
