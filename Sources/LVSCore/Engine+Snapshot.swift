extension Engine {
    // MARK: Listings

    /// Services, destinations, counters and rates, in the kernel's dump order.
    public func snapshot() -> TableSnapshot {
        var list: [ServiceSnapshot] = []
        for s in services.indices {
            guard let svc = services[s] else { continue }
            let ds = svc.destinations.map { slot -> DestinationSnapshot in
                let d = dests[Int(slot)]
                return DestinationSnapshot(options: d.options, activeConns: UInt32(max(0, d.activeConns)),
                                           inactConns: UInt32(max(0, d.inactConns)), persistConns: UInt32(max(0, d.persistConns)),
                                           stats: destStats[Int(slot)].snapshot, rates: destEstimators[Int(slot)].rates)
            }
            list.append(ServiceSnapshot(key: svc.key, options: svc.options, destinations: ds,
                                        stats: serviceStats[s].snapshot, rates: svc.estimator.rates))
        }
        return TableSnapshot(connectionTableSize: configuration.reportedTableSize, services: list, timeouts: timeouts)
    }

    /// The connection table as `/proc/net/ip_vs_conn` would show it.
    public func connections(now: UInt64) -> [ConnectionSnapshot] {
        let t = Self.tick(now)
        var out: [ConnectionSnapshot] = []
        table.forEachLive { _, e in
            let d = dests[Int(e.dest)]
            let remaining = max(0, Int32(bitPattern: e.expires &- t)) / Int32(Self.ticksPerSecond)
            let stateName: String
            let protoName: String
            if e.isTemplate {
                stateName = e.stateFlags & ConnectionEntry.flagAssured != 0 ? "ASSURED" : "NONE"
            } else if e.proto == 6 {
                stateName = TCPState(rawValue: e.state)?.name ?? "NONE"
            } else if e.proto == 17 {
                stateName = "UDP"
            } else {
                stateName = e.state == TCPState.established.rawValue ? "ESTABLISHED" : "NONE"
            }
            protoName = IPProtocolNumber(rawValue: e.proto)?.listName ?? "IP"
            out.append(ConnectionSnapshot(protocolName: protoName, clientAddress: e.client, clientPort: e.cport,
                                          virtualAddress: e.virtualAddress, virtualPort: e.vport,
                                          destinationAddress: d.address, destinationPort: e.dport,
                                          state: stateName, expiresSeconds: UInt32(remaining), isTemplate: e.isTemplate))
        }
        return out
    }

    /// Occupancy of the connection table.
    public var connectionCount: Int { table.count }
}
