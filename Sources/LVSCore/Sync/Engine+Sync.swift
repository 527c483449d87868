import LVSModel

/// The sync daemon's engine side: what the master sends (§7.2) and what the backup keeps (§7.4).
/// Sockets and threads live in lvsd; here only decisions and data, under the engine lock.

/// The running master: the message being filled, the finished ones waiting for the sender.
final class SyncMasterState {
    let config: SyncDaemonSnapshot
    var builder: SyncMessageBuilder
    /// Tick at which the message being filled got its first entry.
    var firstTick: UInt32 = 0
    var ready: [[UInt8]] = []
    var dropped: UInt64 = 0
    static let maxReady = 1024
    /// The full resync in progress, one queued behind it, and what requests did (Engine+Resync).
    var resync: ResyncWalk?
    var resyncQueued = false
    var lastResyncStart: UInt32?
    var resyncCounters = ResyncCounters()

    init(_ config: SyncDaemonSnapshot) {
        self.config = config
        builder = SyncMessageBuilder(syncID: config.syncID, maxLength: Int(config.maxLength))
    }

    func append(_ c: SyncConnection, tick: UInt32) {
        if !builder.fits(c) { finish() }
        if builder.isEmpty { firstTick = tick }
        builder.append(c)
    }

    func finish() {
        guard !builder.isEmpty else { return }
        if ready.count >= Self.maxReady {
            ready.removeFirst()
            dropped &+= 1
        }
        ready.append(builder.take())
    }
}

/// Counters of the backup sync daemon (for status, metrics and tests): per datagram from
/// `applySync`, cumulative from `Engine.syncCounters`.
public struct SyncCounters: Sendable, Hashable {
    /// Datagrams received while the backup daemon ran.
    public var received = 0
    /// Entries kept (inserted or updated).
    public var applied = 0
    /// Entries the decoder skipped (bad flags, protocol, state or option).
    public var skipped = 0
    /// Entries no local service takes (templates: no local persistent service).
    public var unbound = 0
    /// Datagrams dropped whole (bad header, syncid).
    public var dropped = 0
    /// Entries kept with a shorter timeout: a template's is at most its service's persistence
    /// timeout, a connection's at most the local timeout of its state.
    public var clamped = 0
    /// Updates ignored because a worker already serves the connection (adopted or its own).
    public var servedLocally = 0
    /// New templates refused because synced templates hold their share of the template table.
    public var templateLimit = 0
    /// New connections refused because the table of synced connections is full.
    public var tableFull = 0

    public init() {}

    mutating func add(_ o: SyncCounters) {
        received += o.received; applied += o.applied; skipped += o.skipped; unbound += o.unbound
        dropped += o.dropped; clamped += o.clamped; servedLocally += o.servedLocally
        templateLimit += o.templateLimit; tableFull += o.tableFull
    }

    /// (name, value) pairs for status lines and metrics labels.
    public var named: [(String, Int)] {
        [("received", received), ("applied", applied), ("skipped", skipped), ("unbound", unbound), ("dropped", dropped),
         ("clamped", clamped), ("served-locally", servedLocally), ("template-limit", templateLimit), ("table-full", tableFull)]
    }
}

extension ConnectionEntry {
    /// Template only (whose state bits are otherwise 0): created by the backup sync daemon and
    /// not yet used by a local client; counted in `Engine.syncedTemplateCount`.
    static let flagSyncedTemplate: UInt8 = 0x01
}

/// The sending rule's constants (sysctl sync_threshold "3 50").
public enum SyncRule {
    public static let threshold: UInt16 = 3
    public static let period: UInt16 = 50
    /// TCP states in which connections are synced: ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT.
    public static let tcpStates: UInt16 = 1 << 1 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7
    /// Template timeout when a message carries none (v0).
    public static let templateTimeout: UInt32 = 180
    /// sync_refresh_period: 0 (off) up to the largest a signed 32-bit jiffies count holds at HZ 1000.
    public static let maxRefreshPeriod: UInt32 = 2_147_483
    /// sync_retries: 0...3 (the kernel keeps the count in the 2 low bits of `sync_endtime`).
    public static let maxRetries: UInt8 = 3
}

