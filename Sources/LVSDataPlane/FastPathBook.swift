import Glibc
import CLVSXDP
import LVSCore
import Synchronization
import LVSModel

/// The connection map as the fast-path bookkeeping uses it: `XDPConnMap` (the BPF programs'
/// `conns`, `nat_replies` and `dest_stats`), or an in-memory fake in tests.
public protocol ConnectionMap: AnyObject {
    associatedtype Reader: ConnectionMapReader
    /// Inserts or replaces an entry forwarding to `destSlot`; 0 or -errno.
    func put(_ key: inout clvs_conn_key, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32,
             destSlot: UInt32) -> Int32
    /// Whether the program forwards NAT connections in both directions (tc).
    var supportsNAT: Bool { get }
    /// `put` for a NAT connection, rewritten to `server`:`serverPort`; 0 or -errno.
    func putNAT(_ key: inout clvs_conn_key, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32,
                destSlot: UInt32, server: IPAddress, serverPort: UInt16) -> Int32
    /// Inserts or replaces a NAT connection's reply entry; 0 or -errno.
    func putReply(_ key: inout clvs_nat_reply_key, _ value: inout clvs_nat_reply_value) -> Int32
    func deleteReply(_ key: inout clvs_nat_reply_key)
    func get(_ key: inout clvs_conn_key) -> clvs_conn_value?
    func delete(_ key: inout clvs_conn_key)
    /// What the program forwarded to (and, NAT, from) `slot` since the map was created; nil if unreadable.
    func destinationCounters(_ slot: UInt32) -> FastPathTraffic?
    /// Entries in the map.
    func count() -> UInt64
    /// A reader for passes over the map, `batch` entries at a time.
    func makeReader(batch: Int) -> Reader
}

/// A pass over a `ConnectionMap` one batch at a time.
public protocol ConnectionMapReader: AnyObject {
    /// Starts the next pass from the beginning of the map.
    func restart()
    /// Reads the next batch and calls `body` for each of its entries.
    func next(_ body: (clvs_conn_key, clvs_conn_value) -> Void) -> XDPConnMapReader.Step
}

extension XDPConnMap: ConnectionMap {
    public func makeReader(batch: Int) -> XDPConnMapReader { XDPConnMapReader(map: self, batch: batch) }
}

extension XDPConnMapReader: ConnectionMapReader {}

/// What the fast path forwarded, per destination slot, shared by every worker of a data plane:
/// the slots that ever had an entry, with their counters as last added to the statistics (read
/// every second by worker 0, and by any worker when an offloaded connection ends; under the lock,
/// so nothing is counted twice).
///
/// `@unchecked Sendable` (`Map` need not be Sendable): the slot table is behind a `Mutex`; `map`
/// is a constant, used only through BPF map system calls (or a test fake used from one thread).
public final class FastPathCounters<Map: ConnectionMap>: @unchecked Sendable {
    public let map: Map
    private let slots = Mutex<[UInt32: FastPathTraffic]>([:])
    /// Adopted entries lvsd does not know, until they expire or are replaced.
    public let stale: StaleFastPathEntries

    public init(map: Map, stale: StaleFastPathEntries = StaleFastPathEntries()) {
        self.map = map
        self.stale = stale
    }

    /// Adds what the fast path forwarded to `slot` since the last read to `shard`'s statistics.
    public func collect(slot: UInt32, into shard: EngineShard) {
        let delta: FastPathTraffic? = slots.withLock { slots in
            guard let last = slots[slot], let c = map.destinationCounters(slot) else { return nil }
            slots[slot] = c
            return c.since(last)
        }
        guard let delta else { return }
        shard.addOffloadedStatistics(destSlot: slot, packets: delta.packets, bytes: delta.bytes)
        shard.addOffloadedStatistics(destSlot: slot, packets: delta.outPackets, bytes: delta.outBytes, replies: true)
    }

    /// Starts counting `slot` from `start` (what its counters held when its first entry was written).
    func register(slot: UInt32, start: FastPathTraffic) {
        slots.withLock { if $0[slot] == nil { $0[slot] = start } }
    }

    /// The slots that ever had an entry.
    public var knownSlots: [UInt32] { slots.withLock { Array($0.keys) } }

    /// Packets and bytes forwarded to all known slots since the map was created (status line).
    public func totals() -> (packets: UInt64, bytes: UInt64) {
        var packets: UInt64 = 0, bytes: UInt64 = 0
        for slot in knownSlots {
            if let c = map.destinationCounters(slot) { packets &+= c.packets &+ c.outPackets; bytes &+= c.bytes &+ c.outBytes }
        }
        return (packets, bytes)
    }
}

