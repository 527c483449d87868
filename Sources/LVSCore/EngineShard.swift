#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LVSModel

/// One worker's part of the engine: its connection table, its counters, and the packet path.
///
/// A shard is used by one thread only. The path of an existing connection reads the shard's own
/// table and relaxed atomics of the shared `Engine`: no allocation, no lock, no reference counting.
/// New connections, expiry and ARP/ND take the engine's lock.
public final class EngineShard: @unchecked Sendable {
    @usableFromInline unowned(unsafe) let engine: Engine
    public let table: ConnectionTable
    /// The table's raw view, used on the packet path.
    @usableFromInline let conns: ConnectionTableView
    /// The INPUT-ONLY TCP transition table (`event * 11 + state`).
    @usableFromInline let transitions: UnsafeMutablePointer<UInt8>
    @usableFromInline var fragments: FragmentCache
    @usableFromInline var currentTick: UInt32 = 0
    @usableFromInline var ingressInterface: Int32 = 0
    /// Per destination slot, 5 counters (conns, inpkts, outpkts, inbytes, outbytes); single writer.
    @usableFromInline let destCounters: AtomicWords
    /// Per service slot, 5 counters.
    @usableFromInline let serviceCounters: AtomicWords
    /// 0 forwarded, 1 passed, 2 replies, 3 new connections, 8... drops by reason.
    @usableFromInline let counters: AtomicWords
    // Copies of the engine's atomics (raw pointers, so no reference counting on the path).
    @usableFromInline let forwarding: AtomicWords
    @usableFromInline let destService: AtomicWords
    @usableFromInline let destCounts: AtomicWords
    @usableFromInline let timeoutTicks: AtomicWords
    @usableFromInline let interfaceTable: AtomicWords
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
    /// Copies of entries to sync, appended by the packet path, drained by `tick` (preallocated).
    @usableFromInline let syncRing: UnsafeMutablePointer<ConnectionEntry>
    @usableFromInline var syncCount = 0
    /// Sync records lost because the ring was full.
    @usableFromInline var syncOverflow: UInt64 = 0
    @usableFromInline static let syncRingCapacity = 2048
    /// XDP fast path hook (off unless a data plane forwards established connections itself):
    /// connections the packet path forwarded in an offloadable state, or saw leave it, appended
    /// here (preallocated, no allocation) and drained by the worker with `drainOffloads`.
    public var offloadEnabled = false
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
        table = ConnectionTable(capacity: capacity, key: key)
        conns = table.view
        transitions = .allocate(capacity: TCPStateTable.inputOnlyFlat.count)
        transitions.initialize(from: TCPStateTable.inputOnlyFlat, count: TCPStateTable.inputOnlyFlat.count)
        fragments = FragmentCache(key: key.derived(Engine.fragmentKeyOffset))
        destCounters = AtomicWords(count: engine.configuration.maxDestinations * 5)
        serviceCounters = AtomicWords(count: engine.configuration.maxServices * 5)
        counters = AtomicWords(count: 8 + DropReason.allCases.count)
        forwarding = engine.forwarding
        destService = engine.destService
        destCounts = engine.destCounts
        timeoutTicks = engine.timeoutTicks
        interfaceTable = engine.interfaceTable
        mutex = engine.lock.mutex
        serviceInfo = engine.serviceInfo
        syncFlag = engine.syncFlag
        syncRing = .allocate(capacity: Self.syncRingCapacity)
        offloadRing = .allocate(capacity: Self.offloadRingCapacity)
        outbox = Outbox(capacity: 128)
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
        offloadRing.deallocate()
        held.deallocate()
        heldFrames.deallocate()
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
        c.conns = w.load(i * 5)
        c.inPackets = w.load(i * 5 + 1)
        c.outPackets = w.load(i * 5 + 2)
        c.inBytes = w.load(i * 5 + 3)
        c.outBytes = w.load(i * 5 + 4)
        return c
    }

    var counterSnapshot: EngineCounters {
        var c = EngineCounters()
        c.forwarded = counters.load(0)
        c.passed = counters.load(1)
        c.replies = counters.load(2)
        c.newConnections = counters.load(3)
        c.dropEntryEvictions = counters.load(Self.evictedCounter)
        c.secureTCPShortened = counters.load(Self.secureTCPCounter)
        for r in DropReason.allCases { c.drops[Int(r.rawValue)] = counters.load(8 + Int(r.rawValue)) }
        return c
    }

    // MARK: Packet path

    /// Decides what to do with one Ethernet frame received on `interface` at time `now` (ns,
    /// monotonic), rewriting it in place when it is forwarded or answered.
    public func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        var f = ParsedFrame()
        FrameParser.parse(UnsafeRawBufferPointer(frame), into: &f)
        let tick = Engine.tick(now)
        currentTick = tick
        ingressInterface = interface
        switch f.kind {
        case .ipv4, .ipv6:
            break
        case .arp:
            let v = engine.lock.withLock { engine.handleARP(frame, f, interface: interface) }
            return count(v)
        case .malformed:
            return drop(.malformed)
        case .other:
            return passed()
        }
        if f.isLaterFragment {
            guard engine.mayBeVirtual(f.destination) else { return passed() }
            guard let slot = fragments.find(f, now: tick) else {
                return engine.lock.withLock { engine.vips.contains(f.destination) } ? drop(.fragment) : passed()
            }
            return transmit(frame, f, destSlot: slot, word: forwarding.load(Int(slot)))
        }
        if f.hasPorts {
            let key = ConnectionKey(proto: f.proto, client: f.source, clientPort: f.sourcePort,
                                    virtualAddress: f.destination, virtualPort: f.destinationPort)
            let bucket = prefetchedBucket(frame, f)
                ?? conns.bucket(proto: f.proto, client: f.source, cport: f.sourcePort, vlow: f.destination.words.3, vport: f.destinationPort)
            if let index = conns.lookup(key, template: false, bucket: bucket) {
                if let verdict = existing(frame, f, index: index, tick: tick) { return verdict }
            }
            guard engine.mayBeVirtual(f.destination) else { return passed() }
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return newConnection(frame, f, key: key, tick: tick, now: now)
        }
        if f.isICMPError { return icmpError(frame, f) }
        if f.kind == .ipv6 && f.proto == 58 && (f.icmpType == 135 || f.icmpType == 136) {
            let v = engine.lock.withLock { engine.handleNeighbourDiscovery(frame, f, interface: interface) }
            return count(v)
        }
        return passed()
    }

    @inline(__always) func count(_ v: Verdict) -> Verdict {
        switch v {
        case .pass: counters.bump(1, by: 1)
        case .reply: counters.bump(2, by: 1)
        case let .drop(r): counters.bump(8 + Int(r.rawValue), by: 1)
        case .forward: counters.bump(0, by: 1)
        }
        return v
    }

    @inline(__always) func passed() -> Verdict {
        counters.bump(1, by: 1)
        return .pass
    }

    @inline(__always) func drop(_ r: DropReason) -> Verdict {
        counters.bump(8 + Int(r.rawValue), by: 1)
        return .drop(r)
    }

    /// Counts, rewrites and forwards a frame to a destination whose forwarding word is `word`.
    @inline(__always) func transmit(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32, word: UInt64) -> Verdict {
        guard word & Engine.flagMACKnown != 0 else { return hold(frame, f, destSlot: destSlot) }
        let ifslot = Int((word >> 48) & 0xFF)
        guard FrameRewriter.directRoute(frame, l3Offset: f.l3Offset, ipv6: f.kind == .ipv6,
                                        destinationMAC: MACAddress(value: word),
                                        sourceMAC: MACAddress(value: interfaceTable.load(2 * ifslot + 1))) else {
            return drop(.ttlExceeded)
        }
        let bytes = UInt64(f.ipLength)
        let d = Int(destSlot) * 5
        destCounters.bump(d + 1, by: 1)
        destCounters.bump(d + 3, by: bytes)
        let svc = destService.load(Int(destSlot))
        if svc != Engine.noService {
            serviceCounters.bump(Int(svc) * 5 + 1, by: 1)
            serviceCounters.bump(Int(svc) * 5 + 3, by: bytes)
        }
        counters.bump(0, by: 1)
        if f.isFirstFragment { fragments.remember(f, destSlot: destSlot, now: currentTick) }
        return .forward(interface: Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(2 * ifslot))))
    }

    /// A packet of an existing connection; nil when it must be treated as new.
    @inline(__always) func existing(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, index: UInt32, tick: UInt32) -> Verdict? {
        let slot = conns[index].dest
        let word = forwarding.load(Int(slot))
        // The kernel's order (ip_vs_in_hook): first a new SYN that may start afresh, then the
        // destination's availability.
        if f.proto == 6 && f.tcpFlags & TCPFlag.syn != 0
            && reschedulesSYN(state: conns[index].state, controlled: conns[index].control != 0, word: word) {
            engine.lock.withLock { kill(index) }
            return nil
        }
        if word & Engine.flagAvailable == 0 {
            if engine.configuration.expireNodestConn {
                engine.lock.withLock { kill(index) }
                return nil
            }
            return drop(.destinationUnavailable)
        }
        var changed = false
        var offloadable = f.proto == 17
        if f.proto == 6 {
            let state = conns[index].state
            let next: UInt8
            if let event = TCPStateTable.event(flags: f.tcpFlags) {
                next = transitions[event * 11 + Int(state)]
            } else {
                next = TCPState.close.rawValue
            }
            if next != state {
                setState(index, TCPState(rawValue: next)!)
                changed = true
            }
            if offloadEnabled {
                let established = TCPState.established.rawValue
                if f.tcpFlags & (TCPFlag.syn | TCPFlag.fin | TCPFlag.rst) == 0 {
                    offloadable = next == established
                } else if state == established {
                    // FIN/RST: the fast path (which never sees them) must let go of it now.
                    recordOffload(f, destSlot: slot, remove: true)
                }
            }
            let old = conns[index].expires
            conns[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Int(next)))
            if Int32(bitPattern: conns[index].expires &- old) < 0 { conns.reschedule(index) }
        } else if f.proto == 17 {
            conns[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Engine.udpTimeoutIndex))
        } else {
            conns[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Engine.sctpTimeoutIndex))
        }
        var pkts = conns[index].inPackets &+ 1
        if pkts == ConnectionEntry.packetCounterWrap { pkts = 0 }
        conns[index].inPackets = pkts
        if syncFlag.load(0) != 0 { syncAfterPacket(index, pkts: pkts, stateChanged: changed) }
        let verdict = transmit(frame, f, destSlot: slot, word: word)
        if offloadEnabled && offloadable && pkts >= offloadAfterPackets && !f.isFirstFragment, case .forward = verdict {
            recordOffload(f, destSlot: slot, remove: false)
        }
        return verdict
    }

    @inline(__always) func recordOffload(_ f: ParsedFrame, destSlot: UInt32, remove: Bool) {
        guard offloadCount < Self.offloadRingCapacity else { return }
        offloadRing[offloadCount] = OffloadRecord(
            key: ConnectionKey(proto: f.proto, client: f.source, clientPort: f.sourcePort,
                               virtualAddress: f.destination, virtualPort: f.destinationPort),
            destSlot: destSlot, remove: remove)
        offloadCount += 1
    }

    /// Whether a TCP SYN (the kernel's `is_new_conn`: the SYN bit, whatever else is set) that matches
    /// an existing entry ends it and is scheduled afresh: with expire_nodest_conn when the entry's
    /// destination has weight 0, or by conn_reuse_mode when an uncontrolled entry is closing.
    @inline(__always) func reschedulesSYN(state: UInt8, controlled: Bool, word: UInt64) -> Bool {
        if engine.configuration.expireNodestConn && word & Engine.flagWeightZero != 0 { return true }
        return !controlled && reusable(state)
    }

    @inline(__always) func reusable(_ state: UInt8) -> Bool {
        let mode = engine.configuration.connReuseMode
        guard mode & 1 != 0 else { return false }
        if state == TCPState.timeWait.rawValue || state == TCPState.close.rawValue { return true }
        return mode & 2 != 0 && state == TCPState.finWait.rawValue
    }

    /// Moves a TCP entry to `next`, keeping the destination's active/inactive counts right.
    @inline(__always) func setState(_ index: UInt32, _ next: TCPState) {
        let wasInactive = conns[index].isInactive
        let b = Int(conns[index].dest) * 3
        if wasInactive && next.isActive {
            conns[index].stateFlags &= ~ConnectionEntry.flagInactive
            destCounts.add(b + 1, -1)
            destCounts.add(b, 1)
        } else if !wasInactive && !next.isActive {
            conns[index].stateFlags |= ConnectionEntry.flagInactive
            destCounts.add(b, -1)
            destCounts.add(b + 1, 1)
        }
        conns[index].state = next.rawValue
        if next == .established {
            let c = conns[index].control
            if c != 0 { engine.lock.withLock { engine.templates[c - 1].stateFlags |= ConnectionEntry.flagAssured } }
        }
    }

    func icmpError(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> Verdict {
        // The embedded packet went from the VIP to the client: look up the reverse direction.
        let key = ConnectionKey(proto: f.innerProto, client: f.innerDestination, clientPort: f.innerDestinationPort,
                                virtualAddress: f.innerSource, virtualPort: f.innerSourcePort)
        guard f.destination == f.innerSource, let index = conns.lookup(key, template: false) else { return passed() }
        let slot = conns[index].dest
        let word = forwarding.load(Int(slot))
        guard word & Engine.flagAvailable != 0 else { return drop(.destinationUnavailable) }
        return transmit(frame, f, destSlot: slot, word: word)
    }

    // MARK: New connections (under the engine lock)

    func newConnection(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, key: ConnectionKey, tick: UInt32, now: UInt64) -> Verdict {
        if engine.synced.count > 0, let v = adoptSynced(frame, f, key: key, tick: tick) { return v }
        guard let s = engine.findService(f) else { return passed() }
        let serviceKey = serviceInfo[s].key
        let serviceFlags = serviceInfo[s].flags
        switch f.proto {
        case 6:
            let syn = f.tcpFlags & TCPFlag.syn != 0 && f.tcpFlags & TCPFlag.rst == 0
            guard syn || (engine.configuration.sloppyTCP && f.tcpFlags & TCPFlag.rst == 0) else { return passed() }
        case 132:
            guard f.sctpInit else { return passed() }
        default:
            break
        }
        if f.sourcePort == 20 && f.proto == 6 { return passed() } // FTP data is never scheduled
        let persistent = serviceFlags.contains(.persistent)
        if !persistent && !serviceKey.isFwmark && f.destinationPort != serviceKey.port { return drop(.notSchedulable) }
        // SYN-flood defence, before anything is scheduled: drop_packet sheds new connections;
        // drop_entry makes room in a full table by evicting a half-open or finished TCP entry.
        let defense = engine.configuration.defense
        if dropPacketDecision() { return drop(.dropPacket) }
        if table.count >= table.capacity && defenseEngaged(defense.dropEntry) && !evictForNewConnection() {
            return drop(.tableFull)
        }

        var control: UInt32 = 0
        let slot: UInt32
        if persistent {
            guard let (t, d) = engine.persistentDestination(s, f, tick: tick) else {
                if engine.templates.count >= engine.templates.capacity { return drop(.tableFull) }
                sendPortUnreachable(frame, f, interface: ingressInterface)
                return drop(.noDestination)
            }
            control = t + 1
            slot = d
        } else {
            guard let d = engine.runScheduler(s, f, now: now) else {
                sendPortUnreachable(frame, f, interface: ingressInterface)
                return drop(.noDestination)
            }
            slot = d
        }
        if serviceFlags.contains(.onePacket) && f.proto == 17 {
            // One-packet scheduling: no entry, the packet is forwarded on its own.
            countNewConnection(slot)
            return transmit(frame, f, destSlot: slot, word: forwarding.load(Int(slot)))
        }
        let initialTimeout = UInt32(truncatingIfNeeded: timeoutTicks.load(f.proto == 17 ? Engine.udpTimeoutIndex : 0))
        guard let index = table.insert(key, dest: slot, stateFlags: ConnectionEntry.flagInactive,
                                       control: control, expires: tick &+ initialTimeout, inPackets: 1) else {
            return drop(.tableFull)
        }
        if control != 0 { engine.templates[control - 1].control += 1 }
        destCounts.add(Int(slot) * 3 + 1, 1)
        countNewConnection(slot)
        engine.checkOverload(slot)
        if f.proto == 6 {
            let next = TCPStateTable.next(.none, flags: f.tcpFlags)
            setStateLocked(index, next)
            var timeout = UInt32(truncatingIfNeeded: timeoutTicks.load(Int(next.rawValue)))
            if next == .synRecv && defenseEngaged(defense.secureTCP) {
                // secure_tcp: a half-open entry under pressure lives only briefly.
                timeout = min(timeout, defense.secureSynRecvTimeout &* Engine.ticksPerSecond)
                counters.bump(Self.secureTCPCounter, by: 1)
            }
            table[index].expires = tick &+ timeout
            table.reschedule(index)
        } else if f.proto == 132 {
            table[index].state = TCPState.established.rawValue
            table[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Engine.sctpTimeoutIndex))
            table.reschedule(index)
        }
        if syncFlag.load(0) != 0 { syncAfterPacket(index, pkts: 1, stateChanged: true) }
        return transmit(frame, f, destSlot: slot, word: forwarding.load(Int(slot)))
    }

    /// `setState` for callers already holding the lock (templates are shared).
    func setStateLocked(_ index: UInt32, _ next: TCPState) {
        let wasInactive = table[index].isInactive
        let b = Int(table[index].dest) * 3
        if wasInactive && next.isActive {
            table[index].stateFlags &= ~ConnectionEntry.flagInactive
            destCounts.add(b + 1, -1)
            destCounts.add(b, 1)
        }
        table[index].state = next.rawValue
        if next == .established, table[index].control != 0 {
            engine.templates[table[index].control - 1].stateFlags |= ConnectionEntry.flagAssured
        }
    }

    func countNewConnection(_ slot: UInt32) {
        counters.bump(3, by: 1)
        destCounters.bump(Int(slot) * 5, by: 1)
        let svc = destService.load(Int(slot))
        if svc != Engine.noService { serviceCounters.bump(Int(svc) * 5, by: 1) }
    }

    // MARK: Connections forwarded outside lvsd (XDP fast path)

    /// Hands the recorded offload candidates/removals to `body` and empties the ring.
    public func drainOffloads(_ body: (OffloadRecord) -> Void) {
        for i in 0..<offloadCount { body(offloadRing[i]) }
        offloadCount = 0
    }

    /// Changes whenever a destination's forwarding or weight changes (re-check offloads then).
    public var offloadGeneration: UInt64 { engine.offloadGeneration.load(0) }

    /// Where packets of destination `destSlot` go: the real server's MAC, the director's MAC and
    /// the interface; nil when the destination is unavailable, quiesced (weight 0) or unresolved.
    public func offloadTarget(destSlot: UInt32) -> (word: UInt64, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32)? {
        let word = forwarding.load(Int(destSlot))
        guard word & Engine.flagAvailable != 0, word & Engine.flagMACKnown != 0 else { return nil }
        guard engine.lock.withLock({ engine.dests[Int(destSlot)].weight > 0 }) else { return nil }
        let ifslot = Int((word >> 48) & 0xFF)
        return (word, MACAddress(value: word), MACAddress(value: interfaceTable.load(2 * ifslot + 1)),
                Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(2 * ifslot))))
    }

    /// The key of a connection the fast path may hold (ESTABLISHED TCP or UDP, not a template).
    @inline(__always) func offloadableKey(_ index: UInt32) -> ConnectionKey? {
        let e = table[index]
        guard e.stateFlags & ConnectionEntry.flagTemplate == 0 else { return nil }
        guard e.proto == 17 || (e.proto == 6 && e.state == TCPState.established.rawValue) else { return nil }
        return ConnectionKey(proto: e.proto, client: e.client, clientPort: e.cport, virtualAddress: e.virtualAddress, virtualPort: e.vport)
    }

    /// Packets and IP bytes the fast path forwarded to destination `destSlot`, added to the
    /// destination's and its service's statistics.
    public func addOffloadedStatistics(destSlot: UInt32, packets: UInt64, bytes: UInt64) {
        guard packets > 0 || bytes > 0 else { return }
        let d = Int(destSlot) * 5
        destCounters.bump(d + 1, by: packets)
        destCounters.bump(d + 3, by: bytes)
        let svc = destService.load(Int(destSlot))
        if svc != Engine.noService {
            serviceCounters.bump(Int(svc) * 5 + 1, by: packets)
            serviceCounters.bump(Int(svc) * 5 + 3, by: bytes)
        }
    }

    /// Traffic of an offloaded connection forwarded outside lvsd: `packets`/`bytes` (new since the
    /// last call) are added to the destination's and service's statistics, and the connection's
    /// idle timer restarts from `lastSeen` (CLOCK_MONOTONIC ns, 0 = none), so IPVS timeouts still
    /// rule. Returns the destination's forwarding word while the connection may stay offloaded
    /// (it exists, still goes to `destSlot`, is ESTABLISHED or UDP), else nil.
    public func offloadedTraffic(_ key: ConnectionKey, destSlot: UInt32, packets: UInt64, bytes: UInt64, lastSeen: UInt64) -> UInt64? {
        addOffloadedStatistics(destSlot: destSlot, packets: packets, bytes: bytes)
        guard let index = conns.lookup(key, template: false), conns[index].dest == destSlot, !conns[index].isDead else { return nil }
        let timeout: UInt64
        if key.proto == 6 {
            guard conns[index].state == TCPState.established.rawValue else { return nil }
            timeout = timeoutTicks.load(Int(TCPState.established.rawValue))
        } else if key.proto == 17 {
            timeout = timeoutTicks.load(Engine.udpTimeoutIndex)
        } else {
            return nil
        }
        if lastSeen != 0 {
            let expires = Engine.tick(lastSeen) &+ UInt32(truncatingIfNeeded: timeout)
            // Only later: the wheel re-slots entries whose deadline moved on lazily.
            if Int32(bitPattern: expires &- conns[index].expires) > 0 { conns[index].expires = expires }
        }
        return forwarding.load(Int(destSlot))
    }

    // MARK: Expiry

    /// Unbinds an entry and unhashes it; the wheel frees it at the next pass. Under the lock.
    func kill(_ index: UInt32) {
        guard !table[index].isDead else { return }
        unbind(index)
        table.unhash(index)
        table[index].expires = currentTick
        table.reschedule(index)
    }

    /// Under the lock.
    func unbind(_ index: UInt32) {
        let e = table[index]
        let slot = e.dest
        destCounts.add(Int(slot) * 3 + (e.isInactive ? 1 : 0), -1)
        if e.control != 0 { engine.templates[e.control - 1].control -= 1 }
        engine.clearOverload(slot)
        if !engine.dests[Int(slot)].available && engine.destReferences(slot) == 0 { engine.releaseDestSlot(slot) }
    }

    /// This shard's timers, and the shared ones (templates, estimator). Call at least every 100 ms.
    public func tick(now: UInt64) {
        let t = Engine.tick(now)
        currentTick = t
        engine.lock.lock()
        defer { engine.lock.unlock() }
        let generation = engine.sweepGeneration.load(0)
        if generation != sweptGeneration {
            sweptGeneration = generation
            var victims: [UInt32] = []
            table.forEachLive { i, e in if !engine.dests[Int(e.dest)].available { victims.append(i) } }
            for v in victims { kill(v) }
        }
        table.advance(to: t) { index in
            if offloadEnabled, let key = offloadableKey(index) {
                if !table[index].isDead, let seen = offloadedLastSeen?(key), seen != 0 {
                    let timeout = key.proto == 6 ? timeoutTicks.load(Int(TCPState.established.rawValue))
                                                 : timeoutTicks.load(Engine.udpTimeoutIndex)
                    let expires = Engine.tick(seen) &+ UInt32(truncatingIfNeeded: timeout)
                    if Int32(bitPattern: expires &- t) > 0 {
                        table[index].expires = expires
                        return .keep
                    }
                }
                offloadedEnded?(key)
            }
            if !table[index].isDead { unbind(index) }
            return .free
        }
        prepareEviction()
        if syncCount > 0 {
            engine.collectSync(syncRing, count: syncCount, overflow: syncOverflow, tick: t)
            syncCount = 0
            syncOverflow = 0
        }
        engine.sharedTick(now: now, tick: t)
        releaseHeldFrames(tick: t)
    }

    // MARK: Frames waiting for a MAC, ICMP errors

    /// Keeps a copy of a frame whose real server's MAC is not known yet (the first packet after
    /// a destination is added); `tick` sends it once the MAC is learnt, or drops it after 1 s.
    func hold(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32) -> Verdict {
        guard heldCount < Self.heldCapacity, frame.count <= Outbox.slotSize, f.ipLength + f.l3Offset <= Outbox.slotSize else {
            return drop(.neighbourUnresolved)
        }
        (heldFrames + heldCount * Outbox.slotSize).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
        held[heldCount] = HeldFrame(destSlot: destSlot, length: frame.count, l3Offset: f.l3Offset, ipv6: f.kind == .ipv6,
                                    deadline: currentTick &+ Engine.ticksPerSecond)
        heldCount += 1
        counters.bump(4, by: 1)
        return .drop(.neighbourUnresolved)
    }

    func releaseHeldFrames(tick: UInt32) {
        var kept = 0
        for i in 0..<heldCount {
            let h = held[i]
            let word = forwarding.load(Int(h.destSlot))
            let frame = heldFrames + i * Outbox.slotSize
            if word & Engine.flagMACKnown != 0 && word & Engine.flagAvailable != 0 {
                let ifslot = Int((word >> 48) & 0xFF)
                let buffer = UnsafeMutableRawBufferPointer(start: frame, count: h.length)
                if FrameRewriter.directRoute(buffer, l3Offset: h.l3Offset, ipv6: h.ipv6, destinationMAC: MACAddress(value: word),
                                             sourceMAC: MACAddress(value: interfaceTable.load(2 * ifslot + 1))),
                   let out = outbox.reserve(length: h.length, interface: Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(2 * ifslot)))) {
                    out.copyMemory(from: frame, byteCount: h.length)
                    counters.bump(0, by: 1)
                    continue
                }
            } else if Int32(bitPattern: h.deadline &- tick) > 0 {
                if kept != i {
                    held[kept] = h
                    (heldFrames + kept * Outbox.slotSize).copyMemory(from: frame, byteCount: h.length)
                }
                kept += 1
                continue
            }
            counters.bump(8 + Int(DropReason.neighbourUnresolved.rawValue), by: 1)
        }
        heldCount = kept
    }

    /// ICMP (or ICMPv6) port unreachable from the VIP to the client, as the kernel's `ip_vs_leave`
    /// answers a packet no real server can take. Rate-limited to `icmpPerSecond`.
    func sendPortUnreachable(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, interface: Int32) {
        if currentTick &- icmpBudgetTick >= Engine.ticksPerSecond {
            icmpBudgetTick = currentTick
            icmpBudget = Self.icmpPerSecond
        }
        guard icmpBudget > 0, let ifslot = interfaceSlot(interface) else { return }
        let myMAC = MACAddress(value: interfaceTable.load(2 * ifslot + 1))
        let p = frame.baseAddress!
        let l3 = f.l3Offset
        let ipv6 = f.kind == .ipv6
        // Quote the original datagram: IPv4 header + 8 bytes; IPv6 as much as fits in 1280 bytes.
        let quote = ipv6 ? min(f.ipLength, 1280 - 48) : min(f.ipLength, Int(p.load(fromByteOffset: l3, as: UInt8.self) & 0x0F) * 4 + 8)
        let ipHeader = ipv6 ? 40 : 20
        let length = 14 + ipHeader + 8 + quote
        guard let out = outbox.reserve(length: length, interface: interface) else { return }
        icmpBudget -= 1
        out.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        MACAddress(bytes: p + 6).store(to: out)          // to the client's MAC
        myMAC.store(to: out + 6)
        out.storeBytes(of: (ipv6 ? FrameParser.etherTypeIPv6 : FrameParser.etherTypeIPv4).bigEndian, toByteOffset: 12, as: UInt16.self)
        let ip = out + 14
        let icmp = ip + ipHeader
        (icmp + 8).copyMemory(from: p + l3, byteCount: quote)
        if ipv6 {
            Engine.ipv6Header(ip, payload: 8 + quote, src: f.destination, dst: f.source)
            ip.storeBytes(of: UInt8(64), toByteOffset: 7, as: UInt8.self)
            icmp.storeBytes(of: UInt8(1), as: UInt8.self)      // destination unreachable
            icmp.storeBytes(of: UInt8(4), toByteOffset: 1, as: UInt8.self) // port unreachable
            Engine.storeICMPv6Checksum(out, l3: 14, length: 8 + quote)
        } else {
            ip.storeBytes(of: UInt8(0x45), as: UInt8.self)
            ip.storeBytes(of: UInt16(20 + 8 + quote).bigEndian, toByteOffset: 2, as: UInt16.self)
            ip.storeBytes(of: UInt8(64), toByteOffset: 8, as: UInt8.self)
            ip.storeBytes(of: UInt8(1), toByteOffset: 9, as: UInt8.self)
            f.destination.store(to: ip + 12)
            f.source.store(to: ip + 16)
            ip.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(ip, count: 20)).bigEndian, toByteOffset: 10, as: UInt16.self)
            icmp.storeBytes(of: UInt8(3), as: UInt8.self)
            icmp.storeBytes(of: UInt8(3), toByteOffset: 1, as: UInt8.self)
            icmp.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(icmp, count: 8 + quote)).bigEndian, toByteOffset: 2, as: UInt16.self)
        }
    }

    func interfaceSlot(_ ifindex: Int32) -> Int? {
        for i in 0..<Engine.maxInterfaces where interfaceTable.load(2 * i) == UInt64(UInt32(bitPattern: ifindex)) && interfaceTable.load(2 * i + 1) != 0 {
            return i
        }
        return nil
    }

    /// This shard's connections as `/proc/net/ip_vs_conn` shows them, in one go (tests, tools).
    /// From the shard's thread. A running worker lists in slices instead (`listConnections`).
    public func connections(now: UInt64) -> [ConnectionSnapshot] {
        var listing = ConnectionListing()
        while !listConnections(&listing, now: now) {}
        return listing.entries
    }

    /// One slice of a listing: takes the engine lock once, for at most `ConnectionListing.sliceEntries`
    /// entries (and `sliceBuckets` buckets), and appends them to `listing.entries`. Returns true
    /// when the table has been walked to the end. From the shard's thread; between slices the
    /// worker forwards packets and other workers take the lock, so a listing of a big table never
    /// stalls either for long. Entries present from the first slice to the last are listed once.
    @discardableResult
    public func listConnections(_ listing: inout ConnectionListing, now: UInt64) -> Bool {
        guard let start = listing.nextBucket else { return true }
        let t = Engine.tick(now)
        listing.reserve(forTableOf: table.count)
        listing.lockHolds += 1
        let next = engine.lock.withLock {
            table.forEachLive(fromBucket: start, entries: listing.sliceEntries, buckets: listing.sliceBuckets) { _, e in
                listing.entries.append(engine.connectionSnapshot(e, tick: t))
            }
        }
        listing.nextBucket = next
        return next == nil
    }
}

