/// When a SYN-flood defence strategy is engaged: the kernel's sysctl values for drop_entry,
/// drop_packet and secure_tcp. The kernel engages the automatic modes on low memory; lvsd engages
/// them on a shard's connection-table fill level (fewer than `amemthreshPercent` % entries free).
public enum DefenseMode: UInt8, Sendable, CaseIterable {
    /// 0: never.
    case off = 0
    /// 1: automatic.
    case automatic = 1
    /// 2: automatic (the kernel's "automatic, currently engaged"; the same here).
    case automaticEngaged = 2
    /// 3: always.
    case always = 3
}

/// The SYN-flood defence (issue 13 item 6), modelled on the kernel's drop_entry, drop_packet and
/// secure_tcp. It keeps established connections and lets new clients in while spoofed SYNs fill
/// the connection table:
/// - secure_tcp: while engaged, a new TCP connection's SYN_RECV entry gets `secureSynRecvTimeout`
///   instead of the SYN_RECV timeout (60 s), so half-open entries leave the table quickly.
/// - drop_entry: while engaged, a new connection that finds the shard's table full evicts a
///   half-open (SYN_RECV, SYNACK) or finished (TIME_WAIT, CLOSE) TCP entry instead of being
///   refused. Never an ESTABLISHED (or other) entry, a UDP or SCTP entry, or a template. The
///   victim is the next such entry after a rover that walks the table, so an entry is evicted
///   only after the rover has passed over the whole table since it was created (close to
///   oldest first); at most `evictionProbeLimit` entries are looked at per new connection.
///   Likewise a new client of a persistent service that finds the templates table full evicts
///   a template that controls no connection and was never ASSURED.
/// - drop_packet: while engaged, one of every `rate` new-connection packets is dropped, `rate`
///   being `am_droprate` in mode 3, and in the automatic modes threshold / (threshold - free
///   entries) as the kernel computes it from memory (so everything new is dropped at full).
public struct DefenseConfiguration: Sendable, Equatable {
    public var dropEntry: DefenseMode = .off
    public var dropPacket: DefenseMode = .off
    public var secureTCP: DefenseMode = .off
    /// The automatic modes engage while fewer than this percentage of a shard's connection
    /// entries are free (the kernel's amemthresh, which is in pages of free memory). 1...99.
    public var amemthreshPercent: Int = 10
    /// drop_packet in mode 3: one of every `amDropRate` new connections is dropped (am_droprate).
    public var amDropRate: Int = 10
    /// secure_tcp: the SYN_RECV timeout, in seconds, while engaged.
    public var secureSynRecvTimeout: UInt32 = 3
    /// drop_entry: entries examined per new connection when looking for one to evict.
    public static let evictionProbeLimit = 1024

    public init() {}

    /// lvsd's defaults: drop_entry and secure_tcp automatic, drop_packet off.
    public static let lvsdDefault: DefenseConfiguration = {
        var d = DefenseConfiguration()
        d.dropEntry = .automatic
        d.secureTCP = .automatic
        return d
    }()
}

extension EngineShard {
    /// Whether `mode` is engaged on this shard now (under the engine lock).
    @inline(__always) func defenseEngaged(_ mode: DefenseMode) -> Bool {
        switch mode {
        case .off: return false
        case .always: return true
        case .automatic, .automaticEngaged: return table.capacity - table.count < defenseThreshold
        }
    }

    /// drop_packet: true when this new-connection packet is to be dropped (the kernel's
    /// `ip_vs_todrop`: one of every `rate`).
    func dropPacketDecision() -> Bool {
        let rate: Int
        switch engine.dropPacketMode {
        case .off: return false
        case .always: rate = Int(engine.setting(.amDroprate))
        case .automatic, .automaticEngaged:
            let free = table.capacity - table.count
            guard free < defenseThreshold else {
                dropPacketCounter = 0
                return false
            }
            rate = defenseThreshold / (defenseThreshold - free)
        }
        guard rate > 0 else { return false }
        if dropPacketCounter > 1 {
            dropPacketCounter -= 1
            return false
        }
        dropPacketCounter = rate
        return true
    }

    /// drop_entry: frees one evictable TCP entry of this full table; false when none was found
    /// within `evictionProbeLimit` entries (under the engine lock).
    func evictForNewConnection() -> Bool {
        for _ in 0..<DefenseConfiguration.evictionProbeLimit {
            let i = evictionRover
            stepEvictionRover()
            guard isEvictable(i) else { continue }
            unbind(i)
            table.remove(i)
            counters.bump(ShardCounter.dropEntryEvictions.rawValue, by: 1)
            return true
        }
        return false
    }

    /// drop_entry, from `tick` while engaged: moves the rover onto the next evictable entry (up to
    /// `roverStepsPerTick` entries on), so that new connections find one at once even behind a
    /// long run of entries it may not evict (say, connections of one busy minute in FIN_WAIT).
    func prepareEviction() {
        guard defenseEngaged(engine.dropEntryMode) else { return }
        for _ in 0..<Self.roverStepsPerTick {
            if isEvictable(evictionRover) { return }
            stepEvictionRover()
        }
    }

    @inline(__always) func stepEvictionRover() {
        evictionRover = evictionRover + 1 == UInt32(table.capacity) ? 0 : evictionRover + 1
    }

    /// A live TCP connection (not a template) in a state drop_entry may evict.
    @inline(__always) func isEvictable(_ i: UInt32) -> Bool {
        let e = table[i]
        return e.stateFlags & (ConnectionEntry.flagTemplate | ConnectionEntry.flagDead) == 0 && e.proto == 6
            && Self.evictable(e.state)
    }

    /// Entries the rover may pass per tick (about 20 µs of work).
    static let roverStepsPerTick = 16384

    /// TCP states drop_entry may evict: half-open (SYN_RECV, SYNACK) or over (TIME_WAIT, CLOSE).
    @inline(__always) static func evictable(_ state: UInt8) -> Bool {
        state == TCPState.synRecv.rawValue || state == TCPState.synAck.rawValue
            || state == TCPState.timeWait.rawValue || state == TCPState.close.rawValue
    }
}

extension Engine {
    /// drop_entry on the full templates table (under the lock): frees one template that controls
    /// no connection and never saw one reach ESTABLISHED (the kernel drops such non-assured
    /// templates first), the next one after a rover; at most `evictionProbeLimit` looked at.
    func evictTemplate() {
        let capacity = UInt32(templates.capacity)
        for _ in 0..<DefenseConfiguration.evictionProbeLimit {
            let i = templateRover
            templateRover = i + 1 == capacity ? 0 : i + 1
            let e = templates[i]
            guard e.stateFlags & (ConnectionEntry.flagTemplate | ConnectionEntry.flagDead | ConnectionEntry.flagAssured)
                    == ConnectionEntry.flagTemplate, e.control == 0 else { continue }
            unbindTemplate(i)
            templates.remove(i)
            templateEvictions &+= 1
            return
        }
    }

    /// The defence settings and on how many shards each strategy is engaged now.
    public var defenseStatus: (configuration: DefenseConfiguration, shards: Int, dropEntry: Int, dropPacket: Int, secureTCP: Int) {
        lock.withLock {
            let d = defense
            var counts = (0, 0, 0)
            for s in shards {
                if s.defenseEngaged(d.dropEntry) { counts.0 += 1 }
                if s.defenseEngaged(d.dropPacket) { counts.1 += 1 }
                if s.defenseEngaged(d.secureTCP) { counts.2 += 1 }
            }
            return (d, shards.count, counts.0, counts.1, counts.2)
        }
    }
}