/// A connection the XDP or tc program forwards (see `FastPathBook`).
struct OffloadedConnection {
    var mapKey: clvs_conn_key
    /// A NAT connection's `nat_replies` key (written and deleted together with `mapKey`'s entry).
    var replyKey: clvs_nat_reply_key?
    var destSlot: UInt32
    /// The destination's forwarding word when the entry was written (MACs and interface).
    var word: UInt64
    /// The map's last-seen time as last read.
    var lastSeen: UInt64 = 0
    /// The sync round that last found it in the map.
    var round: UInt64 = 0
}

/// One data-plane worker's fast-path bookkeeping (`--dataplane xdp`, `tc`), on the worker's thread.
///
/// The worker writes the connections its shard recorded as established into the programs'
/// connection map (after each batch) and deletes them on FIN/RST. When such a connection's idle
/// timer runs out, the shard asks for its last-seen time in the map (so it lives on while the
/// program forwards it) and the entry goes when the connection does. Worker 0 adds the
/// per-destination counters to the statistics every second. A pass over the map (every
/// `offloadSyncInterval`, at once when a destination changes) drops the entries of connections
/// that ended, left ESTABLISHED or changed destination by other ways.
public final class FastPathBook<Map: ConnectionMap> {
    public let shard: EngineShard
    public let counters: FastPathCounters<Map>
    public var map: Map { counters.map }
    /// Worker 0 reads the destination counters (one reader, so nothing is counted twice).
    public let readsFastPathCounters: Bool
    /// CLOCK_MONOTONIC in ns; measures the read-back pass against its CPU budget (a fake in tests).
    let clock: () -> UInt64
    /// Slots this worker has written entries for (known to `counters`).
    private var knownSlots: Set<UInt32> = []
    private var lastCounterRead: UInt64 = 0
    public static var counterReadInterval: UInt64 { 1_000_000_000 }
    private var offloaded: [ConnectionKey: OffloadedConnection] = [:]
    private var lastOffloadSync: UInt64 = 0
    private var syncRound: UInt64 = 0
    private var syncPassActive = false
    private var syncPassChanged = false
    private var syncSeen = 0
    private var syncReader: Map.Reader?
    private var syncNextBatch: UInt64 = 0
    public static var offloadSyncBatchesPerTick: Int { 1 }
    private var offloadGeneration: UInt64 = 0
    /// The safety-net pass (expiry, kills, FIN/RST and destination changes remove entries at
    /// once; statistics and expiry do not wait for it). Rare: over a million entries it takes
    /// a tenth of the worker for many seconds.
    public static var offloadSyncInterval: UInt64 { 600_000_000_000 }
    /// Entries read per batch of a pass (one batch per tick): a batch stalls the worker's rings.
    public static var offloadSyncBatchSize: Int { 1024 }
    /// The read-back pass takes at most 1 / (1 + this) of the worker's time: after a batch that
    /// took t, the next one waits t × this.
    public static var offloadSyncIdleFactor: UInt64 { 9 }
    /// Stale entries (`StaleFastPathEntries`): worker 0 checks them at most this often, ...
    public static var staleCheckInterval: UInt64 { 1_000_000_000 }
    /// ... this many per tick, within the read-back pass's CPU budget.
    public static var staleCheckBatch: Int { 256 }
    private var staleQueue: [ConnectionKey] = []
    private var staleQueued = 0
    private var lastStaleCheck: UInt64 = 0
    private var staleNextBatch: UInt64 = 0

    /// Turns offloading on in `shard` and answers its questions about offloaded connections.
    public init(shard: EngineShard, counters: FastPathCounters<Map>, readsFastPathCounters: Bool,
                clock: @escaping () -> UInt64 = monotonicNanoseconds) {
        self.shard = shard
        self.counters = counters
        self.readsFastPathCounters = readsFastPathCounters
        self.clock = clock
        let map = counters.map
        shard.offloadEnabled = true
        shard.offloadsNAT = map.supportsNAT
        shard.offloadedLastSeen = { [unowned self] key in
            guard var k = offloaded[key]?.mapKey else { return nil }
            return map.get(&k)?.last_seen
        }
        shard.offloadedEnded = { [unowned self] key in
            guard let e = offloaded.removeValue(forKey: key) else { return }
            Self.deleteEntries(e, from: map)
        }
    }

    /// Deletes an offloaded connection's entries: `conns`, then its NAT reply entry (a reply
    /// whose connection entry is gone is not forwarded either).
    static func deleteEntries(_ e: OffloadedConnection, from map: Map) {
        var k = e.mapKey
        map.delete(&k)
        if var r = e.replyKey { map.deleteReply(&r) }
    }

