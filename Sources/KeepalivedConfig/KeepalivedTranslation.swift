import LVSModel

/// A destination inside one IPVS service.
package struct DestinationKey: Hashable, Sendable {
    package var service: ServiceKey
    package var address: IPAddress
    package var port: UInt16
}

/// What IPVS holds (or should hold), in a stable order.
package struct IPVSTable: Sendable, Equatable {
    package var services: [ServiceKey: ServiceOptions] = [:]
    package var serviceOrder: [ServiceKey] = []
    package var destinations: [DestinationKey: DestinationOptions] = [:]
    package var destinationOrder: [DestinationKey] = []

    package init() {}

    package mutating func add(_ key: ServiceKey, _ options: ServiceOptions) {
        if services.updateValue(options, forKey: key) == nil { serviceOrder.append(key) }
    }

    package mutating func add(_ key: DestinationKey, _ options: DestinationOptions) {
        if destinations.updateValue(options, forKey: key) == nil { destinationOrder.append(key) }
    }

    /// The requests that turn `self` into `target`: services first, then new or changed
    /// destinations, then removed destinations (so a sorry server is in place before the real
    /// servers leave). Deleting a service removes its destinations without further requests.
    package func requests(toReach target: IPVSTable) -> [ControlRequest] {
        var out: [ControlRequest] = []
        for key in serviceOrder where target.services[key] == nil { out.append(.deleteService(key)) }
        for key in target.serviceOrder {
            let opts = target.services[key]!
            if let old = services[key] {
                if old != opts { out.append(.editService(key, opts)) }
            } else {
                out.append(.addService(key, opts))
            }
        }
        for key in target.destinationOrder {
            let opts = target.destinations[key]!
            if let old = destinations[key], services[key.service] != nil, target.services[key.service] != nil {
                if old != opts { out.append(.editDestination(key.service, opts)) }
            } else {
                out.append(.addDestination(key.service, opts))
            }
        }
        for key in destinationOrder where target.destinations[key] == nil && target.services[key.service] != nil {
            out.append(.deleteDestination(key.service, address: key.address, port: key.port))
        }
        return out
    }
}

/// Identity of a virtual server across reloads (§2.7).
package struct VirtualServerID: Hashable, Sendable {
    package var address: VirtualServerAddress
    package var proto: IPProtocolNumber

    package init(address: VirtualServerAddress, proto: IPProtocolNumber) {
        self.address = address
        self.proto = proto
    }
}

/// Health state of one real server: which checkers are down, and a dynamic weight if any.
package struct RealServerState: Sendable {
    package var config: KeepalivedRealServer
    package var failedCheckers: Set<Int> = []
    package var dynamicWeight: Int32?

    package var alive: Bool { failedCheckers.isEmpty }
    package var weight: Int32 { min(max(dynamicWeight ?? config.weight, 0), Int32.max) }

    package init(config: KeepalivedRealServer) {
        self.config = config
        // At a fresh start an alpha checker is down until its first success (§2.2).
        for (n, c) in config.checkers.enumerated() where c.timing.alpha && c.kind.isRun {
            failedCheckers.insert(n)
        }
    }
}

extension CheckerKind {
    /// Whether swift-lvs runs this checker (the others count as up).
    package var isRun: Bool {
        switch self {
        case .tcp, .http, .misc: return true
        case .ssl, .unsupported: return false
        }
    }
}