extension EngineShard {
    /// `ip_vs_sync_conn_needed` with sync_threshold 3, sync_period 50 and the engine's
    /// sync_refresh_period / sync_retries. Called after the entry's expiry was set for this packet.
    /// Allocation-free: copies the entry into the shard's preallocated ring.
    @inline(__always) func syncAfterPacket(_ index: UInt32, pkts: UInt16, stateChanged: Bool) {
        if pkts == 1, let ends = syncEndtimes { ends[Int(index)] = currentTick & ~3 } // a new entry
        let state = conns[index].state
        if conns[index].proto == 6 {
            guard SyncRule.tcpStates & (1 << UInt16(state)) != 0 else { return }
            if stateChanged && state != TCPState.established.rawValue {
                // Forced, whatever the refresh rule says.
                if let ends = syncEndtimes { ends[Int(index)] = conns[index].expires & ~3 }
                queueSync(index)
                return
            }
        }
        var retry: UInt32 = 0
        if let ends = syncEndtimes {
            // Resend only when the expiry moved at least min(refresh, max(timeout / 2, 10 s))
            // since the last send, or as one of sync_retries retries, each refresh / 8 apart.
            let orig = ends[Int(index)]
            let n = conns[index].expires & ~3
            let timeout = conns[index].expires &- currentTick
            let minDiff = max(timeout >> 1, 10 * Engine.ticksPerSecond)
            let diff = Int32(bitPattern: n &- (orig & ~3)).magnitude
            if diff < min(syncRefreshTicks, minDiff) {
                let retries = orig & 3
                guard retries < syncRetries else { return }
                // orig - timeout: when it was last sent.
                guard Int32(bitPattern: currentTick &- ((orig & ~3) &- timeout &+ syncRefreshTicks >> 3)) >= 0 else { return }
                retry = retries + 1
            }
        }
        guard pkts % SyncRule.period == SyncRule.threshold else { return }
        if let ends = syncEndtimes { ends[Int(index)] = (conns[index].expires & ~3) | retry }
        queueSync(index)
    }

    /// Appends the entry to the shard's sync ring (counted as lost when it is full).
    @inline(__always) func queueSync(_ index: UInt32) {
        guard syncCount < Self.syncRingCapacity else {
            syncOverflow &+= 1
            return
        }
        syncRing[syncCount] = conns[index]
        syncCount += 1
    }

    /// A lookup miss that the backup daemon knows: the synced entry moves into this shard's
    /// table and the packet continues as one of an existing connection. Under the lock.
    func adoptSynced(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, key: ConnectionKey, tick: UInt32) -> Verdict? {
        guard let si = engine.synced.lookup(key, template: false) else { return nil }
        let e = engine.synced[si]
        let word = forwarding.load(Int(e.dest))
        let available = word & Engine.flagAvailable != 0
        let syn = f.proto == 6 && f.tcpFlags & TCPFlag.syn != 0
        if (syn && reschedulesSYN(state: e.state, controlled: false, word: word))
            || (!available && engine.expireNodestConn) {
            engine.unbindSynced(si)
            engine.synced.remove(si)
            return nil // scheduled afresh
        }
        // The template link moves with it too (the template's count of controlled entries stays).
        guard let index = table.insert(key, dest: e.dest, method: e.method, stateFlags: e.stateFlags & ~ConnectionEntry.flagTemplate,
                                       control: e.control, expires: e.expires, inPackets: e.inPackets) else { return nil }
        engine.synced.remove(si) // the destination counts move with it
        if e.method == .masquerade { linkReply(index, frame, f, destSlot: e.dest) }
        if let ends = syncEndtimes { ends[Int(index)] = tick & ~3 }
        return existing(frame, f, index: index, tick: tick)
    }
}