    /// Turns offloading off in the shard (its hooks no longer point here).
    public func detach() {
        shard.offloadEnabled = false
        shard.offloadsNAT = false
        shard.offloadStaleKeys = false
        shard.offloadedLastSeen = nil
        shard.offloadedEnded = nil
    }

    /// Connections this worker has in the map.
    public var offloadedCount: Int { offloaded.count }

    /// After a batch: the entries the shard recorded go into the map. (Specialised for the BPF
    /// map here, so lvsd's workers in another module do not run the generic version.)
    @_specialize(exported: true, where Map == XDPConnMap)
    public func afterBatch() { drainOffloads() }

    /// Worker tick: entries, counters (worker 0), then a slice of the read-back pass.
    @_specialize(exported: true, where Map == XDPConnMap)
    public func tick(now: UInt64) {
        drainOffloads()
        readFastPathCounters(now: now)
        syncOffloaded(now: now)
        let stale = counters.stale
        shard.offloadStaleKeys = stale.isActive
        if readsFastPathCounters { expireStale(now: now) }
    }

    /// Writes and deletes the map entries the shard recorded.
    private func drainOffloads() {
        let map = self.map
        shard.drainOffloads { r in
            if r.remove {
                if let e = offloaded.removeValue(forKey: r.key) {
                    settle(r.key, e)
                } else if counters.stale.isActive {
                    counters.stale.replace(r.key, in: map) // a new connection on a stale entry's 4-tuple
                }
                return
            }
            if let e = offloaded[r.key] {
                if e.destSlot == r.destSlot { return } // written already; packets were in flight
                offloaded.removeValue(forKey: r.key)
                settle(r.key, e)
            }
            guard r.destSlot < XDPConnMap.maxDestinationSlots, let t = shard.offloadTarget(destSlot: r.destSlot) else { return }
            let method = shard.offloadMethod(r.key, destSlot: r.destSlot)
            if method == .stay { return }
            if !knownSlots.contains(r.destSlot) {
                knownSlots.insert(r.destSlot)
                // Counting starts from what the slot's counters hold now.
                counters.register(slot: r.destSlot, start: map.destinationCounters(r.destSlot) ?? FastPathTraffic(packets: 0, bytes: 0))
            }
            if counters.stale.isActive { counters.stale.replace(r.key, in: map) } // lvsd's own from now on
            var k = XDPConnMap.key(r.key)
            var replyKey: clvs_nat_reply_key? = nil
            let rc: Int32
            if case .nat(let n) = method {
                // The reply entry first: the program forwards a reply only while the
                // connection's entry exists, so neither is used half written.
                var rk = XDPConnMap.replyKey(r.key, server: n.server, serverPort: n.serverPort)
                var rv = XDPConnMap.replyValue(k, clientMAC: n.clientMAC, sourceMAC: n.sourceMAC, interface: n.interface,
                                               destSlot: r.destSlot)
                guard map.putReply(&rk, &rv) == 0 else { return }
                rc = map.putNAT(&k, destinationMAC: t.destinationMAC, sourceMAC: t.sourceMAC, interface: t.interface,
                                destSlot: r.destSlot, server: n.server, serverPort: n.serverPort)
                if rc != 0 { map.deleteReply(&rk) } else { replyKey = rk }
            } else {
                rc = map.put(&k, destinationMAC: t.destinationMAC, sourceMAC: t.sourceMAC, interface: t.interface, destSlot: r.destSlot)
            }
            if rc == 0 {
                // Counted as seen by the pass under way (its bucket may have been read already).
                offloaded[r.key] = OffloadedConnection(mapKey: k, replyKey: replyKey, destSlot: r.destSlot, word: t.word, round: syncRound)
            }
        }
    }

    /// Takes a connection out of the map; its idle timer restarts from its last packet there, and
    /// its destination's counters go to the statistics at once (a finished transfer is counted
    /// when it ends, not up to a second later).
    private func settle(_ key: ConnectionKey, _ e: OffloadedConnection) {
        var k = e.mapKey
        if let v = map.get(&k), v.last_seen != e.lastSeen {
            _ = shard.offloadedTraffic(key, destSlot: e.destSlot, packets: 0, bytes: 0, lastSeen: v.last_seen)
        }
        Self.deleteEntries(e, from: map)
        counters.collect(slot: e.destSlot, into: shard)
    }

