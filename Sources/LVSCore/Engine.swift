import LVSModel

/// Limits and kernel-sysctl equivalents of one engine.
public struct EngineConfiguration: Sendable {
    /// Maximum connection entries (connections + persistence templates). Default: 4 Mi.
    public var connectionCapacity: Int = 4 << 20
    /// Maximum destination slots (live + deleted-but-referenced).
    public var maxDestinations: Int = 65_536
    /// Maximum virtual services.
    public var maxServices: Int = 4096
    /// Answer ARP / neighbour solicitations for service VIPs.
    public var answerNeighbourRequests: Bool = true
    // The sysctls here are the values at start; `Engine.sysctls` and `Engine.setSysctls` are the
    // live ones (lvsadm daemon sysctl), see Engine+Settings.swift.
    /// sysctl expire_nodest_conn.
    public var expireNodestConn: Bool = false
    /// sysctl expire_quiescent_template.
    public var expireQuiescentTemplate: Bool = false
    /// sysctl conn_reuse_mode (bit 0: reuse TIME_WAIT/CLOSE; bit 1: also FIN_WAIT for DR/TUN).
    public var connReuseMode: UInt8 = 1
    /// sysctl sloppy_tcp: any non-RST TCP packet may create a connection.
    public var sloppyTCP: Bool = false
    /// sysctl sloppy_sctp: any SCTP packet but an ABORT may create a connection.
    public var sloppySCTP: Bool = false
    /// Seed of the random generator (twos). lvsd draws it from getrandom(2) at start.
    public var seed: UInt64 = 0x5EED_CAFE_F00D_0001
    /// Secret key of every hashed table (connection table shards, templates, synced connections,
    /// fragment caches); each table uses its own key derived from it. lvsd draws it from
    /// getrandom(2) at start; the fixed default keeps tests and benchmarks repeatable.
    public var hashKey: SipHashKey = .fixedDefault
    /// SYN-flood defence (drop_entry, drop_packet, secure_tcp); all off unless set (lvsd turns
    /// drop_entry and secure_tcp on, see `DefenseConfiguration.lvsdDefault`).
    public var defense = DefenseConfiguration()
    /// The `size=` value shown in the listing header (kernel conn_tab_bits = 12).
    public var reportedTableSize: Int = 4096
    /// The share of the template table (percent) that templates received by the backup sync
    /// daemon may hold; the rest is always left to local clients. Default: 50.
    public var syncedTemplatePercent: Int = 50
    /// sysctl sync_refresh_period (seconds, 0 = off): the master does not re-send a connection
    /// whose expiry moved less than min(this, max(timeout / 2, 10 s)) since it last sent it.
    public var syncRefreshPeriod: UInt32 = 0
    /// sysctl sync_retries (0...3): re-sends of an unchanged connection at sync_refresh_period / 8.
    public var syncRetries: UInt8 = 0
    public init() {}
}

/// A data-plane interface as the engine needs it: MAC and addresses (for ARP/ND and neighbour requests).
public struct EngineInterface: Sendable {
    public var index: Int32
    public var name: String
    public var mac: MACAddress
    /// (address, prefix length) pairs, IPv4 and IPv6.
    public var addresses: [(IPAddress, Int)]
    public init(index: Int32, name: String, mac: MACAddress, addresses: [(IPAddress, Int)]) {
        self.index = index
        self.name = name
        self.mac = mac
        self.addresses = addresses
    }

    func contains(_ a: IPAddress) -> Bool {
        addresses.contains { net, prefix in
            net.isIPv4 == a.isIPv4 && net.masked(prefix: prefix) == a.masked(prefix: prefix)
        }
    }
}

/// A firewall-mark classification rule: what `iptables -t mangle ... -j MARK --set-mark` did.
public struct MarkRule: Sendable, Hashable, Codable {
    public var destination: IPAddress
    public var prefixLength: Int
    /// nil matches any protocol.
    public var proto: IPProtocolNumber?
    public var portLow: UInt16
    public var portHigh: UInt16
    public var mark: UInt32
    public init(destination: IPAddress, prefixLength: Int, proto: IPProtocolNumber?, portLow: UInt16 = 0,
                portHigh: UInt16 = 65535, mark: UInt32) {
        self.destination = destination
        self.prefixLength = prefixLength
        self.proto = proto
        self.portLow = portLow
        self.portHigh = portHigh
        self.mark = mark
    }

    func matches(_ f: ParsedFrame) -> Bool {
        guard destination.isIPv4 == f.destination.isIPv4,
              destination.masked(prefix: prefixLength) == f.destination.masked(prefix: prefixLength) else { return false }
        if let p = proto {
            guard p.rawValue == f.proto else { return false }
            guard f.hasPorts else { return portLow == 0 && portHigh == 65535 }
            return f.destinationPort >= portLow && f.destinationPort <= portHigh
        }
        return true
    }
}

