import CLVSShim
import CLVSXDP
import Dispatch
import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import Logging
import Synchronization
import LVSModel

/// The director: one shared `Engine`, one `ShardWorker` per data-plane worker.
///
/// Configuration requests are applied directly to the engine (it takes its lock; the next packet
/// sees them). Listing the connection table asks each worker for its shard, on its own thread.
final class Director: @unchecked Sendable {
    let engine: Engine
    let logger: Logger
    let sender: Int32
    private(set) var workers: [ShardWorker] = []
    /// The connection sync daemons (master and backup threads).
    let sync: SyncDaemons
    /// `lvsadm daemon status` lines about the data plane: the first replaces EngineControl's
    /// "data plane:" line, the others are appended (set once the data plane exists).
    var dataplaneStatus: [String] = []
    /// The fast path's connection map (`--dataplane xdp`, `tc`), for the status line.
    var fastPathMap: XDPConnMap?
    /// Destination slots the fast path has forwarded to, with their counters as last added to
    /// the statistics (read every second by worker 0, and by any worker when an offloaded
    /// connection ends; under the lock, so nothing is counted twice).
    let fastPathSlots = Mutex<[UInt32: (packets: UInt64, bytes: UInt64)]>([:])

    /// Adds what the fast path forwarded to `slot` since the last read to `shard`'s statistics.
    func collectFastPathCounters(slot: UInt32, map: XDPConnMap, into shard: EngineShard) {
        let delta: (packets: UInt64, bytes: UInt64)? = fastPathSlots.withLock { slots in
            guard let last = slots[slot], let c = map.destinationCounters(slot) else { return nil }
            slots[slot] = c
            return (c.packets &- last.packets, c.bytes &- last.bytes)
        }
        if let delta { shard.addOffloadedStatistics(destSlot: slot, packets: delta.packets, bytes: delta.bytes) }
    }
    /// The control and metrics servers' counters, one status line each.
    var serverCounters: [ServerCounters] = []
    /// Which program forwards from `fastPathMap`: "xdp" or "tc" (names the status line).
    var fastPathKind = "xdp"
    private var lastNeighbourCheck: UInt64 = 0
    private var reportedUnreachable: Set<String> = []
    /// When each real server was first seen unresolved (a warning needs 3 s without an answer).
    private var unresolvedSince: [String: UInt64] = [:]

    init(engine: Engine, logger: Logger) throws {
        self.engine = engine
        self.logger = logger
        sync = SyncDaemons(engine: engine, logger: logger)
        sender = clvs_packet_open_sender()
        guard sender >= 0 else { throw DataPlaneError.system(call: "socket(AF_PACKET)", errno: errno, context: "neighbour sender") }
    }

    deinit { close(sender) }

    /// The interfaces and worker count lvsd was started with.
    var interfaceNames: [String] = []
    var requestedWorkers: Int?
    /// An AF_XDP data plane built (and attached) while probing, handed over once.
    var prebuiltPlane: AFXDPDataPlane<ShardWorker>?

    /// Forgets the workers of a data plane that was built and discarded before it ran.
    func resetWorkers() {
        workers.removeAll()
        engine.discardExtraShards()
    }

    /// The processor for data-plane worker `index` (worker 0 uses the engine's built-in shard).
    func makeWorker(_ index: Int) -> ShardWorker {
        let shard = index == 0 ? engine.primary! : engine.makeShard()
        let w = ShardWorker(shard: shard, director: self, sendsNeighbourFrames: index == 0)
        workers.append(w)
        return w
    }

