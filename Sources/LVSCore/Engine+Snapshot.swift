import LVSModel

extension Engine {
    // MARK: Listings

    /// Services, destinations, counters (summed over shards, minus the last `-Z`) and rates,
    /// in the kernel's dump order.
    public func snapshot() -> TableSnapshot {
        lock.lock(); defer { lock.unlock() }
        var list: [ServiceSnapshot] = []
        for s in services.indices {
            guard services[s].isActive else { continue }
            let svc = services[s]
            let ds = svc.destinations.map { slot -> DestinationSnapshot in
                refreshCounts(slot)
                let d = dests[Int(slot)]
                return DestinationSnapshot(options: d.options, activeConns: UInt32(max(0, d.activeConns)),
                                           inactConns: UInt32(max(0, d.inactConns)), persistConns: UInt32(max(0, d.persistConns)),
                                           stats: Self.minus(destSum(slot), destBaseline[Int(slot)]), rates: destEstimators[Int(slot)].rates)
            }
            list.append(ServiceSnapshot(key: svc.key, options: svc.options, destinations: ds,
                                        stats: Self.minus(serviceSum(s), serviceBaseline[s]), rates: svc.estimator.rates))
        }
        var daemons: [SyncDaemonSnapshot] = []
        if let m = syncMaster { daemons.append(m.config) }
        if let b = syncBackup { daemons.append(b) }
        return TableSnapshot(connectionTableSize: configuration.reportedTableSize, services: list, timeouts: timeouts, daemons: daemons)
    }

    static func minus(_ a: StatsCounters, _ b: StatsCounters) -> StatsSnapshot {
        StatsSnapshot(conns: a.conns &- b.conns, inPackets: a.inPackets &- b.inPackets, outPackets: a.outPackets &- b.outPackets,
                      inBytes: a.inBytes &- b.inBytes, outBytes: a.outBytes &- b.outBytes)
    }

    /// Persistence templates as `/proc/net/ip_vs_conn` shows them.
    public func templateConnections(now: UInt64) -> [ConnectionSnapshot] {
        let t = Self.tick(now)
        return lock.withLock {
            var out: [ConnectionSnapshot] = []
            templates.forEachLive { _, e in out.append(connectionSnapshot(e, tick: t)) }
            return out
        }
    }

    /// The entries no shard owns: connections received by the backup sync daemon and not yet
    /// used, then persistence templates. Walked in slices (`ConnectionListing`): the lock is
    /// released between them, so a big table does not hold up new connections.
    public func sharedConnections(now: UInt64) -> [ConnectionSnapshot] {
        var out: [ConnectionSnapshot] = []
        for table in [synced, templates] {
            var listing = ConnectionListing()
            while !listSharedConnections(table, &listing, now: now) {}
            out += listing.entries
        }
        return out
    }

    /// One slice of the walk of a shared table (one lock hold); true at the end.
    func listSharedConnections(_ table: ConnectionTable, _ listing: inout ConnectionListing, now: UInt64) -> Bool {
        guard let start = listing.nextBucket else { return true }
        let t = Self.tick(now)
        listing.reserve(forTableOf: 0) // by doubling: the shared tables' counts change under the lock
        listing.lockHolds += 1
        let next = lock.withLock {
            table.forEachLive(fromBucket: start, entries: listing.sliceEntries, buckets: listing.sliceBuckets) { _, e in
                listing.entries.append(connectionSnapshot(e, tick: t))
            }
        }
        listing.nextBucket = next
        return next == nil
    }

    /// The port packets of an entry go to (not stored in the 64-byte entry): the destination's
    /// port, or the virtual port when the destination has none; templates: 0 for port-0 templates.
    @inline(__always) func destinationPort(of e: ConnectionEntry) -> UInt16 {
        let port = dests[Int(e.dest)].port
        if e.isTemplate { return e.vport == 0 ? 0 : port }
        return port != 0 ? port : e.vport
    }

    /// One entry in listing form. Under the lock.
    func connectionSnapshot(_ e: ConnectionEntry, tick t: UInt32) -> ConnectionSnapshot {
        let d = dests[Int(e.dest)]
        let remaining = max(0, Int32(bitPattern: e.expires &- t)) / Int32(Self.ticksPerSecond)
        let stateName: String
        if e.isTemplate {
            stateName = e.stateFlags & ConnectionEntry.flagAssured != 0 ? "ASSURED" : "NONE"
        } else if e.proto == 6 {
            stateName = TCPState(rawValue: e.state)?.name ?? "NONE"
        } else if e.proto == 17 {
            stateName = "UDP"
        } else {
            stateName = e.state == TCPState.established.rawValue ? "ESTABLISHED" : "NONE"
        }
        let protoName = IPProtocolNumber(rawValue: e.proto)?.listName ?? "IP"
        return ConnectionSnapshot(protocolName: protoName, clientAddress: e.client, clientPort: e.cport,
                                  virtualAddress: e.virtualAddress, virtualPort: e.vport,
                                  destinationAddress: d.address, destinationPort: destinationPort(of: e),
                                  state: stateName, expiresSeconds: UInt32(remaining), isTemplate: e.isTemplate)
    }
}