/// Counters of the engine itself (not per service), summed over shards.
public struct EngineCounters: Sendable {
    public var drops = [UInt64](repeating: 0, count: DropReason.allCases.count)
    public var forwarded: UInt64 = 0
    public var passed: UInt64 = 0
    public var replies: UInt64 = 0
    public var newConnections: UInt64 = 0
    /// ARP/ND frames lvsd did not learn a MAC from, by `NeighbourIgnoreReason`.
    public var neighbourIgnored = [UInt64](repeating: 0, count: NeighbourIgnoreReason.allCases.count)
    /// drop_entry: half-open or finished TCP entries evicted to let a new connection in.
    public var dropEntryEvictions: UInt64 = 0
    /// secure_tcp: new SYN_RECV entries given the short timeout.
    public var secureTCPShortened: UInt64 = 0
    /// drop_entry: persistence templates nothing was using (no connection, none ever
    /// ESTABLISHED) evicted to let a new client in.
    public var dropEntryTemplateEvictions: UInt64 = 0
    public init() {}
}

struct ServiceRecord {
    var key: ServiceKey
    var options: ServiceOptions
    var scheduler: SchedulerInstance
    /// Destination slots, newest first (the kernel's list order).
    var destinations: [UInt32]
    /// Deleted destinations still referenced by connections.
    var trash: [UInt32]
    var estimator = RateEstimator()
    /// False for a free slot.
    var isActive = true

    /// A free service slot (computed: a stored global of a non-Sendable type is not concurrency-safe;
    /// only the control path, under the engine lock, makes one).
    static var inactive: ServiceRecord {
        ServiceRecord(key: ServiceKey(fwmark: 0, ipv6: false), options: ServiceOptions(scheduler: "none"),
                      scheduler: .none, destinations: [], trash: [], isActive: false)
    }
}

/// The IPVS director's shared state: services, destinations, schedulers, persistence templates,
/// neighbours and statistics; plus one built-in shard so a single thread can use it directly.
///
/// Threads: each data-plane worker owns one `EngineShard` (its connection table and counters).
/// A packet of an existing connection touches only its shard and relaxed atomics here; new
/// connections, expiry, ARP/ND and control operations take `lock`. Time is injected (`now`,
/// nanoseconds of a monotonic clock), so every behaviour is deterministic.
///
/// `@unchecked Sendable` (mutable fields, raw pointers): every `var` below and the memory behind
/// `dests` and `serviceInfo` are read and written with `lock` held (the fields marked "guarded by
/// `lock`"); the words the packet path reads without it are `AtomicWords` (relaxed atomics),
/// written by the control side. `configuration` is a constant.
public final class Engine: @unchecked Sendable {
    public let configuration: EngineConfiguration
    public let lock = EngineLock()
    // Guarded by `lock`.
    @usableFromInline let dests: UnsafeMutablePointer<Destination>
    var destSlotsUsed = 0
    var freeDestSlots: [UInt32] = []
    var services: [ServiceRecord] = []
    var serviceIndex: [ServiceKey: Int] = [:] {
        didSet { serviceLookup.rebuild(serviceIndex) }
    }
    /// `serviceIndex` in the form the packet path searches.
    var serviceLookup = ServiceLookup()
    /// Per service slot: key, flags, persistence (mirrors `services`, for the packet path).
    @usableFromInline let serviceInfo: UnsafeMutablePointer<ServiceInfo>
    var freeServiceSlots: [Int] = []
    var destsByAddress: [IPAddress: [UInt32]] = [:]
    public private(set) var vips: Set<IPAddress> = []
    var markRules: [MarkRule] = []
    public private(set) var interfaces: [EngineInterface] = []
    public private(set) var timeouts = IPVSTimeouts()
    var randomState: UInt64
    var destEstimators: [RateEstimator] = []
    var serviceBaseline: [StatsCounters]
    var destBaseline: [StatsCounters]
    /// Persistence templates: shared by all shards, as the kernel's one table is.
    let templates: ConnectionTable
    var pendingAnnouncements: [IPAddress] = []
    var neighbourRequested: [UInt32: UInt32] = [:]
    /// ARP/ND frames not learnt from, by `NeighbourIgnoreReason`.
    var neighbourIgnored = [UInt64](repeating: 0, count: NeighbourIgnoreReason.allCases.count)
    var shards: [EngineShard] = []
    var lastEstimateTick: UInt32 = 0
    /// Sync daemon: the running master's message builder and queue, the backup's configuration.
    var syncMaster: SyncMasterState?
    var syncBackup: SyncDaemonSnapshot?
    /// Connections received by the backup daemon, not yet used by any shard (templates go to `templates`).
    let synced: ConnectionTable
    /// Templates in `templates` that the backup daemon created and no local client has used yet.
    var syncedTemplateCount = 0
    /// What the backup daemon did with every entry it received.
    var syncTotals = SyncCounters()
    var lastHousekeepingTick: UInt32 = 0
    /// drop_entry on the templates table: its rover, and the templates it evicted.
    var templateRover: UInt32 = 0
    var templateEvictions: UInt64 = 0
    /// VIP ownership (`Engine+Ownership.swift`): the addresses under VRRP control, those of them
    /// this director owns, and the difference (`notOwnedAddresses`: not answered, announced,
    /// scheduled or forwarded).
    var managedAddresses: Set<IPAddress> = []
    var ownedAddresses: Set<IPAddress> = []
    var notOwnedAddresses: Set<IPAddress> = []