extension Engine {
    func findService(_ f: ParsedFrame) -> Int? {
        if !markRules.isEmpty {
            for rule in markRules where rule.matches(f) {
                if let s = serviceLookup.find(ServiceKey(fwmark: rule.mark, ipv6: f.kind == .ipv6)) { return s }
            }
        }
        guard let proto = IPProtocolNumber(rawValue: f.proto) else { return nil }
        if let s = serviceLookup.find(ServiceKey(proto: proto, address: f.destination, port: f.destinationPort)) { return s }
        if let s = serviceLookup.find(ServiceKey(proto: proto, address: f.destination, port: 0)),
           serviceInfo[s].flags.contains(.persistent) { return s }
        return nil
    }

    func checkOverload(_ slot: UInt32) {
        refreshCounts(slot)
        let d = dests[Int(slot)]
        if d.upperThreshold != 0 && UInt32(max(0, d.totalConns)) >= d.upperThreshold { dests[Int(slot)].overloaded = true }
    }

    func clearOverload(_ slot: UInt32) {
        guard dests[Int(slot)].overloaded else { return }
        refreshCounts(slot)
        let d = dests[Int(slot)]
        let total = UInt32(max(0, d.totalConns))
        if d.lowerThreshold != 0 {
            if total < d.lowerThreshold { dests[Int(slot)].overloaded = false }
        } else if d.upperThreshold != 0 {
            if UInt64(total) * 4 < UInt64(d.upperThreshold) * 3 { dests[Int(slot)].overloaded = false }
        } else {
            dests[Int(slot)].overloaded = false
        }
    }

