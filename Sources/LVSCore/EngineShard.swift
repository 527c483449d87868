import Glibc
import LVSModel

/// One worker's part of the engine: its connection table, its counters, and the packet path.
///
/// A shard is used by one thread only. The path of an existing connection reads the shard's own
/// table and relaxed atomics of the shared `Engine`: no allocation, no lock, no reference counting.
/// New connections, expiry and ARP/ND take the engine's lock.
///
/// One concern per file, as the kernel keeps ip_vs_core.c, ip_vs_sched.c and ip_vs_xmit.c apart:
/// `PacketPath.swift` (a frame in, a verdict out), `Scheduling.swift` (a new connection),
/// `Transmit.swift` (the DR rewrite, held frames, ICMP), `Expiry.swift` (timers),
/// `Offload.swift` (the XDP fast path's hooks), `ConnectionListing.swift` (`-Lnc`),
/// `Defense.swift` (SYN-flood defence). This file holds the shard's state and its counters.
///
/// `@unchecked Sendable` (raw pointers, mutable fields): the control thread creates a shard (under
/// the engine lock) and hands it to one worker thread, which alone then uses its mutable fields
/// (`fragments`, `currentTick`, `outbox`, held frames, the sync ring) and its `table` (see
/// `ConnectionTable`). Other threads read only its counters, which are atomics (`AtomicWords`),
/// and its table's keys and count under the engine lock. `mutex` is the engine lock itself.
public final class EngineShard: @unchecked Sendable {
    @usableFromInline unowned(unsafe) let engine: Engine
    /// The same engine, for calls at +0 (`onEngine`).
    let unmanagedEngine: Unmanaged<Engine>
    public let table: ConnectionTable
    /// The table's raw view, used on the packet path.
    @usableFromInline let conns: ConnectionTableView
    /// The INPUT-ONLY TCP transition table (`TCPStateTable.index(event:state:)`), then NAT's
    /// INPUT and OUTPUT blocks (`TCPStateTable.shardFlat`).
    @usableFromInline let transitions: UnsafeMutablePointer<UInt8>
    @usableFromInline var fragments: FragmentCache
    @usableFromInline var currentTick: UInt32 = 0
    @usableFromInline var ingressInterface: Int32 = 0
    /// Per destination slot, `StatsWord.width` counters (conns, inpkts, outpkts, inbytes, outbytes); single writer.
    @usableFromInline let destCounters: AtomicWords
    /// Per service slot, `StatsWord.width` counters.
    @usableFromInline let serviceCounters: AtomicWords
    /// Forwarded, passed, replies, new connections, ..., drops by reason (`ShardCounter`).
    @usableFromInline let counters: AtomicWords
    // Copies of the engine's atomics (raw pointers, so no reference counting on the path).
    @usableFromInline let forwarding: AtomicWords
    @usableFromInline let destService: AtomicWords
    @usableFromInline let destCounts: AtomicWords
    @usableFromInline let timeoutTicks: AtomicWords
    @usableFromInline let interfaceTable: AtomicWords
    /// The engine's tunnel words (`TunnelWord`), a buffer to encapsulate a frame sent in outer
    /// fragments, and the outer IPv4 identification (`Transmit+Tunnel.swift`).
    @usableFromInline let tunnelWords: AtomicWords
    let tunnelScratch: UnsafeMutableRawPointer
    var ipIdentification: UInt16 = 0
    /// What the kernel left undone in the frame being processed (a packet socket's virtio-net
    /// header, set by the data plane): the transport checksum to complete (start -1: none) and
    /// the GSO segment size (0: not a GSO frame). Only the tunnel path, which copies frames, needs it.
    public var receiveChecksumStart = -1
    public var receiveChecksumOffset = 0
    public var receiveGSOSize = 0
    @usableFromInline var sweptGeneration: UInt64 = 0
    /// Frames to send from the worker's tick (see `Outbox`).
    public var outbox: Outbox
    /// Frames waiting for a real server's MAC (at most `heldCapacity`, for at most one second).
    @usableFromInline let held: UnsafeMutablePointer<HeldFrame>
    @usableFromInline let heldFrames: UnsafeMutableRawPointer
    @usableFromInline var heldCount = 0
    static let heldCapacity = 64
    /// ICMP errors allowed in the current second (the kernel rate-limits them too).
    var icmpBudget = 0
    var icmpBudgetTick: UInt32 = 0
    static let icmpPerSecond = 100
    /// The engine lock's mutex (a raw pointer: taking it costs no reference counting).
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let serviceInfo: UnsafeMutablePointer<ServiceInfo>
    /// The engine's "master sync daemon running" word.
    @usableFromInline let syncFlag: AtomicWords
    /// The engine's filter of the VIP addresses it does not own (`OwnershipWord`).
    @usableFromInline let ownership: AtomicWords
    /// Copies of entries to sync, appended by the packet path, drained by `tick` (preallocated).
    @usableFromInline let syncRing: UnsafeMutablePointer<ConnectionEntry>
    @usableFromInline var syncCount = 0
    /// Sync records lost because the ring was full.
    @usableFromInline var syncOverflow: UInt64 = 0
    @usableFromInline static let syncRingCapacity = 2048
    /// Per table index, the kernel's `sync_endtime`: the expiry (ticks, low 2 bits cleared) the
    /// connection had when last queued for sync, the low 2 bits counting retries. Only with a
    /// sync_refresh_period (nil otherwise, preallocated for the whole table).
    @usableFromInline let syncEndtimes: UnsafeMutablePointer<UInt32>?
    /// sync_refresh_period in ticks (0 = off) and sync_retries.
    @usableFromInline let syncRefreshTicks: UInt32
    @usableFromInline let syncRetries: UInt32
    /// XDP fast path hook (off unless a data plane forwards established connections itself):
    /// connections the packet path forwarded in an offloadable state, or saw leave it, appended
    /// here (preallocated, no allocation) and drained by the worker with `drainOffloads`.
    public var offloadEnabled = false
    /// The fast path forwards NAT connections in both directions (the tc program): they are
    /// offered to it too (`Offload+NAT.swift`).
    public var offloadsNAT = false
    /// Stale fast-path entries exist (`Offload+Stale.swift`): set by the worker while they do.
    public var offloadStaleKeys = false
    /// A connection is handed to the fast path from its N-th input packet on (counting the SYN):
    /// a short connection (SYN, ACK, request, FIN) then never costs a map insert and delete.
    public var offloadAfterPackets: UInt16 = 4
    /// When an offloadable connection's idle timer runs out: the fast path's last-seen time of it
    /// (CLOCK_MONOTONIC ns), or nil when it is not offloaded. A connection the fast path saw within
    /// its timeout lives on from that time instead of expiring. Called from `tick`, under the
    /// engine lock; set by the worker that owns the shard.
    public var offloadedLastSeen: ((ConnectionKey) -> UInt64?)?
    /// Called from `tick` when an offloadable connection is freed (expired or killed), so the fast
    /// path lets go of it at once.
    public var offloadedEnded: ((ConnectionKey) -> Void)?
    @usableFromInline let offloadRing: UnsafeMutablePointer<OffloadRecord>
    @usableFromInline var offloadCount = 0
    @usableFromInline static let offloadRingCapacity = 512
    /// Hash buckets of the frames announced with `prefetch` since the last `prefetchEntries`.
    @usableFromInline let prefetchBuckets: UnsafeMutablePointer<UInt32>
    @usableFromInline var prefetchCount = 0
    public static let prefetchCapacity = 64
    /// The frames of the last announced batch (start address, and a fingerprint of the key's
    /// ports and source address): `process` takes the bucket stage 1 computed for its frame
    /// instead of hashing the key a second time. `prefetchReady` of them, the next at `prefetchNext`.
    @usableFromInline let prefetchFrames: UnsafeMutablePointer<UnsafeRawPointer?>
    @usableFromInline let prefetchPrints: UnsafeMutablePointer<UInt64>
    @usableFromInline var prefetchReady = 0
    @usableFromInline var prefetchNext = 0
    /// SYN-flood defence (see `DefenseConfiguration`): the automatic modes engage while fewer than
    /// this many entries are free; drop_entry's rover; drop_packet's countdown.
    let defenseThreshold: Int
    var evictionRover: UInt32 = 0
    var dropPacketCounter = 0