    // Read without the lock on the packet path.
    /// Per destination slot: MAC (48 bits) | interface slot << `interfaceSlotShift` | flags << 56.
    @usableFromInline let forwarding: AtomicWords
    /// Per destination slot: its service slot, or `noService`.
    @usableFromInline let destService: AtomicWords
    /// Per destination slot: active, inactive, persistent connection counts (`DestCount`).
    @usableFromInline let destCounts: AtomicWords
    /// Timeouts in ticks: 11 TCP states, then UDP, SCTP.
    @usableFromInline let timeoutTicks: AtomicWords
    /// 256-bit filter of VIP addresses and "fwmark rules present" (`VIPFilterWord`).
    @usableFromInline let vipFilter: AtomicWords
    /// Per interface slot: ifindex and MAC (`InterfaceWord`).
    @usableFromInline let interfaceTable: AtomicWords
    /// Bumped when destinations are deleted with expire_nodest_conn: shards sweep their tables.
    @usableFromInline let sweepGeneration: AtomicWords
    /// Bumped whenever a destination's forwarding word or weight changes: connections forwarded
    /// outside lvsd (the XDP fast path) are then re-checked at once.
    @usableFromInline let offloadGeneration: AtomicWords
    /// Word 0: non-zero while a master sync daemon runs (the packet path then queues sync records).
    @usableFromInline let syncFlag: AtomicWords
    /// `notOwnedAddresses` as the packet path reads it without the lock (`OwnershipWord`).
    @usableFromInline let ownershipFilter: AtomicWords
    /// The live run-time settings, one word per `Sysctl` (its raw value), written under `lock`.
    @usableFromInline let settingWords: AtomicWords
    /// Tunnel destinations' words and routes (`Engine+Tunnel.swift`).
    let tunnel: TunnelState
    /// Per destination slot: a NAT real server's address and port (`NATTargetWord`, `Engine+NAT.swift`).
    @usableFromInline let natTargets: AtomicWords

    /// The built-in shard used by `process`/`tick` on this object.
    public private(set) var primary: EngineShard!

    @usableFromInline static let flagAvailable: UInt64 = 1 << 56
    @usableFromInline static let flagMACKnown: UInt64 = 1 << 57
    /// The destination's weight is 0 (quiesced): with expire_nodest_conn a new SYN on one of its
    /// connections is scheduled afresh.
    @usableFromInline static let flagWeightZero: UInt64 = 1 << 58
    /// A forwarding word's interface slot: the byte above the MAC.
    @usableFromInline static let interfaceSlotShift: UInt64 = 48
    /// The interface slot (in `interfaceTable`) of forwarding word `word`.
    @inline(__always) static func interfaceSlot(ofForwarding word: UInt64) -> Int { Int((word >> interfaceSlotShift) & 0xFF) }
    @usableFromInline static let noService: UInt64 = 0xFFFF_FFFF
    static let maxInterfaces = 32
    /// Which key `EngineConfiguration.hashKey.derived(_:)` gives each table: templates, synced
    /// connections, then shard n's connection table (and n + fragmentKeyOffset its fragment cache).
    static let templatesKeyIndex: UInt64 = 0
    static let syncedKeyIndex: UInt64 = 1
    static let firstShardKeyIndex: UInt64 = 2
    static let fragmentKeyOffset: UInt64 = 1 << 32

    /// One tick is 10 ms.
    public static let nanosecondsPerTick: UInt64 = 10_000_000
    public static let ticksPerSecond: UInt32 = 100
    @usableFromInline static let udpTimeoutIndex = 11
    @usableFromInline static let sctpTimeoutIndex = 12

