import LVSModel

/// What a restart's state did when the next lvsd loaded it.
public struct RestoreCounters: Sendable, Hashable {
    /// Entries in the file.
    public var entries = 0
    /// Connections re-created (they wait in the synced table until their next packet).
    public var connections = 0
    /// Persistence templates re-created.
    public var templates = 0
    /// Entries whose service or real server is no longer configured.
    public var dropped = 0
    /// Entries that did not fit the table.
    public var tableFull = 0

    public init() {}
}

extension Engine {
    /// Every live connection and persistence template (the shards', the synced and the template
    /// table), in sync-message form with the time each has left as its timeout (at least a
    /// second). For a graceful stop, once the data plane no longer forwards: the shards' entries
    /// are read under the lock, as a full resync does.
    public func exportState(now: UInt64) -> [SyncConnection] {
        let t = Self.tick(now)
        return lock.withLock {
            var out: [SyncConnection] = []
            func add(_ e: ConnectionEntry) {
                guard !e.isDead, var c = syncConnection(e) else { return }
                let left = Int64(Int32(bitPattern: e.expires &- t))
                c.timeout = UInt32(max(1, (left + Int64(Self.ticksPerSecond) - 1) / Int64(Self.ticksPerSecond)))
                out.append(c)
            }
            templates.forEachLive { _, e in add(e) }
            for s in shards { s.table.forEachLive { _, e in add(e) } }
            synced.forEachLive { _, e in add(e) }
            return out
        }
    }

    /// Re-creates the entries of a previous lvsd (`exportState`), bound to this lvsd's services
    /// and destinations: templates first, then connections, which wait in the synced table and
    /// move to a worker's table at their next packet. Entries whose service or real server is gone
    /// are dropped and counted. Call before the data plane forwards.
    public func restoreState(_ entries: [SyncConnection], now: UInt64) -> RestoreCounters {
        let t = Self.tick(now)
        var r = RestoreCounters()
        r.entries = entries.count
        lock.withLock {
            for c in entries where c.isTemplate {
                var counts = SyncCounters()
                applySyncEntry(c, tick: t, &counts)
                r.dropped += counts.unbound
                r.tableFull += counts.tableFull + counts.templateLimit
                guard counts.applied > 0 else { continue }
                r.templates += 1
                // A restored template is this director's own, not a peer's: it counts as local.
                let key = ConnectionKey(proto: c.proto, client: c.client, clientPort: c.clientPort,
                                        virtualAddress: c.virtualAddress, virtualPort: c.virtualPort)
                if let i = templates.lookup(key, template: true) { releaseSyncedTemplate(i) }
            }
            for c in entries where !c.isTemplate {
                var counts = SyncCounters()
                applySyncEntry(c, tick: t, &counts)
                r.dropped += counts.unbound
                r.tableFull += counts.tableFull
                r.connections += counts.applied
            }
        }
        return r
    }
}

extension Engine {
    /// Whether a restored (or synced) connection waits for its next packet in the synced table:
    /// a restart hands such a connection's fast-path entry back to lvsd (docs/restart.md).
    public func hasSyncedConnection(_ key: ConnectionKey) -> Bool {
        lock.withLock { synced.lookup(key, template: false) != nil }
    }
}

extension Engine {
    /// Every service's and real server's counters as `-L --stats` shows them (state file version 2).
    public func exportCounters() -> [CarriedCounters] {
        var out: [CarriedCounters] = []
        for s in snapshot().services {
            out.append(CarriedCounters(service: s.key, destination: nil, stats: s.stats))
            for d in s.destinations {
                out.append(CarriedCounters(service: s.key, destination: .init(address: d.options.address, port: d.options.port), stats: d.stats))
            }
        }
        return out
    }

    /// Makes the listed services and real servers show the counters a previous lvsd had (their
    /// `-Z` baseline moves below the current sums, so what this lvsd counts adds on top). Those
    /// not configured now are skipped. Returns how many were applied.
    @discardableResult
    public func restoreCounters(_ carried: [CarriedCounters]) -> Int {
        func baseline(_ sum: StatsCounters, _ shown: StatsSnapshot) -> StatsCounters {
            var b = StatsCounters()
            b.conns = sum.conns &- shown.conns
            b.inPackets = sum.inPackets &- shown.inPackets
            b.outPackets = sum.outPackets &- shown.outPackets
            b.inBytes = sum.inBytes &- shown.inBytes
            b.outBytes = sum.outBytes &- shown.outBytes
            return b
        }
        return lock.withLock {
            var applied = 0
            for c in carried {
                guard let s = serviceIndex[c.service], services[s].isActive else { continue }
                if let d = c.destination {
                    guard let slot = services[s].destinations.first(where: { dests[Int($0)].address == d.address && dests[Int($0)].port == d.port })
                    else { continue }
                    destBaseline[Int(slot)] = baseline(destSum(slot), c.stats)
                } else {
                    serviceBaseline[s] = baseline(serviceSum(s), c.stats)
                }
                applied += 1
            }
            return applied
        }
    }
}