    init(engine: Engine, capacity: Int, key: SipHashKey) {
        self.engine = engine
        unmanagedEngine = Unmanaged.passUnretained(engine)
        table = ConnectionTable(capacity: capacity, key: key, replyTotal: engine.replyTotal)
        conns = table.view
        transitions = .allocate(capacity: TCPStateTable.shardFlat.count)
        transitions.initialize(from: TCPStateTable.shardFlat, count: TCPStateTable.shardFlat.count)
        fragments = FragmentCache(key: key.derived(Engine.fragmentKeyOffset))
        destCounters = AtomicWords(count: engine.configuration.maxDestinations * StatsWord.width)
        serviceCounters = AtomicWords(count: engine.configuration.maxServices * StatsWord.width)
        counters = AtomicWords(count: ShardCounter.count)
        forwarding = engine.forwarding
        destService = engine.destService
        destCounts = engine.destCounts
        timeoutTicks = engine.timeoutTicks
        interfaceTable = engine.interfaceTable
        tunnelWords = engine.tunnel.words
        tunnelScratch = .allocate(byteCount: Outbox.slotSize, alignment: 64)
        mutex = engine.lock.mutex
        serviceInfo = engine.serviceInfo
        syncFlag = engine.syncFlag
        ownership = engine.ownershipFilter
        syncRing = .allocate(capacity: Self.syncRingCapacity)
        syncRefreshTicks = min(engine.configuration.syncRefreshPeriod, SyncRule.maxRefreshPeriod) &* Engine.ticksPerSecond
        syncRetries = UInt32(min(engine.configuration.syncRetries, 3))
        if syncRefreshTicks > 0 {
            let ends = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
            ends.initialize(repeating: 0, count: capacity)
            syncEndtimes = ends
        } else {
            syncEndtimes = nil
        }
        offloadRing = .allocate(capacity: Self.offloadRingCapacity)
        outbox = Outbox(capacity: 512) // a tunnelled GSO frame takes one slot per segment
        held = .allocate(capacity: Self.heldCapacity)
        heldFrames = .allocate(byteCount: Self.heldCapacity * Outbox.slotSize, alignment: 64)
        prefetchBuckets = .allocate(capacity: Self.prefetchCapacity)
        prefetchFrames = .allocate(capacity: Self.prefetchCapacity)
        prefetchPrints = .allocate(capacity: Self.prefetchCapacity)
        defenseThreshold = max(1, capacity * engine.configuration.defense.amemthreshPercent / 100)
    }