    public init(configuration: EngineConfiguration = EngineConfiguration()) {
        self.configuration = configuration
        dests = .allocate(capacity: configuration.maxDestinations)
        forwarding = AtomicWords(count: configuration.maxDestinations)
        destService = AtomicWords(count: configuration.maxDestinations)
        destCounts = AtomicWords(count: configuration.maxDestinations * DestCount.width)
        timeoutTicks = AtomicWords(count: 16)
        vipFilter = AtomicWords(count: VIPFilterWord.count)
        interfaceTable = AtomicWords(count: Self.maxInterfaces * InterfaceWord.width)
        sweepGeneration = AtomicWords(count: 1)
        offloadGeneration = AtomicWords(count: 1)
        syncFlag = AtomicWords(count: 1)
        ownershipFilter = AtomicWords(count: OwnershipWord.words)
        settingWords = AtomicWords(count: Sysctl.allCases.count)
        tunnel = TunnelState(maxDestinations: configuration.maxDestinations)
        natTargets = AtomicWords(count: configuration.maxDestinations * NATTargetWord.width + 1)
        for a in configuration.sysctlValues.assignments { settingWords.store(a.setting.rawValue, UInt64(a.value)) }
        serviceInfo = .allocate(capacity: configuration.maxServices)
        serviceInfo.initialize(repeating: ServiceInfo(key: ServiceKey(fwmark: 0, ipv6: false), flags: [], timeout: 0, netmask: 0),
                               count: configuration.maxServices)
        serviceBaseline = []
        destBaseline = []
        // Templates: one per client (or client network) per service; a quarter of the capacity.
        templates = ConnectionTable(capacity: max(1024, configuration.connectionCapacity / 4),
                                    key: configuration.hashKey.derived(Self.templatesKeyIndex))
        synced = ConnectionTable(capacity: max(1024, configuration.connectionCapacity),
                                 key: configuration.hashKey.derived(Self.syncedKeyIndex))
        randomState = configuration.seed
        applyTimeouts()
        primary = makeShard()
    }

    deinit {
        dests.deinitialize(count: destSlotsUsed)
        dests.deallocate()
        forwarding.deallocate()
        destService.deallocate()
        destCounts.deallocate()
        timeoutTicks.deallocate()
        vipFilter.deallocate()
        interfaceTable.deallocate()
        sweepGeneration.deallocate()
        offloadGeneration.deallocate()
        syncFlag.deallocate()
        ownershipFilter.deallocate()
        settingWords.deallocate()
        natTargets.deallocate()
        serviceInfo.deallocate()
        serviceLookup.release()
    }

    /// A new shard (connection table and counters) for one more worker thread.
    public func makeShard() -> EngineShard {
        lock.withLock {
            let shard = EngineShard(engine: self, capacity: configuration.connectionCapacity,
                                    key: configuration.hashKey.derived(Self.firstShardKeyIndex + UInt64(shards.count)))
            shards.append(shard)
            return shard
        }
    }

    /// Forgets every shard but the primary one (a data plane that was built and then discarded,
    /// before any worker ran).
    public func discardExtraShards() {
        lock.withLock { shards.removeSubrange(1...) }
    }

