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