    func runScheduler(_ s: Int, _ f: ParsedFrame, now: UInt64) -> UInt32? {
        let order = services[s].destinations
        for slot in order { refreshCounts(slot) }
        var ctx = SchedulingContext(source: f.source, sourcePort: f.sourcePort, destination: f.destination,
                                    flags: services[s].options.flags, nowSeconds: UInt32(truncatingIfNeeded: now / 1_000_000_000),
                                    randomState: randomState)
        let picked = order.withUnsafeBufferPointer { buf in
            services[s].scheduler.schedule(SchedulingDestinations(order: buf, table: dests), &ctx)
        }
        randomState = ctx.randomState
        guard let i = picked, i >= 0, i < order.count else { return nil }
        return order[i]
    }

    /// Finds or creates the persistence template; returns (template index, destination slot).
    func persistentDestination(_ s: Int, _ f: ParsedFrame, tick: UInt32) -> (UInt32, UInt32)? {
        let key = serviceInfo[s].key
        let options = serviceInfo[s]
        let snet = f.source.isIPv4 ? f.source.masked(ipv4Mask: options.netmask) : f.source.masked(prefix: Int(options.netmask))
        let tkey: ConnectionKey
        if key.isFwmark {
            tkey = ConnectionKey(proto: 0, client: snet, clientPort: 0, virtualAddress: IPAddress(ipv4: key.fwmark), virtualPort: 0)
        } else if key.port == 0 {
            tkey = ConnectionKey(proto: f.proto, client: snet, clientPort: 0, virtualAddress: f.destination, virtualPort: 0)
        } else {
            tkey = ConnectionKey(proto: f.proto, client: snet, clientPort: 0, virtualAddress: f.destination, virtualPort: f.destinationPort)
        }
        let persistTicks = options.timeout &* Self.ticksPerSecond
        if let t = templates.lookup(tkey, template: true) {
            let slot = templates[t].dest
            let d = dests[Int(slot)]
            if d.available && !(configuration.expireQuiescentTemplate && d.weight == 0) {
                releaseSyncedTemplate(t) // a local client's now: no longer counts against the sync share
                let old = templates[t].expires
                templates[t].expires = tick &+ persistTicks
                if Int32(bitPattern: templates[t].expires &- old) < 0 { templates.reschedule(t) }
                return (t, slot)
            }
            killTemplate(t, tick: tick) // invalidated: no longer matches, freed once its connections are gone
        }
        if templates.count >= templates.capacity && configuration.defense.dropEntry != .off { evictTemplate() }
        guard let slot = runScheduler(s, f, now: UInt64(tick) * Self.nanosecondsPerTick) else { return nil }
        guard let t = templates.insert(tkey, dest: slot, stateFlags: ConnectionEntry.flagTemplate,
                                       control: 0, expires: tick &+ persistTicks) else { return nil }
        destCounts.add(Int(slot) * 3 + 2, 1)
        return (t, slot)
    }
}