/// Quorum state and real servers of one virtual server; decides what IPVS should hold.
package struct VirtualServerState: Sendable {
    package var config: KeepalivedVirtualServer
    package var keys: [ServiceKey]
    package var servers: [RealServerIdentity: RealServerState] = [:]
    package var quorumUp = true

    package init(config: KeepalivedVirtualServer, keys: [ServiceKey]) {
        self.config = config
        self.keys = keys
        for rs in config.realServers { servers[rs.identity] = RealServerState(config: rs) }
        quorumUp = UInt64(liveWeight) >= UInt64(config.quorum) + UInt64(config.hysteresis)
    }

    package var id: VirtualServerID { VirtualServerID(address: config.address, proto: config.proto) }

    /// Sum of the weights of the alive real servers.
    package var liveWeight: Int64 {
        servers.values.reduce(0) { $0 + ($1.alive ? Int64($1.weight) : 0) }
    }

    /// Re-evaluates the quorum with hysteresis (§2.5); returns the new state when it changed.
    package mutating func updateQuorum() -> Bool? {
        let live = liveWeight
        let q = Int64(config.quorum), h = Int64(config.hysteresis)
        if quorumUp {
            if live == 0 || live < q - h { quorumUp = false; return false }
        } else if live >= q + h {
            quorumUp = true
            return true
        }
        return nil
    }

    package var sorryActive: Bool { !quorumUp && config.sorryServer != nil }

    /// Writes what IPVS should hold for this virtual server into `table` (§2.4, §2.5).
    package func desired(into table: inout IPVSTable) {
        for key in keys {
            table.add(key, config.serviceOptions(ipv6: key.isIPv6))
            for rs in config.realServers {
                guard let state = servers[rs.identity] else { continue }
                let weight: Int32?
                if sorryActive {
                    weight = rs.inhibitOnFailure ? 0 : nil
                } else if state.alive {
                    weight = state.weight
                } else {
                    weight = rs.inhibitOnFailure ? 0 : nil
                }
                if let w = weight { add(rs, weight: w, key: key, into: &table) }
            }
            if let s = config.sorryServer {
                if sorryActive { add(s, weight: s.weight, key: key, into: &table) }
                else if config.sorryServerInhibit { add(s, weight: 0, key: key, into: &table) }
            }
        }
    }

    private func add(_ rs: KeepalivedRealServer, weight: Int32, key: ServiceKey, into table: inout IPVSTable) {
        let port: UInt16
        if key.isFwmark {
            port = rs.method.method == .masquerade ? rs.port : 0
        } else if rs.method.method == .masquerade {
            port = rs.port != 0 ? rs.port : key.port
        } else {
            port = key.port
        }
        let opts = DestinationOptions(address: rs.address, port: port, method: rs.method.method, weight: weight,
                                      upperThreshold: rs.upperThreshold, lowerThreshold: rs.lowerThreshold,
                                      tunnelType: rs.method.tunnelType, tunnelPort: rs.method.tunnelPort,
                                      tunnelFlags: rs.method.tunnelFlags)
        table.add(DestinationKey(service: key, address: rs.address, port: port), opts)
    }
}

extension KeepalivedVirtualServer {
    /// The `-A` options of this virtual server: scheduler, persistence, netmask, flags.
    public func serviceOptions(ipv6: Bool) -> ServiceOptions {
        var flags = schedulerFlags
        if persistenceTimeout != nil { flags.insert(.persistent) }
        if onePacket { flags.insert(.onePacket) }
        var netmask: UInt32 = ipv6 ? 128 : 0xFFFF_FFFF
        if let g = persistenceGranularity {
            if ipv6 { if g <= 128 { netmask = g } } else if g > 128 { netmask = g }
        }
        return ServiceOptions(scheduler: scheduler, flags: flags, timeout: persistenceTimeout ?? 0,
                              netmask: netmask, persistenceEngine: persistenceEngine)
    }
}

extension KeepalivedConfig {
    /// The start-up state of every virtual server (alpha checkers down, quorum evaluated).
    package func initialStates() -> [VirtualServerState] {
        virtualServers.map { VirtualServerState(config: $0, keys: serviceKeys(of: $0)) }
    }

    /// What IPVS should hold at start-up, before any check has run.
    package func initialTable() -> IPVSTable {
        var table = IPVSTable()
        for s in initialStates() { s.desired(into: &table) }
        return table
    }

    /// The requests that set IPVS up at start-up (§2.4): `lvs_flush` (clear), `lvs_timeouts`,
    /// every service, then the real servers that start alive (alpha ones are added with weight 0
    /// under inhibit_on_failure, or not at all), or the sorry server when the quorum starts down.
    public func initialRequests() -> [ControlRequest] {
        var out: [ControlRequest] = []
        if globals.lvsFlush { out.append(.clear) }
        if let t = globals.lvsTimeouts { out.append(.setTimeouts(t)) }
        return out + IPVSTable().requests(toReach: initialTable())
    }
}