    /// Worker 0: checks the stale entries (`StaleFastPathEntries`), at most every
    /// `staleCheckInterval`, `staleCheckBatch` a tick, taking at most a tenth of the worker's time;
    /// reports what was expired or replaced. Nothing but a load or two while none remain.
    private func expireStale(now: UInt64) {
        let stale = counters.stale
        if staleQueued == staleQueue.count {
            guard now &- lastStaleCheck >= Self.staleCheckInterval else { return }
            lastStaleCheck = now
            stale.reportProgress()
            staleQueue = stale.isActive ? stale.snapshot() : []
            staleQueued = 0
            guard !staleQueue.isEmpty else { return }
        }
        guard now >= staleNextBatch else { return }
        let started = clock()
        let tcp = shard.fastPathIdleTimeout(proto: 6), udp = shard.fastPathIdleTimeout(proto: 17)
        let end = min(staleQueue.count, staleQueued + Self.staleCheckBatch)
        for key in staleQueue[staleQueued..<end] {
            _ = stale.expire(key, in: map, now: now, timeout: key.proto == 17 ? udp : tcp)
        }
        staleQueued = end
        if end == staleQueue.count {
            staleQueue = []
            staleQueued = 0
            stale.reportProgress()
        }
        staleNextBatch = now &+ (clock() &- started) &* Self.offloadSyncIdleFactor
    }

    /// Worker 0: what the programs forwarded per destination since the last read, into the
    /// statistics (a few map reads a second: one per destination that ever had an entry).
    private func readFastPathCounters(now: UInt64) {
        guard readsFastPathCounters, now &- lastCounterRead >= Self.counterReadInterval else { return }
        lastCounterRead = now
        for slot in counters.knownSlots {
            counters.collect(slot: slot, into: shard)
        }
    }

    /// Last-seen times back into the shard; entries that may not stay are removed.
    ///
    /// A pass over the map starts at most once per `offloadSyncInterval` (at once when a
    /// destination changed) and reads `offloadSyncBatchesPerTick` batches per tick, within a
    /// budget of a tenth of the worker's time, so a map of a million entries is read over many
    /// ticks instead of stalling the worker's rings.
    /// An entry whose last-seen time did not move costs a dictionary lookup only.
    private func syncOffloaded(now: UInt64) {
        let map = self.map
        if !syncPassActive {
            let generation = shard.offloadGeneration
            let changed = generation != offloadGeneration
            guard changed || now &- lastOffloadSync >= Self.offloadSyncInterval else { return }
            offloadGeneration = generation
            lastOffloadSync = now
            guard !offloaded.isEmpty else { return }
            syncPassActive = true
            syncPassChanged = changed
            syncRound &+= 1
            syncSeen = 0
            if syncReader == nil { syncReader = map.makeReader(batch: Self.offloadSyncBatchSize) }
            syncReader!.restart()
        }
        guard let reader = syncReader, now >= syncNextBatch else { return }
        let started = clock()
        defer {
            // CPU budget: the read-back takes at most a tenth of the worker's time (a pass over a
            // million entries then lasts about ten seconds on this machine instead of hogging it).
            syncNextBatch = now &+ (clock() &- started) &* Self.offloadSyncIdleFactor
        }
        let round = syncRound, changed = syncPassChanged
        var gone: [ConnectionKey] = []
        for _ in 0..<Self.offloadSyncBatchesPerTick {
            // The map is shared: other workers' entries are skipped.
            let step = reader.next { mapKey, v in
                let key = XDPConnMap.connectionKey(mapKey)
                guard let i = offloaded.index(forKey: key) else { return }
                var e = offloaded.values[i]
                e.round = round
                syncSeen += 1
                if v.last_seen == e.lastSeen && !changed {
                    offloaded.values[i] = e
                    return
                }
                let word = shard.offloadedTraffic(key, destSlot: e.destSlot, packets: 0, bytes: 0,
                                                  lastSeen: v.last_seen != e.lastSeen ? v.last_seen : 0)
                var keep = word == e.word
                if keep && changed { keep = shard.offloadTarget(destSlot: e.destSlot) != nil } // weight 0: quiesced
                if keep {
                    e.lastSeen = v.last_seen
                    offloaded.values[i] = e
                } else {
                    Self.deleteEntries(e, from: map)
                    gone.append(key)
                }
            }
            switch step {
            case .more:
                continue
            case .end:
                // Entries the map no longer has are no longer offloaded.
                if syncSeen < offloaded.count {
                    for (key, e) in offloaded where e.round != round {
                        if var r = e.replyKey { map.deleteReply(&r) } // its reply entry goes with it
                        gone.append(key)
                    }
                }
                syncPassActive = false
            case .unsupported, .failed:
                syncPassActive = false // keep them all; the next pass tries again
            }
            break
        }
        for key in gone { offloaded.removeValue(forKey: key) }
    }
}