/// A connection listing in progress: where the walk of a shard's table goes on, and what it found.
public struct ConnectionListing: Sendable {
    /// Entries per lock hold (well under a millisecond of work; lvs-bench measures it).
    public static let defaultSliceEntries = 1024
    /// Buckets per lock hold, so empty stretches of a big table are also walked in parts.
    public static let defaultSliceBuckets = 16384

    public var sliceEntries: Int
    public var sliceBuckets: Int
    /// The bucket the next slice starts at; nil once the walk is complete.
    public var nextBucket: Int? = 0
    /// The entries listed so far.
    public var entries: [ConnectionSnapshot] = []
    /// How many times the walk took the engine lock.
    public var lockHolds = 0

    public init(sliceEntries: Int = ConnectionListing.defaultSliceEntries, sliceBuckets: Int = ConnectionListing.defaultSliceBuckets) {
        precondition(sliceEntries > 0 && sliceBuckets > 0, "a listing slice must take at least one entry and one bucket")
        self.sliceEntries = sliceEntries
        self.sliceBuckets = sliceBuckets
    }

    public var isComplete: Bool { nextBucket == nil }

    /// Grows `entries` before a slice, outside the lock (a copy of a big array inside it would
    /// hold the lock for milliseconds): room for the table's entries and two more slices.
    mutating func reserve(forTableOf count: Int) {
        let room = 2 * min(sliceEntries, 1 << 20) + 64
        if entries.capacity - entries.count < room {
            entries.reserveCapacity(max(count, 2 * entries.count) + room)
        }
    }
}