    @inlinable static func tick(_ now: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: now / nanosecondsPerTick) }

    func applyTimeouts() {
        for (i, t) in TCPStateTable.defaultTimeouts.enumerated() { timeoutTicks.store(i, UInt64(t * Self.ticksPerSecond)) }
        timeoutTicks.store(Int(TCPState.established.rawValue), UInt64(timeouts.tcp * Self.ticksPerSecond))
        timeoutTicks.store(Int(TCPState.finWait.rawValue), UInt64(timeouts.tcpFin * Self.ticksPerSecond))
        timeoutTicks.store(Self.udpTimeoutIndex, UInt64(timeouts.udp * Self.ticksPerSecond))
        timeoutTicks.store(Self.sctpTimeoutIndex, UInt64(timeouts.tcp * Self.ticksPerSecond))
    }

    // MARK: Single-thread use (tests, benchmarks, one worker)

    /// Processes one frame on the built-in shard.
    @inlinable public func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        primary.process(frame, interface: interface, now: now)
    }

    /// Runs the built-in shard's timers (and the shared ones).
    public func tick(now: UInt64) { primary.tick(now: now) }

    /// Connections of every shard and the templates. Only safe while no worker runs.
    public func connections(now: UInt64) -> [ConnectionSnapshot] {
        let list = lock.withLock { shards }
        return list.flatMap { $0.connections(now: now) } + sharedConnections(now: now)
    }

    /// Entries in all shards (only exact while no worker runs) plus templates.
    public var connectionCount: Int { lock.withLock { shards.reduce(templates.count) { $0 + $1.table.count } } }

    /// Engine counters summed over shards.
    public var counters: EngineCounters {
        lock.withLock {
            var c = shards.reduce(into: EngineCounters()) { $0.add($1.counterSnapshot) }
            c.neighbourIgnored = neighbourIgnored
            c.dropEntryTemplateEvictions = templateEvictions
            return c
        }
    }

    /// Capacity of one shard's connection table.
    public var connectionCapacity: Int { configuration.connectionCapacity }

    // MARK: Interfaces and mark rules

    public func setInterfaces(_ list: [EngineInterface]) {
        lock.withLock {
            interfaces = Array(list.prefix(Self.maxInterfaces))
            for (i, ifc) in interfaces.enumerated() {
                interfaceTable.store(InterfaceWord.index(i, .ifindex), UInt64(UInt32(bitPattern: ifc.index)))
                interfaceTable.store(InterfaceWord.index(i, .mac), ifc.mac.value)
            }
            for slot in 0..<destSlotsUsed where dests[slot].inUse { assignInterface(UInt32(slot)) }
        }
    }

    public func setMarkRules(_ rules: [MarkRule]) {
        lock.withLock {
            markRules = rules
            refreshVIPs()
        }
    }
    public var currentMarkRules: [MarkRule] { lock.withLock { markRules } }

    func interfaceSlot(ofIndex index: Int32) -> Int? { interfaces.firstIndex { $0.index == index } }

    func assignInterface(_ slot: UInt32) {
        let a = dests[Int(slot)].address
        let chosen = interfaces.firstIndex { $0.contains(a) } ?? (interfaces.isEmpty ? nil : 0)
        if let i = chosen {
            dests[Int(slot)].interface = interfaces[i].index
            dests[Int(slot)].sourceMAC = interfaces[i].mac
        }
        publish(slot)
    }

    /// Publishes a destination's forwarding word and service slot for the packet path.
    func publish(_ slot: UInt32) {
        let d = dests[Int(slot)]
        let ifslot = UInt64(interfaceSlot(ofIndex: d.interface) ?? 0)
        var word = d.mac.value | ifslot << Self.interfaceSlotShift
        if d.available && d.inUse { word |= Self.flagAvailable }
        if d.macKnown { word |= Self.flagMACKnown }
        if d.weight == 0 { word |= Self.flagWeightZero }
        word |= publishTunnel(slot)
        publishNAT(d, slot: slot, into: &word)
        // Offloaded connections are re-checked only when what they are forwarded by changes (a
        // neighbour refresh that learns the same MAC again must not start a pass over the map; a
        // weight change has its own bump in editDestination).
        if forwarding.load(Int(slot)) & ~Self.flagWeightZero != word & ~Self.flagWeightZero { offloadGeneration.add(0, 1) }
        forwarding.store(Int(slot), word)
        destService.store(Int(slot), d.serviceSlot == UInt32.max ? Self.noService : UInt64(d.serviceSlot))
    }

    /// Copies the atomic connection counts into the destination record (for schedulers and listings).
    @inline(__always) func refreshCounts(_ slot: UInt32) {
        dests[Int(slot)].activeConns = Int32(truncatingIfNeeded: destCounts.signed(DestCount.index(slot, .active)))
        dests[Int(slot)].inactConns = Int32(truncatingIfNeeded: destCounts.signed(DestCount.index(slot, .inactive)))
        dests[Int(slot)].persistConns = Int32(truncatingIfNeeded: destCounts.signed(DestCount.index(slot, .persistent)))
    }

    // MARK: Services

    public func addService(_ key: ServiceKey, _ options: ServiceOptions) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard serviceIndex[key] == nil else { throw .serviceExists }
        try validate(key, options)
        guard let scheduler = SchedulerInstance(name: options.scheduler) else { throw .schedulerNotFound }
        let slot: Int
        if let s = freeServiceSlots.popLast() {
            slot = s
        } else {
            guard services.count < configuration.maxServices else { throw .noMemory }
            slot = services.count
            services.append(.inactive)
            serviceBaseline.append(StatsCounters())
        }
        services[slot] = ServiceRecord(key: key, options: options, scheduler: scheduler, destinations: [], trash: [])
        serviceInfo[slot] = ServiceInfo(key: key, flags: options.flags, timeout: options.timeout, netmask: options.netmask)
        serviceIndex[key] = slot
        serviceBaseline[slot] = serviceSum(slot)
        services[slot].estimator.reset(to: serviceSum(slot))
        updateScheduler(slot, .initialized)
        refreshVIPs()
    }

    func validate(_ key: ServiceKey, _ options: ServiceOptions) throws(IPVSError) {
        if key.isIPv6 && (options.netmask < 1 || options.netmask > 128) { throw .invalid }
        if let pe = options.persistenceEngine, pe != "sip" { throw .schedulerNotFound }
    }

    public func editService(_ key: ServiceKey, _ options: ServiceOptions) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard let slot = serviceIndex[key] else { throw .noSuchService }
        try validate(key, options)
        guard let scheduler = SchedulerInstance(name: options.scheduler) else { throw .schedulerNotFound }
        if options.scheduler == "mh" && services[slot].destinations.count > MaglevScheduler.maxDestinations { throw .invalid }
        let changed = services[slot].options.scheduler != options.scheduler
        services[slot].options = options
        serviceInfo[slot] = ServiceInfo(key: key, flags: options.flags, timeout: options.timeout, netmask: options.netmask)
        if changed { services[slot].scheduler = scheduler }
        updateScheduler(slot, .initialized)
    }

    public func deleteService(_ key: ServiceKey) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        try deleteServiceLocked(key)
    }

    func deleteServiceLocked(_ key: ServiceKey) throws(IPVSError) {
        guard let slot = serviceIndex[key] else { throw .noSuchService }
        for d in services[slot].destinations + services[slot].trash { retireDestination(d) }
        services[slot] = .inactive
        serviceIndex[key] = nil
        freeServiceSlots.append(slot)
        refreshVIPs()
    }

    /// `-C`: delete every service.
    public func clear() {
        lock.lock(); defer { lock.unlock() }
        for key in Array(serviceIndex.keys) { try? deleteServiceLocked(key) }
    }

    public func setTimeouts(_ t: IPVSTimeouts) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        let limit = UInt32(Int32.max) / 100
        guard t.tcp <= limit, t.tcpFin <= limit, t.udp <= limit else { throw .invalid }
        if t.tcp != 0 { timeouts.tcp = t.tcp }
        if t.tcpFin != 0 { timeouts.tcpFin = t.tcpFin }
        if t.udp != 0 { timeouts.udp = t.udp }
        applyTimeouts()
    }

    /// `-Z`: zero one service (and its destinations) or everything.
    public func zero(_ key: ServiceKey?) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        var slots: [Int]
        if let key {
            guard let s = serviceIndex[key] else { throw .noSuchService }
            slots = [s]
        } else {
            slots = services.indices.filter { services[$0].isActive }
        }
        for s in slots {
            let sum = serviceSum(s)
            serviceBaseline[s] = sum
            services[s].estimator.reset(to: sum)
            for d in services[s].destinations + services[s].trash {
                let ds = destSum(d)
                destBaseline[Int(d)] = ds
                destEstimators[Int(d)].reset(to: ds)
            }
        }
    }

    /// Sets the VIP set and the lock-free VIP filter the packet path consults.
    func refreshVIPs() {
        var set = Set<IPAddress>()
        for s in services where s.isActive && !s.key.isFwmark { set.insert(s.key.address) }
        for rule in markRules where rule.prefixLength == (rule.destination.isIPv4 ? 32 : 128) { set.insert(rule.destination) }
        let added = set.subtracting(vips)
        vips = set
        var bits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for v in set {
            let b = Self.filterBit(v)
            switch b >> 6 {
            case 0: bits.0 |= 1 << (b & 63)
            case 1: bits.1 |= 1 << (b & 63)
            case 2: bits.2 |= 1 << (b & 63)
            default: bits.3 |= 1 << (b & 63)
            }
        }
        vipFilter.store(0, bits.0)
        vipFilter.store(1, bits.1)
        vipFilter.store(2, bits.2)
        vipFilter.store(3, bits.3)
        vipFilter.store(VIPFilterWord.markRules, markRules.isEmpty ? 0 : 1)
        pendingAnnouncements.append(contentsOf: added.sorted())
    }

    @inlinable @inline(__always) static func filterBit(_ a: IPAddress) -> Int {
        Int((a.folded &* 0x9E37_79B1) >> 24)
    }

    /// False when `a` is certainly not a VIP and no fwmark rule exists: such frames skip the lock.
    @inlinable @inline(__always) func mayBeVirtual(_ a: IPAddress) -> Bool {
        if vipFilter.load(VIPFilterWord.markRules) != 0 { return true }
        let b = Self.filterBit(a)
        return vipFilter.load(b >> 6) & (1 << UInt64(b & 63)) != 0
    }

    // MARK: Destinations

    func findDestination(_ slot: Int, _ address: IPAddress, _ port: UInt16) -> Int? {
        services[slot].destinations.firstIndex { dests[Int($0)].address == address && dests[Int($0)].port == port }
    }

    func validateDestination(_ key: ServiceKey, _ o: DestinationOptions) throws(IPVSError) {
        guard o.weight >= 0 else { throw .outOfRange }
        if o.lowerThreshold > o.upperThreshold { throw .outOfRange }
        if o.upperThreshold > UInt32(Int32.max) { throw .invalid }
        if o.tunnelType == .gue && o.method == .tunnel && o.tunnelPort == 0 { throw .invalid }
        if o.address.isIPv4 != !key.isIPv6 && o.method != .tunnel { throw .invalid }
        let a = o.address
        if a.isIPv4 {
            let v = a.ipv4Value
            if v == 0 || v == 0xFFFF_FFFF || (v >> 28) == 0xE { throw .invalid }
        } else if a == .zero || (a.high >> 56) == 0xFF {
            throw .invalid
        }
    }

    public func addDestination(_ key: ServiceKey, _ o: DestinationOptions) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard let s = serviceIndex[key] else { throw .noSuchService }
        try validateDestination(key, o)
        guard findDestination(s, o.address, o.port) == nil else { throw .destinationExists }
        if services[s].options.scheduler == "mh" && services[s].destinations.count >= MaglevScheduler.maxDestinations { throw .invalid }
        let slot: UInt32
        if let t = services[s].trash.firstIndex(where: { dests[Int($0)].address == o.address && dests[Int($0)].port == o.port }) {
            // Revive a deleted destination still referenced by connections (the kernel's trash).
            slot = services[s].trash.remove(at: t)
            let keep = dests[Int(slot)]
            dests[Int(slot)] = Destination(options: o, serviceSlot: UInt32(s))
            dests[Int(slot)].mac = keep.mac
            dests[Int(slot)].macKnown = keep.macKnown
        } else {
            if let f = freeDestSlots.popLast() {
                slot = f
                dests[Int(slot)] = Destination(options: o, serviceSlot: UInt32(s))
            } else {
                guard destSlotsUsed < configuration.maxDestinations else { throw .noMemory }
                slot = UInt32(destSlotsUsed)
                (dests + destSlotsUsed).initialize(to: Destination(options: o, serviceSlot: UInt32(s)))
                destSlotsUsed += 1
                destEstimators.append(RateEstimator())
                destBaseline.append(StatsCounters())
            }
            let sum = destSum(slot)
            destBaseline[Int(slot)] = sum
            destEstimators[Int(slot)].reset(to: sum)
            destsByAddress[o.address, default: []].append(slot)
            learnFromExisting(slot)
        }
        refreshCounts(slot)
        assignInterface(slot)
        services[s].destinations.insert(slot, at: 0)
        updateScheduler(s, .added(slot: slot))
    }

    /// A new destination with an address already resolved for another service shares its MAC.
    func learnFromExisting(_ slot: UInt32) {
        for other in destsByAddress[dests[Int(slot)].address] ?? [] where other != slot && dests[Int(other)].macKnown {
            dests[Int(slot)].mac = dests[Int(other)].mac
            dests[Int(slot)].macKnown = true
            return
        }
    }

    public func editDestination(_ key: ServiceKey, _ o: DestinationOptions) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard let s = serviceIndex[key] else { throw .noSuchService }
        guard let i = findDestination(s, o.address, o.port) else { throw .noSuchDestination }
        try validateDestination(key, o)
        let slot = services[s].destinations[i]
        let oldUpper = dests[Int(slot)].upperThreshold
        if dests[Int(slot)].method != o.method { forgetNextHop(slot) }
        dests[Int(slot)].method = o.method
        dests[Int(slot)].weight = o.weight
        offloadGeneration.add(0, 1)
        if o.weight > 0 { dests[Int(slot)].lastWeight = o.weight }
        dests[Int(slot)].upperThreshold = o.upperThreshold
        dests[Int(slot)].lowerThreshold = o.lowerThreshold
        dests[Int(slot)].tunnelType = o.tunnelType
        dests[Int(slot)].tunnelPort = o.tunnelPort
        dests[Int(slot)].tunnelFlags = o.tunnelFlags
        if o.upperThreshold == 0 || o.upperThreshold > oldUpper { dests[Int(slot)].overloaded = false }
        publish(slot)
        updateScheduler(s, .edited(slot: slot))
    }

    public func deleteDestination(_ key: ServiceKey, address: IPAddress, port: UInt16) throws(IPVSError) {
        lock.lock(); defer { lock.unlock() }
        guard let s = serviceIndex[key] else { throw .noSuchService }
        guard let i = findDestination(s, address, port) else { throw .noSuchDestination }
        let slot = services[s].destinations.remove(at: i)
        updateScheduler(s, .removed(slot: slot, formerIndex: i))
        dests[Int(slot)].available = false
        publish(slot)
        if destReferences(slot) > 0 {
            services[s].trash.append(slot)
        } else {
            releaseDestSlot(slot)
        }
        if expireNodestConn { sweepGeneration.add(0, 1) }
    }

    /// A destination of a deleted service: unavailable, freed once unreferenced.
    func retireDestination(_ slot: UInt32) {
        dests[Int(slot)].available = false
        dests[Int(slot)].serviceSlot = UInt32.max
        publish(slot)
        if destReferences(slot) == 0 { releaseDestSlot(slot) }
    }

    func destReferences(_ slot: UInt32) -> Int64 {
        destCounts.signed(DestCount.index(slot, .active)) + destCounts.signed(DestCount.index(slot, .inactive))
            + destCounts.signed(DestCount.index(slot, .persistent))
    }

    func releaseDestSlot(_ slot: UInt32) {
        guard dests[Int(slot)].inUse else { return }
        let a = dests[Int(slot)].address
        destsByAddress[a]?.removeAll { $0 == slot }
        if destsByAddress[a]?.isEmpty == true { destsByAddress[a] = nil }
        let svc = dests[Int(slot)].serviceSlot
        if svc != UInt32.max, Int(svc) < services.count { services[Int(svc)].trash.removeAll { $0 == slot } }
        dests[Int(slot)].inUse = false
        publish(slot)
        neighbourRequested[slot] = nil
        freeDestSlots.append(slot)
    }

    func updateScheduler(_ s: Int, _ change: DestinationChange) {
        let order = services[s].destinations
        for slot in order { refreshCounts(slot) }
        let flags = services[s].options.flags
        order.withUnsafeBufferPointer { buf in
            services[s].scheduler.update(SchedulingDestinations(order: buf, table: dests), flags: flags, change: change)
        }
    }

    // MARK: Statistics (under the lock)

    func serviceSum(_ s: Int) -> StatsCounters {
        var sum = StatsCounters()
        for shard in shards { sum += shard.serviceStats(s) }
        return sum
    }

    func destSum(_ d: UInt32) -> StatsCounters {
        var sum = StatsCounters()
        for shard in shards { sum += shard.destStats(d) }
        return sum
    }

    /// The 2-second estimator over the sums of all shards.
    func estimate() {
        for s in services.indices where services[s].isActive {
            services[s].estimator.sample(serviceSum(s))
            for d in services[s].destinations + services[s].trash { destEstimators[Int(d)].sample(destSum(d)) }
        }
    }

    /// Shared timers: template expiry, the estimator, scheduler housekeeping. Called under the lock
    /// from any shard's tick.
    func sharedTick(now: UInt64, tick t: UInt32) {
        let rearm = 60 * Self.ticksPerSecond
        templates.advance(to: t) { index in
            let e = templates[index]
            if e.control > 0 {
                templates[index].expires = t &+ rearm
                return .keep
            }
            if !e.isDead { unbindTemplate(index) }
            return .free
        }
        expireSynced(tick: t)
        if t &- lastEstimateTick >= 2 * Self.ticksPerSecond {
            lastEstimateTick = t
            estimate()
        }
        if t &- lastHousekeepingTick >= 60 * Self.ticksPerSecond {
            lastHousekeepingTick = t
            let secs = UInt32(truncatingIfNeeded: now / 1_000_000_000)
            for s in services.indices where services[s].isActive { services[s].scheduler.expire(nowSeconds: secs) }
        }
    }

    func unbindTemplate(_ index: UInt32) {
        releaseSyncedTemplate(index)
        let slot = templates[index].dest
        destCounts.add(DestCount.index(slot, .persistent), -1)
        if !dests[Int(slot)].available && destReferences(slot) == 0 { releaseDestSlot(slot) }
    }

    /// Invalidates a template: it no longer matches and is freed once its connections are gone.
    func killTemplate(_ index: UInt32, tick: UInt32) {
        guard !templates[index].isDead else { return }
        unbindTemplate(index)
        templates.unhash(index)
        templates[index].expires = tick
        templates.reschedule(index)
    }
}

extension EngineCounters {
    mutating func add(_ o: EngineCounters) {
        for i in drops.indices { drops[i] &+= o.drops[i] }
        forwarded &+= o.forwarded
        passed &+= o.passed
        replies &+= o.replies
        newConnections &+= o.newConnections
        dropEntryEvictions &+= o.dropEntryEvictions
        secureTCPShortened &+= o.secureTCPShortened
    }
}