extension Engine {
    // MARK: Daemons

    public func startSyncMaster(_ config: SyncDaemonSnapshot) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard syncMaster == nil else { throw .daemonRunning }
        syncMaster = SyncMasterState(config)
        syncFlag.store(0, 1)
    }

    public func stopSyncMaster() throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard syncMaster != nil else { throw .noDaemon }
        syncFlag.store(0, 0)
        syncMaster = nil
    }

    public func startSyncBackup(_ config: SyncDaemonSnapshot) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard syncBackup == nil else { throw .daemonRunning }
        syncBackup = config
    }

    public func stopSyncBackup() throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard syncBackup != nil else { throw .noDaemon }
        syncBackup = nil
    }

    public var syncDaemons: (master: SyncDaemonSnapshot?, backup: SyncDaemonSnapshot?) {
        lock.withLock { (syncMaster?.config, syncBackup) }
    }

    /// Finished messages for the master's sender; a partly filled one is finished once it is
    /// `flushAfter` nanoseconds old (the kernel: 2 s).
    public func takeSyncMessages(now: UInt64, flushAfter: UInt64 = 1_000_000_000) -> [[UInt8]] {
        let t = Self.tick(now)
        return lock.withLock {
            guard let m = syncMaster else { return [] }
            if !m.builder.isEmpty && UInt64(t &- m.firstTick) * Self.nanosecondsPerTick >= flushAfter { m.finish() }
            var out = m.ready
            m.ready.removeAll(keepingCapacity: true)
            continueResync(m, tick: t, into: &out)
            return out
        }
    }

    // MARK: Master

    /// A shard's queued records (from its tick, under the lock): packed into messages.
    func collectSync(_ ring: UnsafeMutablePointer<ConnectionEntry>, count: Int, overflow: UInt64, tick: UInt32) {
        guard let m = syncMaster else { return }
        m.dropped &+= overflow
        for i in 0..<count {
            let e = ring[i]
            guard let c = syncConnection(e) else { continue }
            m.append(c, tick: tick)
            // The controlling template goes with each synced connection (its own in_pkts counted).
            if e.control != 0 {
                let t = e.control - 1
                guard !templates[t].isDead else { continue }
                var n = templates[t].inPackets &+ 1
                if n == ConnectionEntry.packetCounterWrap { n = 0 }
                templates[t].inPackets = n
                if let tc = syncConnection(templates[t]) { m.append(tc, tick: tick) }
            }
        }
    }

    /// An entry in message form: flags, state number and timeout as the kernel sends them.
    func syncConnection(_ e: ConnectionEntry) -> SyncConnection? {
        let d = dests[Int(e.dest)]
        guard d.inUse, d.address.isIPv4 == e.client.isIPv4 else { return nil } // mixed families are not synced
        var fwmark: UInt32 = 0
        var persistence: UInt32 = 0
        let svc = Int(d.serviceSlot)
        if d.serviceSlot != UInt32.max, svc < services.count, services[svc].isActive {
            if services[svc].key.isFwmark { fwmark = services[svc].key.fwmark }
            persistence = services[svc].options.timeout
        }
        // The connection's method, as the kernel sends cp->flags (templates carry none of their own).
        let method = e.isTemplate || ConnectionMethod(d.method) == e.method ? d.method : e.method.forwardMethod
        var flags = UInt32(method.rawValue) & SyncProtocol.flagForwardMask
        if e.isInactive { flags |= SyncProtocol.flagInactive }
        let state: UInt16
        let timeout: UInt32
        if e.isTemplate {
            flags |= SyncProtocol.flagTemplate
            state = e.stateFlags & ConnectionEntry.flagAssured != 0 ? 1 : 0
            timeout = persistence
        } else if e.proto == 6 {
            state = UInt16(e.state)
            timeout = UInt32(truncatingIfNeeded: timeoutTicks.load(Int(e.state))) / Self.ticksPerSecond
        } else if e.proto == 17 {
            state = 0
            timeout = UInt32(truncatingIfNeeded: timeoutTicks.load(Self.udpTimeoutIndex)) / Self.ticksPerSecond
        } else {
            state = e.state == TCPState.established.rawValue ? 7 : 0 // IP_VS_SCTP_S_ESTABLISHED
            timeout = UInt32(truncatingIfNeeded: timeoutTicks.load(Self.sctpTimeoutIndex)) / Self.ticksPerSecond
        }
        return SyncConnection(ipv6: !e.client.isIPv4, proto: e.proto, flags: flags, state: state, clientPort: e.cport,
                              virtualPort: e.vport, destinationPort: destinationPort(of: e), fwmark: fwmark, timeout: timeout,
                              client: e.client, virtualAddress: e.virtualAddress, destination: d.address)
    }

    // MARK: Backup

    /// Processes one received datagram as the backup daemon (§7.4). Returns what happened.
    @discardableResult
    public func applySync(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> SyncCounters {
        var counts = SyncCounters()
        let t = Self.tick(now)
        lock.lock(); defer { lock.unlock() }
        guard let b = syncBackup else { return counts }
        let dg = SyncMessageDecoder.decode(bytes, syncID: b.syncID)
        counts.received = 1
        counts.skipped = dg.skipped
        if dg.error != nil && dg.entries.isEmpty { counts.dropped = 1 }
        // Templates first: a connection then finds the template that controls it (the master
        // sends a template after its connection).
        for c in dg.entries where c.isTemplate { applySyncEntry(c, tick: t, &counts) }
        for c in dg.entries where !c.isTemplate { applySyncEntry(c, tick: t, &counts) }
        syncTotals.add(counts)
        return counts
    }

    /// What the backup daemon did with every entry it received since lvsd started.
    public var syncCounters: SyncCounters { lock.withLock { syncTotals } }

    /// Synced templates now in the template table, and the most it may hold of them.
    public var syncedTemplates: (count: Int, limit: Int) { lock.withLock { (syncedTemplateCount, syncedTemplateLimit) } }

    /// The bound on templates created by the backup daemon: their share of the template table.
    var syncedTemplateLimit: Int { templates.capacity * max(0, min(100, configuration.syncedTemplatePercent)) / 100 }

    /// A template stops counting as synced when a local client uses it or it goes. Under the lock.
    func releaseSyncedTemplate(_ index: UInt32) {
        guard templates[index].stateFlags & ConnectionEntry.flagSyncedTemplate != 0 else { return }
        templates[index].stateFlags &= ~ConnectionEntry.flagSyncedTemplate
        syncedTemplateCount -= 1
    }

    /// Whether a worker's table holds this connection (adopted from sync, or its own). Shards'
    /// hash chains change only under the lock, so the lookup is safe here. Under the lock.
    func servedByShard(_ key: ConnectionKey) -> Bool {
        shards.contains { $0.table.lookup(key, template: false) != nil }
    }

    @discardableResult
    public func applySync(_ bytes: [UInt8], now: UInt64) -> SyncCounters {
        bytes.withUnsafeBytes { applySync($0, now: now) }
    }

    /// The local destination of a received entry: service by (af, fwmark | protocol, vaddr, vport),
    /// then the destination by (daddr, dport) or (daddr, 0), as `ip_vs_find_dest`.
    func syncDestination(_ c: SyncConnection) -> UInt32? {
        var s: Int?
        if c.fwmark != 0 { s = serviceLookup.find(ServiceKey(fwmark: c.fwmark, ipv6: c.ipv6)) }
        if s == nil, let proto = IPProtocolNumber(rawValue: c.proto), c.proto != 0 {
            s = serviceLookup.find(ServiceKey(proto: proto, address: c.virtualAddress, port: c.virtualPort))
                ?? serviceLookup.find(ServiceKey(proto: proto, address: c.virtualAddress, port: 0))
        }
        guard let slot = s, services[slot].isActive else { return nil }
        if let i = findDestination(slot, c.destination, c.destinationPort) { return services[slot].destinations[i] }
        if let i = findDestination(slot, c.destination, 0) { return services[slot].destinations[i] }
        return nil
    }

    /// The key of the persistence template that controls a synced connection of service `svc`
    /// (§4.7, as `persistentDestination` builds it); nil when the service is not persistent.
    func syncTemplateKey(_ c: SyncConnection, service svc: Int) -> ConnectionKey? {
        guard svc < services.count, services[svc].isActive, services[svc].options.flags.contains(.persistent) else { return nil }
        let key = services[svc].key
        let mask = services[svc].options.netmask
        let snet = c.client.isIPv4 ? c.client.masked(ipv4Mask: mask) : c.client.masked(prefix: Int(mask))
        if key.isFwmark {
            return ConnectionKey(proto: 0, client: snet, clientPort: 0, virtualAddress: IPAddress(ipv4: key.fwmark), virtualPort: 0)
        }
        return ConnectionKey(proto: c.proto, client: snet, clientPort: 0, virtualAddress: c.virtualAddress,
                             virtualPort: key.port == 0 ? 0 : c.virtualPort)
    }

    /// Links the synced connection `i` to its persistence template when the backup holds one
    /// (`ip_vs_control_add`): the template then outlives it. Under the lock.
    func linkSyncedTemplate(_ i: UInt32, _ c: SyncConnection, destination slot: UInt32) {
        guard synced[i].control == 0, let tkey = syncTemplateKey(c, service: Int(dests[Int(slot)].serviceSlot)),
              let t = templates.lookup(tkey, template: true), !templates[t].isDead else { return }
        synced[i].control = t + 1
        templates[t].control += 1
    }

    /// One received entry, counted in `counts`. Bounds what a sender (anyone on the segment, as
    /// with the kernel) can do: timeouts are clamped to the local ones, a connection a worker
    /// serves is not inserted again, synced templates hold at most their share of the table.
    func applySyncEntry(_ c: SyncConnection, tick t: UInt32, _ counts: inout SyncCounters) {
        guard let slot = syncDestination(c) else { counts.unbound += 1; return }
        let flags = c.backupFlags
        var seconds = c.timeout != 0 ? min(c.timeout, 0x00FF_FFFF)
            : (c.isTemplate ? SyncRule.templateTimeout : 0)
        let key = ConnectionKey(proto: c.proto, client: c.client, clientPort: c.clientPort,
                                virtualAddress: c.virtualAddress, virtualPort: c.virtualPort)
        if c.isTemplate {
            let svc = Int(dests[Int(slot)].serviceSlot)
            guard svc < services.count, services[svc].isActive, services[svc].options.flags.contains(.persistent) else {
                counts.unbound += 1 // only a persistent service uses templates
                return
            }
            let persistence = services[svc].options.timeout
            let clamped = seconds > persistence
            if clamped { seconds = persistence }
            let expires = t &+ seconds * Self.ticksPerSecond
            let assured = c.state == 1 ? ConnectionEntry.flagAssured : 0
            if let i = templates.lookup(key, template: true) {
                templates[i].stateFlags = (templates[i].stateFlags & ~ConnectionEntry.flagAssured) | assured
                templates[i].inPackets = SyncRule.threshold
                // A refresh never shortens a template (a local client's included).
                if Int32(bitPattern: expires &- templates[i].expires) > 0 { setExpiry(templates, i, expires) }
                counts.applied += 1
                if clamped { counts.clamped += 1 }
                return
            }
            guard syncedTemplateCount < syncedTemplateLimit else { counts.templateLimit += 1; return }
            guard templates.insert(key, dest: slot, stateFlags: ConnectionEntry.flagTemplate | ConnectionEntry.flagSyncedTemplate | assured,
                                   control: 0, expires: expires, inPackets: SyncRule.threshold) != nil else {
                counts.tableFull += 1
                return
            }
            syncedTemplateCount += 1
            destCounts.add(DestCount.index(slot, .persistent), 1)
            counts.applied += 1
            if clamped { counts.clamped += 1 }
            return
        }
        let state: UInt8
        switch c.proto {
        case 6: state = UInt8(c.state)
        case 132: state = c.state == 7 ? TCPState.established.rawValue : 0
        default: state = 0
        }
        let index = c.proto == 6 ? Int(state) : c.proto == 17 ? Self.udpTimeoutIndex : Self.sctpTimeoutIndex
        let localTicks = UInt32(truncatingIfNeeded: timeoutTicks.load(index))
        var timeoutTicksValue = localTicks
        var clamped = false
        if seconds != 0 {
            timeoutTicksValue = seconds * Self.ticksPerSecond
            clamped = timeoutTicksValue > localTicks
            if clamped { timeoutTicksValue = localTicks }
        }
        let inactive = flags & SyncProtocol.flagInactive != 0
        if let i = synced.lookup(key, template: false) {
            if synced[i].dest != slot {
                // Already replaced on the master: a later INACTIVE message about the old one is ignored.
                guard !inactive else { counts.applied += 1; return }
                unbindSynced(i)
                synced.remove(i)
            } else {
                if synced[i].isInactive != inactive {
                    destCounts.moveConnection(slot, from: .connection(inactive: !inactive), to: .connection(inactive: inactive))
                }
                synced[i].stateFlags = state | (inactive ? ConnectionEntry.flagInactive : 0)
                synced[i].inPackets = SyncRule.threshold
                setExpiry(synced, i, t &+ timeoutTicksValue)
                linkSyncedTemplate(i, c, destination: slot)
                counts.applied += 1
                if clamped { counts.clamped += 1 }
                return
            }
        } else if servedByShard(key) {
            // A worker adopted it (or made it itself): its own entry is counted and kept current by
            // the traffic it forwards; a second copy here would count the connection twice.
            counts.servedLocally += 1
            return
        }
        // A synced connection takes its destination's method here, as the kernel's
        // ip_vs_bind_dest gives an IP_VS_CONN_F_SYNC connection its destination's.
        guard let inserted = synced.insert(key, dest: slot, method: ConnectionMethod(dests[Int(slot)].method), stateFlags: state | (inactive ? ConnectionEntry.flagInactive : 0), control: 0,
                                           expires: t &+ timeoutTicksValue, inPackets: SyncRule.threshold) else {
            counts.tableFull += 1
            return
        }
        linkSyncedTemplate(inserted, c, destination: slot)
        destCounts.add(DestCount.index(slot, .connection(inactive: inactive)), 1)
        counts.applied += 1
        if clamped { counts.clamped += 1 }
    }

    func setExpiry(_ table: ConnectionTable, _ i: UInt32, _ expires: UInt32) {
        let old = table[i].expires
        table[i].expires = expires
        if Int32(bitPattern: expires &- old) < 0 { table.reschedule(i) }
    }

    /// Drops a synced entry's destination reference. Under the lock.
    func unbindSynced(_ index: UInt32) {
        let e = synced[index]
        guard !e.isDead else { return }
        let slot = e.dest
        destCounts.add(DestCount.index(slot, .connection(inactive: e.isInactive)), -1)
        if e.control != 0 {
            templates[e.control - 1].control -= 1
            synced[index].control = 0
        }
        if !dests[Int(slot)].available && destReferences(slot) == 0 { releaseDestSlot(slot) }
    }

    /// Synced entries no shard has used expire with their timeout.
    func expireSynced(tick t: UInt32) {
        synced.advance(to: t) { index in
            unbindSynced(index)
            return .free
        }
    }
}