    /// Executes one control request (from the control socket thread).
    func execute(_ request: ControlRequest) -> ControlResponse {
        let now = monotonicNanoseconds()
        if case .connections = request {
            var all: [ConnectionSnapshot] = []
            for w in workers { all += w.collectConnections() }
            return .connections(all + engine.sharedConnections(now: now))
        }
        switch request {
        case let .startDaemon(config): return sync.start(config)
        case let .stopDaemon(role): return sync.stop(role)
        default: break
        }
        let response = EngineControl.execute(request, on: engine, now: now)
        if case let .failed(e) = response {
            logger.debug("control request refused", metadata: ["request": "\(request)", "error": "\(e.errnoName)"])
        }
        if case .text(let t) = response, case .status = request {
            // EngineControl describes the afpacket backend on its first line: say what really runs.
            var lines = t.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if let first = lines.first, first.hasPrefix("data plane:"), let mine = dataplaneStatus.first { lines[0] = mine }
            var extra = dataplaneStatus.dropFirst().map { $0 + "\n" }.joined()
            extra += serverCounters.map(\.statusLine).joined()
            if let map = fastPathMap {
                var packets: UInt64 = 0, bytes: UInt64 = 0
                for slot in fastPathSlots.withLock({ Array($0.keys) }) {
                    if let c = map.destinationCounters(slot) { packets &+= c.packets; bytes &+= c.bytes }
                }
                extra += "\(fastPathKind) fast path: \(map.count()) connection(s), \(packets) packet(s), \(bytes) byte(s) forwarded in \(fastPathKind == "tc" ? "tc" : "XDP")\n"
            }
            return .text(lines.joined(separator: "\n") + extra)
        }
        return response
    }

    /// Gratuitous ARP / NA and neighbour requests (worker 0's tick).
    func sendPendingFrames(now: UInt64) {
        for frame in engine.pendingFrames(now: now) {
            let sent = frame.bytes.withUnsafeBytes { clvs_packet_sendto(sender, frame.interface, $0.baseAddress, $0.count) }
            if sent < 0 {
                logger.warning("cannot send neighbour frame", metadata: ["interface": "\(frame.interface)", "errno": "\(errno)"])
            }
        }
        // Once per destination: say so when a real server does not answer ARP/ND.
        if now &- lastNeighbourCheck >= 1_000_000_000 {
            lastNeighbourCheck = now
            var still: [String: UInt64] = [:]
            for d in engine.unresolvedDestinations() {
                let name = "\(d.address.bracketed):\(d.port)"
                let since = unresolvedSince[name] ?? now
                still[name] = since
                if now &- since >= 3_000_000_000 && reportedUnreachable.insert(name).inserted {
                    logger.warning("real server does not answer ARP/ND; DR needs it on a directly connected network; its packets are dropped (neighbour-unresolved)",
                                   metadata: ["real_server": "\(name)"])
                }
            }
            unresolvedSince = still
        }
    }
}

/// A connection the XDP or tc program forwards (see `ShardWorker.fastPath`).
struct OffloadedConnection {
    var mapKey: clvs_conn_key
    var destSlot: UInt32
    /// The destination's forwarding word when the entry was written (MACs and interface).
    var word: UInt64
    /// The map's last-seen time as last read.
    var lastSeen: UInt64 = 0
    /// The sync round that last found it in the map.
    var round: UInt64 = 0
}

/// One data-plane worker's processor: frames go straight to its engine shard.
final class ShardWorker: FrameProcessor, @unchecked Sendable {
    let shard: EngineShard
    unowned let director: Director
    let sendsNeighbourFrames: Bool
    private let requests = Mutex<[DispatchSemaphore]>([])
    private var collected: [ConnectionSnapshot] = []
    /// Non-zero while a listing is requested: one relaxed load per tick.
    private let pendingFlag: UnsafeMutablePointer<UInt64>
    /// `--dataplane xdp`, `tc`: the programs' connection map. This worker writes the connections
    /// its shard recorded as established (after each batch) and deletes them on FIN/RST. When such
    /// a connection's idle timer runs out, the shard asks for its last-seen time in the map (so it
    /// lives on while the program forwards it) and the entry goes when the connection does.
    /// Worker 0 adds the per-destination counters to the statistics every second. A pass over the
    /// map (every `offloadSyncInterval`, at once when a destination changes) drops the entries of
    /// connections that ended, left ESTABLISHED or changed destination by other ways.
    var fastPath: XDPConnMap? {
        didSet {
            shard.offloadEnabled = fastPath != nil
            guard let map = fastPath else {
                shard.offloadedLastSeen = nil
                shard.offloadedEnded = nil
                return
            }
            shard.offloadedLastSeen = { [unowned self] key in
                guard var k = offloaded[key]?.mapKey else { return nil }
                return map.get(&k)?.last_seen
            }
            shard.offloadedEnded = { [unowned self] key in
                guard var k = offloaded.removeValue(forKey: key)?.mapKey else { return }
                map.delete(&k)
            }
        }
    }
    /// Worker 0 reads the destination counters (one reader, so nothing is counted twice).
    let readsFastPathCounters: Bool
    /// Slots this worker has written entries for (known to `Director.fastPathSlots`).
    private var knownSlots: Set<UInt32> = []
    private var lastCounterRead: UInt64 = 0
    static let counterReadInterval: UInt64 = 1_000_000_000
    private var offloaded: [ConnectionKey: OffloadedConnection] = [:]
    private var lastOffloadSync: UInt64 = 0
    private var syncRound: UInt64 = 0
    private var syncPassActive = false
    private var syncPassChanged = false
    private var syncSeen = 0
    private var syncReader: XDPConnMapReader?
    private var syncNextBatch: UInt64 = 0
    static let offloadSyncBatchesPerTick = 1
    private var offloadGeneration: UInt64 = 0
    /// The safety-net pass (expiry, kills, FIN/RST and destination changes remove entries at
    /// once; statistics and expiry do not wait for it). Rare: over a million entries it takes
    /// a tenth of the worker for many seconds.
    static let offloadSyncInterval: UInt64 = 600_000_000_000
    /// Entries read per batch of a pass (one batch per tick): a batch stalls the worker's rings.
    static let offloadSyncBatchSize = 1024