    deinit {
        outbox.deallocate()
        syncRing.deallocate()
        syncEndtimes?.deallocate()
        offloadRing.deallocate()
        held.deallocate()
        heldFrames.deallocate()
        tunnelScratch.deallocate()
        prefetchBuckets.deallocate()
        prefetchFrames.deallocate()
        prefetchPrints.deallocate()
        transitions.deallocate()
        fragments.deallocate()
        destCounters.deallocate()
        serviceCounters.deallocate()
        counters.deallocate()
    }

    func destStats(_ d: UInt32) -> StatsCounters { stats(destCounters, Int(d)) }
    func serviceStats(_ s: Int) -> StatsCounters { stats(serviceCounters, s) }
    func stats(_ w: AtomicWords, _ i: Int) -> StatsCounters {
        var c = StatsCounters()
        c.conns = w.load(StatsWord.index(i, .conns))
        c.inPackets = w.load(StatsWord.index(i, .inPackets))
        c.outPackets = w.load(StatsWord.index(i, .outPackets))
        c.inBytes = w.load(StatsWord.index(i, .inBytes))
        c.outBytes = w.load(StatsWord.index(i, .outBytes))
        return c
    }

    /// Frames this shard has forwarded (a relaxed read; lvsd paces background work by it).
    public var forwardedFrames: UInt64 { counters.load(ShardCounter.forwarded.rawValue) }

    var counterSnapshot: EngineCounters {
        var c = EngineCounters()
        c.forwarded = counters.load(ShardCounter.forwarded.rawValue)
        c.passed = counters.load(ShardCounter.passed.rawValue)
        c.replies = counters.load(ShardCounter.replies.rawValue)
        c.newConnections = counters.load(ShardCounter.newConnections.rawValue)
        c.dropEntryEvictions = counters.load(ShardCounter.dropEntryEvictions.rawValue)
        c.secureTCPShortened = counters.load(ShardCounter.secureTCPShortened.rawValue)
        for r in DropReason.allCases { c.drops[Int(r.rawValue)] = counters.load(ShardCounter.drop(r)) }
        return c
    }
}

extension EngineShard {
    /// Calls `body` with the engine at +0. A method called through `engine` (unowned(unsafe))
    /// retains and releases it around the call; the shard never outlives its engine.
    @inline(__always) func onEngine<R>(_ body: (Engine) -> R) -> R {
        unmanagedEngine._withUnsafeGuaranteedRef(body)
    }
}