    init(shard: EngineShard, director: Director, sendsNeighbourFrames: Bool) {
        self.shard = shard
        self.director = director
        self.sendsNeighbourFrames = sendsNeighbourFrames
        readsFastPathCounters = sendsNeighbourFrames // worker 0
        pendingFlag = .allocate(capacity: 1)
        pendingFlag.initialize(to: 0)
    }

    deinit { pendingFlag.deallocate() }

    @inline(__always)
    func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        shard.process(frame, interface: interface, now: now)
    }

    @inline(__always)
    func prefetch(_ frame: UnsafeRawBufferPointer) { shard.prefetch(frame) }

    @inline(__always)
    func prefetchDone() { shard.prefetchEntries() }

    func afterBatch(now: UInt64) {
        guard let map = fastPath else { return }
        drainOffloads(map: map)
    }

    /// Writes and deletes the map entries the shard recorded.
    private func drainOffloads(map: XDPConnMap) {
        shard.drainOffloads { r in
            if r.remove {
                if let e = offloaded.removeValue(forKey: r.key) { settle(r.key, e, map: map) }
                return
            }
            if let e = offloaded[r.key] {
                if e.destSlot == r.destSlot { return } // written already; packets were in flight
                offloaded.removeValue(forKey: r.key)
                settle(r.key, e, map: map)
            }
            guard r.destSlot < XDPConnMap.maxDestinationSlots, let t = shard.offloadTarget(destSlot: r.destSlot) else { return }
            if !knownSlots.contains(r.destSlot) {
                knownSlots.insert(r.destSlot)
                // Counting starts from what the slot's counters hold now.
                let start = map.destinationCounters(r.destSlot) ?? (0, 0)
                director.fastPathSlots.withLock { if $0[r.destSlot] == nil { $0[r.destSlot] = start } }
            }
            var k = XDPConnMap.key(r.key)
            if map.put(&k, destinationMAC: t.destinationMAC, sourceMAC: t.sourceMAC, interface: t.interface, destSlot: r.destSlot) == 0 {
                // Counted as seen by the pass under way (its bucket may have been read already).
                offloaded[r.key] = OffloadedConnection(mapKey: k, destSlot: r.destSlot, word: t.word, round: syncRound)
            }
        }
    }

    /// Takes a connection out of the map; its idle timer restarts from its last packet there, and
    /// its destination's counters go to the statistics at once (a finished transfer is counted
    /// when it ends, not up to a second later).
    private func settle(_ key: ConnectionKey, _ e: OffloadedConnection, map: XDPConnMap) {
        var k = e.mapKey
        if let v = map.get(&k), v.last_seen != e.lastSeen {
            _ = shard.offloadedTraffic(key, destSlot: e.destSlot, packets: 0, bytes: 0, lastSeen: v.last_seen)
        }
        map.delete(&k)
        director.collectFastPathCounters(slot: e.destSlot, map: map, into: shard)
    }

    /// Worker 0: what the programs forwarded per destination since the last read, into the
    /// statistics (a few map reads a second: one per destination that ever had an entry).
    private func readFastPathCounters(now: UInt64, map: XDPConnMap) {
        guard readsFastPathCounters, now &- lastCounterRead >= Self.counterReadInterval else { return }
        lastCounterRead = now
        for slot in director.fastPathSlots.withLock({ Array($0.keys) }) {
            director.collectFastPathCounters(slot: slot, map: map, into: shard)
        }
    }

    /// Last-seen times back into the shard; entries that may not stay are removed.
    ///
    /// A pass over the map starts at most once per `offloadSyncInterval` (at once when a
    /// destination changed) and reads `offloadSyncBatchesPerTick` batches per tick, within a
    /// budget of a tenth of the worker's time, so a map of a million entries is read over many
    /// ticks instead of stalling the worker's rings.
    /// An entry whose last-seen time did not move costs a dictionary lookup only.
    private func syncOffloaded(now: UInt64, map: XDPConnMap) {
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
            if syncReader == nil { syncReader = XDPConnMapReader(map: map, batch: Self.offloadSyncBatchSize) }
            syncReader!.restart()
        }
        guard let reader = syncReader, now >= syncNextBatch else { return }
        let started = monotonicNanoseconds()
        defer {
            // CPU budget: the read-back takes at most a tenth of the worker's time (a pass over a
            // million entries then lasts about ten seconds on this machine instead of hogging it).
            syncNextBatch = now &+ (monotonicNanoseconds() &- started) &* 9
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
                    var k = e.mapKey
                    map.delete(&k)
                    gone.append(key)
                }
            }
            switch step {
            case .more:
                continue
            case .end:
                // Entries the map no longer has are no longer offloaded.
                if syncSeen < offloaded.count { for (key, e) in offloaded where e.round != round { gone.append(key) } }
                syncPassActive = false
            case .unsupported, .failed:
                syncPassActive = false // keep them all; the next pass tries again
            }
            break
        }
        for key in gone { offloaded.removeValue(forKey: key) }
    }

    func tick(now: UInt64) {
        shard.tick(now: now)
        if let map = fastPath {
            drainOffloads(map: map)
            readFastPathCounters(now: now, map: map)
            syncOffloaded(now: now, map: map)
        }
        // Frames that waited for a real server's MAC, and ICMP errors to clients.
        if shard.outbox.count > 0 {
            let fd = director.sender
            shard.outbox.drain { bytes, ifindex in _ = clvs_packet_sendto(fd, ifindex, bytes.baseAddress, bytes.count) }
        }
        if listing != nil || clvs_load_relaxed_u64(pendingFlag) != 0 { continueListing(now: now) }
        if sendsNeighbourFrames { director.sendPendingFrames(now: now) }
    }

    /// A listing of the shard, in slices over ticks (worker thread only), and who waits for it.
    private var listing: ConnectionListing?
    private var listingWaiters: [DispatchSemaphore] = []
    /// Worker time per tick spent on a listing (ticks are 10 ms apart: about 5 % of the worker
    /// while a listing runs). Each slice holds the engine lock for one `ConnectionListing` slice.
    static let listingBudgetPerTick: UInt64 = 500_000
    /// How long a control request waits for a worker's listing (1 M entries take a few seconds).
    static let listingWait: DispatchTimeInterval = .seconds(30)

    /// Walks the shard's table for the waiting listing requests, within the tick's budget.
    private func continueListing(now: UInt64) {
        if listing == nil {
            clvs_store_relaxed_u64(pendingFlag, 0)
            listingWaiters = requests.withLock { q -> [DispatchSemaphore] in
                let taken = q
                q.removeAll()
                return taken
            }
            guard !listingWaiters.isEmpty else { return }
            listing = ConnectionListing()
        }
        let started = monotonicNanoseconds()
        var complete = false
        repeat {
            complete = shard.listConnections(&listing!, now: now)
        } while !complete && monotonicNanoseconds() &- started < Self.listingBudgetPerTick
        guard complete else { return }
        let entries = listing!.entries
        listing = nil
        requests.withLock { _ in collected = entries }
        for s in listingWaiters { s.signal() }
        listingWaiters = []
    }

    /// From the control thread: this shard's connections, read on the worker's own thread (in
    /// slices over several ticks for a big table).
    func collectConnections() -> [ConnectionSnapshot] {
        let done = DispatchSemaphore(value: 0)
        requests.withLock { $0.append(done) }
        clvs_store_relaxed_u64(pendingFlag, 1)
        guard done.wait(timeout: .now() + Self.listingWait) == .success else { return [] }
        return requests.withLock { _ in collected }
    }
}
